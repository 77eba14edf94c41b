/**
 * Real notification receivers for end-to-end tests, in the test process on 127.0.0.1:
 *
 * - {@link startSmtpSink}: an SMTP server (the `smtp-server` package) without STARTTLS, with PLAIN auth when a user
 *   is given, keeping every mail it accepts (envelope and raw text); {@link mailHeader} and {@link mailBody} read
 *   them back (RFC 2047 words, quoted-printable and base64 decoded).
 * - {@link startWebhookReceiver}: a node:http server that verifies each request's Standard Webhooks signature with
 *   the `standardwebhooks` package, as a user's endpoint would, and answers 200, or 400 with the reason. It can be
 *   told to answer 500 first (a receiver that is down for a while).
 *
 * Both answer on the test process's event loop: drive the CLI with an asynchronous spawn (see ansai-cli.ts), never
 * spawnSync, which would block them while the child waits for an answer.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'
import { Webhook } from 'standardwebhooks'
import { type NotificationV1, NotificationV1Schema } from '../../shared/contracts/index.ts'

// ---------- SMTP ----------

export interface Mail {
  from: string | undefined
  to: string[]
  raw: string
}

export interface SmtpSink {
  port: number
  mails: Mail[]
  /** Failed AUTH attempts (a wrong password in the config shows here, not as a silent miss). */
  authFailures: number
  close: () => Promise<void>
}

export async function startSmtpSink(opts: { user?: string; pass?: string } = {}): Promise<SmtpSink> {
  const mails: Mail[] = []
  const sink = { port: 0, mails, authFailures: 0 } as SmtpSink
  const server = new SMTPServer({
    logger: false,
    disabledCommands: opts.user ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true,
    authOptional: !opts.user,
    onAuth(auth, _session, cb) {
      if (auth.username === opts.user && auth.password === opts.pass) cb(null, { user: auth.username })
      else {
        sink.authFailures += 1
        cb(new Error('Invalid username or password'))
      }
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        })
        cb()
      })
    },
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  sink.port = (server.server.address() as AddressInfo).port
  sink.close = () => new Promise<void>((resolve) => server.close(() => resolve()))
  return sink
}

/** A header's value, unfolded, with RFC 2047 encoded words (=?UTF-8?Q?…?= / ?B?) decoded. */
export function mailHeader(raw: string, name: string): string | undefined {
  const head = raw.split(/\r?\n\r?\n/)[0]!.replace(/\r?\n[ \t]+/g, ' ')
  const line = head.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))
  if (!line) return undefined
  return line
    .slice(name.length + 1)
    .trim()
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_, _charset: string, enc: string, text: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : Buffer.from(
            text
              .replace(/_/g, ' ')
              .replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
            'latin1',
          ).toString('utf8'),
    )
}

/** The text body of a single-part mail, decoded from quoted-printable or base64, with \n line ends. */
export function mailBody(raw: string): string {
  const [, ...rest] = raw.split(/\r?\n\r?\n/)
  const content = rest.join('\n\n')
  const cte = (mailHeader(raw, 'Content-Transfer-Encoding') ?? '7bit').toLowerCase()
  if (cte === 'base64')
    return Buffer.from(content.replace(/\s+/g, ''), 'base64').toString('utf8').replace(/\r\n/g, '\n')
  if (cte === 'quoted-printable') {
    const bytes = content
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
    return Buffer.from(bytes, 'latin1').toString('utf8').replace(/\r\n/g, '\n')
  }
  return content.replace(/\r\n/g, '\n')
}

// ---------- webhooks ----------

/** A fresh Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`

export interface WebhookRequest {
  path: string
  headers: IncomingHttpHeaders
  body: string
  status: number
  /** `ok`, the verifier's reason for a 400, or why the receiver answered 500. */
  verdict: string
  /** The NotificationV1 of a verified request (status 200). */
  message?: NotificationV1
}

export interface WebhookReceiver {
  /** e.g. http://127.0.0.1:40123/ansai */
  url: string
  /** Every request, in arrival order. */
  requests: WebhookRequest[]
  /** The verified requests' messages (answered 200), in arrival order. */
  accepted: () => NotificationV1[]
  /** Answer the next `n` requests with `status` (default 500) without looking at them. */
  failNext: (n: number, status?: number) => void
  close: () => Promise<void>
}

export async function startWebhookReceiver(secret: string, path = '/ansai'): Promise<WebhookReceiver> {
  const verifier = new Webhook(secret)
  const requests: WebhookRequest[] = []
  let failing: { left: number; status: number } = { left: 0, status: 500 }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const answer = (status: number, verdict: string, message?: NotificationV1): void => {
        requests.push({
          path: req.url ?? '',
          headers: req.headers,
          body,
          status,
          verdict,
          ...(message ? { message } : {}),
        })
        res.writeHead(status, { 'content-type': 'text/plain' }).end(verdict)
      }
      if (failing.left > 0) {
        failing.left -= 1
        return answer(failing.status, 'receiver down (test)')
      }
      if (req.method !== 'POST' || req.url !== path) return answer(404, `no ${req.method} ${req.url}`)
      let payload: unknown
      try {
        payload = verifier.verify(body, req.headers as Record<string, string>)
      } catch (err) {
        return answer(400, (err as Error).message)
      }
      const parsed = NotificationV1Schema.safeParse(payload)
      if (!parsed.success) return answer(422, `not a NotificationV1: ${parsed.error.message}`)
      answer(200, 'ok', parsed.data)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}${path}`,
    requests,
    accepted: () => requests.flatMap((r) => (r.status === 200 && r.message ? [r.message] : [])),
    failNext: (n, status = 500) => {
      failing = { left: n, status }
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
