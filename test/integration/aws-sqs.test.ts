/**
 * The SQS adapters against moto_server with the real SDK client: how they batch (10 entries, 256 KiB), what they
 * put on the wire (FIFO group and deduplication ids, report attributes), which entries they send again, and how SDK
 * errors become PortErrors. Stubs in the client's middleware stack (aws-stubs.ts) fake partial failures and
 * throttling; everything else is moto's real answer.
 */
import { createHash } from 'node:crypto'
import { CreateQueueCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs'
import fc from 'fast-check'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { createSqsClient } from '../../functions/adapters/aws-clients.ts'
import {
  reportBody,
  SQS_MAX_BATCH_BYTES,
  SqsActionQueue,
  SqsNotificationQueue,
  SqsReportSender,
  splitReportBatch,
  sqsMessageBytes,
  toSqsBody,
  toSqsId,
} from '../../functions/adapters/sqs-queues.ts'
import { parseReports } from '../../shared/app/fleet/ingest-report.ts'
import type { NotificationV1, RemediateDecision, ReportBatchV1, ReportV1 } from '../../shared/contracts/index.ts'
import { PortError } from '../../shared/ports/fleet.ts'
import { startMotoOrSkip } from '../support/moto.ts'
import { reportBatchOfBody } from '../support/report-bodies.ts'
import { failCalls, interceptCommand, recordCalls, sdkError } from './aws-stubs.ts'

const HOST = 'i-0a1b2c3d4e5f60718'

const notification = (i: number, textBytes = 100): NotificationV1 => ({
  schema: 'ansai.notification.v1',
  id: `n-${i.toString(16).padStart(16, '0')}`,
  channel: 'ops-email',
  event: 'ansai.incident.opened.v1',
  host: HOST,
  policy: 'root-disk-pressure',
  resource: '/',
  incidentId: `inc-${i}`,
  severity: 'critical',
  subject: `[ANSAI] CRITICAL / on web-${i}`,
  // 3 bytes per character in UTF-8: the byte limits count bytes, not characters.
  text: '€'.repeat(Math.ceil(textBytes / 3)),
  evidence: {},
  at: '2026-11-23T10:00:05.000Z',
})

const decision = (key: string, host = HOST): RemediateDecision => ({
  type: 'remediate',
  key,
  host,
  policy: 'root-disk-pressure',
  resource: '/',
  incidentId: 'inc-1',
  severity: 'critical',
  at: '2026-11-23T10:00:05.000Z',
  step: 0,
  attempt: 1,
  remediation: 'disk-cleanup',
  params: { roots: ['/var/log'] },
  risk: 'safe',
  dryRun: false,
  verifyBy: '2026-11-23T10:10:05.000Z',
  reason: 'usedPercent >= 90',
})

/** 100 characters brotli cannot shrink (base64 of a hash): `noisy` padding stays as big packed as plain. */
const noise = (seed: string): string =>
  [0, 1]
    .map((i) => createHash('sha512').update(`${seed}:${i}`).digest('base64'))
    .join('')
    .slice(0, 100)

const report = (seq: number, padding = 0, noisy = false): ReportV1 => ({
  schema: 'ansai.report.v1',
  host: { id: HOST, hostname: 'web-1', tags: {} },
  agent: { version: '0.1.0' },
  time: '2026-11-23T10:00:00.000Z',
  seq,
  observations: Array.from({ length: padding }, (_, i) => ({
    kind: 'service' as const,
    unit: `u${i}-${noisy ? noise(`${seq}-${i}`) : 'y'.repeat(100)}.service`,
    activeState: 'active' as const,
    subState: 'running',
    restarts: 0,
    mainPid: i,
  })),
  probeErrors: [],
})

const entriesOf = (input: Record<string, unknown>): Record<string, unknown>[] =>
  input.Entries as Record<string, unknown>[]

// ---------- pure helpers (no moto) ----------

/** SQS's allowed characters: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF. */
const SQS_CHARS = /^(?:[\t\n\r\u0020-\ud7ff\ue000-\ufffd]|[\ud800-\udbff][\udc00-\udfff])*$/

describe('SQS message encoding', () => {
  it('toSqsBody is JSON that parses back to the value and holds only characters SQS takes', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), fc.string({ unit: 'grapheme' }), (value, s) => {
        const withSpecials = { value, s, odd: `${s}\ufffe\uffff\u0000\ud800` }
        const body = toSqsBody(withSpecials)
        expect(body).toMatch(SQS_CHARS)
        expect(JSON.parse(body)).toEqual(JSON.parse(JSON.stringify(withSpecials)))
      }),
    )
  })

  it('toSqsId keeps ids SQS takes and hashes the others into its alphabet, distinctly', () => {
    expect(toSqsId('r-0123456789abcdef')).toBe('r-0123456789abcdef')
    expect(toSqsId('i-0a1b2c3d4e5f60718')).toBe('i-0a1b2c3d4e5f60718')
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }), fc.string(), (a, b) => {
        const id = toSqsId(a)
        expect(id).toMatch(/^[!-~]{1,128}$/)
        if (a !== b) expect(toSqsId(b)).not.toBe(id)
      }),
    )
    expect(toSqsId('x'.repeat(129))).toMatch(/^sha256-[0-9a-f]{64}$/)
    expect(toSqsId('with space')).toMatch(/^sha256-[0-9a-f]{64}$/)
  })

  it('splitReportBatch keeps every report in order, and each part (as sent: packed) within the limit', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 60 }), { minLength: 1, maxLength: 25 }), (paddings) => {
        const reports = paddings.map((p, i) => report(i, p, true))
        const whole: ReportBatchV1 = { schema: 'ansai.report-batch.v1', reason: 'spool-full', reports }
        const max = 12_000
        const parts = splitReportBatch(whole, max)
        expect(parts.flatMap((p) => p.reports)).toEqual(reports)
        for (const p of parts) {
          expect(p.reason).toBe('spool-full')
          const bytes = sqsMessageBytes({
            body: reportBody(p),
            attributes: {
              host: { DataType: 'String', StringValue: HOST },
              seq: { DataType: 'Number', StringValue: String(Math.max(...p.reports.map((r) => r.seq))) },
            },
          })
          if (p.reports.length > 1) expect(bytes).toBeLessThanOrEqual(max)
        }
      }),
    )
  })

  it('an actions queue must be FIFO', () => {
    const client = createSqsClient({ region: 'us-east-1' })
    expect(() => new SqsActionQueue({ client, queueUrl: 'https://sqs.us-east-1.amazonaws.com/1/actions' })).toThrow(
      /FIFO/,
    )
  })
})

