import type { SESv2Client } from '@aws-sdk/client-sesv2'
import { type HttpPostOptions, SlackNotifier, WebhookNotifier } from '../../shared/adapters/notify/webhook.ts'
import type { NotificationV1 } from '../../shared/contracts/index.ts'
import { PortError } from '../../shared/ports/fleet.ts'
import { type DeliveryResult, type Notifier, NotifierError } from '../../shared/ports/notifier.ts'
import type { FleetChannel } from '../platform/runtime-config.ts'
import type { SecretSource } from './secrets.ts'
import { SesNotifier } from './ses-notifier.ts'

/** What the shell gives the fleet notifiers: its clients, and in tests fakes for the network and the clock. */
export interface FleetNotifierDeps {
  ses: SESv2Client
  /** Webhook secrets and Slack URLs, by ARN (a {@link SecretsManagerSecrets} in the Lambda). */
  secrets: SecretSource
  /** Webhook and Slack HTTP settings; defaults 10 s per attempt and 3 attempts (a Lambda has a time limit). */
  http?: Omit<HttpPostOptions, 'url' | 'headers'>
  /** The signing time of webhooks. */
  clock?: () => Date
}

const HTTP_DEFAULTS = { timeoutMs: 10_000, maxAttempts: 3 } as const

/**
 * A notifier whose configuration holds a secret: it reads the secret when it sends (cached by the SecretSource, so
 * a rotated secret shows after the cache's TTL) and keeps the notifier built for the current value. A secret that
 * cannot be read fails this channel's sends with a NotifierError, never the cold start of the others.
 */
class SecretBackedNotifier implements Notifier {
  private current: { secret: string; notifier: Notifier } | undefined
  private readonly secretArn: string
  private readonly secrets: SecretSource
  private readonly build: (secret: string) => Notifier

  constructor(secretArn: string, secrets: SecretSource, build: (secret: string) => Notifier) {
    this.secretArn = secretArn
    this.secrets = secrets
    this.build = build
  }

  async send(message: NotificationV1): Promise<DeliveryResult> {
    let secret: string
    try {
      secret = (await this.secrets.get(this.secretArn)).trim()
    } catch (err) {
      const port = err instanceof PortError ? err : undefined
      throw new NotifierError(`secret ${this.secretArn}: ${err instanceof Error ? err.message : String(err)}`, {
        retryable: port?.retryable ?? true,
        channel: message.channel,
        code: port?.code ?? 'ESECRET',
        cause: err,
      })
    }
    if (this.current?.secret !== secret) {
      try {
        this.current = { secret, notifier: this.build(secret) }
      } catch (err) {
        if (!(err instanceof NotifierError)) throw err
        throw new NotifierError(`${err.message} (secret ${this.secretArn})`, {
          retryable: err.retryable,
          channel: message.channel,
          ...(err.code !== undefined ? { code: err.code } : {}),
          cause: err,
        })
      }
    }
    return this.current.notifier.send(message)
  }
}

type Factories = {
  [T in FleetChannel['type']]: (
    c: Extract<FleetChannel, { type: T }>,
    deps: FleetNotifierDeps,
    http: Omit<HttpPostOptions, 'url' | 'headers'>,
  ) => Notifier
}

/** One factory per channel type. */
const FACTORIES: Factories = {
  email: (c, deps) =>
    new SesNotifier({
      client: deps.ses,
      from: c.from,
      to: c.to,
      ...(c.configurationSet ? { configurationSet: c.configurationSet } : {}),
    }),
  webhook: (c, deps, http) =>
    new SecretBackedNotifier(
      c.secretArn,
      deps.secrets,
      (secret) => new WebhookNotifier({ ...http, url: c.url, secret, ...(deps.clock ? { clock: deps.clock } : {}) }),
    ),
  slack: (c, deps, http) =>
    new SecretBackedNotifier(c.urlSecretArn, deps.secrets, (url) => {
      if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
        throw new NotifierError('slack: the secret is not an http(s) URL', { retryable: false, code: 'ECONFIG' })
      }
      return new SlackNotifier({ ...http, url })
    }),
}

/**
 * Build the notifiers of the fleet's channels, channel name → notifier: `email` → {@link SesNotifier}, `webhook` →
 * the Standard Webhooks {@link WebhookNotifier} with its `whsec_` secret from Secrets Manager, `slack` → the
 * {@link SlackNotifier} with its URL from Secrets Manager. Nothing is read here: secrets are read at the first send.
 */
export const createFleetNotifiers = (
  channels: Readonly<Record<string, FleetChannel>>,
  deps: FleetNotifierDeps,
): Map<string, Notifier> => {
  const http = { ...HTTP_DEFAULTS, ...deps.http }
  const out = new Map<string, Notifier>()
  for (const [name, c] of Object.entries(channels)) {
    const make = FACTORIES[c.type] as (
      c: FleetChannel,
      deps: FleetNotifierDeps,
      http: Omit<HttpPostOptions, 'url' | 'headers'>,
    ) => Notifier
    out.set(name, make(c, deps, http))
  }
  return out
}
