import {
  type BigIntStats,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
} from 'node:fs'
import { decodeMountinfoEscapes } from '../../probes/mountinfo.ts'
import type { FileCategory } from './patterns.ts'

/**
 * The confined walk of disk-cleanup: lists the regular files under a root without ever leaving it.
 *
 * - A symlink is never followed, never traversed, never a candidate (lstat only; directories are opened with
 *   O_NOFOLLOW). A root that is itself a symlink is refused.
 * - Every directory is opened, then checked through its descriptor: its (device, inode) must be the one its parent
 *   listed, and its real path (readlink of /proc/self/fd/<fd>) the expected one under the root's real path. A
 *   directory swapped for a symlink or moved between the listing and the open is skipped.
 * - Entries are looked up through the directory's descriptor (`/proc/self/fd/<fd>/<name>`, the path-level
 *   equivalent of openat), so what is listed is what is stat()ed.
 * - Other filesystems are not entered (`find -xdev`: a different st_dev), and neither are mount points of the same
 *   filesystem (bind mounts share the st_dev; they are found in /proc/self/mountinfo).
 */

export interface DirRef {
  /** The directory's real path. */
  path: string
  dev: bigint
  ino: bigint
}

/** A regular file the walk found in a category; identity and sizes as lstat() saw them. */
export interface Candidate {
  category: FileCategory
  /** Real path (the directory's real path + name): what the result and the audit show. */
  path: string
  dir: DirRef
  name: string
  dev: bigint
  ino: bigint
  size: bigint
  /** 512-byte blocks: what the file occupies on disk, so what df sees come back. */
  blocks: bigint
  mtimeNs: bigint
  atimeNs: bigint
  nlink: bigint
  mode: number
  uid: number
  gid: number
}

export interface RootScan {
  root: string
  realPath?: string
  status: 'scanned' | 'missing' | 'refused' | 'error'
  reason?: string
  directories: number
  files: number
  candidates: number
  /** Symlinks met (never followed). */
  symlinks: number
  /** Directories not entered because they are another filesystem or a mount point. */
  mountPoints: number
  /** Sockets, pipes, devices: never touched. */
  special: number
  /** Directories or entries that could not be read (permission denied, I/O error). */
  errors: number
  /** Directories or entries that changed between listing and use (moved, replaced, gone). */
  changed: number
}

export interface WalkOptions {
  /** The category of a regular file, or undefined to leave it. Called with the name and its lstat(). */
  classify: (name: string, st: BigIntStats) => FileCategory | undefined
  /** Real paths of every mount point (from {@link readMountPoints}); the root's own is allowed. */
  mountPoints: ReadonlySet<string>
  /** Called after every file looked at (for progress lines). */
  onFile?: () => void
  /** Problems worth a line in the result (permission denied on a directory, ...). */
  onProblem?: (text: string) => void
}

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW

const errnoOf = (err: unknown): string => (err as NodeJS.ErrnoException | undefined)?.code ?? String(err)

/** `/proc/self/fd/<fd>`: the open directory as a path prefix that cannot be redirected. */
export const anchorOf = (fd: number): string => `/proc/self/fd/${fd}`

