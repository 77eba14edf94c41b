import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'

/**
 * Which files do processes hold open? disk-cleanup must never remove one: the space would not come back (the inode
 * lives on until the last descriptor closes) and the process may still need it.
 *
 * A file is identified by its (device, inode) pair, which a path cannot fake. The pairs come from, for every process:
 * - `/proc/<pid>/fd/<n>`: the magic links of its open descriptors; stat() through a link gives the open file itself,
 *   even when it was renamed or unlinked since;
 * - `/proc/<pid>/maps`: the files it has mapped into memory (a mapped file needs no open descriptor).
 *
 * The parsers below are pure (unit-tested on text); {@link readOpenFiles} is the thin reader around them. The scan is
 * a snapshot: it runs once per cleanup, right before the files are acted on.
 */

/** A (device, inode) pair as one map key. Devices are in the encoding of `stat().dev` (glibc's makedev). */
export const devInoKey = (dev: bigint, ino: bigint): string => `${dev}:${ino}`

/**
 * glibc's `makedev(major, minor)`: the `st_dev` that stat() reports (and Node's `Stats.dev`) for a device that
 * `/proc/<pid>/maps` writes as `major:minor` in hexadecimal.
 */
export const makeDev = (major: bigint, minor: bigint): bigint =>
  ((major & 0xfffn) << 8n) | ((major & ~0xfffn) << 32n) | (minor & 0xffn) | ((minor & ~0xffn) << 12n)

/** A directory entry of /proc that is a process (a positive decimal pid). */
export const isPidName = (name: string): boolean => /^[1-9][0-9]{0,9}$/.test(name)

/** What a `/proc/<pid>/fd/<n>` link points at, from its readlink text. */
export type FdTarget =
  | { kind: 'path'; path: string; deleted: boolean }
  | { kind: 'socket' | 'pipe' | 'anon-inode' | 'other'; text: string }

/**
 * Classifies the readlink text of a descriptor: `/var/log/app.log`, `/tmp/x (deleted)`, `socket:[1234]`,
 * `pipe:[5678]`, `anon_inode:[eventfd]`, `anon_inode:inotify`, `/dev/pts/0`, `net:[4026531840]`... Only paths can be
 * files under a cleanup root; the rest are never stat()ed.
 */
export function parseFdTarget(link: string): FdTarget {
  if (link.startsWith('/')) {
    const deleted = link.endsWith(' (deleted)')
    return { kind: 'path', path: deleted ? link.slice(0, -' (deleted)'.length) : link, deleted }
  }
  if (link.startsWith('socket:')) return { kind: 'socket', text: link }
  if (link.startsWith('pipe:')) return { kind: 'pipe', text: link }
  if (link.startsWith('anon_inode:')) return { kind: 'anon-inode', text: link }
  return { kind: 'other', text: link }
}

export interface DevIno {
  dev: bigint
  ino: bigint
}

/**
 * `/proc/<pid>/maps` → the (device, inode) pairs of the files mapped, each once. Line format (proc(5)):
 * `55c4ff091000-55c4ff093000 r--p 00000000 fe:00 260386    /usr/bin/head`: address, perms, offset, device as
 * hexadecimal `major:minor`, inode in decimal, then the path (absent for anonymous memory, `[heap]`, `[stack]`, ...).
 * Inode 0 is anonymous memory. Malformed lines are ignored: maps is kernel text, and a missed mapping costs nothing
 * worse than the file staying (the descriptors are scanned too).
 */
export function parseMapsFiles(text: string): DevIno[] {
  const seen = new Map<string, DevIno>()
  for (const line of text.split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S{4} [0-9a-f]+ ([0-9a-f]+):([0-9a-f]+) ([0-9]+)(?: |$)/.exec(line)
    if (!m) continue
    const ino = BigInt(m[3] as string)
    if (ino === 0n) continue
    const dev = makeDev(BigInt(`0x${m[1]}`), BigInt(`0x${m[2]}`))
    const key = devInoKey(dev, ino)
    if (!seen.has(key)) seen.set(key, { dev, ino })
  }
  return [...seen.values()]
}

