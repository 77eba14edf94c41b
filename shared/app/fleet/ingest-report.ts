import {
  CompressedDataError,
  type ReportBatchV1,
  ReportBatchV1Schema,
  type ReportV1,
  ReportV1Schema,
  unpackCompressed,
} from '../../contracts/index.ts'
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
  | {
      /** `deferred`: a quiet change not written yet (see `quietWriteMs`). */
      status: 'applied' | 'stale' | 'unchanged' | 'deferred'
      host: string
      reports: number
      seq: number
      decisions: number
    }
  | { status: 'rejected'; reason: string; host?: string }

/** A message that can never be applied (not JSON, not a report or a batch): it goes to the DLQ with this error. */
export class InvalidReportError extends Error {
  override readonly name = 'InvalidReportError'
}

/** How far into the future (by the control plane's clock) a report's own time may be: hosts' clocks drift. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000

/**
 * A message of the reports queue: a batch of one host's reports (what the agent's transport sends) or a single
 * report (older agents, `ansai-agent report --once`), as JSON or packed in an `ansai.compressed.v1` envelope (what
 * the agent sends now; plain JSON stays accepted). Either way, the reports of one host, oldest first.
 */
export const parseReports = (body: string): ReportV1[] => {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch (err) {
    throw new InvalidReportError(`report is not JSON: ${(err as Error).message}`)
  }
  let inside = ''
  if ((json as { schema?: unknown } | null)?.schema === 'ansai.compressed.v1') {
    try {
      json = unpackCompressed(json)
    } catch (err) {
      if (!(err instanceof CompressedDataError)) throw err
      throw new InvalidReportError(err.message, { cause: err })
    }
    inside = 'compressed '
  }
  const isBatch = (json as { schema?: unknown } | null)?.schema === 'ansai.report-batch.v1'
  const parsed = isBatch ? ReportBatchV1Schema.safeParse(json) : ReportV1Schema.safeParse(json)
  if (!parsed.success) {
    const what = isBatch ? 'ansai.report-batch.v1' : 'ansai.report.v1'
    throw new InvalidReportError(
      `${inside}message does not match ${what}: ${formatIssues(isBatch ? 'batch' : 'report', parsed.error.issues)}`,
    )
  }
  const reports = isBatch ? (parsed.data as ReportBatchV1).reports : [parsed.data as ReportV1]
  return [...reports].sort((a, b) => a.seq - b.seq)
}

/**
 * `ingest-reports`: one message from the reports queue (a batch of one host's reports). The sender must be the host the report is about (its SQS
 * `SenderId` is the instance's role session); a mismatch is rejected and audited, never applied. Then the host is
 * evaluated against its stored state (see {@link applyToHost}): state moves forward only on a newer sequence, an
 * older report still adds its trend samples.
 */
export const ingestReport = async (deps: IngestDeps, input: IngestInput): Promise<IngestOutcome> => {
  const reports = parseReports(input.body)
  const newest = reports[reports.length - 1]!
  const host = newest.host
  if (input.senderId !== undefined && hostOfSender(input.senderId) !== host.id) {
    const reason = `sender ${input.senderId} may not report for host ${host.id}`
    await deps.store.appendAudit([
      {
        kind: 'error',
        at: input.receivedAt,
        hostId: host.id,
        id: `rejected:${input.messageId}`,
        data: { reason, senderId: input.senderId, seqs: reports.map((r) => r.seq) },
      },
    ])
    return { status: 'rejected', reason, host: host.id }
  }

  const latest = Date.parse(input.receivedAt) + MAX_CLOCK_SKEW_MS
  const timeOf = (r: ReportV1) => new Date(Math.min(Date.parse(r.time), latest)).toISOString()
  const shard = shardOf(host.id, deps.shards)
  // The host index feeds the scheduled rounds: written for a new host and when its hostname, tags or shard change
  // (before the state that records it, so a host with state is always in the index).
  const applied: Applied = await applyToHost(deps, {
    host,
    reports: reports.map((r) => ({ observations: r.observations, seq: r.seq, now: timeOf(r) })),
    now: timeOf(newest),
    index: {
      key: JSON.stringify([host.hostname, Object.entries(host.tags).sort(([a], [b]) => (a < b ? -1 : 1)), shard]),
      write: () =>
        deps.store.touchHost({
          id: host.id,
          hostname: host.hostname,
          tags: host.tags,
          shard,
          lastSeenAt: timeOf(newest),
        }),
    },
  })
  return {
    status: applied.stale ? 'stale' : applied.changed ? 'applied' : applied.deferred ? 'deferred' : 'unchanged',
    host: host.id,
    reports: reports.length,
    seq: newest.seq,
    decisions: applied.out.decisions.length,
  }
}
