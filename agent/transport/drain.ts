import type { ReportBatchV1 } from '../../shared/contracts/index.ts'
import type { ReportSender } from '../../shared/ports/fleet.ts'
import type { ReportSpool, SpoolEntry } from './spool.ts'

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
  /** Reports per batch (the contract allows 120). */
  maxReportsPerBatch?: number
  sleep?: (ms: number) => Promise<void>
  random?: () => number
}

export interface DrainResult {
  sentReports: number
  batches: number
  /** Reports still spooled (sent next time). */
  left: number
  /** Why the drain stopped early, when it did. */
  error?: Error
}

/** Batches of spooled reports, oldest first, each under the byte and count limits. */
export const chunkEntries = (entries: readonly SpoolEntry[], maxBytes: number, maxCount: number): SpoolEntry[][] => {
  const out: SpoolEntry[][] = []
  let current: SpoolEntry[] = []
  let size = 0
  // A report is a bit larger inside the envelope (commas, the batch header): keep a margin.
  const overhead = 256
  for (const e of entries) {
    const cost = e.bytes + 1
    if (current.length > 0 && (current.length >= maxCount || size + cost + overhead > maxBytes)) {
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

const isRetryable = (err: unknown): boolean => (err as { retryable?: unknown })?.retryable !== false

/**
 * Send what the spool holds, oldest first, one batch per message. A batch is removed from the spool only after the
 * queue took it; a failure is retried with exponential backoff and full jitter (so a fleet that lost the queue at the
 * same moment does not come back in step), and when it keeps failing the rest waits for the next run. Nothing is
 * dropped here.
 */
export const drainSpool = async (opts: DrainOptions): Promise<DrainResult> => {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
  const random = opts.random ?? Math.random
  const maxAttempts = opts.maxAttempts ?? 4
  const base = opts.baseDelayMs ?? 500
  const cap = opts.capDelayMs ?? 8000
  const maxBytes = opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
  const maxCount = Math.min(opts.maxReportsPerBatch ?? MAX_REPORTS_PER_BATCH, MAX_REPORTS_PER_BATCH)
  const chunks = chunkEntries(opts.spool.list(), maxBytes, maxCount)
  const result: DrainResult = { sentReports: 0, batches: 0, left: chunks.reduce((n, c) => n + c.length, 0) }
  for (const chunk of chunks) {
    const reports = opts.spool.read(chunk)
    if (reports.length === 0) {
      result.left -= chunk.length
      continue
    }
    const batch: ReportBatchV1 = { schema: 'ansai.report-batch.v1', reason: opts.reason, reports }
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
    opts.spool.remove(chunk)
    result.sentReports += reports.length
    result.batches++
    result.left -= chunk.length
  }
  return result
}
