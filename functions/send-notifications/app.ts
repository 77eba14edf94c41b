import {
  type DeliverDeps,
  deliverNotification,
  parseNotification,
} from '../../shared/app/fleet/deliver-notification.ts'
import { countActivity, countProblem, type Observability, withStandardStack } from '../platform/observability.ts'
import { sqsBatch } from '../platform/sqs.ts'

/** `send-notifications`: notifications queue → SES email, signed webhooks, Slack; each message once. */
export const createSendNotificationsHandler = (deps: DeliverDeps, obs: Observability) =>
  withStandardStack(
    obs,
    sqsBatch(obs, async (r) => {
      const d = await deliverNotification(deps, parseNotification(r.body))
      obs.logger.info('notification', { sqsMessageId: r.messageId, ...d })
      if (d.outcome === 'sent') countActivity(obs, 'NotificationsSent')
      else if (d.outcome === 'duplicate') countActivity(obs, 'NotificationsDuplicate')
      else if (d.outcome === 'superseded') countActivity(obs, 'NotificationsSuperseded')
      else countProblem(obs, 'NotificationsNotSent')
    }),
  )
