import nodemailer, { type NodemailerError, type SendMailOptions, type SMTPSentMessageInfo } from 'nodemailer'
import type { NotificationV1 } from '../../contracts/index.ts'
import { type DeliveryResult, type Notifier, NotifierError } from '../../ports/notifier.ts'

export interface SmtpNotifierOptions {
  host: string
  /** Default: 465 with `secure`, else 587. */
  port?: number
  /** Implicit TLS from the first byte (port 465). */
  secure?: boolean
  /** Without `secure`: STARTTLS `required` (default), `opportunistic`, or `never`. */
  starttls?: 'required' | 'opportunistic' | 'never'
  rejectUnauthorized?: boolean
  auth?: { user: string; pass: string }
  from: string
  to: readonly string[]
  /** Connection, greeting and idle-socket timeout. Default 30 s. */
  timeoutMs?: number
  /** Injectable for tests; default: a nodemailer SMTP transport built from the options above. */
  transport?: { sendMail(mail: SendMailOptions): Promise<SMTPSentMessageInfo>; close?(): void }
}

/** Codes that say the configuration or the message is wrong: sending the same message again gets the same no. */
const PERMANENT_CODES = new Set([
  'EAUTH',
  'ENOAUTH',
  'EOAUTH2',
  'EENVELOPE',
  'ECONFIG',
  'EMAXRECIPIENTS',
  'EREQUIRETLS',
  'ETLS',
  'EFILEACCESS',
  'EURLACCESS',
])

/** Translate a nodemailer error: SMTP 4xx and lost connections are retryable; 5xx, auth and TLS errors are not. */
export const toSmtpError = (err: unknown, channel: string, where: string): NotifierError => {
  const e = (err ?? {}) as NodemailerError
  const code = typeof e.code === 'string' ? e.code : 'ESMTP'
  const status = typeof e.responseCode === 'number' ? e.responseCode : undefined
  let retryable: boolean
  if (typeof e.permanent === 'boolean') retryable = !e.permanent
  else if (status !== undefined) retryable = status < 500 || status === 503
  else retryable = !PERMANENT_CODES.has(code)
  const message = err instanceof Error ? err.message : String(err)
  return new NotifierError(`smtp ${where}: ${message}`, {
    retryable,
    channel,
    code,
    ...(status !== undefined ? { status } : {}),
    cause: err,
  })
}

/** Address a domain-less id can live in: Message-ID and References need `local@domain`. */
const MESSAGE_DOMAIN = 'ansai.invalid'

/** Sends each message as a plain-text email; messages of one incident share a thread (References). */
export class SmtpNotifier implements Notifier {
  private readonly transport: NonNullable<SmtpNotifierOptions['transport']>
  private readonly where: string

  private readonly options: SmtpNotifierOptions

  constructor(options: SmtpNotifierOptions) {
    this.options = options
    const secure = options.secure ?? false
    const port = options.port ?? (secure ? 465 : 587)
    const starttls = options.starttls ?? 'required'
    const timeout = options.timeoutMs ?? 30_000
    this.where = `${options.host}:${port}`
    this.transport =
      options.transport ??
      nodemailer.createTransport({
        host: options.host,
        port,
        secure,
        requireTLS: !secure && starttls === 'required',
        ignoreTLS: !secure && starttls === 'never',
        opportunisticTLS: !secure && starttls === 'opportunistic',
        ...(options.auth ? { auth: { user: options.auth.user, pass: options.auth.pass } } : {}),
        tls: { rejectUnauthorized: options.rejectUnauthorized ?? true },
        connectionTimeout: timeout,
        greetingTimeout: timeout,
        socketTimeout: timeout,
        dnsTimeout: timeout,
      })
  }

  async send(message: NotificationV1): Promise<DeliveryResult> {
    try {
      const info = await this.transport.sendMail({
        from: this.options.from,
        to: [...this.options.to],
        subject: message.subject,
        text: message.text,
        messageId: `<${message.id}.${message.channel}@${MESSAGE_DOMAIN}>`,
        references: `<${message.incidentId}@${MESSAGE_DOMAIN}>`,
        headers: {
          'X-ANSAI-Incident': message.incidentId,
          'X-ANSAI-Event': message.event,
          'X-ANSAI-Severity': message.severity,
          'X-ANSAI-Message': message.id,
        },
      })
      if (info.rejected?.length && !info.accepted?.length) {
        throw Object.assign(new Error(`every recipient was refused: ${info.rejected.join(', ')}`), {
          code: 'EENVELOPE',
        })
      }
      return { channel: message.channel, messageId: message.id, attempts: 1, detail: info.response }
    } catch (err) {
      throw toSmtpError(err, message.channel, this.where)
    }
  }

  close(): void {
    this.transport.close?.()
  }
}
