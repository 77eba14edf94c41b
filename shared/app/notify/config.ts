import { z } from 'zod'
import { formatIssuePath as formatPath } from '../../contracts/issue-path.ts'

/**
 * The `notifications:` part of the config file: named channels. A policy's `notify: [ops-email, slack]` names
 * them. Secrets (webhook secrets, Slack URLs, SMTP credentials) may be written as `env:VAR_NAME`; the shell
 * resolves them with {@link resolveChannelSecrets}, passing its environment in (the core never reads it).
 *
 * ```yaml
 * notifications:
 *   console: { type: console }
 *   ops-email:
 *     type: email
 *     host: smtp.example.com
 *     port: 587
 *     starttls: required
 *     auth: { user: ansai, pass: env:ANSAI_SMTP_PASSWORD }
 *     from: ANSAI <ansai@example.com>
 *     to: [ops@example.com]
 *   hooks: { type: webhook, url: https://hooks.example.com/ansai, secret: env:ANSAI_WEBHOOK_SECRET }
 *   slack: { type: slack, url: env:ANSAI_SLACK_WEBHOOK_URL }
 * ```
 */

const ENV_REF = /^env:([A-Za-z_][A-Za-z0-9_]*)$/
const WHSEC = /^whsec_([A-Za-z0-9+/]+={0,2})$/

export const isEnvRef = (s: string): boolean => ENV_REF.test(s)

/** A Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 random bytes. */
export const isWebhookSecret = (s: string): boolean => {
  const m = WHSEC.exec(s)
  if (!m || m[1]!.length % 4 !== 0) return false
  const b64 = m[1]!
  const bytes = (b64.length / 4) * 3 - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0)
  return bytes >= 24 && bytes <= 64
}

const isHttpUrl = (s: string, https: boolean): boolean => {
  if (!URL.canParse(s)) return false
  const u = new URL(s)
  return https ? u.protocol === 'https:' : u.protocol === 'https:' || u.protocol === 'http:'
}

const ADDRESS = /^[^\s<>@]+@[^\s<>@]+$/
const NAMED_ADDRESS = /^[^<>]*<([^\s<>@]+@[^\s<>@]+)>$/
const isAddress = (s: string): boolean => ADDRESS.test(s) || NAMED_ADDRESS.test(s.trim())

const ENV_HINT = 'or env:VAR_NAME to take it from the environment'

const secretOr = (check: (s: string) => boolean, what: string) =>
  z
    .string()
    .min(1)
    .refine((s) => isEnvRef(s) || check(s), { error: `expected ${what}, ${ENV_HINT}` })

const TimeoutSchema = z.number().int().min(100).max(120_000)
const AttemptsSchema = z.number().int().min(1).max(10)

export const ConsoleChannelSchema = z.strictObject({
  type: z.literal('console'),
  stream: z.enum(['stdout', 'stderr']).default('stdout'),
})

export const EmailChannelSchema = z.strictObject({
  type: z.literal('email'),
  host: z.string().min(1),
  /** Default: 465 with `secure`, else 587. */
  port: z.number().int().min(1).max(65_535).optional(),
  /** Implicit TLS from the first byte (port 465). */
  secure: z.boolean().default(false),
  /** Without `secure`: STARTTLS `required` (the default), `opportunistic`, or `never` (a local relay). */
  starttls: z.enum(['required', 'opportunistic', 'never']).default('required'),
  /** Check the server's certificate (the default). */
  rejectUnauthorized: z.boolean().default(true),
  auth: z
    .strictObject({
      user: secretOr((s) => s.length > 0, 'a user name'),
      pass: secretOr((s) => s.length > 0, 'a password'),
    })
    .optional(),
  from: z.string().refine(isAddress, { error: 'expected an address: ansai@example.com or ANSAI <ansai@example.com>' }),
  to: z
    .array(z.string().refine(isAddress, { error: 'expected an address such as ops@example.com' }))
    .min(1, { error: 'name at least one recipient' }),
  timeoutMs: TimeoutSchema.default(30_000),
})

export const WebhookChannelSchema = z.strictObject({
  type: z.literal('webhook'),
  url: secretOr((s) => isHttpUrl(s, false), 'an http:// or https:// URL'),
  /** Signs every message (Standard Webhooks): `whsec_` + base64 of 24 to 64 random bytes. */
  secret: secretOr(isWebhookSecret, 'a Standard Webhooks secret (whsec_ and the base64 of 24 to 64 random bytes)'),
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/, { error: 'a header name' }), z.string()).optional(),
  timeoutMs: TimeoutSchema.default(10_000),
  maxAttempts: AttemptsSchema.default(4),
})

