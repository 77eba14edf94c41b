import type { ObservationOf } from '../../shared/contracts/index.ts'
import { failed, type ParseResult, parsed, quote, splitLines } from './parse-result.ts'

const PROBE = 'cron'

export type CronObservation = ObservationOf<'cron'>

/**
 * The heartbeat marker a wrapped cron job leaves behind (one file per job, e.g.
 * `/var/lib/ansai/heartbeats/<job>.json`), written by the wrapper, atomically (write a temp file, rename):
 *
 * ```json
 * {"job":"logrotate","startedAt":"2026-11-23T03:00:00Z","finishedAt":"2026-11-23T03:00:42Z","exitStatus":0}
 * ```
 *
 * - `job` (required): the job's name, letters, digits and `. _ @ : -`; it must match the name the agent expects.
 * - `startedAt` (required): ISO-8601 with an offset; it is the observation's `lastRunAt` (when cron ran the job).
 * - `finishedAt` and `exitStatus` (an integer; 128 + n when killed by signal n): written when the job ends. A
 *   marker without them is a run that started and has not finished (or died without its wrapper noticing):
 *   no exit status, no duration.
 * - Other fields are allowed and ignored (room for `host`, `pid`, `version` later).
 *
 * One JSON object on one line. If a wrapper appends instead of replacing, the last non-empty line wins.
 */
export interface CronHeartbeat {
  job: string
  startedAt: string
  finishedAt?: string
  exitStatus?: number
}

const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._@:-]*$/

/**
 * What the contracts' `TimestampSchema` (zod's `z.iso.datetime({ offset: true })`) accepts, as one regular
 * expression: a real calendar date (leap days included), `T`, hh:mm:ss with optional fraction, then `Z` or ±hh:mm.
 * Written out so that reading a heartbeat does not load zod and every contract schema (~35 ms and ~14 MB at the
 * start of `ansai-agent collect`); a unit test keeps it in step with the schema.
 */
export const ISO_TIMESTAMP = new RegExp(
  '^(?:(?:\\d\\d[2468][048]|\\d\\d[13579][26]|\\d\\d0[48]|[02468][048]00|[13579][26]00)-02-29|\\d{4}-(?:(?:0[13578]|1[02])-' +
    '(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|02-(?:0[1-9]|1\\d|2[0-8])))' +
    'T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d+)?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$',
)

const isTimestamp = (v: unknown): v is string =>
  typeof v === 'string' && ISO_TIMESTAMP.test(v) && Number.isFinite(Date.parse(v))

/**
 * Heartbeat file text → CronObservation. Every defect (empty file, not JSON, a missing or malformed field, another
 * job's marker, finishedAt before startedAt) is a failure naming it, never an exception.
 */
export function parseCronHeartbeat(text: string, expectedJob?: string): ParseResult<CronObservation> {
  if (typeof text !== 'string') return failed(PROBE, 'heartbeat is not text')
  const where = expectedJob ? `heartbeat of ${quote(expectedJob)}` : 'heartbeat'
  const lines = splitLines(text).filter((l) => l.trim() !== '')
  const last = lines.at(-1)
  if (last === undefined) return failed(PROBE, `${where} is empty`)
  let data: unknown
  try {
    data = JSON.parse(last)
  } catch {
    return failed(PROBE, `${where} is not JSON: ${quote(last)}`)
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return failed(PROBE, `${where} is not a JSON object`)
  }
  const o = data as Record<string, unknown>
  if (typeof o.job !== 'string' || !JOB_NAME.test(o.job)) return failed(PROBE, `${where}: missing or bad "job"`)
  if (expectedJob !== undefined && o.job !== expectedJob) {
    return failed(PROBE, `${where} names another job: ${quote(o.job)}`)
  }
  if (!isTimestamp(o.startedAt)) {
    return failed(PROBE, `${where}: "startedAt" must be an ISO-8601 timestamp with offset`)
  }
  const obs: CronObservation = { kind: 'cron', job: o.job, lastRunAt: o.startedAt }
  if (o.finishedAt !== undefined) {
    if (!isTimestamp(o.finishedAt)) {
      return failed(PROBE, `${where}: "finishedAt" must be an ISO-8601 timestamp with offset`)
    }
    const seconds = (Date.parse(o.finishedAt) - Date.parse(o.startedAt)) / 1000
    if (!(seconds >= 0)) return failed(PROBE, `${where}: "finishedAt" is before "startedAt"`)
    obs.durationSeconds = seconds
  }
  if (o.exitStatus !== undefined) {
    if (typeof o.exitStatus !== 'number' || !Number.isSafeInteger(o.exitStatus)) {
      return failed(PROBE, `${where}: "exitStatus" must be an integer`)
    }
    obs.lastExitStatus = o.exitStatus
  }
  return parsed(obs)
}