const join = (dir: string, name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`)

export type OpenDirResult = { ok: true; fd: number; anchor: string } | { ok: false; reason: string; errno?: string }

/**
 * Opens a directory the walk listed before and proves it is still that directory at that place: O_NOFOLLOW on the
 * last component, the same (device, inode) through the descriptor (a swapped ancestor leads elsewhere), and the same
 * real path. The caller closes `fd`.
 */
export function openDirChecked(dir: DirRef): OpenDirResult {
  let fd: number
  try {
    fd = openSync(dir.path, DIR_FLAGS)
  } catch (err) {
    const errno = errnoOf(err)
    if (errno === 'ELOOP' || errno === 'ENOTDIR') return { ok: false, reason: 'replaced by a non-directory', errno }
    return { ok: false, reason: errno, errno }
  }
  try {
    const st = fstatSync(fd, { bigint: true })
    if (st.dev !== dir.dev || st.ino !== dir.ino) {
      closeSync(fd)
      return { ok: false, reason: 'replaced by another directory' }
    }
    const real = readlinkSync(anchorOf(fd))
    if (real !== dir.path) {
      closeSync(fd)
      return { ok: false, reason: `moved to ${real}` }
    }
    return { ok: true, fd, anchor: anchorOf(fd) }
  } catch (err) {
    closeSync(fd)
    return { ok: false, reason: errnoOf(err), errno: errnoOf(err) }
  }
}

/** Mount points (field 5 of /proc/self/mountinfo, decoded): directories the walk never enters. Pure. */
export function parseMountPoints(mountinfo: string): Set<string> {
  const points = new Set<string>()
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ')
    const mount = fields[4]
    if (fields.length >= 10 && mount?.startsWith('/')) points.add(decodeMountinfoEscapes(mount))
  }
  return points
}

export const readMountPoints = (path = '/proc/self/mountinfo'): Set<string> =>
  parseMountPoints(readFileSync(path, 'utf8'))

/**
 * Walks one root and returns the files in a category. Never throws for the file system's sake: a missing root, a
 * symlink root or an unreadable directory are reported in the {@link RootScan}.
 */
export function walkRoot(root: string, opts: WalkOptions): { scan: RootScan; candidates: Candidate[] } {
  const scan: RootScan = {
    root,
    status: 'scanned',
    directories: 0,
    files: 0,
    candidates: 0,
    symlinks: 0,
    mountPoints: 0,
    special: 0,
    errors: 0,
    changed: 0,
  }
  const candidates: Candidate[] = []
  const stop = (status: RootScan['status'], reason: string) => {
    scan.status = status
    scan.reason = reason
    opts.onProblem?.(`root ${root}: ${reason}`)
    return { scan, candidates }
  }

  let rootSt: BigIntStats
  try {
    rootSt = lstatSync(root, { bigint: true })
  } catch (err) {
    const errno = errnoOf(err)
    return errno === 'ENOENT' ? stop('missing', 'does not exist') : stop('error', errno)
  }
  if (rootSt.isSymbolicLink()) return stop('refused', 'is a symlink: refused (a root must be a real directory)')
  if (!rootSt.isDirectory()) return stop('refused', 'is not a directory')

  // The root's real path: the root itself is no symlink, but an ancestor may be (/var -> /data/var).
  let rootReal: string
  {
    let fd: number
    try {
      fd = openSync(root, DIR_FLAGS)
    } catch (err) {
      return stop('error', errnoOf(err))
    }
    try {
      const st = fstatSync(fd, { bigint: true })
      if (st.dev !== rootSt.dev || st.ino !== rootSt.ino) return stop('error', 'changed while being opened')
      rootReal = readlinkSync(anchorOf(fd))
    } catch (err) {
      return stop('error', errnoOf(err))
    } finally {
      closeSync(fd)
    }
  }
  scan.realPath = rootReal
  const rootDev = rootSt.dev
  const under = (p: string): boolean => p === rootReal || p.startsWith(rootReal === '/' ? '/' : `${rootReal}/`)

  const stack: DirRef[] = [{ path: rootReal, dev: rootSt.dev, ino: rootSt.ino }]
  while (stack.length > 0) {
    const dir = stack.pop() as DirRef
    if (!under(dir.path)) {
      scan.changed++
      continue
    }
    const opened = openDirChecked(dir)
    if (!opened.ok) {
      if (opened.errno === 'EACCES' || opened.errno === 'EPERM' || opened.errno === 'EIO') {
        scan.errors++
        opts.onProblem?.(`cannot read directory ${dir.path}: ${opened.reason}`)
      } else {
        scan.changed++
      }
      continue
    }
    try {
      scan.directories++
      let names: string[]
      try {
        names = readdirSync(opened.anchor)
      } catch (err) {
        scan.errors++
        opts.onProblem?.(`cannot list directory ${dir.path}: ${errnoOf(err)}`)
        continue
      }
      for (const name of names) {
        let st: BigIntStats
        try {
          st = lstatSync(`${opened.anchor}/${name}`, { bigint: true })
        } catch (err) {
          // ENOENT: gone since the listing (or a name that is not valid UTF-8, which Node cannot hand back).
          if (errnoOf(err) === 'ENOENT') scan.changed++
          else scan.errors++
          continue
        }
        const path = join(dir.path, name)
        if (st.isSymbolicLink()) {
          scan.symlinks++
        } else if (st.isDirectory()) {
          if (st.dev !== rootDev || opts.mountPoints.has(path)) scan.mountPoints++
          else stack.push({ path, dev: st.dev, ino: st.ino })
        } else if (st.isFile()) {
          scan.files++
          opts.onFile?.()
          const category = opts.classify(name, st)
          if (category !== undefined) {
            scan.candidates++
            candidates.push({
              category,
              path,
              dir,
              name,
              dev: st.dev,
              ino: st.ino,
              size: st.size,
              blocks: st.blocks,
              mtimeNs: st.mtimeNs,
              atimeNs: st.atimeNs,
              nlink: st.nlink,
              mode: Number(st.mode),
              uid: Number(st.uid),
              gid: Number(st.gid),
            })
          }
        } else {
          scan.special++
        }
      }
    } finally {
      closeSync(opened.fd)
    }
  }
  return { scan, candidates }
}

/**
 * Bytes a directory tree occupies on disk (sum of st_blocks × 512 of its regular files, each inode once), by the
 * same rules as the walk: no symlink followed, no other filesystem entered. undefined when `path` does not exist.
 * Used to measure what `apt-get clean` or `journalctl --vacuum-size` freed.
 */
export function measureTree(path: string): number | undefined {
  let rootSt: BigIntStats
  try {
    rootSt = lstatSync(path, { bigint: true })
  } catch {
    return undefined
  }
  if (!rootSt.isDirectory()) return undefined
  const seen = new Set<string>()
  let total = 0n
  const stack = [path]
  while (stack.length > 0) {
    const dir = stack.pop() as string
    let names: string[]
    try {
      names = readdirSync(dir)
    } catch {
      continue
    }
    for (const name of names) {
      const p = join(dir, name)
      let st: BigIntStats
      try {
        st = lstatSync(p, { bigint: true })
      } catch {
        continue
      }
      if (st.dev !== rootSt.dev) continue
      if (st.isDirectory()) stack.push(p)
      else if (st.isFile()) {
        const key = `${st.ino}`
        if (!seen.has(key)) {
          seen.add(key)
          total += st.blocks * 512n
        }
      }
    }
  }
  return Number(total)
}
