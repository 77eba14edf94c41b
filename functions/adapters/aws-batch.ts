import { setTimeout as delay } from 'node:timers/promises'
import { PortError } from '../../shared/ports/fleet.ts'

/**
 * Batch plumbing shared by the SQS and EventBridge adapters: split into requests by count and bytes, send, and send
 * again only the entries the service said failed (SendMessageBatch `Failed`, PutEvents `FailedEntryCount`), with
 * exponential backoff. A call that throws as a whole is not retried here: the SDK has retried it already.
 */

export interface EntryRetryOptions {
  /** Rounds for entries that keep failing, the first included. Default 4. */
  maxAttempts?: number
  /** Exponential backoff between rounds: baseMs × 2^(round−1), capped at maxMs. Defaults 100 ms and 2 s. */
  backoff?: { baseMs?: number; maxMs?: number }
  /** Turns a backoff delay into the delay to wait. Default: a random delay between half and all of it. */
  jitter?: (delayMs: number, round: number) => number
  /** Waits between rounds. Default: a timer. */
  sleep?: (ms: number) => Promise<void>
}

/** One entry the service refused in a batch. */
export interface EntryFailure {
  index: number
  code: string
  message: string
  /** False when the entry itself is at fault (SQS `SenderFault`, a malformed event): sending it again cannot help. */
  retryable: boolean
}

/** Items with their byte size and a label for error messages (`report of i-0abc seq 42`). */
export interface Sized<T> {
  item: T
  bytes: number
  label: string
}

/** Split into requests of at most `maxCount` items and `maxBytes` bytes, in order; each item fits on its own. */
export const chunk = <T>(items: readonly Sized<T>[], maxCount: number, maxBytes: number): Sized<T>[][] => {
  const out: Sized<T>[][] = []
  let current: Sized<T>[] = []
  let bytes = 0
  for (const s of items) {
    if (current.length > 0 && (current.length >= maxCount || bytes + s.bytes > maxBytes)) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(s)
    bytes += s.bytes
  }
  if (current.length > 0) out.push(current)
  return out
}

/** Refuse, before anything is sent, items that can never go: one PortError that names every one of them. */
export const refuseOversized = <T>(items: readonly Sized<T>[], maxBytes: number, what: string, code: string): void => {
  const big = items.filter((s) => s.bytes > maxBytes)
  if (big.length === 0) return
  const list = big.map((s) => `${s.label} (${s.bytes} bytes)`).join(', ')
  throw new PortError(`${what}: over the limit of ${maxBytes} bytes, nothing sent: ${list}`, {
    retryable: false,
    code,
  })
}

const equalJitter = (ms: number): number => ms / 2 + Math.random() * (ms / 2)

/**
 * Send the items in requests of at most `maxCount` entries and `maxBytes` bytes; resend only the entries that failed
 * retryably, with backoff, up to `maxAttempts` rounds. The other requests still go when one entry is refused. Throws
 * one PortError at the end that names the entries that did not go: not retryable when any of them was refused for
 * itself, retryable when they only ran out of rounds.
 */
export const sendInBatches = async <T>(
  items: readonly Sized<T>[],
  limits: { maxCount: number; maxBytes: number },
  sendChunk: (items: readonly Sized<T>[]) => Promise<EntryFailure[]>,
  options: EntryRetryOptions,
  what: string,
): Promise<void> => {
  const max = Math.max(1, options.maxAttempts ?? 4)
  const baseMs = options.backoff?.baseMs ?? 100
  const maxMs = options.backoff?.maxMs ?? 2_000
  const jitter = options.jitter ?? equalJitter
  const sleep = options.sleep ?? ((ms: number) => delay(ms))
  const refused: { label: string; failure: EntryFailure }[] = []
  let failing: { label: string; failure: EntryFailure }[] = []
  let pending: readonly Sized<T>[] = items
  for (let round = 1; pending.length > 0; round++) {
    const again: Sized<T>[] = []
    failing = []
    for (const request of chunk(pending, limits.maxCount, limits.maxBytes)) {
      for (const f of await sendChunk(request)) {
        const s = request[f.index]
        if (!s) continue
        if (f.retryable) {
          again.push(s)
          failing.push({ label: s.label, failure: f })
        } else refused.push({ label: s.label, failure: f })
      }
    }
    if (again.length === 0 || round >= max) break
    await sleep(Math.min(maxMs, jitter(Math.min(maxMs, baseMs * 2 ** (round - 1)), round)))
    pending = again
  }
  const left = [...refused, ...failing]
  if (left.length === 0) return
  const list = left.map((l) => `${l.label}: ${l.failure.code} ${l.failure.message}`.trim()).join('; ')
  const permanent = refused.length > 0
  const n = `${left.length} entr${left.length === 1 ? 'y' : 'ies'}`
  throw new PortError(`${what}: ${n} not sent${permanent ? '' : ` after ${max} attempts`}: ${list}`, {
    retryable: !permanent,
    code: (refused[0] ?? left[0])!.failure.code,
  })
}
