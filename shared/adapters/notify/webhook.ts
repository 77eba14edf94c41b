import { setTimeout as delay } from 'node:timers/promises'
import { Webhook } from 'standardwebhooks'
import { toSlackPayload } from '../../app/notify/slack.ts'
import type { NotificationV1 } from '../../contracts/index.ts'
import { type DeliveryResult, type Notifier, NotifierError } from '../../ports/notifier.ts'

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>

export interface HttpPostOptions {
  url: string
  /** Per attempt. Default 10 s. */
  timeoutMs?: number
  /** Attempts in all, the first included. Default 4. */
  maxAttempts?: number
  /** Exponential backoff: baseMs × 2^(attempt−1), capped at maxMs. Defaults 500 ms and 8 s. */
  backoff?: { baseMs?: number; maxMs?: number }
  /** Turns a backoff delay into the delay to wait. Default: a random delay between half and all of it. */
  jitter?: (delayMs: number, attempt: number) => number
  /** Waits between attempts. Default: a timer. */
  sleep?: (ms: number) => Promise<void>
  /** Default: the global fetch. */
  fetch?: FetchLike
  /** Extra headers sent with every request (e.g. an Authorization header the receiver asks for). */
  headers?: Record<string, string>
}

const equalJitter = (ms: number): number => ms / 2 + Math.random() * (ms / 2)

/** The URL for error messages: scheme, host and port only (webhook paths and queries often carry secrets). */
export const redactUrl = (url: string): string => (URL.canParse(url) ? new URL(url).origin : '<invalid url>')

/** 5xx, 429 (too many requests) and 408 (request timeout) are worth another try; other statuses are not. */
const retryableStatus = (status: number): boolean => status >= 500 || status === 429 || status === 408

const retryAfterMs = (res: Response): number | undefined => {
  const h = res.headers.get('retry-after')
  if (!h) return undefined
  const s = Number(h)
  return Number.isFinite(s) && s >= 0 ? s * 1000 : undefined
}

const networkCode = (err: unknown): string => {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'TIMEOUT'
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined
  return typeof cause?.code === 'string' ? cause.code : 'ENETWORK'
}

/**
 * POST a body with retries: network errors, timeouts, 5xx, 429 and 408 are retried with exponential backoff up to
 * `maxAttempts`; any other status (4xx, 3xx) fails at once. `request(attempt)` builds the headers and body of each
 * attempt (a signature carries a fresh timestamp). Throws a NotifierError when the message did not go through.
 */
export const postWithRetry = async (
  options: HttpPostOptions,
  channel: string,
  request: (attempt: number) => { headers: Record<string, string>; body: string },
): Promise<{ attempts: number; status: number }> => {
  const max = Math.max(1, options.maxAttempts ?? 4)
  const timeoutMs = options.timeoutMs ?? 10_000
  const baseMs = options.backoff?.baseMs ?? 500
  const maxMs = options.backoff?.maxMs ?? 8_000
  const jitter = options.jitter ?? equalJitter
  const sleep = options.sleep ?? ((ms: number) => delay(ms))
  const doFetch: FetchLike = options.fetch ?? ((url, init) => fetch(url, init))
  const where = redactUrl(options.url)
  let last: NotifierError | undefined
  for (let attempt = 1; attempt <= max; attempt++) {
    const { headers, body } = request(attempt)
    let wait: number | undefined
    try {
      const res = await doFetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'ansai', ...options.headers, ...headers },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      })
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel().catch(() => {})
        return { attempts: attempt, status: res.status }
      }
      const answer = (await res.text().catch(() => '')).slice(0, 200).replace(/\s+/g, ' ').trim()
      const detail = `${where} answered HTTP ${res.status}${answer ? `: ${answer}` : ''}`
      if (!retryableStatus(res.status)) {
        throw new NotifierError(`webhook ${detail}`, {
          retryable: false,
          channel,
          code: `HTTP_${res.status}`,
          status: res.status,
          attempts: attempt,
        })
      }
      last = new NotifierError(`webhook ${detail}`, {
        retryable: true,
        channel,
        code: `HTTP_${res.status}`,
        status: res.status,
        attempts: attempt,
      })
      wait = retryAfterMs(res)
    } catch (err) {
      if (err instanceof NotifierError) throw err
      const code = networkCode(err)
      const why = code === 'TIMEOUT' ? `no answer within ${timeoutMs} ms` : (err as Error).message
      last = new NotifierError(`webhook ${where}: ${why}`, {
        retryable: true,
        channel,
        code,
        attempts: attempt,
        cause: err,
      })
    }
    if (attempt < max) {
      const backoff = Math.min(maxMs, baseMs * 2 ** (attempt - 1))
      await sleep(Math.min(maxMs, Math.max(wait ?? 0, jitter(backoff, attempt))))
    }
  }
  throw last!
}

export interface WebhookNotifierOptions extends HttpPostOptions {
  /** The Standard Webhooks secret: `whsec_` and base64. */
  secret: string
  /** The signing time of each attempt. Default: the clock. */
  clock?: () => Date
}

/**
 * Generic webhook: POSTs the NotificationV1 as JSON, signed per the Standard Webhooks specification
 * (`webhook-id` = the message id, the same on every retry so receivers can deduplicate; `webhook-timestamp` and
 * `webhook-signature` fresh on each attempt, so a late retry still fits in the receiver's replay window).
 */
export class WebhookNotifier implements Notifier {
  private readonly signer: Webhook
  private readonly clock: () => Date

  private readonly options: WebhookNotifierOptions

  constructor(options: WebhookNotifierOptions) {
    this.options = options
    try {
      this.signer = new Webhook(options.secret)
    } catch (err) {
      throw new NotifierError('webhook: the secret is not a Standard Webhooks secret (whsec_ and base64)', {
        retryable: false,
        code: 'ECONFIG',
        cause: err,
      })
    }
    this.clock = options.clock ?? (() => new Date())
  }

  async send(message: NotificationV1): Promise<DeliveryResult> {
    const body = JSON.stringify(message)
    const { attempts, status } = await postWithRetry(this.options, message.channel, () => {
      const at = this.clock()
      return {
        body,
        headers: {
          'webhook-id': message.id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': this.signer.sign(message.id, at, body),
        },
      }
    })
    return { channel: message.channel, messageId: message.id, attempts, detail: `HTTP ${status}` }
  }
}

/** Slack-compatible incoming webhook: `{text, blocks}`, no signature (the URL is the secret). */
export class SlackNotifier implements Notifier {
  private readonly options: HttpPostOptions

  constructor(options: HttpPostOptions) {
    this.options = options
  }

  async send(message: NotificationV1): Promise<DeliveryResult> {
    const body = JSON.stringify(toSlackPayload(message))
    const { attempts, status } = await postWithRetry(this.options, message.channel, () => ({ body, headers: {} }))
    return { channel: message.channel, messageId: message.id, attempts, detail: `HTTP ${status}` }
  }
}
