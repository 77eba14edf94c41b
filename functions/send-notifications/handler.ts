import { composeSendNotifications, observabilityFor } from '../platform/compose.ts'
import { createSendNotificationsHandler } from './app.ts'

/** The Lambda entry: dependencies composed once, at cold start (a bad environment fails here, loudly). */
export const handler = createSendNotificationsHandler(
  composeSendNotifications(),
  observabilityFor('send-notifications'),
)
