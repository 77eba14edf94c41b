import {
  CompressedDataError,
  type ReportBatchV1,
  ReportBatchV1Schema,
  type ReportV1,
  ReportV1Schema,
  unpackCompressed,
} from '../../contracts/index.ts'
import { formatIssues } from '../../contracts/issue-path.ts'
import type { VersionedHostState } from '../../ports/store.ts'
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
export const parseReports = (body: string): ReportV1[] => validateReports(decodeReports(body))

/** A message's document: the JSON, unpacked when it comes in an `ansai.compressed.v1` envelope. */
interface ReportDocument {
  json: unknown
  /** `compressed ` when it came packed (for error messages), else empty. */
  inside: string
}

const decodeReports = (body: string): ReportDocument => {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch (err) {
    throw new InvalidReportError(`report is not JSON: ${(err as Error).message}`)
  }
  if ((json as { schema?: unknown } | null)?.schema !== 'ansai.compressed.v1') return { json, inside: '' }
  try {
    return { json: unpackCompressed(json), inside: 'compressed ' }
  } catch (err) {
    if (!(err instanceof CompressedDataError)) throw err
    throw new InvalidReportError(err.message, { cause: err })
  }
}

/** Every report of the document checked against its schema, oldest first. */
const validateReports = ({ json, inside }: ReportDocument): ReportV1[] => {
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

const seqOf = (r: unknown): number | undefined => {
  const seq = (r as { seq?: unknown } | null)?.seq
  return typeof seq === 'number' ? seq : undefined
}

/**
 * A batch that marks re-sent reports (`resentThrough`): its reports, leaving out the re-sent ones at or below
 * `lastSeq` (applied already; they are not checked again: most of a heartbeat is such context). What is kept is
 * checked as a batch of its own, with error paths that name the report's place in the message. Only for a marked
 * batch ({@link isMarked}); undefined when nothing or everything would be left out: then every report is checked.
 */
const keptReports = (doc: ReportDocument, lastSeq: number): ReportV1[] | undefined => {
  const batch = doc.json as { resentThrough: number; reports: unknown[] }
  const through = Math.min(batch.resentThrough, lastSeq)
  const kept: number[] = []
  batch.reports.forEach((r, i) => {
    const seq = seqOf(r)
    if (seq === undefined || seq > through) kept.push(i)
  })
  if (kept.length === batch.reports.length || kept.length === 0) return undefined
  const parsed = ReportBatchV1Schema.safeParse({ ...batch, reports: kept.map((i) => batch.reports[i]) })
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) =>
      issue.path[0] === 'reports' && typeof issue.path[1] === 'number'
        ? { ...issue, path: ['reports', kept[issue.path[1]]!, ...issue.path.slice(2)] }
        : issue,
    )
    throw new InvalidReportError(
      `${doc.inside}message does not match ansai.report-batch.v1: ${formatIssues('batch', issues)}`,
    )
  }
  return [...parsed.data.reports].sort((a, b) => a.seq - b.seq)
}

const isMarked = (doc: ReportDocument): boolean => {
  const b = doc.json as { schema?: unknown; resentThrough?: unknown; reports?: unknown } | null
  return b?.schema === 'ansai.report-batch.v1' && typeof b.resentThrough === 'number' && Array.isArray(b.reports)
}

/** The sequence numbers a document holds (for the audit of a rejected message). */
const seqsOf = (doc: ReportDocument): unknown[] => {
  const b = doc.json as { reports?: unknown } | null
  return Array.isArray(b?.reports) ? b.reports.map(seqOf) : [seqOf(doc.json)]
}

/**
 * The newest report of a marked batch, checked alone (it is never re-sent, and names the host). When it does not
 * pass, the whole batch is checked, for the error that names every problem.
 */
const newestReport = (doc: ReportDocument): ReportV1 => {
  const reports = (doc.json as { reports: unknown[] }).reports
  let newest: unknown
  for (const r of reports) if (newest === undefined || (seqOf(r) ?? -1) > (seqOf(newest) ?? -1)) newest = r
  const parsed = ReportV1Schema.safeParse(newest)
  if (parsed.success) return parsed.data
  const all = validateReports(doc)
  return all[all.length - 1]!
}

/**
 * `ingest-reports`: one message from the reports queue (a batch of one host's reports). The sender must be the host the report is about (its SQS
 * `SenderId` is the instance's role session); a mismatch is rejected and audited, never applied. Then the host is
 * evaluated against its stored state (see {@link applyToHost}): state moves forward only on a newer sequence, an
 * older report still adds its trend samples.
 */
export const ingestReport = async (deps: IngestDeps, input: IngestInput): Promise<IngestOutcome> => {
  const doc = decodeReports(input.body)
  const marked = isMarked(doc)
  // Without a mark every report is checked first; with one, the newest (never re-sent) names the host, and the
  // host's last applied sequence decides which re-sent reports are left out unchecked.
  const checked = marked ? undefined : validateReports(doc)
  const host = (checked?.[checked.length - 1] ?? newestReport(doc)).host
  if (input.senderId !== undefined && hostOfSender(input.senderId) !== host.id) {
    const reason = `sender ${input.senderId} may not report for host ${host.id}`
    await deps.store.appendAudit([
      {
        kind: 'error',
        at: input.receivedAt,
        hostId: host.id,
        id: `rejected:${input.messageId}`,
        data: { reason, senderId: input.senderId, seqs: seqsOf(doc) },
      },
    ])
    return { status: 'rejected', reason, host: host.id }
  }
  let prefetched: { stored: VersionedHostState | undefined } | undefined
  let reports = checked
  if (!reports) {
    const stored = await deps.store.getHostState(host.id, { consistent: false })
    prefetched = { stored }
    reports = keptReports(doc, stored?.state.lastSeq ?? -1) ?? validateReports(doc)
    if (reports.some((r) => r.host.id !== host.id)) {
      throw new InvalidReportError(`batch: every report of a batch is about the same host (${host.id})`)
    }
  }
  const newest = reports[reports.length - 1]!

  const latest = Date.parse(input.receivedAt) + MAX_CLOCK_SKEW_MS
  const timeOf = (r: ReportV1) => new Date(Math.min(Date.parse(r.time), latest)).toISOString()
  const shard = shardOf(host.id, deps.shards)
  // The host index feeds the scheduled rounds: written for a new host and when its hostname, tags or shard change
  // (before the state that records it, so a host with state is always in the index).
  const applied: Applied = await applyToHost(deps, {
    host,
    reports: reports.map((r) => ({ observations: r.observations, seq: r.seq, now: timeOf(r) })),
    now: timeOf(newest),
    ...(prefetched ? { prefetched } : {}),
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