// ---------- against moto ----------

const moto = await startMotoOrSkip()
// At the top level: runs even when a filter skips every test of the moto block.
afterAll(() => moto?.stop())

describe.skipIf(!moto)('SQS adapters on moto', () => {
  let client: SQSClient
  let queueUrl: string
  let fifoUrl: string
  const sleeps: number[] = []
  const noSleep = { sleep: async (ms: number) => void sleeps.push(ms), jitter: (ms: number) => ms }

  beforeEach(async () => {
    await moto!.reset()
    sleeps.length = 0
    client = createSqsClient({ ...moto!.clientConfig, maxAttempts: 1 })
    queueUrl = (await client.send(new CreateQueueCommand({ QueueName: 'ansai-notifications' }))).QueueUrl!
    fifoUrl = (
      await client.send(new CreateQueueCommand({ QueueName: 'ansai-actions.fifo', Attributes: { FifoQueue: 'true' } }))
    ).QueueUrl!
  })

  const receiveAll = async (url: string) => {
    const out: { body: string; attributes: Record<string, string>; messageAttributes: Record<string, string> }[] = []
    for (;;) {
      const res = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 300,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
        }),
      )
      if (!res.Messages?.length) return out
      for (const m of res.Messages) {
        out.push({
          body: m.Body!,
          attributes: { ...m.Attributes },
          messageAttributes: Object.fromEntries(
            Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, `${v.DataType}:${v.StringValue}`]),
          ),
        })
      }
    }
  }

  it('splits 25 messages into requests of 10, 10 and 5', async () => {
    const calls = recordCalls(client)
    await new SqsNotificationQueue({ client, queueUrl }).send(Array.from({ length: 25 }, (_, i) => notification(i)))
    expect(calls.map((c) => [c.command, entriesOf(c.input).length])).toEqual([
      ['SendMessageBatchCommand', 10],
      ['SendMessageBatchCommand', 10],
      ['SendMessageBatchCommand', 5],
    ])
    expect(entriesOf(calls[0]!.input).map((e) => e.Id)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
    expect(await receiveAll(queueUrl)).toHaveLength(25)
  })

  it('keeps each request within 256 KiB by bytes (multi-byte text), whatever the count', async () => {
    const calls = recordCalls(client)
    const sent = Array.from({ length: 10 }, (_, i) => notification(i, 60_000))
    await new SqsNotificationQueue({ client, queueUrl }).send(sent)
    expect(calls.length).toBeGreaterThan(1)
    for (const c of calls) {
      const bytes = entriesOf(c.input).reduce((n, e) => n + Buffer.byteLength(String(e.MessageBody), 'utf8'), 0)
      expect(bytes).toBeLessThanOrEqual(SQS_MAX_BATCH_BYTES)
    }
    expect(calls.flatMap((c) => entriesOf(c.input)).length).toBe(10)
    expect((await receiveAll(queueUrl)).map((m) => (JSON.parse(m.body) as NotificationV1).id).sort()).toEqual(
      sent.map((m) => m.id),
    )
  })

  it('sends again only the entries SQS failed (SenderFault false), after a backoff', async () => {
    const calls = recordCalls(client)
    // The first request: SQS "fails" entries 2 and 7 (they are not sent) and takes the rest.
    interceptCommand(client, 'SendMessageBatch', async (input, send, call) => {
      if (call > 1) return send(input)
      const failedIds = new Set(['2', '7'])
      const entries = entriesOf(input)
      const out = await send({ ...input, Entries: entries.filter((e) => !failedIds.has(String(e.Id))) })
      return {
        ...out,
        Failed: [...failedIds].map((Id) => ({ Id, SenderFault: false, Code: 'InternalError', Message: 'try again' })),
      }
    })
    const sent = Array.from({ length: 10 }, (_, i) => notification(i))
    await new SqsNotificationQueue({ client, queueUrl, ...noSleep }).send(sent)
    expect(calls).toHaveLength(2)
    expect(entriesOf(calls[1]!.input).map((e) => (JSON.parse(String(e.MessageBody)) as NotificationV1).id)).toEqual([
      sent[2]!.id,
      sent[7]!.id,
    ])
    expect(sleeps).toEqual([100])
    const got = (await receiveAll(queueUrl)).map((m) => (JSON.parse(m.body) as NotificationV1).id)
    expect(got.sort()).toEqual(sent.map((m) => m.id))
  })

  it('an entry SQS refuses for itself (SenderFault) is not sent again: non-retryable, named; the rest go', async () => {
    const calls = recordCalls(client)
    interceptCommand(client, 'SendMessageBatch', async (input, send) => {
      const entries = entriesOf(input)
      const out = await send({ ...input, Entries: entries.filter((e) => e.Id !== '1') })
      return { ...out, Failed: [{ Id: '1', SenderFault: true, Code: 'InvalidMessageContents', Message: 'bad' }] }
    })
    const sent = Array.from({ length: 3 }, (_, i) => notification(i))
    const err = await new SqsNotificationQueue({ client, queueUrl, ...noSleep }).send(sent).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PortError)
    expect(err).toMatchObject({ retryable: false, code: 'InvalidMessageContents' })
    expect((err as Error).message).toContain(`notification ${sent[1]!.id}`)
    expect(calls).toHaveLength(1)
    expect(await receiveAll(queueUrl)).toHaveLength(2)
  })

  it('entries that keep failing give up after maxAttempts rounds with a retryable PortError', async () => {
    const calls = recordCalls(client)
    interceptCommand(client, 'SendMessageBatch', async (input) => ({
      Successful: [],
      Failed: entriesOf(input).map((e) => ({ Id: e.Id, SenderFault: false, Code: 'ServiceUnavailable' })),
    }))
    const err = await new SqsNotificationQueue({ client, queueUrl, ...noSleep, maxAttempts: 3 })
      .send([notification(1)])
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'PortError', retryable: true, code: 'ServiceUnavailable' })
    expect(calls).toHaveLength(3)
    expect(sleeps).toEqual([100, 200])
  })

  it('throttling and 5xx of the whole call are retryable PortErrors with the SDK error as cause', async () => {
    for (const [name, status] of [
      ['ThrottlingException', 400],
      ['RequestThrottled', 403],
      ['InternalError', 500],
      ['ServiceUnavailable', 503],
    ] as const) {
      const c = createSqsClient({ ...moto!.clientConfig, maxAttempts: 1 })
      failCalls(c, { command: 'SendMessageBatch', times: 1, error: () => sdkError(name, { status }) })
      const err = await new SqsNotificationQueue({ client: c, queueUrl }).send([notification(1)]).catch((e) => e)
      expect(err, name).toBeInstanceOf(PortError)
      expect(err, name).toMatchObject({ retryable: true, code: name })
      expect((err as PortError).cause, name).toMatchObject({ name, $metadata: { httpStatusCode: status } })
    }
    expect(await receiveAll(queueUrl)).toEqual([])
  })

  it('a queue that does not exist is a non-retryable PortError (moto answers QueueDoesNotExist)', async () => {
    const err = await new SqsNotificationQueue({ client, queueUrl: `${queueUrl}-missing` })
      .send([notification(1)])
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'PortError', retryable: false })
    expect((err as PortError).code).toMatch(/QueueDoesNotExist|NonExistentQueue/)
    expect((err as PortError).cause).toBeInstanceOf(Error)
  })

  it("the client's adaptive retries absorb a short throttle: the adapter sees no error", async () => {
    const c = createSqsClient(moto!.clientConfig)
    const throttle = failCalls(c, {
      command: 'SendMessageBatch',
      times: 1,
      step: 'deserialize',
      error: () => sdkError('ThrottlingException'),
    })
    await new SqsNotificationQueue({ client: c, queueUrl }).send([notification(1)])
    expect(throttle).toEqual({ seen: 2, failed: 1 })
    expect(await receiveAll(queueUrl)).toHaveLength(1)
  })

  it('FIFO: group id = host, deduplication id = the decision key, hashed when SQS would refuse it', async () => {
    const long = `r-${'ü'.repeat(90)} and spaces`
    await new SqsActionQueue({ client, queueUrl: fifoUrl }).send([
      decision('r-0123456789abcdef'),
      decision(long, 'i-0123456789abcdef0'),
    ])
    const got = await receiveAll(fifoUrl)
    expect(
      got.map((m) => [
        (JSON.parse(m.body) as RemediateDecision).key,
        m.attributes.MessageGroupId,
        m.attributes.MessageDeduplicationId,
      ]),
    ).toEqual([
      ['r-0123456789abcdef', HOST, 'r-0123456789abcdef'],
      [long, 'i-0123456789abcdef0', toSqsId(long)],
    ])
    expect(toSqsId(long)).toMatch(/^sha256-[0-9a-f]{64}$/)
  })

  it('FIFO: the same decision key twice in one call is one entry on the wire', async () => {
    const calls = recordCalls(client)
    await new SqsActionQueue({ client, queueUrl: fifoUrl }).send([decision('r-1'), decision('r-2'), decision('r-1')])
    const entries = calls.filter((c) => c.command === 'SendMessageBatchCommand').flatMap((c) => entriesOf(c.input))
    expect(entries.map((e) => e.MessageDeduplicationId)).toEqual(['r-1', 'r-2'])
    expect(await receiveAll(fifoUrl)).toHaveLength(2)
  })

  it('reports: a heartbeat of 90 reports is one packed message, far below 64 KiB, that ingest reads back', async () => {
    const reports = Array.from({ length: 90 }, (_, i) => report(1 + i, 20))
    const batch: ReportBatchV1 = { schema: 'ansai.report-batch.v1', reason: 'heartbeat', reports }
    expect(Buffer.byteLength(toSqsBody(batch))).toBeGreaterThan(256 * 1024)
    await new SqsReportSender({ client, queueUrl }).send(batch)
    const [got, ...more] = await receiveAll(queueUrl)
    expect(more).toEqual([])
    expect(JSON.parse(got!.body)).toMatchObject({ schema: 'ansai.compressed.v1', content: 'ansai.report-batch.v1' })
    expect(Buffer.byteLength(got!.body)).toBeLessThan(64 * 1024)
    expect(got!.messageAttributes).toMatchObject({ host: `String:${HOST}`, seq: 'Number:90' })
    expect(reportBatchOfBody(got!.body)).toEqual(batch)
    expect(parseReports(got!.body)).toEqual(reports)
  })

  it('reports: attributes host and seq; a batch too big even packed is split into messages that each fit', async () => {
    const calls = recordCalls(client)
    const reports = Array.from({ length: 6 }, (_, i) => report(100 + i, 500, true)) // ~105 KB each, ~55 KB packed
    const batch: ReportBatchV1 = { schema: 'ansai.report-batch.v1', reason: 'spool-full', reports }
    await new SqsReportSender({ client, queueUrl }).send(batch)
    const got = await receiveAll(queueUrl)
    expect(got.length).toBeGreaterThan(1)
    const parts = got.map((m) => reportBatchOfBody(m.body))
    expect(parts.flatMap((p) => p.reports).sort((a, b) => a.seq - b.seq)).toEqual(reports)
    for (const [i, m] of got.entries()) {
      expect(m.messageAttributes.host).toBe(`String:${HOST}`)
      expect(m.messageAttributes.seq).toBe(`Number:${Math.max(...parts[i]!.reports.map((r) => r.seq))}`)
      expect(Buffer.byteLength(m.body)).toBeLessThanOrEqual(256 * 1024)
    }
    const sends = calls.filter((c) => c.command === 'SendMessageBatchCommand')
    expect(sends.length).toBeGreaterThan(1)
    for (const c of sends) {
      const bytes = entriesOf(c.input).reduce((n, e) => n + Buffer.byteLength(String(e.MessageBody), 'utf8'), 0)
      expect(bytes).toBeLessThanOrEqual(SQS_MAX_BATCH_BYTES)
    }
  })

  it('a too-large message is refused before any request, naming it', async () => {
    const calls = recordCalls(client)
    const err = await new SqsNotificationQueue({ client, queueUrl, maxMessageBytes: 10_000 })
      .send([notification(1), notification(2, 20_000), notification(3)])
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'PortError', retryable: false, code: 'MessageTooLarge' })
    expect((err as Error).message).toContain(`notification ${notification(2).id} to ops-email`)
    expect((err as Error).message).not.toContain(notification(1).id)
    expect(calls).toEqual([])
  })

  it('U+FFFE / U+FFFF in text survive the round trip through SQS', async () => {
    const m = { ...notification(5), text: 'before \ufffe\uffff after' }
    await new SqsNotificationQueue({ client, queueUrl }).send([m])
    const [got] = await receiveAll(queueUrl)
    expect(JSON.parse(got!.body)).toEqual(m)
  })
})
