import { randomBytes } from 'node:crypto'
import {
  type BigIntStats,
  closeSync,
  constants,
  createReadStream,
  createWriteStream,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  futimesSync,
  linkSync,
  lstatSync,
  openSync,
  unlinkSync,
} from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import type { OpenFiles } from '../../os/open-files.ts'
import { compressedName, TEMP_FILE_PREFIX } from './patterns.ts'
import type { Candidate } from './walk.ts'

/**
 * Acting on one candidate file, through the descriptor of its verified directory (`anchor` = /proc/self/fd/<fd>):
 * a last lstat right before the change proves the file is still the one the walk saw (same inode, size, mtime; still
 * a regular file with one link; still old enough; not held open), and the change is skipped otherwise.
 */

export type SkipReason =
  | 'vanished'
  | 'changed'
  | 'young'
  | 'open'
  | 'hard-linked'
  | 'target-exists'
  | 'not-smaller'
  | 'error'

export type ActOutcome =
  | { kind: 'removed' | 'compressed'; bytes: number; size: number; detail?: string }
  | { kind: 'skipped'; reason: SkipReason; detail?: string }

const errnoOf = (err: unknown): string => (err as NodeJS.ErrnoException | undefined)?.code ?? String(err)

export interface RecheckContext {
  openFiles: OpenFiles
  /** The category still applies to a fresh lstat (e.g. temp: not accessed since the walk). */
  stillEligible: (c: Candidate, st: BigIntStats) => boolean
}

/** The last check before a change. Pure apart from the one lstat. */
export function recheck(
  anchor: string,
  c: Candidate,
  rc: RecheckContext,
): { ok: true; st: BigIntStats } | { ok: false; reason: SkipReason; detail?: string } {
  let st: BigIntStats
  try {
    st = lstatSync(`${anchor}/${c.name}`, { bigint: true })
  } catch (err) {
    const errno = errnoOf(err)
    return errno === 'ENOENT' ? { ok: false, reason: 'vanished' } : { ok: false, reason: 'error', detail: errno }
  }
  return judge(c, st, rc)
}

/** The pure part of {@link recheck}: is this fresh lstat still the candidate, and may it go? */
export function judge(
  c: Candidate,
  st: BigIntStats,
  rc: RecheckContext,
): { ok: true; st: BigIntStats } | { ok: false; reason: SkipReason; detail?: string } {
  if (!st.isFile()) return { ok: false, reason: 'changed', detail: 'no longer a regular file' }
  if (st.dev !== c.dev || st.ino !== c.ino) return { ok: false, reason: 'changed', detail: 'replaced (other inode)' }
  if (st.size !== c.size || st.mtimeNs !== c.mtimeNs) {
    return { ok: false, reason: 'changed', detail: 'written to since the scan' }
  }
  if (st.nlink !== 1n) return { ok: false, reason: 'hard-linked', detail: `${st.nlink} links` }
  if (!rc.stillEligible(c, st)) return { ok: false, reason: 'young', detail: 'used since the scan' }
  if (rc.openFiles.has(st.dev, st.ino)) return { ok: false, reason: 'open', detail: 'held open by a process' }
  return { ok: true, st }
}

/** Removes the file (dry-run: only rechecks it). Bytes = its st_blocks × 512, what the filesystem gets back. */
export function removeFile(anchor: string, c: Candidate, rc: RecheckContext, dryRun: boolean): ActOutcome {
  const check = recheck(anchor, c, rc)
  if (!check.ok) return { kind: 'skipped', reason: check.reason, detail: check.detail }
  const bytes = Number(check.st.blocks * 512n)
  const size = Number(check.st.size)
  if (dryRun) return { kind: 'removed', bytes, size }
  try {
    unlinkSync(`${anchor}/${c.name}`)
  } catch (err) {
    const errno = errnoOf(err)
    return errno === 'ENOENT'
      ? { kind: 'skipped', reason: 'vanished' }
      : { kind: 'skipped', reason: 'error', detail: errno }
  }
  return { kind: 'removed', bytes, size }
}

const tryUnlink = (path: string): void => {
  try {
    unlinkSync(path)
  } catch {
    // already gone
  }
}

