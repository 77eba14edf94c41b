/**
 * The contract of the fleet's queue ports (ReportSender, ActionQueue, NotificationQueue, EvaluationQueue), run
 * against the in-memory twins and against the SQS adapters on moto_server. What a consumer receives back is parsed
 * with the zod schemas and compared with what was sent.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { createSqsClient } from '../../functions/adapters/aws-clients.ts'
import {
  SqsActionQueue,
  SqsEvaluationQueue,
  SqsNotificationQueue,
  SqsReportSender,
} from '../../functions/adapters/sqs-queues.ts'
import {
  MemoryActionQueue,
  MemoryEvaluationQueue,
  MemoryNotificationQueue,
  MemoryReportSender,
} from '../../shared/adapters/fleet/memory-queues.ts'
import {
  type NotificationV1,
  NotificationV1Schema,
  type RemediateDecision,
  RemediateDecisionSchema,
  type ReportBatchV1,
  ReportBatchV1Schema,
  type ReportV1,
  ReportV1Schema,
} from '../../shared/contracts/index.ts'
import {
  type ActionQueue,
  type EvaluationQueue,
  type EvaluationTask,
  type NotificationQueue,
  PortError,
  type ReportSender,
} from '../../shared/ports/fleet.ts'
import { startMotoOrSkip } from '../support/moto.ts'
import { failure } from '../support/rejection.ts'
import { documentOfBody } from '../support/report-bodies.ts'

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../fixtures/contracts/v1/${name}.json`, import.meta.url), 'utf8'))

const BASE_REPORT: ReportV1 = ReportV1Schema.parse(fixture('report-full'))
const BASE_DECISION: RemediateDecision = RemediateDecisionSchema.parse(fixture('decision-remediate'))
const BASE_NOTIFICATION: NotificationV1 = NotificationV1Schema.parse(fixture('notification'))
const HOSTS = ['i-0a1b2c3d4e5f60718', 'i-0123456789abcdef0', 'mi-0123456789abcdef0']

/** 180 characters brotli cannot shrink: padding that stays big in a packed report batch. */
const noise = (seed: string): string =>
  [0, 1, 2]
    .map((i) => createHash('sha512').update(`${seed}:${i}`).digest('base64'))
    .join('')
    .slice(0, 180)

const report = (seq: number, over: { host?: string; padding?: number } = {}): ReportV1 => ({
  ...BASE_REPORT,
  host: { ...BASE_REPORT.host, id: over.host ?? BASE_REPORT.host.id },
  seq,
  time: new Date(Date.parse('2026-11-23T10:00:00Z') + seq * 60_000).toISOString(),
  observations: [
    ...BASE_REPORT.observations,
    // Padding: service observations with long unit names, valid by the schema, as big compressed as plain.
    ...Array.from({ length: over.padding ?? 0 }, (_, i) => ({
      kind: 'service' as const,
      unit: `padding-${seq}-${i}-${noise(`${seq}-${i}`)}.service`,
      activeState: 'active' as const,
      subState: 'running',
      restarts: 0,
      mainPid: 1000 + i,
    })),
  ],
})

const batch = (reports: ReportV1[], reason: ReportBatchV1['reason'] = 'heartbeat'): ReportBatchV1 => ({
  schema: 'ansai.report-batch.v1',
  reason,
  reports,
})

const decision = (i: number, over: Partial<RemediateDecision> = {}): RemediateDecision => ({
  ...BASE_DECISION,
  key: `r-${i.toString(16).padStart(16, '0')}`,
  host: HOSTS[i % HOSTS.length]!,
  attempt: 1 + (i % 3),
  params: { roots: ['/var/log', `/tmp/${i}`], note: 'ünïcödé ✓ and "quotes", \\ and \u2028' },
  ...over,
})

