import { type MessageHeader, type SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2'
import type { NotificationV1 } from '../../shared/contracts/index.ts'
import { type DeliveryResult, type Notifier, NotifierError } from '../../shared/ports/notifier.ts'
import { classifyAwsError } from './aws-errors.ts'

export interface SesNotifierOptions {
  client: SESv2Client
  /** A verified SES identity, optionally with a display name: `ANSAI <ansai@example.com>`. */
  from: string
  to: readonly string[]
  configurationSet?: string
}

/** Refusals: sending the same message again gets the same answer until someone changes the account or config. */
const SES_PERMANENT = new Set([
  'MessageRejected',
  'MailFromDomainNotVerifiedException',
  'AccountSuspendedException',
  'SendingPausedException',
  'BadRequestException',
  'NotFoundException',
  'LimitExceededException',
  'AccessDeniedException',
])
/** SES v2 says "slow down" with TooManyRequestsException (HTTP 429). */
const SES_RETRYABLE = new Set(['TooManyRequestsException'])

/** Where the References header points: the same domain-less address the SMTP notifier threads by. */
const MESSAGE_DOMAIN = 'ansai.invalid'

/**
 * An address as SES takes it: a display name with characters outside ASCII goes as an RFC 2047 encoded word
 * (`=?UTF-8?B?…?=`), which SES requires; plain addresses and ASCII names are left as they are.
 */
export const toSesAddress = (address: string): string => {
  const m = /^\s*(.*?)\s*<([^<>]+)>\s*$/.exec(address)
  if (!m) return address.trim()
  const name = m[1]!.replace(/^"(.*)"$/, '$1')
  if (/^[\x20-\x7e]*$/.test(name)) return address.trim()
  return `=?UTF-8?B?${Buffer.from(name, 'utf8').toString('base64')}?= <${m[2]}>`
}

/** SES takes header values of printable ASCII, at most 870 characters. */
const header = (name: string, value: string): MessageHeader[] =>
  /^[ -~]{1,870}$/.test(value) ? [{ Name: name, Value: value }] : []

/**
 * The `email` channel of the fleet: SES v2 SendEmail with Simple content, the same subject and plain-text body as
 * the SMTP notifier (both come from the message, built by shared/app/notify), and the same X-ANSAI-* headers and
 * References thread. SES sets its own Message-ID.
 */
export class SesNotifier implements Notifier {
  private readonly options: SesNotifierOptions

  constructor(options: SesNotifierOptions) {
    this.options = options
  }

  async send(message: NotificationV1): Promise<DeliveryResult> {
    const { client, from, to, configurationSet } = this.options
    try {
      const out = await client.send(
        new SendEmailCommand({
          FromEmailAddress: toSesAddress(from),
          Destination: { ToAddresses: to.map(toSesAddress) },
          Content: {
            Simple: {
              Subject: { Data: message.subject, Charset: 'UTF-8' },
              Body: { Text: { Data: message.text, Charset: 'UTF-8' } },
              Headers: [
                ...header('References', `<${message.incidentId}@${MESSAGE_DOMAIN}>`),
                ...header('X-ANSAI-Incident', message.incidentId),
                ...header('X-ANSAI-Event', message.event),
                ...header('X-ANSAI-Severity', message.severity),
                ...header('X-ANSAI-Message', message.id),
              ],
            },
          },
          ...(configurationSet ? { ConfigurationSetName: configurationSet } : {}),
        }),
      )
      return {
        channel: message.channel,
        messageId: message.id,
        attempts: out.$metadata.attempts ?? 1,
        detail: `SES message ${out.MessageId ?? '(no id)'}`,
      }
    } catch (err) {
      const info = classifyAwsError(err, { permanent: SES_PERMANENT, retryable: SES_RETRYABLE })
      const attempts = (err as { $metadata?: { attempts?: number } } | undefined)?.$metadata?.attempts
      throw new NotifierError(`ses SendEmail from ${from}: ${info.code}: ${info.message}`, {
        retryable: info.retryable,
        channel: message.channel,
        code: info.code,
        ...(info.status !== undefined ? { status: info.status } : {}),
        ...(attempts !== undefined ? { attempts } : {}),
        cause: err,
      })
    }
  }
}
