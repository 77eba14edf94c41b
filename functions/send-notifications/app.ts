import {
  type DeliverDeps,
  deliverNotification,
  parseNotification,
} from '../../shared/app/fleet/deliver-notification.ts'
import { type Observability, withStandardStack } from '../platform/observability.ts'
import { sqsBatch } from '../platform/sqs.ts'

/** `send-notifications`: notifications queue → SES email, signed webhooks, Slack; each message once. */
export const createSendNotificationsHandler = (deps: DeliverDeps, obs: Observability) =>
  withStandardStack(
    obs,
    sqsBatch(obs, async (r) => {
      const d = await deliverNotification(deps, parseNotification(r.body))
      obs.logger.info('notification', { sqsMessageId: r.messageId, ...d })
      obs.metrics.addMetric(d.outcome === 'sent' ? 'NotificationsSent' : 'NotificationsNotSent', 'Count', 1)
    }),
  )