const notification = (i: number): NotificationV1 => ({
  ...BASE_NOTIFICATION,
  id: `n-${i.toString(16).padStart(16, '0')}`,
  host: HOSTS[i % HOSTS.length]!,
  subject: `[ANSAI] CRITICAL disk-pressure / on web-${i} — 90 % ✓`,
  text: `line 1 of ${i}\nline 2 with ünïcödé and emoji 🧯\n\ttabbed`,
  evidence: { usedPercent: 90 + i / 10, nested: { list: [1, 2, i] } },
})

const task = (shard: number, of = 25): EvaluationTask => ({ shard, of, at: '2026-11-23T10:00:00.000Z' })

interface Received {
  body: unknown
  attributes: Record<string, string>
  groupId?: string
}

type QueueName = 'reports' | 'actions' | 'notifications' | 'evaluations'

interface QueueHarness {
  reports: ReportSender
  actions: ActionQueue
  notifications: NotificationQueue
  evaluations: EvaluationQueue
  /** Everything a consumer receives (and deletes) from one queue now, in arrival order. */
  receive(queue: QueueName): Promise<Received[]>
  /** Move the twin's clock (the emulator's FIFO window runs on wall time: undefined there). */
  advance?: (ms: number) => void
}

const byKey = <T>(items: T[], key: (t: T) => string): T[] => [...items].sort((a, b) => key(a).localeCompare(key(b)))

