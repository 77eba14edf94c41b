import type { ObservationOf } from '../../shared/contracts/index.ts'
import { failed, type ParseResult, parsed, problem, quote, splitLines } from './parse-result.ts'

const PROBE = 'filesystem'

export type FilesystemObservation = ObservationOf<'filesystem'>

export interface MountEntry {
  mount: string
  fsType: string
  device: string
}

export interface MountinfoOptions {
  /** Keep tmpfs mounts (off by default: RAM-backed and usually not worth watching; tests use them as small disks). */
  includeTmpfs?: boolean
}

/**
 * Filesystems that hold no user data, or whose numbers mislead:
 * - kernel interfaces: proc, sysfs, cgroup(2), devpts, devtmpfs, mqueue, debugfs, tracefs, securityfs, pstore, bpf,
 *   configfs, fusectl, binfmt_misc, nsfs, efivarfs, selinuxfs, rpc_pipefs, nfsd, autofs (the trigger; the real
 *   mount appears under its own type once mounted), hugetlbfs, ramfs;
 * - squashfs: snap and live images, always 100 % full by construction, would raise alerts no cleanup can fix;
 * - `fuse.lxcfs`, `fuse.gvfsd-fuse`, `fuse.portal`: views, not storage.
 *
 * overlay: kept only when mounted on `/` (inside a container, the root overlay is the only view of its disk);
 * elsewhere (`/var/lib/docker/overlay2/<id>/merged`, podman's) each container's overlay repeats the numbers of
 * the filesystem under it, once per container, so those are skipped: that filesystem is watched on its own mount.
 *
 * tmpfs: skipped unless `includeTmpfs` (see {@link MountinfoOptions}).
 */
export const PSEUDO_FS_TYPES: ReadonlySet<string> = new Set([
  'proc',
  'sysfs',
  'cgroup',
  'cgroup2',
  'devpts',
  'devtmpfs',
  'mqueue',
  'debugfs',
  'tracefs',
  'securityfs',
  'pstore',
  'bpf',
  'autofs',
  'configfs',
  'fusectl',
  'hugetlbfs',
  'binfmt_misc',
  'nsfs',
  'efivarfs',
  'selinuxfs',
  'rpc_pipefs',
  'nfsd',
  'ramfs',
  'squashfs',
  'fuse.lxcfs',
  'fuse.gvfsd-fuse',
  'fuse.portal',
])

/** mountinfo escapes space, tab, newline and backslash as `\040`, `\011`, `\012`, `\134` (octal). */
export const decodeMountinfoEscapes = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)))

export function isWatchedFs(entry: MountEntry, opts: MountinfoOptions = {}): boolean {
  if (PSEUDO_FS_TYPES.has(entry.fsType)) return false
  if (entry.fsType === 'tmpfs') return opts.includeTmpfs === true
  if (entry.fsType === 'overlay') return entry.mount === '/'
  return true
}

/**
 * `/proc/self/mountinfo` → the mounts worth watching, in mount order. Line format (proc(5)):
 * `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
 * (id, parent, major:minor, root, mount point, options, optional fields, `-`, type, source, super options).
 * A mount point mounted over several times is listed once, with its last (visible) mount. A malformed line is
 * skipped and named in `problems`; text with no valid line fails.
 */
export function parseMountinfo(text: string, opts: MountinfoOptions = {}): ParseResult<MountEntry[]> {
  if (typeof text !== 'string') return failed(PROBE, 'mountinfo is not text')
  const byMount = new Map<string, MountEntry>()
  const problems = []
  let valid = 0
  for (const [i, line] of splitLines(text).entries()) {
    if (line.trim() === '') continue
    const fields = line.trim().split(/\s+/)
    const sep = fields.indexOf('-', 6)
    if (
      fields.length < 10 ||
      sep < 0 ||
      sep + 2 >= fields.length ||
      !/^\d+$/.test(fields[0]!) ||
      !/^\d+:\d+$/.test(fields[2]!) ||
      !fields[4]!.startsWith('/')
    ) {
      problems.push(problem(PROBE, `mountinfo line ${i + 1} skipped: ${quote(line)}`))
      continue
    }
    valid++
    const entry: MountEntry = {
      mount: decodeMountinfoEscapes(fields[4]!),
      fsType: decodeMountinfoEscapes(fields[sep + 1]!),
      device: decodeMountinfoEscapes(fields[sep + 2]!),
    }
    byMount.delete(entry.mount) // re-insert so that order follows the visible mount
    byMount.set(entry.mount, entry)
  }
  if (valid === 0) return failed(PROBE, 'mountinfo has no valid line')
  return parsed(
    [...byMount.values()].filter((e) => isWatchedFs(e, opts)),
    problems,
  )
}

/** The part of node's `fs.StatFs` (from `fs.statfsSync(path)`) this needs. */
export interface StatfsLike {
  bsize: number | bigint
  blocks: number | bigint
  bfree: number | bigint
  bavail: number | bigint
  files: number | bigint
  ffree: number | bigint
}

/**
 * statfs → FilesystemObservation: bytesTotal = blocks × bsize, bytesUsed = (blocks − bfree) × bsize,
 * bytesAvailable = bavail × bsize (what an unprivileged user may still write; root's reserve is neither used nor
 * available, as in df); inodesTotal = files, inodesUsed = files − ffree (0 and 0 on filesystems without fixed
 * inodes, e.g. btrfs).
 */
export function statfsToObservation(
  mount: string,
  fsType: string,
  device: string | undefined,
  statfs: StatfsLike,
): ParseResult<FilesystemObservation> {
  if (typeof mount !== 'string' || mount.length === 0) return failed(PROBE, 'mount point is empty')
  if (statfs === null || typeof statfs !== 'object') return failed(PROBE, `${mount}: statfs result is not an object`)
  const keys = ['bsize', 'blocks', 'bfree', 'bavail', 'files', 'ffree'] as const
  const n = {} as Record<(typeof keys)[number], number>
  for (const key of keys) {
    const raw = statfs[key]
    const value = typeof raw === 'bigint' ? Number(raw) : raw
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      return failed(PROBE, `${mount}: statfs ${key} is not a non-negative integer: ${String(raw)}`)
    }
    n[key] = value
  }
  if (n.bfree > n.blocks) return failed(PROBE, `${mount}: statfs bfree ${n.bfree} > blocks ${n.blocks}`)
  if (n.ffree > n.files) return failed(PROBE, `${mount}: statfs ffree ${n.ffree} > files ${n.files}`)
  const bytes = (blocks: number): number => blocks * n.bsize
  const bytesTotal = bytes(n.blocks)
  if (!Number.isSafeInteger(bytesTotal)) return failed(PROBE, `${mount}: filesystem size overflows`)
  const obs: FilesystemObservation = {
    kind: 'filesystem',
    mount,
    fsType: String(fsType ?? ''),
    bytesTotal,
    bytesUsed: bytes(n.blocks - n.bfree),
    bytesAvailable: bytes(n.bavail),
    inodesTotal: n.files,
    inodesUsed: n.files - n.ffree,
  }
  if (device) obs.device = device
  return parsed(obs)
}
