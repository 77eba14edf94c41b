/**
 * Notifications against real servers in the test process: an SMTP server (smtp-server) on 127.0.0.1 receives
 * the email, and a node:http receiver verifies the Standard Webhooks signature with the `standardwebhooks`
 * package, as a user's endpoint would. The notifiers are built the way the shell builds them: config parsed by
 * the zod schema, `env:` secrets resolved, createNotifiers.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'
import { Webhook } from 'standardwebhooks'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createNotifiers } from '../../shared/adapters/notify/create.ts'
import { InMemoryDedupStore } from '../../shared/adapters/notify/memory.ts'
import { WebhookNotifier } from '../../shared/adapters/notify/webhook.ts'
import {
  buildNotifications,
  dispatchNotifications,
  parseNotificationChannels,
  resolveChannelSecrets,
} from '../../shared/app/notify/index.ts'
import { type NotificationV1, NotificationV1Schema } from '../../shared/contracts/index.ts'
import type { Notifier } from '../../shared/ports/notifier.ts'
import { mailBody, mailHeader } from '../support/notify-receivers.ts'
import { fix, HOSTS, opened, resolved, result, started, verified } from '../unit/notify/fixtures.ts'

const SECRET = `whsec_${Buffer.from('ansai-integration-test-secret-32b').toString('base64')}`
const SMTP_USER = 'ansai'
const SMTP_PASS = 'correct horse battery staple'

// ---------- a real SMTP server ----------

interface Mail {
  from: string | undefined
  to: string[]
  raw: string
}

const mails: Mail[] = []
let smtp: SMTPServer
let smtpPort = 0

const header = mailHeader
const body = mailBody

// ---------- a real webhook receiver ----------

interface Received {
  headers: IncomingHttpHeaders
  body: string
  status: number
  verdict: string
}

const received: Received[] = []
/** Statuses to answer before verifying (e.g. [503] makes the first request fail). */
let failFirst: number[] = []
/** Requests to leave unanswered (to exercise the client timeout). */
let hang = 0
let http: Server
let base = ''
const receiver = new Webhook(SECRET)

const accepted = (): Received[] => received.filter((r) => r.status === 200)

const listen = (server: Server): Promise<string> =>
  new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  )

beforeAll(async () => {
  smtp = new SMTPServer({
    logger: false,
    disabledCommands: ['STARTTLS'],
    authMethods: ['PLAIN'],
    allowInsecureAuth: true,
    onAuth(auth, _session, cb) {
      if (auth.username === SMTP_USER && auth.password === SMTP_PASS) cb(null, { user: auth.username })
      else cb(new Error('Invalid username or password'))
    },
    onRcptTo(address, _session, cb) {
      if (address.address.endsWith('@refused.example')) {
        cb(Object.assign(new Error('mailbox unavailable'), { responseCode: 550 }))
      } else cb()
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
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()))
  smtpPort = (smtp.server.address() as AddressInfo).port

  http = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (hang > 0) {
        hang -= 1
        return // never answers
      }
      const text = Buffer.concat(chunks).toString('utf8')
      const answer = (status: number, verdict: string): void => {
        received.push({ headers: req.headers, body: text, status, verdict })
        res.writeHead(status, { 'content-type': 'text/plain' }).end(verdict)
      }
      const early = failFirst.shift()
      if (early) return answer(early, 'try again later')
      try {
        receiver.verify(text, req.headers as Record<string, string>)
      } catch (err) {
        return answer(400, (err as Error).message)
      }
      answer(200, 'ok')
    })
  })
  base = await listen(http)
})

afterAll(async () => {
  await new Promise<void>((resolve) => smtp.close(() => resolve()))
  http.closeAllConnections()
  await new Promise<void>((resolve) => http.close(() => resolve()))
})

beforeEach(() => {
  mails.length = 0
  received.length = 0
  failFirst = []
  hang = 0
})

/** The notifiers as the shell builds them, from config with env: secrets. */
const notifiersFromConfig = (): Map<string, Notifier> => {
  const parsed = parseNotificationChannels({
    'ops-email': {
      type: 'email',
      host: '127.0.0.1',
      port: smtpPort,
      starttls: 'never',
      auth: { user: SMTP_USER, pass: 'env:TEST_SMTP_PASS' },
      from: 'ANSAI <ansai@web-1.example>',
      to: ['ops@example.com', 'oncall@example.com'],
      timeoutMs: 5000,
    },
    hooks: { type: 'webhook', url: `${base}/ansai`, secret: 'env:TEST_WEBHOOK_SECRET', timeoutMs: 2000 },
    slack: { type: 'slack', url: `${base.replace('http:', 'https:')}/slack`, maxAttempts: 1 },
  })
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'))
  const resolved = resolveChannelSecrets(parsed.channels, {
    TEST_SMTP_PASS: SMTP_PASS,
    TEST_WEBHOOK_SECRET: SECRET,
  })
  if (!resolved.ok) throw new Error(resolved.errors.join('\n'))
  return createNotifiers(resolved.channels, { stdout: process.stdout, stderr: process.stderr, jitter: () => 0 })
}

