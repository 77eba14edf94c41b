/**
 * The contract of the EventPublisher port, against the in-memory twin and the EventBridge adapter on moto_server.
 * On moto, what was published is read the way a user's integration gets it: a rule on ANSAI's bus (source `ansai`)
 * with an SQS queue as its target; each message is the EventBridge envelope.
 */
import {
  CreateEventBusCommand,
  type EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
} from '@aws-sdk/client-eventbridge'
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { createEventBridgeClient, createSqsClient } from '../../functions/adapters/aws-clients.ts'
import { EventBridgePublisher } from '../../functions/adapters/eventbridge-publisher.ts'
import { EVENT_SOURCE } from '../../functions/platform/names.ts'
import { MemoryEventPublisher } from '../../shared/adapters/fleet/memory-event-publisher.ts'
import { EventTypeSchema } from '../../shared/contracts/index.ts'
import { type AnsaiEvent, type EventPublisher, PortError } from '../../shared/ports/fleet.ts'
import { startMotoOrSkip } from '../support/moto.ts'

const TYPES = EventTypeSchema.options

/** Events at whole seconds: EventBridge keeps an event's time to the second. */
const event = (i: number, detail: Record<string, unknown> = {}): AnsaiEvent => ({
  type: TYPES[i % TYPES.length]!,
  time: new Date(Date.parse('2026-11-23T10:00:00Z') + i * 1000).toISOString(),
  host: i % 2 ? 'i-0a1b2c3d4e5f60718' : 'i-0123456789abcdef0',
  incidentId: `inc-${String(i).padStart(4, '0')}`,
  policy: 'root-disk-pressure',
  resource: i % 3 ? '/' : '/var/lib/docker',
  detail: { severity: 'critical', values: { usedPercent: 90 + i / 10 }, note: 'ünïcödé ✓ "quoted"', ...detail },
})

interface PublisherHarness {
  publisher: EventPublisher
  /** What a subscriber received, as AnsaiEvents (time as ISO-8601). */
  received(): Promise<AnsaiEvent[]>
}

const byIncident = (events: AnsaiEvent[]): AnsaiEvent[] =>
  [...events].sort((a, b) => a.incidentId.localeCompare(b.incidentId))
const sameTime = (events: AnsaiEvent[]): AnsaiEvent[] =>
  events.map((e) => ({ ...e, time: new Date(e.time).toISOString() }))

const describePublisherContract = (name: string, make: () => Promise<PublisherHarness>): void => {
  describe(`EventPublisher contract: ${name}`, () => {
    it('25 events arrive intact: type, time, host, incident, policy, resource and detail', async () => {
      const h = await make()
      const sent = Array.from({ length: 25 }, (_, i) => event(i))
      await h.publisher.publish(sent)
      expect(byIncident(sameTime(await h.received()))).toEqual(sent)
    })

    it('publishing nothing sends nothing', async () => {
      const h = await make()
      await h.publisher.publish([])
      expect(await h.received()).toEqual([])
    })

    it('an event too large for the bus is refused, named, and nothing of the call is published', async () => {
      const h = await make()
      const big = event(7, { blob: 'z'.repeat(300 * 1024) })
      const err = await h.publisher.publish([event(1), big, event(2)]).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PortError)
      expect(err).toMatchObject({ retryable: false, code: 'EventTooLarge' })
      expect((err as Error).message).toContain('inc-0007')
      expect(await h.received()).toEqual([])
    })
  })
}

describePublisherContract('in memory', async () => {
  const publisher = new MemoryEventPublisher()
  return { publisher, received: async () => publisher.published.splice(0) }
})

const moto = await startMotoOrSkip()
// At the top level: runs even when a filter skips every test of the moto block.
afterAll(() => moto?.stop())

describe.skipIf(!moto)('EventBridge adapter on moto', () => {
  beforeEach(() => moto!.reset())

  describePublisherContract('EventBridge on moto', async () => {
    const events: EventBridgeClient = createEventBridgeClient({ ...moto!.clientConfig, maxAttempts: 1 })
    const sqs = createSqsClient({ ...moto!.clientConfig, maxAttempts: 1 })
    await events.send(new CreateEventBusCommand({ Name: 'ansai-events' }))
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'subscriber' }))).QueueUrl!
    const queueArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes!.QueueArn!
    await events.send(
      new PutRuleCommand({
        Name: 'all-ansai',
        EventBusName: 'ansai-events',
        EventPattern: JSON.stringify({ source: [EVENT_SOURCE] }),
      }),
    )
    await events.send(
      new PutTargetsCommand({ Rule: 'all-ansai', EventBusName: 'ansai-events', Targets: [{ Id: 'q', Arn: queueArn }] }),
    )
    return {
      publisher: new EventBridgePublisher({ client: events, eventBusName: 'ansai-events' }),
      received: async () => {
        const out: AnsaiEvent[] = []
        for (;;) {
          const res = await sqs.send(
            new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 300 }),
          )
          if (!res.Messages?.length) return out
          for (const m of res.Messages) {
            const envelope = JSON.parse(m.Body!) as {
              source: string
              'detail-type': AnsaiEvent['type']
              time: string
              detail: Omit<AnsaiEvent, 'type' | 'time'>
            }
            expect(envelope.source).toBe(EVENT_SOURCE)
            out.push({ type: envelope['detail-type'], time: envelope.time, ...envelope.detail })
          }
        }
      },
    }
  })
})
