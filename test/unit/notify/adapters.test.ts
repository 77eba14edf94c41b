import { PassThrough } from 'node:stream'
import { Webhook } from 'standardwebhooks'
import { describe, expect, it } from 'vitest'
import { ConsoleNotifier } from '../../../shared/adapters/notify/console.ts'
import { createNotifiers } from '../../../shared/adapters/notify/create.ts'
import { SmtpNotifier, toSmtpError } from '../../../shared/adapters/notify/smtp.ts'
import {
  type FetchLike,
  postWithRetry,
  redactUrl,
  SlackNotifier,
  WebhookNotifier,
} from '../../../shared/adapters/notify/webhook.ts'
import { buildNotifications, parseNotificationChannels } from '../../../shared/app/notify/index.ts'
import { NotificationV1Schema } from '../../../shared/contracts/index.ts'
import { NotifierError } from '../../../shared/ports/notifier.ts'
import { HOSTS, resolved, result, verified } from './fixtures.ts'

const SECRET = `whsec_${Buffer.alloc(32, 1).toString('base64')}`
const [message] = buildNotifications({
  decisions: [verified, resolved],
  results: [{ incidentId: 'inc-disk', result }],
  hosts: HOSTS,
})
const msg = message!

interface Call {
  url: string
  headers: Record<string, string>
  body: string
}

/** A fetch that answers from a script of statuses (or throws for 'network'/'timeout'), and records each call. */
const scriptedFetch = (script: (number | 'network' | 'timeout')[], extraHeaders: Record<string, string> = {}) => {
  const calls: Call[] = []
  const fetch: FetchLike = async (url, init) => {
    calls.push({ url, headers: init.headers as Record<string, string>, body: String(init.body) })
    const step = script.shift() ?? 200
    if (step === 'network') throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } })
    if (step === 'timeout') throw new DOMException('The operation was aborted due to timeout', 'TimeoutError')
    return new Response(step >= 500 ? 'unavailable' : 'ok', { status: step, headers: extraHeaders })
  }
  return { fetch, calls }
}

const noWait = { sleep: async () => {}, jitter: (ms: number) => ms }

