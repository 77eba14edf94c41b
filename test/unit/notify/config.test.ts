import { describe, expect, it } from 'vitest'
import { isWebhookSecret, parseNotificationChannels, resolveChannelSecrets } from '../../../shared/app/notify/config.ts'

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`

const good = {
  console: { type: 'console' },
  'ops-email': {
    type: 'email',
    host: 'smtp.example.com',
    auth: { user: 'ansai', pass: 'env:ANSAI_SMTP_PASSWORD' },
    from: 'ANSAI <ansai@example.com>',
    to: ['ops@example.com'],
  },
  hooks: { type: 'webhook', url: 'https://hooks.example.com/ansai', secret: 'env:ANSAI_WEBHOOK_SECRET' },
  slack: { type: 'slack', url: 'env:ANSAI_SLACK_URL' },
}

describe('NotificationChannelsSchema', () => {
  it('parses channels and fills the defaults', () => {
    const parsed = parseNotificationChannels(good)
    expect(parsed.ok).toBe(true)
    if (!parsed.ok) return
    expect(parsed.channels.console).toEqual({ type: 'console', stream: 'stdout' })
    expect(parsed.channels['ops-email']).toMatchObject({
      secure: false,
      starttls: 'required',
      rejectUnauthorized: true,
      timeoutMs: 30_000,
    })
    expect(parsed.channels.hooks).toMatchObject({ timeoutMs: 10_000, maxAttempts: 4 })
  })

  it('reports every error with its path', () => {
    const parsed = parseNotificationChannels({
      'ops-email': { type: 'email', host: 'smtp', from: 'nobody', to: [], bcc: 'x' },
      hooks: { type: 'webhook', url: 'ftp://x', secret: 'hunter2' },
      slack: { type: 'slack', url: 'http://hooks.slack.com/services/T/B/X' },
      pager: { type: 'pagerduty' },
      'bad name!': { type: 'console' },
    })
    expect(parsed.ok).toBe(false)
    if (parsed.ok) return
    expect(parsed.errors).toEqual(
      expect.arrayContaining([
        'notifications.ops-email: Unrecognized key: "bcc"',
        'notifications.ops-email.from: expected an address: ansai@example.com or ANSAI <ansai@example.com>',
        'notifications.ops-email.to: name at least one recipient',
        'notifications.hooks.url: expected an http:// or https:// URL, or env:VAR_NAME to take it from the environment',
        'notifications.hooks.secret: expected a Standard Webhooks secret (whsec_ and the base64 of 24 to 64 random bytes), or env:VAR_NAME to take it from the environment',
        'notifications.slack.url: expected an https:// incoming-webhook URL, or env:VAR_NAME to take it from the environment',
        'notifications.pager.type: expected a channel with type: console, email, webhook, slack',
      ]),
    )
    expect(parsed.errors).toContain('notifications["bad name!"]: a channel name: letters, digits, . _ - (up to 64)')
  })

  it('knows a Standard Webhooks secret', () => {
    expect(isWebhookSecret(SECRET)).toBe(true)
    expect(isWebhookSecret(`whsec_${Buffer.alloc(16).toString('base64')}`)).toBe(false)
    expect(isWebhookSecret(`whsec_${Buffer.alloc(65).toString('base64')}`)).toBe(false)
    expect(isWebhookSecret(SECRET.slice(0, -1))).toBe(false)
    expect(isWebhookSecret(SECRET.replace('whsec_', ''))).toBe(false)
  })
})

describe('resolveChannelSecrets', () => {
  const parsed = parseNotificationChannels(good)
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'))

  it('replaces env: references with the values the shell passes in', () => {
    const resolved = resolveChannelSecrets(parsed.channels, {
      ANSAI_SMTP_PASSWORD: 'pw',
      ANSAI_WEBHOOK_SECRET: SECRET,
      ANSAI_SLACK_URL: 'https://hooks.slack.com/services/T0/B0/XYZ',
    })
    expect(resolved.ok).toBe(true)
    if (!resolved.ok) return
    expect(resolved.channels['ops-email']).toMatchObject({ auth: { user: 'ansai', pass: 'pw' } })
    expect(resolved.channels.hooks).toMatchObject({ secret: SECRET })
    expect(resolved.channels.slack).toMatchObject({ url: 'https://hooks.slack.com/services/T0/B0/XYZ' })
    expect(parsed.channels.hooks).toMatchObject({ secret: 'env:ANSAI_WEBHOOK_SECRET' })
  })

  it('names unset variables and bad values, never the values', () => {
    const resolved = resolveChannelSecrets(parsed.channels, {
      ANSAI_WEBHOOK_SECRET: 'not-a-secret',
      ANSAI_SLACK_URL: 'http://insecure.example.com/x',
    })
    expect(resolved).toEqual({
      ok: false,
      errors: [
        'notifications.ops-email.auth.pass: env:ANSAI_SMTP_PASSWORD is not set',
        'notifications.hooks.secret: the value of env:ANSAI_WEBHOOK_SECRET is not a Standard Webhooks secret (whsec_…)',
        'notifications.slack.url: the value of env:ANSAI_SLACK_URL is not an https:// URL',
      ],
    })
  })
})