/** Opens for reading without updating the access time when allowed (O_NOATIME needs ownership or CAP_FOWNER). */
function openNoAtime(path: string): number {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW
  try {
    return openSync(path, flags | constants.O_NOATIME)
  } catch (err) {
    if (errnoOf(err) === 'EPERM') return openSync(path, flags)
    throw err
  }
}

const nsToSeconds = (ns: bigint): number => Number(ns / 1000n) / 1e6

/**
 * gzip in place: `name` → `name.gz` with the same mode, owner, access and modification times; the original is
 * removed only once the compressed copy is complete, synced, smaller, and the original unchanged. Written to a
 * temporary file in the same directory (O_EXCL, O_NOFOLLOW) then linked to its name (link() fails rather than
 * replace an existing `.gz`). Bytes = the original's blocks minus the compressed file's blocks.
 */
export async function compressFile(
  anchor: string,
  c: Candidate,
  rc: RecheckContext,
  dryRun: boolean,
): Promise<ActOutcome> {
  const check = recheck(anchor, c, rc)
  if (!check.ok) return { kind: 'skipped', reason: check.reason, detail: check.detail }
  const target = `${anchor}/${compressedName(c.name)}`
  try {
    lstatSync(target)
    return { kind: 'skipped', reason: 'target-exists', detail: `${compressedName(c.name)} exists` }
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') return { kind: 'skipped', reason: 'error', detail: errnoOf(err) }
  }
  const size = Number(check.st.size)
  if (dryRun) return { kind: 'compressed', bytes: 0, size }

  const src = check.st
  const tmp = `${anchor}/${TEMP_FILE_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`
  let inFd: number | undefined
  let outFd: number | undefined
  let linked = false
  try {
    inFd = openNoAtime(`${anchor}/${c.name}`)
    const inSt = fstatSync(inFd, { bigint: true })
    if (inSt.dev !== src.dev || inSt.ino !== src.ino) return { kind: 'skipped', reason: 'changed', detail: 'replaced' }
    const mode = Number(src.mode) & 0o7777
    outFd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    fchownSync(outFd, Number(src.uid), Number(src.gid))
    fchmodSync(outFd, mode) // after chown, which clears set-id bits
    await pipeline(
      createReadStream('', { fd: inFd, autoClose: false }),
      createGzip({ level: 6 }),
      createWriteStream('', { fd: outFd, autoClose: false, flush: false }),
    )
    fsyncSync(outFd)
    futimesSync(outFd, nsToSeconds(src.atimeNs), nsToSeconds(src.mtimeNs))
    const gzBlocks = fstatSync(outFd, { bigint: true }).blocks
    closeSync(outFd)
    outFd = undefined
    closeSync(inFd)
    inFd = undefined
    if (gzBlocks >= src.blocks) {
      tryUnlink(tmp)
      return { kind: 'skipped', reason: 'not-smaller', detail: 'the compressed copy would not be smaller' }
    }
    // The original must not have changed while it was read.
    const again = recheck(anchor, c, rc)
    if (!again.ok) {
      tryUnlink(tmp)
      return { kind: 'skipped', reason: again.reason, detail: again.detail }
    }
    try {
      linkSync(tmp, target)
      linked = true
    } catch (err) {
      tryUnlink(tmp)
      return errnoOf(err) === 'EEXIST'
        ? { kind: 'skipped', reason: 'target-exists', detail: `${compressedName(c.name)} appeared` }
        : { kind: 'skipped', reason: 'error', detail: errnoOf(err) }
    }
    tryUnlink(tmp)
    unlinkSync(`${anchor}/${c.name}`)
    return { kind: 'compressed', bytes: Number((src.blocks - gzBlocks) * 512n), size }
  } catch (err) {
    if (outFd !== undefined) closeSync(outFd)
    tryUnlink(tmp)
    // The original could not be removed after the copy was linked: take the copy back, leave things as they were.
    if (linked) tryUnlink(target)
    return { kind: 'skipped', reason: 'error', detail: errnoOf(err) }
  } finally {
    if (inFd !== undefined) closeSync(inFd)
  }
}
