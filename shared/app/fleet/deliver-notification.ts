import { type NotificationV1, NotificationV1Schema } from '../../contracts/index.ts'
import { formatIssues } from '../../contracts/issue-path.ts'
import type { DedupStore, Notifier } from '../../ports/notifier.ts'
import type { StateStore } from '../../ports/store.ts'
import { type ChannelDelivery, dispatchNotifications } from '../notify/dispatch.ts'

/** What happened to one message: as on any channel, or `superseded` (a held message the incident outran). */
export type FleetDelivery = ChannelDelivery | (Omit<ChannelDelivery, 'outcome'> & { outcome: 'superseded' })

export interface DeliverDeps {
  notifiers: ReadonlyMap<string, Notifier>
  store: StateStore & DedupStore
  clock: () => Date
  /** The fleet holds "fix started" messages this long (seconds); 0 or absent: they are never held nor dropped. */
  holdFixStartedSeconds?: number
}

/** A message on the notifications queue that can never be delivered (not JSON, not a notification): to the DLQ. */
export class InvalidNotificationError extends Error {
  override readonly name = 'InvalidNotificationError'
}

/** A delivery that failed but may go through later: the queue gives the message back after its visibility timeout. */
export class RetryableDeliveryError extends Error {
  override readonly name = 'RetryableDeliveryError'
}

export const parseNotification = (body: string): NotificationV1 => {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch (err) {
    throw new InvalidNotificationError(`notification is not JSON: ${(err as Error).message}`)
  }
  const parsed = NotificationV1Schema.safeParse(json)
  if (!parsed.success) {
    throw new InvalidNotificationError(
      `notification does not match ansai.notification.v1: ${formatIssues('notification', parsed.error.issues)}`,
    )
  }
  return parsed.data
}

/**
 * `send-notifications`: deliver one message on its channel, once (the dedup store remembers sent ids, so a
 * redelivered message is not sent again). A transient failure throws {@link RetryableDeliveryError} so the queue
 * retries it (and after its maxReceiveCount, the DLQ keeps it); a refusal that can never go through, or a channel
 * that is not configured, is audited and dropped.
 */
export const deliverNotification = async (deps: DeliverDeps, message: NotificationV1): Promise<FleetDelivery> => {
  const now = deps.clock().toISOString()
  // A held "fix started" whose incident resolved meanwhile: the resolution message already told it all.
  if (message.event === 'ansai.fix.started.v1' && (deps.holdFixStartedSeconds ?? 0) > 0) {
    const incident = await deps.store.getIncident(message.incidentId)
    if (incident?.status === 'resolved') {
      const d: FleetDelivery = {
        channel: message.channel,
        messageId: message.id,
        incidentId: message.incidentId,
        outcome: 'superseded',
        attempts: 0,
        detail: `incident ${message.incidentId} resolved before this message was due: its resolution message says it`,
      }
      await deps.store.appendAudit([
        {
          kind: 'notification',
          at: now,
          hostId: message.host,
          incidentId: message.incidentId,
          key: message.id,
          id: `notification:${message.id}:superseded`,
          data: { channel: d.channel, outcome: d.outcome, detail: d.detail },
        },
      ])
      return d
    }
  }
  const [delivery] = await dispatchNotifications({
    messages: [message],
    notifiers: deps.notifiers,
    dedup: deps.store,
    now,
  })
  const d = delivery!
  if (d.outcome === 'failed' && d.error?.retryable !== false) {
    throw new RetryableDeliveryError(`${message.channel}: ${d.error?.message ?? 'delivery failed'}`)
  }
  await deps.store.appendAudit([
    {
      kind: d.outcome === 'sent' || d.outcome === 'duplicate' ? 'notification' : 'error',
      at: now,
      hostId: message.host,
      incidentId: message.incidentId,
      key: message.id,
      id: `notification:${message.id}:${d.outcome}`,
      data: { channel: d.channel, outcome: d.outcome, attempts: d.attempts, detail: d.detail, error: d.error },
    },
  ])
  return d
}