describe('webhook notifier (fetch injected)', () => {
  it('posts the NotificationV1 signed per Standard Webhooks', async () => {
    const { fetch, calls } = scriptedFetch([200])
    const at = new Date('2026-11-23T10:05:00Z')
    const n = new WebhookNotifier({ url: 'https://hooks.example.com/ansai', secret: SECRET, fetch, clock: () => at })
    const out = await n.send(msg)
    expect(out).toEqual({ channel: msg.channel, messageId: msg.id, attempts: 1, detail: 'HTTP 200' })
    const [call] = calls
    expect(NotificationV1Schema.parse(JSON.parse(call!.body))).toEqual(msg)
    expect(call!.headers['webhook-id']).toBe(msg.id)
    expect(call!.headers['webhook-timestamp']).toBe(String(at.getTime() / 1000))
    expect(call!.headers['content-type']).toBe('application/json')
    expect(call!.headers['webhook-signature']).toBe(new Webhook(SECRET).sign(msg.id, at, call!.body))
  })

  it('retries 5xx and network errors with exponential backoff, the same id, a fresh signature', async () => {
    const { fetch, calls } = scriptedFetch([503, 'network', 'timeout', 200])
    const waits: number[] = []
    let t = Date.parse('2026-11-23T10:05:00Z')
    const n = new WebhookNotifier({
      url: 'https://hooks.example.com/ansai',
      secret: SECRET,
      fetch,
      clock: () => {
        t += 1000
        return new Date(t)
      },
      sleep: async (ms) => {
        waits.push(ms)
      },
      jitter: (ms) => ms,
      backoff: { baseMs: 100, maxMs: 1000 },
    })
    const out = await n.send(msg)
    expect(out.attempts).toBe(4)
    expect(waits).toEqual([100, 200, 400])
    expect(new Set(calls.map((c) => c.headers['webhook-id']))).toEqual(new Set([msg.id]))
    expect(new Set(calls.map((c) => c.headers['webhook-timestamp'])).size).toBe(4)
  })

  it('gives up after maxAttempts with a retryable error', async () => {
    const { fetch, calls } = scriptedFetch([500, 502, 503])
    const n = new WebhookNotifier({
      url: 'https://h.example.com/x?token=s3cret',
      secret: SECRET,
      fetch,
      maxAttempts: 3,
      ...noWait,
    })
    const err = await n.send(msg).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NotifierError)
    expect(err).toMatchObject({ retryable: true, status: 503, code: 'HTTP_503', attempts: 3 })
    expect((err as Error).message).toBe('webhook https://h.example.com answered HTTP 503: unavailable')
    expect(calls).toHaveLength(3)
  })

  it('does not retry a 4xx', async () => {
    const { fetch, calls } = scriptedFetch([400, 200])
    const n = new WebhookNotifier({ url: 'https://h.example.com/x', secret: SECRET, fetch, ...noWait })
    await expect(n.send(msg)).rejects.toMatchObject({ retryable: false, status: 400, attempts: 1 })
    expect(calls).toHaveLength(1)
  })

  it('retries 429, waiting at least what Retry-After asks (up to the cap)', async () => {
    const { fetch } = scriptedFetch([429, 200], { 'retry-after': '3' })
    const waits: number[] = []
    await postWithRetry(
      { url: 'https://h.example.com', fetch, jitter: (ms) => ms, sleep: async (ms) => void waits.push(ms) },
      'c',
      () => ({ headers: {}, body: '{}' }),
    )
    expect(waits).toEqual([3000])
  })

  it('uses the injected jitter, and caps delays', async () => {
    const { fetch } = scriptedFetch([500, 500, 500, 500, 200])
    const waits: number[] = []
    const seen: [number, number][] = []
    await postWithRetry(
      {
        url: 'https://h.example.com',
        fetch,
        maxAttempts: 5,
        backoff: { baseMs: 1000, maxMs: 3000 },
        jitter: (ms, attempt) => {
          seen.push([ms, attempt])
          return ms / 2
        },
        sleep: async (ms) => void waits.push(ms),
      },
      'c',
      () => ({ headers: {}, body: '{}' }),
    )
    expect(seen).toEqual([
      [1000, 1],
      [2000, 2],
      [3000, 3],
      [3000, 4],
    ])
    expect(waits).toEqual([500, 1000, 1500, 1500])
  })

  it('refuses a secret that is not whsec_ base64, and redacts URLs', () => {
    expect(() => new WebhookNotifier({ url: 'https://h', secret: 'whsec_!!!' })).toThrow(NotifierError)
    expect(redactUrl('https://hooks.slack.com/services/T0/B0/XYZ')).toBe('https://hooks.slack.com')
  })
})

describe('slack notifier', () => {
  it('posts {text, blocks} without a signature', async () => {
    const { fetch, calls } = scriptedFetch([200])
    await new SlackNotifier({ url: 'https://hooks.slack.com/services/T/B/X', fetch }).send(msg)
    const body = JSON.parse(calls[0]!.body)
    expect(Object.keys(body)).toEqual(['text', 'blocks'])
    expect(body.blocks.map((b: { type: string }) => b.type)).toEqual(['header', 'section', 'context'])
    expect(calls[0]!.headers['webhook-signature']).toBeUndefined()
  })
})