export const SlackChannelSchema = z.strictObject({
  type: z.literal('slack'),
  /** The incoming-webhook URL carries its own secret: better as env:VAR_NAME. */
  url: secretOr((s) => isHttpUrl(s, true), 'an https:// incoming-webhook URL'),
  timeoutMs: TimeoutSchema.default(10_000),
  maxAttempts: AttemptsSchema.default(4),
})

export const CHANNEL_TYPES = ['console', 'email', 'webhook', 'slack'] as const

export const NotificationChannelSchema = z.discriminatedUnion(
  'type',
  [ConsoleChannelSchema, EmailChannelSchema, WebhookChannelSchema, SlackChannelSchema],
  { error: `expected a channel with type: ${CHANNEL_TYPES.join(', ')}` },
)

export const ChannelNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'a channel name: letters, digits, . _ - (up to 64)' })

export const NotificationChannelsSchema = z.record(ChannelNameSchema, NotificationChannelSchema)

export type NotificationChannel = z.infer<typeof NotificationChannelSchema>
export type NotificationChannels = z.infer<typeof NotificationChannelsSchema>
export type ConsoleChannel = z.infer<typeof ConsoleChannelSchema>
export type EmailChannel = z.infer<typeof EmailChannelSchema>
export type WebhookChannel = z.infer<typeof WebhookChannelSchema>
export type SlackChannel = z.infer<typeof SlackChannelSchema>

type Issue = { path: PropertyKey[]; message: string; code?: string; issues?: Issue[]; key?: unknown }

/** An issue as lines; a bad record key says what was wrong with the key (zod only says "Invalid key in record"). */
const issueLines = (base: string, i: Issue): string[] => {
  if (i.code === 'invalid_key' && i.issues?.length) {
    return i.issues.map((k) => `${formatPath(base, i.path)}: ${k.message}`)
  }
  return [`${formatPath(base, i.path)}: ${i.message}`]
}

export type ParsedChannels = { ok: true; channels: NotificationChannels } | { ok: false; errors: string[] }

/** Parse the channels; every error comes with its path, e.g. `notifications.ops-email.to[0]: expected an address…`. */
export const parseNotificationChannels = (input: unknown, base = 'notifications'): ParsedChannels => {
  const parsed = NotificationChannelsSchema.safeParse(input ?? {})
  if (parsed.success) return { ok: true, channels: parsed.data }
  return { ok: false, errors: parsed.error.issues.flatMap((i) => issueLines(base, i)) }
}

export type ResolvedChannels = { ok: true; channels: NotificationChannels } | { ok: false; errors: string[] }

/**
 * Replace every `env:VAR_NAME` with its value from `env` (the shell passes its environment), then check the
 * values: an unset variable or a value of the wrong form is an error naming the channel, the field and the
 * variable, never the secret itself.
 */
export const resolveChannelSecrets = (
  channels: NotificationChannels,
  env: Readonly<Record<string, string | undefined>>,
  base = 'notifications',
): ResolvedChannels => {
  const errors: string[] = []
  const resolve = (path: string, value: string, check?: (s: string) => boolean, what?: string): string => {
    const m = ENV_REF.exec(value)
    if (!m) return value
    const v = env[m[1]!]
    if (v === undefined || v === '') {
      errors.push(`${path}: ${value} is not set`)
      return value
    }
    if (check && !check(v)) errors.push(`${path}: the value of ${value} is not ${what}`)
    return v
  }
  const out: NotificationChannels = {}
  for (const [name, c] of Object.entries(channels)) {
    const at = formatPath(base, [name])
    switch (c.type) {
      case 'console':
        out[name] = c
        break
      case 'email':
        out[name] = c.auth
          ? {
              ...c,
              auth: { user: resolve(`${at}.auth.user`, c.auth.user), pass: resolve(`${at}.auth.pass`, c.auth.pass) },
            }
          : c
        break
      case 'webhook':
        out[name] = {
          ...c,
          url: resolve(`${at}.url`, c.url, (s) => isHttpUrl(s, false), 'an http:// or https:// URL'),
          secret: resolve(`${at}.secret`, c.secret, isWebhookSecret, 'a Standard Webhooks secret (whsec_…)'),
          ...(c.headers
            ? {
                headers: Object.fromEntries(
                  Object.entries(c.headers).map(([k, v]) => [k, resolve(formatPath(`${at}.headers`, [k]), v)]),
                ),
              }
            : {}),
        }
        break
      case 'slack':
        out[name] = { ...c, url: resolve(`${at}.url`, c.url, (s) => isHttpUrl(s, true), 'an https:// URL') }
        break
    }
  }
  return errors.length ? { ok: false, errors } : { ok: true, channels: out }
}
