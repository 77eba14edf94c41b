import { createHash } from 'node:crypto'
import {
  type MessageAttributeValue,
  SendMessageBatchCommand,
  type SendMessageBatchCommandOutput,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import {
  compressJson,
  type NotificationV1,
  type RemediateDecision,
  type ReportBatchV1,
} from '../../shared/contracts/index.ts'
import {
  type ActionQueue,
  checkDelaySeconds,
  type EvaluationQueue,
  type EvaluationTask,
  type NotificationQueue,
  type ReportSender,
} from '../../shared/ports/fleet.ts'
import { type EntryFailure, type EntryRetryOptions, refuseOversized, type Sized, sendInBatches } from './aws-batch.ts'
import { toPortError } from './aws-errors.ts'

/**
 * The SQS adapters of the fleet's queue ports: one class per queue, all on SendMessageBatch (up to 10 entries and
 * {@link SQS_MAX_BATCH_BYTES} per request), resending only the entries SQS lists as `Failed` with `SenderFault`
 * false. A message bigger than {@link SQS_MAX_MESSAGE_BYTES} is refused before anything is sent (a non-retryable
 * PortError, code `MessageTooLarge`, naming it); a throttled or failed call is a retryable PortError with the SDK
 * error as `cause`.
 */

/**
 * The classic SQS limit for one message (body and attributes) and for one batch request. SQS now takes up to 1 MiB;
 * 256 KiB keeps the messages portable (LocalStack, older regions, a DLQ redrive); pass more to the constructor.
 */
export const SQS_MAX_MESSAGE_BYTES = 256 * 1024
export const SQS_MAX_BATCH_BYTES = 256 * 1024
export const SQS_MAX_BATCH_ENTRIES = 10

export interface SqsQueueOptions extends EntryRetryOptions {
  client: SQSClient
  queueUrl: string
  /** Default {@link SQS_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number
  /** Default {@link SQS_MAX_BATCH_BYTES}. */
  maxBatchBytes?: number
}

/** What goes on a queue: the body and what SQS needs besides it. */
export interface SqsOutgoing {
  body: string
  attributes?: Record<string, MessageAttributeValue>
  groupId?: string
  deduplicationId?: string
  /** Held this long before it can be received (standard queues; 0–900). */
  delaySeconds?: number
  /** Names the message in errors. */
  label: string
}

/**
 * A value as an SQS message body: JSON, with U+FFFE and U+FFFF escaped (SQS refuses them as characters; JSON
 * escapes every other character SQS refuses, and these two can only occur inside JSON strings).
 */
export const toSqsBody = (value: unknown): string =>
  JSON.stringify(value).replace(/[\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`)

/** SQS's alphabet for group and deduplication ids: 1 to 128 printable ASCII characters, no space. */
const SQS_ID = /^[!-~]{1,128}$/

/**
 * An SQS message group or deduplication id for any string: the string itself when SQS takes it (decision keys such
 * as `r-0123456789abcdef` and host ids do), else `sha256-` and the hex SHA-256 of its UTF-8 (71 characters).
 */
export const toSqsId = (value: string): string =>
  SQS_ID.test(value) ? value : `sha256-${createHash('sha256').update(value, 'utf8').digest('hex')}`

/** Bytes SQS counts for a message: the body and each attribute's name, type and value. */
export const sqsMessageBytes = (m: Pick<SqsOutgoing, 'body' | 'attributes'>): number => {
  let n = Buffer.byteLength(m.body, 'utf8')
  for (const [name, a] of Object.entries(m.attributes ?? {})) {
    n += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(a.DataType ?? '', 'utf8')
    n += a.StringValue !== undefined ? Buffer.byteLength(a.StringValue, 'utf8') : (a.BinaryValue?.byteLength ?? 0)
  }
  return n
}

const queueNameOf = (url: string): string => url.split('/').filter(Boolean).pop() ?? url

/** Sends messages to one queue; the typed queue classes below build the messages. */
export class SqsMessageSender {
  private readonly options: SqsQueueOptions
  private readonly where: string

  constructor(options: SqsQueueOptions) {
    this.options = options
    this.where = `SQS SendMessageBatch to ${queueNameOf(options.queueUrl)}`
  }

  async send(messages: readonly SqsOutgoing[]): Promise<void> {
    if (messages.length === 0) return
    const maxMessage = this.options.maxMessageBytes ?? SQS_MAX_MESSAGE_BYTES
    const maxBatch = this.options.maxBatchBytes ?? SQS_MAX_BATCH_BYTES
    const sized: Sized<SqsOutgoing>[] = messages.map((m) => ({ item: m, bytes: sqsMessageBytes(m), label: m.label }))
    refuseOversized(sized, Math.min(maxMessage, maxBatch), this.where, 'MessageTooLarge')
    await sendInBatches(
      sized,
      { maxCount: SQS_MAX_BATCH_ENTRIES, maxBytes: maxBatch },
      (items) => this.sendBatch(items),
      this.options,
      this.where,
    )
  }

  private async sendBatch(items: readonly Sized<SqsOutgoing>[]): Promise<EntryFailure[]> {
    let out: SendMessageBatchCommandOutput
    try {
      out = await this.options.client.send(
        new SendMessageBatchCommand({
          QueueUrl: this.options.queueUrl,
          Entries: items.map(({ item }, i) => ({
            Id: String(i),
            MessageBody: item.body,
            ...(item.attributes && Object.keys(item.attributes).length > 0
              ? { MessageAttributes: item.attributes }
              : {}),
            ...(item.groupId !== undefined ? { MessageGroupId: item.groupId } : {}),
            ...(item.deduplicationId !== undefined ? { MessageDeduplicationId: item.deduplicationId } : {}),
            ...(item.delaySeconds ? { DelaySeconds: item.delaySeconds } : {}),
          })),
        }),
      )
    } catch (err) {
      throw toPortError(err, this.where)
    }
    const failures: EntryFailure[] = []
    const answered = new Set<number>()
    for (const s of out.Successful ?? []) answered.add(Number(s.Id))
    for (const f of out.Failed ?? []) {
      const index = Number(f.Id)
      answered.add(index)
      const code = f.Code ?? 'Failed'
      failures.push({
        index,
        code,
        message: f.Message ?? '',
        // SenderFault: the entry itself is wrong. Otherwise SQS failed it (InternalError, throttling): send again.
        retryable: f.SenderFault !== true,
      })
    }
    items.forEach((_, index) => {
      if (!answered.has(index)) {
        failures.push({
          index,
          code: 'NoAnswer',
          message: 'SQS listed the entry neither sent nor failed',
          retryable: true,
        })
      }
    })
    return failures
  }
}

/**
 * Agent → control plane: the `reports` standard queue. Body = the batch packed in an `ansai.compressed.v1` envelope
 * (see {@link reportBody}); attributes `host` (the host id) and `seq` (the newest report's sequence). A batch whose
 * message is over the limit even packed is split, in order, into smaller batches of the same host and reason
 * ({@link splitReportBatch}; ingest takes reports in any order: state moves only on a newer sequence, an older report
 * still adds its samples); one report that alone is over the limit is refused (non-retryable `MessageTooLarge`).
 */
export class SqsReportSender implements ReportSender {
  private readonly sender: SqsMessageSender
  private readonly maxBytes: number

  constructor(options: SqsQueueOptions) {
    this.sender = new SqsMessageSender(options)
    this.maxBytes = Math.min(
      options.maxMessageBytes ?? SQS_MAX_MESSAGE_BYTES,
      options.maxBatchBytes ?? SQS_MAX_BATCH_BYTES,
    )
  }

  async send(batch: ReportBatchV1): Promise<void> {
    if (batch.reports.length === 0) return
    await this.sender.send(splitReportMessages(batch, this.maxBytes).map((p) => p.message))
  }
}

/**
 * The body of a batch's message: the batch as JSON, brotli-compressed (quality 5), in an `ansai.compressed.v1`
 * envelope (`ingest-reports` takes both; SQS bills a request per 64 KB of payload, and one host's reports repeat
 * themselves: 90 of them pack from ~290 KB to a few KB), or the plain JSON when that is not bigger (a tiny batch).
 */
export const reportBody = (batch: ReportBatchV1): string => {
  const json = toSqsBody(batch)
  const packed = toSqsBody(compressJson('ansai.report-batch.v1', JSON.stringify(batch)))
  return packed.length < Buffer.byteLength(json, 'utf8') ? packed : json
}

const reportMessage = (batch: ReportBatchV1): SqsOutgoing => {
  const host = batch.reports[0]?.host.id ?? ''
  const seqs = batch.reports.map((r) => r.seq)
  const newest = Math.max(...seqs)
  const first = Math.min(...seqs)
  return {
    body: reportBody(batch),
    attributes: {
      host: { DataType: 'String', StringValue: host },
      seq: { DataType: 'Number', StringValue: String(newest) },
    },
    label: `reports of host ${host} seq ${first === newest ? newest : `${first}-${newest}`}`,
  }
}

const splitReportMessages = (
  batch: ReportBatchV1,
  maxBytes: number,
): { batch: ReportBatchV1; message: SqsOutgoing }[] => {
  const message = reportMessage(batch)
  if (sqsMessageBytes(message) <= maxBytes || batch.reports.length <= 1) return [{ batch, message }]
  const half = Math.ceil(batch.reports.length / 2)
  return [
    ...splitReportMessages({ ...batch, reports: batch.reports.slice(0, half) }, maxBytes),
    ...splitReportMessages({ ...batch, reports: batch.reports.slice(half) }, maxBytes),
  ]
}

/**
 * The batch as messages of at most `maxBytes` each (body as {@link reportBody} makes it, and attributes): the batch
 * itself when it fits (practically always, packed), else its two halves, each split again the same way until it
 * fits: consecutive runs of its reports, in order, every report in exactly one part, each part of the same reason. A
 * report that fits in no message stays alone in one (and the sender refuses it, naming it).
 */
export const splitReportBatch = (batch: ReportBatchV1, maxBytes: number): ReportBatchV1[] =>
  splitReportMessages(batch, maxBytes).map((p) => p.batch)

/**
 * The `actions` FIFO queue: MessageGroupId = the host (its fixes run one at a time), MessageDeduplicationId = the
 * decision key (via {@link toSqsId}), so the same decision sent twice within SQS's 5-minute window is one message.
 * The same key twice in one call is sent once.
 */
export class SqsActionQueue implements ActionQueue {
  private readonly sender: SqsMessageSender

  constructor(options: SqsQueueOptions) {
    if (!options.queueUrl.endsWith('.fifo')) {
      throw new Error(`SqsActionQueue needs a FIFO queue (a URL ending in .fifo), got ${options.queueUrl}`)
    }
    this.sender = new SqsMessageSender(options)
  }

  send(decisions: readonly RemediateDecision[]): Promise<void> {
    const seen = new Set<string>()
    const messages: SqsOutgoing[] = []
    for (const d of decisions) {
      const deduplicationId = toSqsId(d.key)
      if (seen.has(deduplicationId)) continue
      seen.add(deduplicationId)
      messages.push({
        body: toSqsBody(d),
        groupId: toSqsId(d.host),
        deduplicationId,
        label: `decision ${d.key} (host ${d.host})`,
      })
    }
    return this.sender.send(messages)
  }
}

/** The `notifications` standard queue: one message per NotificationV1 (`send-notifications` dedups by id). */
export class SqsNotificationQueue implements NotificationQueue {
  private readonly sender: SqsMessageSender

  constructor(options: SqsQueueOptions) {
    this.sender = new SqsMessageSender(options)
  }

  async send(messages: readonly NotificationV1[], options: { delaySeconds?: number } = {}): Promise<void> {
    const delaySeconds = checkDelaySeconds(options.delaySeconds)
    await this.sender.send(
      messages.map((m) => ({
        body: toSqsBody(m),
        label: `notification ${m.id} to ${m.channel}`,
        ...(delaySeconds ? { delaySeconds } : {}),
      })),
    )
  }
}

/** The `evaluations` standard queue: one message per shard of a scheduled round. */
export class SqsEvaluationQueue implements EvaluationQueue {
  private readonly sender: SqsMessageSender

  constructor(options: SqsQueueOptions) {
    this.sender = new SqsMessageSender(options)
  }

  send(tasks: readonly EvaluationTask[]): Promise<void> {
    return this.sender.send(
      tasks.map((t) => ({ body: toSqsBody(t), label: `evaluation of shard ${t.shard}/${t.of} at ${t.at}` })),
    )
  }
}
