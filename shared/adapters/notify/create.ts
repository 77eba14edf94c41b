import type { NotificationChannel, NotificationChannels } from '../../app/notify/config.ts'
import type { Notifier } from '../../ports/notifier.ts'
import { ConsoleNotifier, type LineSink } from './console.ts'
import { SmtpNotifier, type SmtpNotifierOptions } from './smtp.ts'
import { type HttpPostOptions, SlackNotifier, WebhookNotifier } from './webhook.ts'

/** What the shell gives the notifiers: its streams and, in tests, fakes for the network and the clock. */
export interface NotifierDeps {
  stdout: LineSink
  stderr: LineSink
  fetch?: HttpPostOptions['fetch']
  sleep?: HttpPostOptions['sleep']
  jitter?: HttpPostOptions['jitter']
  clock?: () => Date
  smtpTransport?: SmtpNotifierOptions['transport']
}

type Factories = {
  [T in NotificationChannel['type']]: (c: Extract<NotificationChannel, { type: T }>, deps: NotifierDeps) => Notifier
}

const http = (deps: NotifierDeps): Omit<HttpPostOptions, 'url'> => ({
  ...(deps.fetch ? { fetch: deps.fetch } : {}),
  ...(deps.sleep ? { sleep: deps.sleep } : {}),
  ...(deps.jitter ? { jitter: deps.jitter } : {}),
})

/** One factory per channel type. */
const FACTORIES: Factories = {
  console: (c, deps) => new ConsoleNotifier(c.stream === 'stderr' ? deps.stderr : deps.stdout),
  email: (c, deps) =>
    new SmtpNotifier({
      host: c.host,
      ...(c.port !== undefined ? { port: c.port } : {}),
      secure: c.secure,
      starttls: c.starttls,
      rejectUnauthorized: c.rejectUnauthorized,
      ...(c.auth ? { auth: c.auth } : {}),
      from: c.from,
      to: c.to,
      timeoutMs: c.timeoutMs,
      ...(deps.smtpTransport ? { transport: deps.smtpTransport } : {}),
    }),
  webhook: (c, deps) =>
    new WebhookNotifier({
      url: c.url,
      secret: c.secret,
      timeoutMs: c.timeoutMs,
      maxAttempts: c.maxAttempts,
      ...(c.headers ? { headers: c.headers } : {}),
      ...(deps.clock ? { clock: deps.clock } : {}),
      ...http(deps),
    }),
  slack: (c, deps) =>
    new SlackNotifier({ url: c.url, timeoutMs: c.timeoutMs, maxAttempts: c.maxAttempts, ...http(deps) }),
}

/**
 * Build the notifiers of the configured channels, channel name → notifier. Takes channels whose `env:` secrets
 * the shell has resolved (resolveChannelSecrets); a webhook secret still written as `env:…` fails here.
 */
export const createNotifiers = (channels: NotificationChannels, deps: NotifierDeps): Map<string, Notifier> => {
  const out = new Map<string, Notifier>()
  for (const [name, c] of Object.entries(channels)) {
    const make = FACTORIES[c.type] as (c: NotificationChannel, deps: NotifierDeps) => Notifier
    out.set(name, make(c, deps))
  }
  return out
}
