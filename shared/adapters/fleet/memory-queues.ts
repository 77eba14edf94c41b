import type { NotificationV1, RemediateDecision, ReportBatchV1, ReportV1 } from '../../contracts/index.ts'
import {
  type ActionQueue,
  checkDelaySeconds,
  type EvaluationQueue,
  type EvaluationTask,
  type NotificationQueue,
  PortError,
  type ReportSender,
} from '../../ports/fleet.ts'

/**
 * In-memory twins of the fleet's queue ports, for the use cases' unit tests. Each keeps what it accepted as SQS
 * would hold it (a JSON copy: later changes to the caller's objects do not show, `undefined` fields are gone),
 * refuses a message over the SQS adapter's size limit the same way (non-retryable PortError `MessageTooLarge`,
 * nothing kept), and can be told to fail: `fail` holds errors the next sends throw, one per call, in order.
 */

/** The SQS adapter's default limit for one message, in UTF-8 bytes of its JSON body. */
export const MEMORY_QUEUE_MAX_MESSAGE_BYTES = 256 * 1024
/** SQS FIFO's deduplication interval. */
export const FIFO_DEDUP_WINDOW_MS = 5 * 60_000

export interface QueuedMessage<T> {
  body: T
  /** Message attributes, as strings (the reports queue has `host` and `seq`). */
  attributes: Record<string, string>
  /** FIFO only: the message group (the host) and the deduplication id (the decision key). */
  groupId?: string
  deduplicationId?: string
  /** Held this long before delivery (the notifications queue's hold of a started fix). */
  delaySeconds?: number
}

interface Outgoing<T> extends QueuedMessage<T> {
  label: string
  /** The value whose size counts against the limit (the body, or one report of a batch). */
  sized?: readonly unknown[]
}

const utf8 = new TextEncoder()
const bytesOf = (value: unknown): number => utf8.encode(JSON.stringify(value)).length
const copy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T

class MemoryQueue<T> {
  /** Every message accepted, in order (drain() empties it). */
  readonly messages: QueuedMessage<T>[] = []
  /** Errors the next sends throw, one per call. */
  readonly fail: Error[] = []
  protected readonly maxMessageBytes: number
  private readonly name: string

  constructor(name: string, maxMessageBytes = MEMORY_QUEUE_MAX_MESSAGE_BYTES) {
    this.name = name
    this.maxMessageBytes = maxMessageBytes
  }

  /** The bodies of the messages held, in order. */
  get sent(): T[] {
    return this.messages.map((m) => m.body)
  }

  /** Take every message held, as a consumer would receive and delete them. */
  drain(): QueuedMessage<T>[] {
    return this.messages.splice(0)
  }

  protected accept(items: readonly Outgoing<T>[]): QueuedMessage<T>[] {
    const err = this.fail.shift()
    if (err) throw err
    const big = items.flatMap((m) =>
      (m.sized ?? [m.body])
        .map((v) => ({ label: m.label, bytes: bytesOf(v) }))
        .filter((s) => s.bytes > this.maxMessageBytes),
    )
    if (big.length > 0) {
      const list = big.map((s) => `${s.label} (${s.bytes} bytes)`).join(', ')
      throw new PortError(`${this.name}: over the limit of ${this.maxMessageBytes} bytes, nothing sent: ${list}`, {
        retryable: false,
        code: 'MessageTooLarge',
      })
    }
    const kept = items.map(
      ({ body, attributes, groupId, deduplicationId, delaySeconds }): QueuedMessage<T> => ({
        body: copy(body),
        attributes: { ...attributes },
        ...(groupId !== undefined ? { groupId } : {}),
        ...(deduplicationId !== undefined ? { deduplicationId } : {}),
        ...(delaySeconds ? { delaySeconds } : {}),
      }),
    )
    this.messages.push(...kept)
    return kept
  }
}

/** The reports queue: keeps each batch as one message (the SQS adapter may split a batch too big for one). */
export class MemoryReportSender extends MemoryQueue<ReportBatchV1> implements ReportSender {
  constructor(options: { maxMessageBytes?: number } = {}) {
    super('memory reports queue', options.maxMessageBytes)
  }

  async send(batch: ReportBatchV1): Promise<void> {
    if (batch.reports.length === 0) return
    const host = batch.reports[0]?.host.id ?? ''
    const newest = Math.max(...batch.reports.map((r) => r.seq))
    this.accept([
      {
        body: batch,
        attributes: { host, seq: String(newest) },
        label: `reports of host ${host}`,
        sized: batch.reports,
      },
    ])
  }

  /** Every report sent, in order of sending. */
  get reports(): ReportV1[] {
    return this.sent.flatMap((b) => b.reports)
  }
}

/**
 * The actions FIFO queue: group = the host, deduplication id = the decision key; a key seen within the last
 * `dedupWindowMs` (SQS: 5 minutes, from its first acceptance) is accepted and dropped, as SQS does. Needs a clock.
 */
export class MemoryActionQueue extends MemoryQueue<RemediateDecision> implements ActionQueue {
  /** Decisions dropped as duplicates, in order. */
  readonly dropped: RemediateDecision[] = []
  private readonly clock: () => Date
  private readonly windowMs: number
  private readonly firstSeen = new Map<string, number>()

  constructor(options: { clock: () => Date; dedupWindowMs?: number; maxMessageBytes?: number }) {
    super('memory actions queue', options.maxMessageBytes)
    this.clock = options.clock
    this.windowMs = options.dedupWindowMs ?? FIFO_DEDUP_WINDOW_MS
  }

  async send(decisions: readonly RemediateDecision[]): Promise<void> {
    const now = this.clock().getTime()
    const fresh: RemediateDecision[] = []
    const dropped: RemediateDecision[] = []
    const inCall = new Set<string>()
    for (const d of decisions) {
      const first = this.firstSeen.get(d.key)
      if (inCall.has(d.key) || (first !== undefined && now - first < this.windowMs)) dropped.push(d)
      else {
        inCall.add(d.key)
        fresh.push(d)
      }
    }
    this.accept(
      fresh.map((d) => ({
        body: d,
        attributes: {},
        groupId: d.host,
        deduplicationId: d.key,
        label: `decision ${d.key} (host ${d.host})`,
      })),
    )
    for (const d of fresh) this.firstSeen.set(d.key, now)
    this.dropped.push(...dropped.map(copy))
  }
}

/** The notifications queue. */
export class MemoryNotificationQueue extends MemoryQueue<NotificationV1> implements NotificationQueue {
  constructor(options: { maxMessageBytes?: number } = {}) {
    super('memory notifications queue', options.maxMessageBytes)
  }

  async send(messages: readonly NotificationV1[], options: { delaySeconds?: number } = {}): Promise<void> {
    const delay = checkDelaySeconds(options.delaySeconds)
    this.accept(
      messages.map((m) => ({
        body: m,
        attributes: {},
        label: `notification ${m.id} to ${m.channel}`,
        ...(delay ? { delaySeconds: delay } : {}),
      })),
    )
  }
}

/** The evaluations queue. */
export class MemoryEvaluationQueue extends MemoryQueue<EvaluationTask> implements EvaluationQueue {
  constructor(options: { maxMessageBytes?: number } = {}) {
    super('memory evaluations queue', options.maxMessageBytes)
  }

  async send(tasks: readonly EvaluationTask[]): Promise<void> {
    this.accept(tasks.map((t) => ({ body: t, attributes: {}, label: `evaluation of shard ${t.shard}/${t.of}` })))
  }
}