const describeQueueContract = (name: string, make: () => Promise<QueueHarness>): void => {
  describe(`queue ports contract: ${name}`, () => {
    describe('ReportSender', () => {
      it('a batch comes back intact, with the host and the newest seq as attributes', async () => {
        const q = await make()
        const sent = batch([report(41), report(42)], 'change')
        await q.reports.send(sent)
        const got = await q.receive('reports')
        expect(got).toHaveLength(1)
        expect(ReportBatchV1Schema.parse(got[0]!.body)).toEqual(sent)
        expect(got[0]!.attributes).toMatchObject({ host: 'i-0a1b2c3d4e5f60718', seq: '42' })
      })

      it('a batch too big for one message still delivers every report, each whole', async () => {
        const q = await make()
        // Each report ~170 KiB of JSON, ~110 KiB packed: three of them do not fit one 256 KiB message.
        const sent = batch([report(1, { padding: 600 }), report(2, { padding: 600 }), report(3, { padding: 600 })])
        await q.reports.send(sent)
        const got = (await q.receive('reports')).map((m) => ReportBatchV1Schema.parse(m.body))
        expect(got.every((b) => b.reason === 'heartbeat')).toBe(true)
        const reports = got.flatMap((b) => b.reports)
        expect(byKey(reports, (r) => String(r.seq))).toEqual(sent.reports)
      })

      it('refuses a report that can never fit, naming it, and sends nothing', async () => {
        const q = await make()
        const err = await failure(q.reports.send(batch([report(7), report(8, { padding: 2000 })])))
        expect(err).toBeInstanceOf(PortError)
        expect(err).toMatchObject({ retryable: false, code: 'MessageTooLarge' })
        expect((err as Error).message).toContain('i-0a1b2c3d4e5f60718')
        expect(await q.receive('reports')).toEqual([])
      })
    })

    describe('ActionQueue (FIFO)', () => {
      it('decisions come back intact, grouped by host, in order within a host', async () => {
        const q = await make()
        const sent = Array.from({ length: 25 }, (_, i) => decision(i))
        await q.actions.send(sent)
        const got = await q.receive('actions')
        expect(got).toHaveLength(25)
        const parsed = got.map((m) => ({ d: RemediateDecisionSchema.parse(m.body), group: m.groupId }))
        for (const { d, group } of parsed) expect(group).toBe(d.host)
        expect(
          byKey(
            parsed.map((p) => p.d),
            (d) => d.key,
          ),
        ).toEqual(sent)
        for (const host of HOSTS) {
          expect(parsed.filter((p) => p.d.host === host).map((p) => p.d.key)).toEqual(
            sent.filter((d) => d.host === host).map((d) => d.key),
          )
        }
      })

      it('the same decision sent twice, in two calls or in one, is one message', async () => {
        const q = await make()
        const d = decision(1)
        await q.actions.send([d])
        await q.actions.send([d, decision(2)])
        await q.actions.send([decision(3), decision(3)])
        const keys = (await q.receive('actions')).map((m) => RemediateDecisionSchema.parse(m.body).key)
        expect(keys.sort()).toEqual([decision(1).key, decision(2).key, decision(3).key].sort())
      })

      it('a decision key SQS would not take as a deduplication id still deduplicates', async () => {
        const q = await make()
        const long = decision(9, { key: `r-${'é'.repeat(100)} with spaces` })
        await q.actions.send([long])
        await q.actions.send([long])
        const got = (await q.receive('actions')).map((m) => RemediateDecisionSchema.parse(m.body))
        expect(got).toEqual([long])
      })

      it.runIf(name === 'in memory')('sends the same decision again once the 5-minute window has passed', async () => {
        const q = await make()
        await q.actions.send([decision(1)])
        q.advance!(4 * 60_000)
        await q.actions.send([decision(1)])
        q.advance!(60_000)
        await q.actions.send([decision(1)])
        expect(await q.receive('actions')).toHaveLength(2)
      })
    })

    describe('NotificationQueue', () => {
      it('25 messages come back intact (text, unicode, nested evidence)', async () => {
        const q = await make()
        const sent = Array.from({ length: 25 }, (_, i) => notification(i))
        await q.notifications.send(sent)
        const got = (await q.receive('notifications')).map((m) => NotificationV1Schema.parse(m.body))
        expect(byKey(got, (m) => m.id)).toEqual(sent)
      })

      it('an empty call sends nothing', async () => {
        const q = await make()
        await q.notifications.send([])
        expect(await q.receive('notifications')).toEqual([])
      })

      it('refuses a hold SQS cannot give (not whole seconds, or over 900), sending nothing', async () => {
        const q = await make()
        for (const delaySeconds of [-1, 1.5, 901]) {
          const err = await failure(q.notifications.send([notification(1)], { delaySeconds }))
          expect(err).toBeInstanceOf(PortError)
          expect((err as PortError).message).toContain(`delaySeconds: ${delaySeconds} is not a whole number`)
        }
        expect(await q.receive('notifications')).toEqual([])
      })
    })

    describe('EvaluationQueue', () => {
      it('one message per shard', async () => {
        const q = await make()
        const sent = Array.from({ length: 25 }, (_, i) => task(i))
        await q.evaluations.send(sent)
        const got = (await q.receive('evaluations')).map((m) => m.body as EvaluationTask)
        expect(byKey(got, (t) => String(t.shard).padStart(3, '0'))).toEqual(sent)
      })
    })
  })
}

// ---------- the twins ----------

describeQueueContract('in memory', async () => {
  let now = Date.parse('2026-11-23T10:00:00Z')
  const reports = new MemoryReportSender()
  const actions = new MemoryActionQueue({ clock: () => new Date(now) })
  const notifications = new MemoryNotificationQueue()
  const evaluations = new MemoryEvaluationQueue()
  const queues = { reports, actions, notifications, evaluations }
  return {
    ...queues,
    receive: async (queue) => queues[queue].drain() as Received[],
    advance: (ms) => {
      now += ms
    },
  }
})