const decisionsOf = (channels: string[]) => ({
  decisions: [verified, resolved].map((d) => ({ ...d, channels })),
  results: [{ incidentId: 'inc-disk', result }],
  hosts: HOSTS,
})

describe('email over a real SMTP server', () => {
  it('delivers the RESOLVED report with From, To, Subject and the bytes recovered', async () => {
    const notifiers = notifiersFromConfig()
    const messages = buildNotifications(decisionsOf(['ops-email']))
    const out = await dispatchNotifications({ messages, notifiers, now: '2026-11-23T10:05:01Z' })
    expect(out.map((d) => [d.channel, d.outcome, d.error])).toEqual([['ops-email', 'sent', undefined]])
    expect(mails).toHaveLength(1)
    const mail = mails[0]!
    expect(mail.from).toBe('ansai@web-1.example')
    expect(mail.to).toEqual(['ops@example.com', 'oncall@example.com'])
    expect(header(mail.raw, 'From')).toBe('ANSAI <ansai@web-1.example>')
    expect(header(mail.raw, 'To')).toBe('ops@example.com, oncall@example.com')
    expect(header(mail.raw, 'Subject')).toBe(
      '[ANSAI] RESOLVED disk-pressure /var on web-1 — recovered 1.2 GiB by disk-cleanup',
    )
    expect(header(mail.raw, 'X-ANSAI-Incident')).toBe('inc-disk')
    expect(header(mail.raw, 'Message-ID')).toBe(`<${messages[0]!.id}.ops-email@ansai.invalid>`)
    const text = body(mail.raw)
    expect(text).toContain('Space recovered: 1.2 GiB\n    logs  1 GiB\n    temp  205 MiB\n')
    expect(text).toContain('First files (3 of 212):\n    /var/log/app/app.log.3.gz\n')
    expect(text).toContain('Incident: inc-disk\n')
  })

  it('sends the same decisions once, however often they are dispatched', async () => {
    const notifiers = notifiersFromConfig()
    const dedup = new InMemoryDedupStore()
    const cycle = {
      decisions: [opened, fix, started].map((d) => (d.type === 'notify' ? { ...d, channels: ['ops-email'] } : d)),
      results: [result],
      hosts: HOSTS,
    }
    const first = await dispatchNotifications({
      messages: buildNotifications(cycle),
      notifiers,
      dedup,
      now: '2026-11-23T10:00:30Z',
    })
    const again = await dispatchNotifications({
      messages: buildNotifications(cycle),
      notifiers,
      dedup,
      now: '2026-11-23T10:01:30Z',
    })
    expect(first.map((d) => d.outcome)).toEqual(['sent'])
    expect(again.map((d) => d.outcome)).toEqual(['duplicate'])
    expect(mails).toHaveLength(1)
    expect(header(mails[0]!.raw, 'Subject')).toBe(
      '[ANSAI] CRITICAL disk-pressure /var on web-1 — recovered 1.2 GiB by disk-cleanup',
    )
  })

  it('turns SMTP refusals and a dead server into typed errors, retryable or not', async () => {
    const [message] = buildNotifications(decisionsOf(['mail']))
    const make = (over: Record<string, unknown>) => {
      const parsed = parseNotificationChannels({
        mail: {
          type: 'email',
          host: '127.0.0.1',
          port: smtpPort,
          starttls: 'never',
          from: 'a@x.example',
          to: ['b@x.example'],
          timeoutMs: 2000,
          ...over,
        },
      })
      if (!parsed.ok) throw new Error(parsed.errors.join('\n'))
      return createNotifiers(parsed.channels, { stdout: process.stdout, stderr: process.stderr }).get('mail')!
    }
    await expect(make({ auth: { user: SMTP_USER, pass: 'wrong' } }).send(message!)).rejects.toMatchObject({
      name: 'NotifierError',
      code: 'EAUTH',
      retryable: false,
    })
    await expect(
      make({ auth: { user: SMTP_USER, pass: SMTP_PASS }, to: ['x@refused.example'] }).send(message!),
    ).rejects.toMatchObject({
      code: 'EENVELOPE',
      status: 550,
      retryable: false,
    })
    await expect(
      make({ starttls: 'required', auth: { user: SMTP_USER, pass: SMTP_PASS } }).send(message!),
    ).rejects.toMatchObject({
      retryable: false,
    })
    // A port nobody listens on: the connection fails, worth another try later.
    const closed = createServer()
    const closedUrl = await listen(closed)
    await new Promise<void>((r) => closed.close(() => r()))
    await expect(make({ port: Number(new URL(closedUrl).port) }).send(message!)).rejects.toMatchObject({
      retryable: true,
    })
    expect(mails).toHaveLength(0)
  })
})

