import { describe, expect, it } from 'vitest'
import { InMemoryDedupStore, MemoryNotifier } from '../../../shared/adapters/notify/memory.ts'
import { buildNotifications, dispatchNotifications, summarizeDeliveries } from '../../../shared/app/notify/index.ts'
import type { NotificationV1 } from '../../../shared/contracts/index.ts'
import { type DeliveryResult, type Notifier, NotifierError } from '../../../shared/ports/notifier.ts'
import { dedupStoreContract } from './dedup-contract.ts'
import { escalated, fix, fixFailed, HOSTS, opened, result, started } from './fixtures.ts'

dedupStoreContract('in memory', () => new InMemoryDedupStore())

const NOW = '2026-11-23T10:00:30.000Z'
const messages = () => buildNotifications({ decisions: [opened, fix, started], results: [result], hosts: HOSTS })

describe('dispatchNotifications', () => {
  it('routes each message to the notifier of its channel and reports per channel', async () => {
    const email = new MemoryNotifier()
    const slack = new MemoryNotifier()
    const out = await dispatchNotifications({
      messages: messages(),
      notifiers: { 'ops-email': email, slack },
      now: NOW,
    })
    expect(out.map((d) => [d.channel, d.outcome, d.attempts])).toEqual([
      ['ops-email', 'sent', 1],
      ['slack', 'sent', 1],
    ])
    expect(email.sent.map((m) => m.channel)).toEqual(['ops-email'])
    expect(slack.sent.map((m) => m.channel)).toEqual(['slack'])
  })

  it('sends the same decisions once, however often they are delivered', async () => {
    const email = new MemoryNotifier()
    const slack = new MemoryNotifier()
    const dedup = new InMemoryDedupStore()
    const notifiers = new Map([
      ['ops-email', email],
      ['slack', slack],
    ])
    const first = await dispatchNotifications({ messages: messages(), notifiers, dedup, now: NOW })
    const again = await dispatchNotifications({ messages: messages(), notifiers, dedup, now: NOW })
    const twiceInOne = await dispatchNotifications({
      messages: [...messages(), ...messages()],
      notifiers,
      dedup,
      now: NOW,
    })
    expect(summarizeDeliveries(first)).toEqual({ sent: 2, duplicate: 0, failed: 0, 'unknown-channel': 0 })
    expect(summarizeDeliveries(again)).toEqual({ sent: 0, duplicate: 2, failed: 0, 'unknown-channel': 0 })
    expect(summarizeDeliveries(twiceInOne).duplicate).toBe(4)
    expect(email.sent).toHaveLength(1)
    expect(slack.sent).toHaveLength(1)
    expect(dedup.rememberedAt(email.sent[0]!.id)).toBe(NOW)
  })

  it('never lets a failing channel block the others, and remembers only what was sent', async () => {
    const email = new MemoryNotifier()
    email.fail.push(new NotifierError('smtp mail:587: connection refused', { retryable: true, code: 'ESOCKET' }))
    const slack = new MemoryNotifier()
    const dedup = new InMemoryDedupStore()
    const notifiers = { 'ops-email': email, slack }
    const out = await dispatchNotifications({ messages: messages(), notifiers, dedup, now: NOW })
    expect(out.map((d) => [d.channel, d.outcome])).toEqual([
      ['ops-email', 'failed'],
      ['slack', 'sent'],
    ])
    expect(out[0]!.error).toEqual({ message: 'smtp mail:587: connection refused', code: 'ESOCKET', retryable: true })
    // Tried again later: the failed channel goes out now, the other is not sent twice.
    const retry = await dispatchNotifications({ messages: messages(), notifiers, dedup, now: NOW })
    expect(retry.map((d) => [d.channel, d.outcome])).toEqual([
      ['ops-email', 'sent'],
      ['slack', 'duplicate'],
    ])
    expect(slack.sent).toHaveLength(1)
  })

  it('does not wait for a slow channel to serve another one', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => {
      release = r
    })
    const order: string[] = []
    const slow: Notifier = {
      async send(m: NotificationV1): Promise<DeliveryResult> {
        await gate
        order.push(m.channel)
        return { channel: m.channel, messageId: m.id, attempts: 1 }
      },
    }
    const fast: Notifier = {
      async send(m: NotificationV1): Promise<DeliveryResult> {
        order.push(m.channel)
        release()
        return { channel: m.channel, messageId: m.id, attempts: 1 }
      },
    }
    const out = await dispatchNotifications({
      messages: messages(),
      notifiers: { 'ops-email': slow, slack: fast },
      now: NOW,
    })
    expect(order).toEqual(['slack', 'ops-email'])
    expect(out.map((d) => d.outcome)).toEqual(['sent', 'sent'])
  })

  it('keeps order within a channel, and reports a channel nobody configured', async () => {
    const email = new MemoryNotifier()
    const msgs = buildNotifications({ decisions: [fixFailed, escalated], hosts: HOSTS, channels: ['page'] })
    const out = await dispatchNotifications({ messages: msgs, notifiers: { 'ops-email': email }, now: NOW })
    expect(email.sent.map((m) => m.event)).toEqual(['ansai.fix.failed.v1', 'ansai.incident.escalated.v1'])
    expect(out.filter((d) => d.outcome === 'unknown-channel').map((d) => d.channel)).toEqual(['slack', 'slack', 'page'])
    expect(out.find((d) => d.channel === 'page')!.error).toEqual({
      message: "no notification channel named 'page' is configured",
      retryable: false,
    })
  })

  it('treats an untranslated error as retryable, and a broken dedup store as a failed delivery', async () => {
    const boom: Notifier = {
      send: async () => {
        throw new Error('kaputt')
      },
    }
    const brokenStore = {
      seen: async () => {
        throw new Error('database is locked')
      },
      remember: async () => {},
    }
    const [a] = await dispatchNotifications({
      messages: messages().slice(0, 1),
      notifiers: { 'ops-email': boom },
      now: NOW,
    })
    expect(a!.error).toEqual({ message: 'ops-email: kaputt', retryable: true })
    const [b] = await dispatchNotifications({
      messages: messages().slice(0, 1),
      notifiers: { 'ops-email': new MemoryNotifier() },
      dedup: brokenStore,
      now: NOW,
    })
    expect(b!.outcome).toBe('failed')
    expect(b!.error?.message).toBe('ops-email: database is locked')
  })
})
