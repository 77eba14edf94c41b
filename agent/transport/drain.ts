import type { ReportBatchV1 } from '../../shared/contracts/index.ts'
import type { ReportSender } from '../../shared/ports/fleet.ts'
import type { ReportSpool, SentReport, SpoolEntry } from './spool.ts'

/** The contract's limit (ReportBatchV1Schema: at most 120 reports per batch). */
export const MAX_REPORTS_PER_BATCH = 120

/**
 * A sanity bound on one batch's raw JSON, not the SQS message limit: the sender (SqsReportSender) splits a batch
 * into as many messages as its own size limit needs. 120 reports of a busy host are ~400 KB of JSON.
 */
export const DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024

export interface DrainOptions {
  spool: ReportSpool
  sender: ReportSender
  reason: ReportBatchV1['reason']
  /**
   * Re-send the reports the queue took within the last `windowMs` before `now` (by their own `time`) as context in
   * the first message, and keep what this drain sends in the spool's `sent/` for the next ones. `windowMs` 0, or no
   * `resend`, re-sends nothing and deletes what the queue took (with `resend` and 0, `sent/` is emptied as well).
   */
  resend?: { now: number; windowMs: number }
  /** Attempts per batch before giving up until the next run (default 4). */
  maxAttempts?: number
  /** Backoff: full jitter between 0 and min(cap, base × 2^attempt) ms. */
  baseDelayMs?: number
  capDelayMs?: number
  /**
   * Raw JSON bytes per batch (default {@link DEFAULT_MAX_BATCH_BYTES}, 4 MiB). Deliberately generous: this is not the
   * SQS message size (256 KiB), the sender splits further by its own message size.
   */
  maxBatchBytes?: number
  /** Reports per batch, context included (the contract allows 120). */
  maxReportsPerBatch?: number
  sleep?: (ms: number) => Promise<void>
  random?: () => number
}

export interface DrainResult {
  /** Reports of the spool the queue took (context not counted). */
  sentReports: number
  batches: number
  /** Reports still spooled (sent next time). */
  left: number
  /** Already-sent reports re-sent as context with the first batch. */
  contextReports: number
  /** Why the drain stopped early, when it did. */
  error?: Error
}

// A report is a bit larger inside the envelope (commas, the batch header): keep a margin.
const BATCH_OVERHEAD_BYTES = 256

/** Batches of spooled reports, oldest first, each under the byte and count limits. */
export const chunkEntries = (entries: readonly SpoolEntry[], maxBytes: number, maxCount: number): SpoolEntry[][] => {
  const out: SpoolEntry[][] = []
  let current: SpoolEntry[] = []
  let size = 0
  for (const e of entries) {
    const cost = e.bytes + 1
    if (current.length > 0 && (current.length >= maxCount || size + cost + BATCH_OVERHEAD_BYTES > maxBytes)) {
      out.push(current)
      current = []
      size = 0
    }
    current.push(e)
    size += cost
  }
  if (current.length > 0) out.push(current)
  return out
}

/**
 * The context that fits beside `chunk` in one batch: the same host's sent reports, none of the seqs still spooled,
 * the newest ones first kept (the OLDEST go when the count or byte limit leaves less room).
 */
export const fitContext = (
  sent: readonly SentReport[],
  chunk: readonly SpoolEntry[],
  opts: { host: string; unsent: ReadonlySet<number>; maxCount: number; maxBytes: number },
): SentReport[] => {
  const candidates = sent.filter((s) => s.report.host.id === opts.host && !opts.unsent.has(s.entry.seq))
  const room = opts.maxCount - chunk.length
  const context = room > 0 ? candidates.slice(-room) : []
  let bytes = [...chunk, ...context.map((s) => s.entry)].reduce((n, e) => n + e.bytes + 1, BATCH_OVERHEAD_BYTES)
  while (context.length > 0 && bytes > opts.maxBytes) bytes -= context.shift()!.entry.bytes + 1
  return context
}

const isRetryable = (err: unknown): boolean => (err as { retryable?: unknown })?.retryable !== false

/**
 * Send what the spool holds, oldest first, one batch per message. The first batch also carries the context: the
 * reports sent within the resend window, so the control plane gets the trend samples of heartbeats it did not write
 * (a report at or below its last sequence only adds samples, so re-sending is safe). A batch leaves the spool (to
 * `sent/`) only after the queue took it; a failure is retried with exponential backoff and full jitter (so a fleet
 * that lost the queue at the same moment does not come back in step), and when it keeps failing the rest waits for
 * the next run. Nothing is dropped here.
 */
export const drainSpool = async (opts: DrainOptions): Promise<DrainResult> => {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
  const random = opts.random ?? Math.random
  const maxAttempts = opts.maxAttempts ?? 4
  const base = opts.baseDelayMs ?? 500
  const cap = opts.capDelayMs ?? 8000
  const maxBytes = opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
  const maxCount = Math.min(opts.maxReportsPerBatch ?? MAX_REPORTS_PER_BATCH, MAX_REPORTS_PER_BATCH)
  const keepSent = (opts.resend?.windowMs ?? 0) > 0
  const sent = opts.resend ? opts.spool.recentSent(opts.resend.now, opts.resend.windowMs) : []
  const entries = opts.spool.list()
  const unsent = new Set(entries.map((e) => e.seq))
  const chunks = chunkEntries(entries, maxBytes, maxCount)
  const result: DrainResult = { sentReports: 0, batches: 0, left: entries.length, contextReports: 0 }
  let contextDone = !keepSent
  for (const chunk of chunks) {
    const reports = opts.spool.read(chunk)
    if (reports.length === 0) {
      result.left -= chunk.length
      continue
    }
    const context = contextDone
      ? []
      : fitContext(sent, chunk, { host: reports[0]!.host.id, unsent, maxCount, maxBytes })
    contextDone = true
    const batch: ReportBatchV1 = {
      schema: 'ansai.report-batch.v1',
      reason: opts.reason,
      // The control plane skips re-sent reports it has applied already, unchecked: most of a heartbeat is context.
      ...(context.length > 0 ? { resentThrough: Math.max(...context.map((s) => s.report.seq)) } : {}),
      reports: [...context.map((s) => s.report), ...reports].sort((a, b) => a.seq - b.seq),
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await opts.sender.send(batch)
        break
      } catch (err) {
        if (attempt >= maxAttempts || !isRetryable(err)) {
          result.error = err instanceof Error ? err : new Error(String(err))
          return result
        }
        await sleep(Math.floor(random() * Math.min(cap, base * 2 ** attempt)))
      }
    }
    if (keepSent) opts.spool.markSent(chunk)
    else opts.spool.remove(chunk)
    result.sentReports += reports.length
    result.contextReports += context.length
    result.batches++
    result.left -= chunk.length
  }
  return result
}
