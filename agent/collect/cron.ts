import type { ProbesConfig } from '../config/probes.ts'
import { type CollectContext, emptyOutput, errnoOf, fsReason, mapLimit, type ProbeOutput } from './context.ts'

const PROBE = 'cron'
const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._@:-]*$/
const MAX_MARKERS = 1_000

/**
 * Cron heartbeats: each `<markerDir>/<job>.json` written by a wrapped cron job (see agent/probes/cron-heartbeat.ts)
 * is one observation. A job listed in `expect` without a marker is observed as never run. A missing directory means
 * no job has reported yet; an unreadable one, or a marker that does not parse, is a ProbeError.
 */
export async function collectCron(config: ProbesConfig['cron'], ctx: CollectContext): Promise<ProbeOutput> {
  const out = emptyOutput()
  if (!config.enabled) return out
  let names: string[] = []
  try {
    names = await ctx.fs.readdir(config.markerDir)
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') {
      out.errors.push({ probe: PROBE, reason: fsReason(config.markerDir, err) })
      return out
    }
  }
  const jobs = names
    .filter((n) => n.endsWith('.json'))
    .map((n) => n.slice(0, -'.json'.length))
    .filter((job) => JOB_NAME.test(job))
    .sort()
    .slice(0, MAX_MARKERS)
  // The parser is loaded only when there are markers.
  const parser = jobs.length > 0 ? await import('../probes/cron-heartbeat.ts') : undefined
  const read = await mapLimit(jobs, 16, async (job) => {
    const path = `${config.markerDir}/${job}.json`
    try {
      return parser!.parseCronHeartbeat(await ctx.fs.readFile(path), job)
    } catch (err) {
      return { ok: false as const, error: { probe: PROBE, reason: fsReason(path, err) } }
    }
  })
  const seen = new Set<string>()
  for (const r of read) {
    if (r.ok) {
      out.observations.push(r.value)
      seen.add(r.value.job)
    } else out.errors.push(r.error)
  }
  const unreadable = new Set(jobs)
  for (const job of config.expect) {
    // a marker that exists but does not parse is already an error; do not also claim the job never ran
    if (!seen.has(job) && !unreadable.has(job)) out.observations.push({ kind: 'cron', job })
  }
  return out
}