describe('signed webhooks to a real HTTP receiver', () => {
  it('the receiver verifies the Standard Webhooks signature and gets the NotificationV1', async () => {
    const notifiers = notifiersFromConfig()
    const messages = buildNotifications(decisionsOf(['hooks']))
    const out = await dispatchNotifications({ messages, notifiers, now: '2026-11-23T10:05:01Z' })
    expect(out.map((d) => [d.outcome, d.attempts, d.detail])).toEqual([['sent', 1, 'HTTP 200']])
    expect(accepted()).toHaveLength(1)
    const got = accepted()[0]!
    expect(got.headers['webhook-id']).toBe(messages[0]!.id)
    const parsed: NotificationV1 = NotificationV1Schema.parse(JSON.parse(got.body))
    expect(parsed).toEqual(messages[0])
    expect(parsed.evidence.bytesRecovered).toBe(1_288_490_189)
  })

  it('the receiver rejects a tampered body', async () => {
    const [message] = buildNotifications(decisionsOf(['hooks']))
    await notifiersFromConfig().get('hooks')!.send(message!)
    const genuine = accepted()[0]!
    const tampered = genuine.body.replace('"severity":"critical"', '"severity":"ok"')
    expect(tampered).not.toBe(genuine.body)
    const res = await fetch(`${base}/ansai`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': String(genuine.headers['webhook-id']),
        'webhook-timestamp': String(genuine.headers['webhook-timestamp']),
        'webhook-signature': String(genuine.headers['webhook-signature']),
      },
      body: tampered,
    })
    expect(res.status).toBe(400)
    expect(await res.text()).toBe('No matching signature found')
  })

  it('the receiver rejects an old timestamp (replay window), and the notifier does not retry a 4xx', async () => {
    const [message] = buildNotifications(decisionsOf(['hooks']))
    const stale = new WebhookNotifier({
      url: `${base}/ansai`,
      secret: SECRET,
      clock: () => new Date(Date.now() - 10 * 60_000),
      jitter: () => 0,
    })
    await expect(stale.send(message!)).rejects.toMatchObject({
      name: 'NotifierError',
      status: 400,
      retryable: false,
      attempts: 1,
    })
    expect(received.map((r) => [r.status, r.verdict])).toEqual([[400, 'Message timestamp too old']])
  })

  it('a 503 then a 200: retried, exactly one accepted delivery', async () => {
    failFirst = [503]
    const notifiers = notifiersFromConfig()
    const messages = buildNotifications(decisionsOf(['hooks']))
    const out = await dispatchNotifications({ messages, notifiers, now: '2026-11-23T10:05:01Z' })
    expect(out.map((d) => [d.outcome, d.attempts])).toEqual([['sent', 2]])
    expect(received.map((r) => r.status)).toEqual([503, 200])
    expect(accepted()).toHaveLength(1)
    expect(new Set(received.map((r) => r.headers['webhook-id']))).toEqual(new Set([messages[0]!.id]))
  })

  it('gives up on a receiver that does not answer in time, with a retryable timeout', async () => {
    hang = 2
    const [message] = buildNotifications(decisionsOf(['hooks']))
    const n = new WebhookNotifier({
      url: `${base}/ansai`,
      secret: SECRET,
      timeoutMs: 300,
      maxAttempts: 2,
      jitter: () => 0,
    })
    await expect(n.send(message!)).rejects.toMatchObject({ code: 'TIMEOUT', retryable: true, attempts: 2 })
  })

  it('one failing channel does not block the others', async () => {
    const notifiers = notifiersFromConfig()
    // The slack channel points at https:// on a plain-HTTP port: it fails; email and the webhook still go out.
    const messages = buildNotifications(decisionsOf(['slack', 'ops-email', 'hooks']))
    const out = await dispatchNotifications({ messages, notifiers, now: '2026-11-23T10:05:01Z' })
    expect(out.map((d) => [d.channel, d.outcome])).toEqual([
      ['slack', 'failed'],
      ['ops-email', 'sent'],
      ['hooks', 'sent'],
    ])
    expect(out[0]!.error?.retryable).toBe(true)
    expect(mails).toHaveLength(1)
    expect(accepted()).toHaveLength(1)
  })
})
