import { type ReportV1, ReportV1Schema } from '../../contracts/index.ts'
import { formatIssues } from '../../contracts/issue-path.ts'
import { type Applied, applyToHost, type FleetDeps } from './apply.ts'
import { hostOfSender, shardOf } from './shard.ts'

export interface IngestDeps extends FleetDeps {
  shards: number
}

export interface IngestInput {
  /** The message body as received (a JSON string). */
  body: string
  /** SQS `SenderId`: who sent it (the instance's role session). Absent only for trusted in-process callers. */
  senderId?: string
  /** The message id, for the audit trail of a rejection. */
  messageId: string
  receivedAt: string
}

export type IngestOutcome =
  | { status: 'applied' | 'stale' | 'unchanged'; host: string; seq: number; decisions: number }
  | { status: 'rejected'; reason: string; host?: string }

/** A message that can never be applied (not JSON, not a ReportV1): it goes to the DLQ with this error. */
export class InvalidReportError extends Error {
  override readonly name = 'InvalidReportError'
}

/** How far into the future (by the control plane's clock) a report's own time may be: hosts' clocks drift. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000
const HOUR_MS = 3_600_000

export const parseReport = (body: string): ReportV1 => {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch (err) {
    throw new InvalidReportError(`report is not JSON: ${(err as Error).message}`)
  }
  const parsed = ReportV1Schema.safeParse(json)
  if (!parsed.success) {
    throw new InvalidReportError(`report does not match ansai.report.v1: ${formatIssues('report', parsed.error.issues)}`)
  }
  return parsed.data
}

/**
 * `ingest-reports`: one report from the reports queue. The sender must be the host the report is about (its SQS
 * `SenderId` is the instance's role session); a mismatch is rejected and audited, never applied. Then the host is
 * evaluated against its stored state (see {@link applyToHost}): state moves forward only on a newer sequence, an
 * older report still adds its trend samples.
 */
export const ingestReport = async (deps: IngestDeps, input: IngestInput): Promise<IngestOutcome> => {
  const report = parseReport(input.body)
  const host = report.host
  if (input.senderId !== undefined && hostOfSender(input.senderId) !== host.id) {
    const reason = `sender ${input.senderId} may not report for host ${host.id}`
    await deps.store.appendAudit([
      {
        kind: 'error',
        at: input.receivedAt,
        hostId: host.id,
        id: `rejected:${input.messageId}`,
        data: { reason, senderId: input.senderId, seq: report.seq },
      },
    ])
    return { status: 'rejected', reason, host: host.id }
  }

  const received = Date.parse(input.receivedAt)
  const now = Math.min(Date.parse(report.time), received + MAX_CLOCK_SKEW_MS)
  const applied: Applied = await applyToHost(deps, {
    host,
    observations: report.observations,
    seq: report.seq,
    now: new Date(now).toISOString(),
  })

  // The host index feeds the scheduled rounds: written for a new host, then at most once an hour (tags may change).
  const lastSeen = applied.before?.lastSeenAt ?? null
  if (!applied.stale && (lastSeen === null || Math.floor(lastSeen / HOUR_MS) !== Math.floor(now / HOUR_MS))) {
    await deps.store.touchHost({
      id: host.id,
      hostname: host.hostname,
      tags: host.tags,
      shard: shardOf(host.id, deps.shards),
      lastSeenAt: new Date(now).toISOString(),
    })
  }
  return {
    status: applied.stale ? 'stale' : applied.changed ? 'applied' : 'unchanged',
    host: host.id,
    seq: report.seq,
    decisions: applied.out.decisions.length,
  }
}
