/**
 * Which file belongs to which disk-cleanup category, and is it old enough? Pure functions of a name and a few
 * timestamps, following the category documentation in shared/registry/remediations/disk-cleanup.ts exactly.
 * No I/O here: the walker feeds names and lstat() times in.
 */

/** The categories that act on files found by walking (the others run a package manager, journalctl, docker). */
export type FileCategory = 'logs' | 'compressed-logs' | 'temp' | 'core-dumps'

/** `.gz`, `.xz`, `.zst`: the compressed forms of a log file. */
const COMPRESSED = String.raw`(?:\.(?:gz|xz|zst))?`
/** `.1`, `.23` (logrotate's numbered rotation) or `-20261101` (logrotate's default `dateext`). */
const ROTATION = String.raw`(?:\.[0-9]+|-[0-9]{8})`

/**
 * `*.log`, `*.log.1`, `*.log-20261101`, each optionally `.gz`, `.xz` or `.zst`. At least one character before
 * `.log` (a file named just `.log` is not a log). `[^]` so that a name with a newline is matched as data too.
 */
const LOG_NAME = new RegExp(String.raw`^[^]+\.log${ROTATION}?${COMPRESSED}$`)
/** A rotated log that is not compressed yet: `*.log.1`, `*.log-20261101`. */
const ROTATED_UNCOMPRESSED = new RegExp(String.raw`^[^]+\.log${ROTATION}$`)
/** `core` or `core.<pid>` (the kernel's default `core_pattern` with and without `core_uses_pid`). */
const CORE_NAME = /^core(?:\.[0-9]+)?$/

/** The prefix of the temporary files compression writes; such a file is never a candidate itself. */
export const TEMP_FILE_PREFIX = '.ansai-gz-'

export const isLogName = (name: string): boolean => !name.startsWith(TEMP_FILE_PREFIX) && LOG_NAME.test(name)

export const isRotatedUncompressedLogName = (name: string): boolean =>
  !name.startsWith(TEMP_FILE_PREFIX) && ROTATED_UNCOMPRESSED.test(name)

export const isCoreName = (name: string): boolean => CORE_NAME.test(name)

/** The file name compression writes: `app.log.1` → `app.log.1.gz`. */
export const compressedName = (name: string): string => `${name}.gz`

/**
 * A temporary directory among the roots: `/tmp`, `/var/tmp`, or a root whose last segment is `tmp` or `temp`
 * (exactly; `/srv/Temp` and `/srv/tmpfiles` are not). Only roots count: a `tmp` directory found inside a root is
 * not one.
 */
export const isTempRoot = (root: string): boolean => {
  if (root === '/tmp' || root === '/var/tmp') return true
  const last = root.slice(root.lastIndexOf('/') + 1)
  return last === 'tmp' || last === 'temp'
}

const NS_PER_MS = 1_000_000n

/**
 * Strictly older than the bound: `now - time > bound`. Times are nanoseconds since the epoch (lstat's `mtimeNs`),
 * `nowMs` and `boundMs` milliseconds. A time in the future (clock skew, a touch -d) is never old.
 */
export const isOlderThan = (timeNs: bigint, nowMs: number, boundMs: number): boolean =>
  BigInt(Math.floor(nowMs)) * NS_PER_MS - timeNs > BigInt(Math.floor(boundMs)) * NS_PER_MS

/** The age bounds of the selected file categories, in milliseconds; absent = category not selected. */
export interface AgeBounds {
  logs?: number
  'compressed-logs'?: number
  temp?: number
  'core-dumps'?: number
}

/** What the walker knows about a regular file when it classifies it. */
export interface FileFacts {
  name: string
  mtimeNs: bigint
  atimeNs: bigint
  /** The file was found under a root that is a temporary directory ({@link isTempRoot}). */
  inTempRoot: boolean
  /** The file was found in systemd-coredump's store, where every file is a core dump. */
  inCoredumpStore: boolean
}

/**
 * The category a regular file falls in, or undefined when it is no category's business or too young for it.
 * First match wins, in this order:
 * 1. in the core dump store: `core-dumps` when older than its bound (nothing else is ever taken from there);
 * 2. `logs`: a log name last modified more than `logsOlderThan` ago;
 * 3. `compressed-logs`: a rotated, uncompressed log name last modified more than `compressLogsOlderThan` ago;
 * 4. `core-dumps`: `core` / `core.<pid>` modified more than `coreDumps` ago;
 * 5. `temp`: any file in a temporary root, neither modified nor accessed for `tempOlderThan`.
 * A file younger than the bound of the category its name matches may still fall in a later one (an old `*.log`
 * in /tmp that `logsOlderThan` spares but `tempOlderThan` does not): each category keeps its own documented rule.
 */
export function classifyFile(f: FileFacts, bounds: AgeBounds, nowMs: number): FileCategory | undefined {
  const older = (bound: number | undefined, timeNs: bigint): boolean =>
    bound !== undefined && isOlderThan(timeNs, nowMs, bound)
  if (f.inCoredumpStore) return older(bounds['core-dumps'], f.mtimeNs) ? 'core-dumps' : undefined
  if (f.name.startsWith(TEMP_FILE_PREFIX)) return undefined
  if (isLogName(f.name) && older(bounds.logs, f.mtimeNs)) return 'logs'
  if (isRotatedUncompressedLogName(f.name) && older(bounds['compressed-logs'], f.mtimeNs)) return 'compressed-logs'
  if (isCoreName(f.name) && older(bounds['core-dumps'], f.mtimeNs)) return 'core-dumps'
  if (f.inTempRoot && older(bounds.temp, f.mtimeNs) && older(bounds.temp, f.atimeNs)) return 'temp'
  return undefined
}
