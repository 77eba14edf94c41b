/**
 * The EventBridge adapter with the real SDK client on moto_server: the entries it builds, how it splits PutEvents,
 * which entries it sends again (FailedEntryCount), and how errors become PortErrors.
 */
import { CreateEventBusCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { createEventBridgeClient } from '../../functions/adapters/aws-clients.ts'
import {
  EVENTBRIDGE_MAX_BYTES,
  EventBridgePublisher,
  eventBridgeEntryBytes,
} from '../../functions/adapters/eventbridge-publisher.ts'
import { type AnsaiEvent, PortError } from '../../shared/ports/fleet.ts'
import { startMotoOrSkip } from '../support/moto.ts'
import { failCalls, interceptCommand, recordCalls, sdkError } from './aws-stubs.ts'

const BUS = 'ansai-events'

const event = (i: number, blobBytes = 0): AnsaiEvent => ({
  type: 'ansai.fix.verified.v1',
  time: '2026-11-23T10:05:00.000Z',
  host: 'i-0a1b2c3d4e5f60718',
  incidentId: `inc-${i}`,
  policy: 'root-disk-pressure',
  resource: '/',
  detail: { bytesRecovered: 1_288_490_189, ...(blobBytes ? { blob: 'b'.repeat(blobBytes) } : {}) },
})

type Entry = { Source?: string; DetailType?: string; Detail?: string; EventBusName?: string; Time?: Date }
const entriesOf = (input: Record<string, unknown>): Entry[] => input.Entries as Entry[]

const moto = await startMotoOrSkip()
// At the top level: runs even when a filter skips every test of the moto block.
afterAll(() => moto?.stop())

describe.skipIf(!moto)('EventBridgePublisher on moto', () => {
  let client: EventBridgeClient
  const sleeps: number[] = []
  const noSleep = { sleep: async (ms: number) => void sleeps.push(ms), jitter: (ms: number) => ms }

  beforeEach(async () => {
    await moto!.reset()
    sleeps.length = 0
    client = createEventBridgeClient({ ...moto!.clientConfig, maxAttempts: 1 })
    await client.send(new CreateEventBusCommand({ Name: BUS }))
  })

  it('entries: the bus, source ansai, detail-type = event type, the time, the detail as JSON; 10 per request', async () => {
    const calls = recordCalls(client)
    await new EventBridgePublisher({ client, eventBusName: BUS }).publish(
      Array.from({ length: 23 }, (_, i) => event(i)),
    )
    expect(calls.map((c) => entriesOf(c.input).length)).toEqual([10, 10, 3])
    const first = entriesOf(calls[0]!.input)[0]!
    expect(first).toEqual({
      EventBusName: BUS,
      Source: 'ansai',
      DetailType: 'ansai.fix.verified.v1',
      Time: new Date('2026-11-23T10:05:00.000Z'),
      Detail: JSON.stringify({
        host: 'i-0a1b2c3d4e5f60718',
        incidentId: 'inc-0',
        policy: 'root-disk-pressure',
        resource: '/',
        detail: { bytesRecovered: 1_288_490_189 },
      }),
    })
  })

  it('keeps each request within 256 KiB by EventBridge’s own count', async () => {
    const calls = recordCalls(client)
    await new EventBridgePublisher({ client, eventBusName: BUS }).publish(
      Array.from({ length: 6 }, (_, i) => event(i, 100_000)),
    )
    expect(calls.length).toBeGreaterThanOrEqual(3)
    for (const c of calls) {
      expect(entriesOf(c.input).reduce((n, e) => n + eventBridgeEntryBytes(e), 0)).toBeLessThanOrEqual(
        EVENTBRIDGE_MAX_BYTES,
      )
    }
    expect(calls.flatMap((c) => entriesOf(c.input))).toHaveLength(6)
  })

  it('sends again only the entries that failed retryably (FailedEntryCount), after a backoff', async () => {
    const calls = recordCalls(client)
    interceptCommand(client, 'PutEvents', async (input, send, call) => {
      if (call > 1) return send(input)
      const entries = entriesOf(input)
      // Entries 3 and 8 fail (not sent); the others go through moto. Results stay in request order.
      const out = await send({ ...input, Entries: entries.filter((_, i) => i !== 3 && i !== 8) })
      const ok = [...((out.Entries as unknown[]) ?? [])]
      return {
        ...out,
        FailedEntryCount: 2,
        Entries: entries.map((_, i) =>
          i === 3 || i === 8 ? { ErrorCode: i === 3 ? 'ThrottlingException' : 'InternalFailure' } : ok.shift(),
        ),
      }
    })
    await new EventBridgePublisher({ client, eventBusName: BUS, ...noSleep }).publish(
      Array.from({ length: 10 }, (_, i) => event(i)),
    )
    expect(calls).toHaveLength(2)
    expect(entriesOf(calls[1]!.input).map((e) => (JSON.parse(e.Detail!) as { incidentId: string }).incidentId)).toEqual(
      ['inc-3', 'inc-8'],
    )
    expect(sleeps).toEqual([100])
  })

  it('an entry refused for itself is not sent again: non-retryable PortError that names it', async () => {
    const calls = recordCalls(client)
    interceptCommand(client, 'PutEvents', async (input) => ({
      FailedEntryCount: 1,
      Entries: entriesOf(input).map((_, i) =>
        i === 1 ? { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' } : { EventId: `e-${i}` },
      ),
    }))
    const err = await new EventBridgePublisher({ client, eventBusName: BUS, ...noSleep })
      .publish([event(0), event(1), event(2)])
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PortError)
    expect(err).toMatchObject({ retryable: false, code: 'MalformedDetail' })
    expect((err as Error).message).toContain('ansai.fix.verified.v1 of inc-1')
    expect(calls).toHaveLength(1)
  })

  it('a bus that does not exist: moto refuses the call, a non-retryable PortError with the SDK error as cause', async () => {
    const err = await new EventBridgePublisher({ client, eventBusName: 'no-such-bus' })
      .publish([event(1)])
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'PortError', retryable: false, code: 'ResourceNotFoundException' })
    expect((err as PortError).cause).toMatchObject({ name: 'ResourceNotFoundException' })
  })

  it('throttling and 5xx of the whole call are retryable', async () => {
    for (const [name, status] of [
      ['ThrottlingException', 400],
      ['InternalException', 500],
    ] as const) {
      const c = createEventBridgeClient({ ...moto!.clientConfig, maxAttempts: 1 })
      failCalls(c, { command: 'PutEvents', times: 1, error: () => sdkError(name, { status }) })
      const err = await new EventBridgePublisher({ client: c, eventBusName: BUS }).publish([event(1)]).catch((e) => e)
      expect(err, name).toMatchObject({ name: 'PortError', retryable: true, code: name })
      expect((err as PortError).cause, name).toMatchObject({ name })
    }
  })
})