describe('memory queues: what use-case tests read', () => {
  it('the action queue keeps what it dropped as duplicates; fail throws once and keeps nothing', async () => {
    const q = new MemoryActionQueue({ clock: () => new Date('2026-11-23T10:00:00Z') })
    await q.send([decision(1), decision(1)])
    await q.send([decision(1)])
    expect(q.sent.map((d) => d.key)).toEqual([decision(1).key])
    expect(q.dropped.map((d) => d.key)).toEqual([decision(1).key, decision(1).key])
    const down = new PortError('down', { retryable: true, code: 'ServiceUnavailable' })
    q.fail.push(down)
    await expect(q.send([decision(2)])).rejects.toBe(down)
    await q.send([decision(2)])
    expect(q.sent.map((d) => d.key)).toEqual([decision(1).key, decision(2).key])
  })

  it('the notification queue records a hold, as SQS DelaySeconds would hold the message', async () => {
    const q = new MemoryNotificationQueue()
    await q.send([notification(1)], { delaySeconds: 120 })
    await q.send([notification(2)])
    expect(q.drain().map((m) => m.delaySeconds)).toEqual([120, undefined])
  })

  it('keeps a copy: changing the sent object afterwards does not change the message', async () => {
    const q = new MemoryNotificationQueue()
    const m = notification(1)
    await q.send([m])
    m.subject = 'changed'
    expect(q.sent[0]!.subject).not.toBe('changed')
  })

  it('the report sender flattens its batches into reports', async () => {
    const q = new MemoryReportSender()
    await q.send(batch([report(1), report(2)]))
    await q.send(batch([report(3)]))
    expect(q.reports.map((r) => r.seq)).toEqual([1, 2, 3])
  })
})

// ---------- SQS on moto ----------

const moto = await startMotoOrSkip()
// At the top level: runs even when a filter skips every test of the moto block.
afterAll(() => moto?.stop())

describe.skipIf(!moto)('SQS adapters on moto', () => {
  let client: SQSClient
  beforeEach(async () => {
    await moto!.reset()
    client = createSqsClient(moto!.clientConfig)
  })

  const receiveAll = async (queueUrl: string): Promise<Received[]> => {
    const out: Received[] = []
    for (;;) {
      const res = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: 120,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['MessageGroupId'],
        }),
      )
      const messages = res.Messages ?? []
      if (messages.length === 0) return out
      for (const m of messages) {
        out.push({
          body: documentOfBody(m.Body ?? 'null'),
          attributes: Object.fromEntries(
            Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? '']),
          ),
          ...(m.Attributes?.MessageGroupId ? { groupId: m.Attributes.MessageGroupId } : {}),
        })
      }
      await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      )
    }
  }

  it('a held notification is not received before its delay, and is after it', async () => {
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: 'ansai-notifications' }))
    const q = new SqsNotificationQueue({ client, queueUrl: QueueUrl!, sleep: async () => {} })
    await q.send([notification(7)], { delaySeconds: 1 })
    await q.send([notification(8)])
    expect((await receiveAll(QueueUrl!)).map((m) => (m.body as { id: string }).id)).toEqual([notification(8).id])
    await new Promise((r) => setTimeout(r, 1_300))
    expect((await receiveAll(QueueUrl!)).map((m) => (m.body as { id: string }).id)).toEqual([notification(7).id])
  })

  describeQueueContract('SQS on moto', async () => {
    const url = async (name: string, fifo = false): Promise<string> =>
      (
        await client.send(
          new CreateQueueCommand({
            QueueName: name,
            ...(fifo ? { Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'false' } } : {}),
          }),
        )
      ).QueueUrl!
    const urls = {
      reports: await url('ansai-reports'),
      actions: await url('ansai-actions.fifo', true),
      notifications: await url('ansai-notifications'),
      evaluations: await url('ansai-evaluations'),
    }
    const opts = (queueUrl: string) => ({ client, queueUrl, sleep: async () => {} })
    return {
      reports: new SqsReportSender(opts(urls.reports)),
      actions: new SqsActionQueue(opts(urls.actions)),
      notifications: new SqsNotificationQueue(opts(urls.notifications)),
      evaluations: new SqsEvaluationQueue(opts(urls.evaluations)),
      receive: (queue) => receiveAll(urls[queue]),
    }
  })
})
