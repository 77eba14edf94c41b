import type { NotificationV1 } from '../../contracts/index.ts'
import { type DedupStore, type Notifier, NotifierError } from '../../ports/notifier.ts'

export type DeliveryOutcome = 'sent' | 'duplicate' | 'failed' | 'unknown-channel'

/** What happened to one message on its channel. */
export interface ChannelDelivery {
  channel: string
  messageId: string
  incidentId: string
  outcome: DeliveryOutcome
  attempts: number
  detail?: string
  error?: { message: string; code?: string; status?: number; retryable: boolean }
}

export interface DispatchInput {
  messages: readonly NotificationV1[]
  /** Channel name → notifier, built by the shell from the config. */
  notifiers: ReadonlyMap<string, Notifier> | Readonly<Record<string, Notifier>>
  /** Sent messages are remembered here and never sent twice; without it every message is sent. */
  dedup?: DedupStore
  /** When the delivery happens (recorded with each sent id): epoch ms or an ISO timestamp. */
  now: number | string
}

const lookup = (notifiers: DispatchInput['notifiers'], name: string): Notifier | undefined =>
  notifiers instanceof Map
    ? notifiers.get(name)
    : Object.hasOwn(notifiers, name)
      ? (notifiers as Record<string, Notifier>)[name]
      : undefined

const errorOf = (err: unknown, channel: string): NonNullable<ChannelDelivery['error']> => {
  if (err instanceof NotifierError) {
    return {
      message: err.message,
      retryable: err.retryable,
      ...(err.code ? { code: err.code } : {}),
      ...(err.status !== undefined ? { status: err.status } : {}),
    }
  }
  // An error the notifier did not translate: assume it is transient, so the message is tried again later.
  return { message: `${channel}: ${err instanceof Error ? err.message : String(err)}`, retryable: true }
}

const deliverOne = async (
  m: NotificationV1,
  notifier: Notifier,
  dedup: DedupStore | undefined,
  at: string,
): Promise<ChannelDelivery> => {
  const base = { channel: m.channel, messageId: m.id, incidentId: m.incidentId }
  try {
    if (dedup && (await dedup.seen(m.id))) return { ...base, outcome: 'duplicate', attempts: 0 }
  } catch (err) {
    return { ...base, outcome: 'failed', attempts: 0, error: errorOf(err, m.channel) }
  }
  let sent: Awaited<ReturnType<Notifier['send']>>
  try {
    sent = await notifier.send(m)
  } catch (err) {
    const attempts = err instanceof NotifierError && err.attempts !== undefined ? err.attempts : 1
    return { ...base, outcome: 'failed', attempts, error: errorOf(err, m.channel) }
  }
  const delivery: ChannelDelivery = {
    ...base,
    outcome: 'sent',
    attempts: sent.attempts,
    ...(sent.detail ? { detail: sent.detail } : {}),
  }
  try {
    await dedup?.remember(m.id, at)
  } catch (err) {
    // Sent, but it may be sent again: say so, without calling the delivery failed.
    delivery.detail = `${delivery.detail ? `${delivery.detail}; ` : ''}not remembered: ${errorOf(err, m.channel).message}`
  }
  return delivery
}

/**
 * Send each message to the notifier of its channel. Channels run side by side and one failing or slow channel
 * never blocks the others; within a channel messages go out in order (opened before resolved). A message already
 * sent (per `dedup`) is skipped, and only a sent message is remembered, so a failed one can be tried again.
 * Returns one delivery per message, in the order of `messages`; a failed delivery is a result, never a throw.
 */
export const dispatchNotifications = async (input: DispatchInput): Promise<ChannelDelivery[]> => {
  const at = new Date(typeof input.now === 'number' ? input.now : Date.parse(input.now)).toISOString()
  const results = new Array<ChannelDelivery>(input.messages.length)
  const queues = new Map<string, number[]>()
  input.messages.forEach((m, i) => {
    const q = queues.get(m.channel) ?? []
    q.push(i)
    queues.set(m.channel, q)
  })
  await Promise.all(
    [...queues].map(async ([channel, indexes]) => {
      const notifier = lookup(input.notifiers, channel)
      for (const i of indexes) {
        const m = input.messages[i]!
        results[i] = notifier
          ? await deliverOne(m, notifier, input.dedup, at)
          : {
              channel,
              messageId: m.id,
              incidentId: m.incidentId,
              outcome: 'unknown-channel',
              attempts: 0,
              error: { message: `no notification channel named '${channel}' is configured`, retryable: false },
            }
      }
    }),
  )
  return results
}

/** Counts per outcome, for a log line or `ansai status`. */
export const summarizeDeliveries = (deliveries: readonly ChannelDelivery[]): Record<DeliveryOutcome, number> => {
  const out: Record<DeliveryOutcome, number> = { sent: 0, duplicate: 0, failed: 0, 'unknown-channel': 0 }
  for (const d of deliveries) out[d.outcome] += 1
  return out
}