/** The snapshot of open files: a set of (device, inode) pairs and how complete it is. */
export interface OpenFiles {
  has: (dev: bigint, ino: bigint) => boolean
  /** Distinct files held open or mapped. */
  files: number
  processes: number
  descriptors: number
  /**
   * Processes whose descriptors or maps could not be read (EACCES/EPERM): the snapshot may miss their files. The
   * caller must not remove anything then (fail safe). Processes that exit during the scan are not counted.
   */
  unreadable: number
  /** The first few unreadable pids with the reason, for the evidence. */
  unreadableSample: string[]
}

/** Builds an {@link OpenFiles} from pairs; `unreadable` defaults to 0 (for tests and callers with their own scan). */
export function openFilesFrom(
  pairs: Iterable<DevIno>,
  stats: Partial<Pick<OpenFiles, 'processes' | 'descriptors' | 'unreadable' | 'unreadableSample'>> = {},
): OpenFiles {
  const keys = new Set<string>()
  for (const p of pairs) keys.add(devInoKey(p.dev, p.ino))
  return {
    has: (dev, ino) => keys.has(devInoKey(dev, ino)),
    files: keys.size,
    processes: stats.processes ?? 0,
    descriptors: stats.descriptors ?? 0,
    unreadable: stats.unreadable ?? 0,
    unreadableSample: stats.unreadableSample ?? [],
  }
}

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code

/** The process (or the descriptor) went away while we looked: not a gap in the snapshot. */
const isGone = (err: unknown): boolean => {
  const code = errnoOf(err)
  return code === 'ENOENT' || code === 'ESRCH' || code === 'ENOTDIR'
}

const SAMPLE = 5

/**
 * Scans `<procDir>/<pid>/fd` and `<procDir>/<pid>/maps` of every process once. Never throws for a process: one that
 * exits meanwhile is skipped, one that cannot be read is counted in `unreadable`. Throws only when `procDir` itself
 * cannot be listed (no /proc: the caller cannot know what is open, and must not remove anything).
 */
export function readOpenFiles(procDir = '/proc'): OpenFiles {
  const pairs: DevIno[] = []
  let processes = 0
  let descriptors = 0
  let unreadable = 0
  const unreadableSample: string[] = []
  const gap = (pid: string, what: string, err: unknown): void => {
    unreadable++
    if (unreadableSample.length < SAMPLE) unreadableSample.push(`${pid} ${what}: ${errnoOf(err) ?? String(err)}`)
  }

  for (const pid of readdirSync(procDir)) {
    if (!isPidName(pid)) continue
    const base = `${procDir}/${pid}`
    let fds: string[]
    try {
      fds = readdirSync(`${base}/fd`)
    } catch (err) {
      if (!isGone(err)) gap(pid, 'fd', err)
      continue
    }
    processes++
    let pidGap = false
    for (const fd of fds) {
      const link = `${base}/fd/${fd}`
      let target: string
      try {
        target = readlinkSync(link)
      } catch (err) {
        if (!isGone(err) && !pidGap) {
          gap(pid, `fd ${fd}`, err)
          pidGap = true
        }
        continue
      }
      descriptors++
      if (parseFdTarget(target).kind !== 'path') continue
      try {
        const st = statSync(link, { bigint: true })
        pairs.push({ dev: st.dev, ino: st.ino })
      } catch (err) {
        if (!isGone(err) && !pidGap) {
          gap(pid, `fd ${fd}`, err)
          pidGap = true
        }
      }
    }
    try {
      pairs.push(...parseMapsFiles(readFileSync(`${base}/maps`, 'utf8')))
    } catch (err) {
      if (!isGone(err) && !pidGap) gap(pid, 'maps', err)
    }
  }
  return openFilesFrom(pairs, { processes, descriptors, unreadable, unreadableSample })
}