describe('smtp notifier', () => {
  it('sends a plain-text mail, threaded per incident', async () => {
    const sent: Record<string, unknown>[] = []
    const n = new SmtpNotifier({
      host: 'mail.example.com',
      from: 'ANSAI <ansai@example.com>',
      to: ['ops@example.com', 'dev@example.com'],
      transport: {
        sendMail: async (mail) => {
          sent.push(mail as Record<string, unknown>)
          return { response: '250 2.0.0 Ok: queued', accepted: ['ops@example.com'], rejected: [] } as never
        },
      },
    })
    const out = await n.send(msg)
    expect(out.detail).toBe('250 2.0.0 Ok: queued')
    expect(sent[0]).toMatchObject({
      from: 'ANSAI <ansai@example.com>',
      to: ['ops@example.com', 'dev@example.com'],
      subject: msg.subject,
      text: msg.text,
      references: '<inc-disk@ansai.invalid>',
      headers: { 'X-ANSAI-Incident': 'inc-disk', 'X-ANSAI-Message': msg.id },
    })
  })

  it('translates errors: transient ones are retryable, refusals are not', () => {
    const mk = (props: Record<string, unknown>) => Object.assign(new Error('x'), props)
    const cases: [Record<string, unknown>, boolean][] = [
      [{ code: 'ECONNECTION' }, true],
      [{ code: 'ETIMEDOUT' }, true],
      [{ code: 'ESOCKET' }, true],
      [{ code: 'EAUTH', responseCode: 535 }, false],
      [{ code: 'EAUTH' }, false],
      [{ code: 'ETLS' }, false],
      [{ code: 'EENVELOPE', responseCode: 550 }, false],
      [{ code: 'EMESSAGE', responseCode: 451 }, true],
      [{ code: 'EMESSAGE', responseCode: 552, permanent: true }, false],
      [{ code: 'EPROTOCOL', responseCode: 421 }, true],
    ]
    for (const [props, retryable] of cases) {
      const cause = mk(props)
      const e = toSmtpError(cause, 'ops-email', 'mail:587')
      expect(e, JSON.stringify(props)).toMatchObject({ retryable, channel: 'ops-email', code: props.code })
      expect(e.cause).toBe(cause)
      expect(e.message).toBe('smtp mail:587: x')
    }
  })

  it('throws a NotifierError when the transport fails', async () => {
    const n = new SmtpNotifier({
      host: 'mail.example.com',
      from: 'a@example.com',
      to: ['b@example.com'],
      transport: {
        sendMail: async () => {
          throw Object.assign(new Error('Invalid login: 535 Authentication failed'), {
            code: 'EAUTH',
            responseCode: 535,
          })
        },
      },
    })
    await expect(n.send(msg)).rejects.toMatchObject({
      name: 'NotifierError',
      retryable: false,
      code: 'EAUTH',
      status: 535,
    })
  })
})

describe('console notifier and the factory', () => {
  it('writes one line per message', async () => {
    const stream = new PassThrough()
    const chunks: string[] = []
    stream.on('data', (c) => chunks.push(String(c)))
    const out = await new ConsoleNotifier(stream).send(msg)
    expect(out.detail).toBe('written')
    expect(chunks.join('')).toBe(
      '2026-11-23 10:05:00 UTC ansai critical  RESOLVED disk-pressure /var on web-1 — recovered 1.2 GiB by disk-cleanup (incident inc-disk)\n',
    )
  })

  it('turns a write error into a NotifierError', async () => {
    const broken = {
      write: (_: string, cb?: (err?: Error | null) => void) => {
        cb?.(new Error('EPIPE'))
        return false
      },
    }
    await expect(new ConsoleNotifier(broken).send(msg)).rejects.toMatchObject({ code: 'EWRITE', retryable: false })
  })

  it('builds one notifier per configured channel', () => {
    const parsed = parseNotificationChannels({
      console: { type: 'console', stream: 'stderr' },
      mail: { type: 'email', host: 'localhost', from: 'a@b.c', to: ['d@e.f'], starttls: 'never' },
      hooks: { type: 'webhook', url: 'http://127.0.0.1:9/x', secret: SECRET },
      slack: { type: 'slack', url: 'https://hooks.slack.com/services/T/B/X' },
    })
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'))
    const notifiers = createNotifiers(parsed.channels, { stdout: process.stdout, stderr: process.stderr })
    expect([...notifiers.keys()]).toEqual(['console', 'mail', 'hooks', 'slack'])
    expect(notifiers.get('console')).toBeInstanceOf(ConsoleNotifier)
    expect(notifiers.get('mail')).toBeInstanceOf(SmtpNotifier)
    expect(notifiers.get('hooks')).toBeInstanceOf(WebhookNotifier)
    expect(notifiers.get('slack')).toBeInstanceOf(SlackNotifier)
  })
})
