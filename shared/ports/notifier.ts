import type { NotificationV1 } from '../contracts/index.ts'

/** What a channel did with one message. A failure is never a result: it is a thrown {@link NotifierError}. */
export interface DeliveryResult {
  channel: string
  messageId: string
  /** Transport attempts it took (1 when the first one went through). */
  attempts: number
  /** What the other side said, for the audit trail: an SMTP response, an HTTP status, `written`. */
  detail?: string
}

/** One port per way of telling people: console, SMTP, signed webhooks, Slack, SES in the fleet. */
export interface Notifier {
  send(message: NotificationV1): Promise<DeliveryResult>
}

export interface NotifierErrorOptions {
  /** True when the same message may go through later (network, timeout, 5xx, SMTP 4xx); false for a refusal. */
  retryable: boolean
  channel?: string
  /** A short machine code: `ECONNECTION`, `EAUTH`, `HTTP_503`, `TIMEOUT`, ... */
  code?: string
  /** The HTTP status or SMTP reply code, when the other side answered. */
  status?: number
  attempts?: number
  cause?: unknown
}

/** A transport error translated by an adapter: typed, with the original error as `cause`. */
export class NotifierError extends Error {
  override readonly name = 'NotifierError'
  readonly retryable: boolean
  readonly channel: string | undefined
  readonly code: string | undefined
  readonly status: number | undefined
  readonly attempts: number | undefined

  constructor(message: string, options: NotifierErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.retryable = options.retryable
    this.channel = options.channel
    this.code = options.code
    this.status = options.status
    this.attempts = options.attempts
  }
}

/**
 * Which messages went out already (at-least-once everywhere: the same decisions delivered twice send once).
 * Ids are message ids (`NotificationV1.id`, one per channel). In memory for tests, SQLite on a single host,
 * DynamoDB in the fleet.
 */
export interface DedupStore {
  seen(id: string): Promise<boolean>
  /** Record a sent message; `at` is an ISO timestamp (the store may expire entries by it). */
  remember(id: string, at: string): Promise<void>
}
