import type { ProbesConfig } from '../config/probes.ts'
import { type MountEntry, parseMountinfo, statfsToObservation } from '../probes/mountinfo.ts'
import {
  type CollectContext,
  emptyOutput,
  errnoOf,
  fsReason,
  mapLimit,
  type ProbeOutput,
  TimeoutError,
  withTimeout,
} from './context.ts'
import { matchesAny } from './glob.ts'

const PROBE = 'filesystem'
export const MOUNTINFO_PATH = '/proc/self/mountinfo'
/** A statfs that takes longer is a hung network filesystem; the others are still measured. */
export const STATFS_TIMEOUT_MS = 3_000

const selected = (entry: MountEntry, config: ProbesConfig['filesystems']): boolean =>
  (config.include === undefined || matchesAny(entry.mount, config.include, { globstar: true })) &&
  !matchesAny(entry.mount, config.exclude, { globstar: true })

/**
 * Every real filesystem in /proc/self/mountinfo (pseudo filesystems, tmpfs unless asked, and container overlays
 * skipped by agent/probes/mountinfo.ts), narrowed by include/exclude, each measured with statfs: bytes and inodes.
 * A mount that cannot be measured (gone, no permission, hung) is a ProbeError; the others are still reported.
 */
export async function collectFilesystems(
  config: ProbesConfig['filesystems'],
  ctx: CollectContext,
): Promise<ProbeOutput> {
  const out = emptyOutput()
  if (!config.enabled) return out
  let text: string
  try {
    text = await ctx.fs.readFile(MOUNTINFO_PATH)
  } catch (err) {
    out.errors.push({ probe: PROBE, reason: fsReason(MOUNTINFO_PATH, err) })
    return out
  }
  const mounts = parseMountinfo(text, { includeTmpfs: config.includeTmpfs })
  if (!mounts.ok) {
    out.errors.push(mounts.error)
    return out
  }
  out.errors.push(...mounts.problems)
  const entries = mounts.value.filter((e) => selected(e, config))
  const measured = await mapLimit(entries, 4, async (entry) => {
    try {
      const s = await withTimeout(ctx.fs.statfs(entry.mount), STATFS_TIMEOUT_MS, `statfs ${entry.mount}`)
      return statfsToObservation(entry.mount, entry.fsType, entry.device, s)
    } catch (err) {
      const reason =
        err instanceof TimeoutError
          ? `${entry.mount}: statfs timed out after ${STATFS_TIMEOUT_MS} ms (a hung network filesystem?)`
          : errnoOf(err) === 'ENOENT'
            ? `${entry.mount}: unmounted while being measured`
            : fsReason(entry.mount, err)
      return { ok: false as const, error: { probe: PROBE, reason } }
    }
  })
  for (const m of measured) {
    if (m.ok) out.observations.push(m.value)
    else out.errors.push(m.error)
  }
  return out
}
