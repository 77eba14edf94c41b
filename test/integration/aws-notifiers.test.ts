/**
 * The fleet's notifiers with real SDK clients on moto_server: SES v2 email (moto keeps what it sent, read back from
 * /moto-api/data.json), Secrets Manager secrets (cached), and createFleetNotifiers building each channel of the
 * fleet config: email → SES, webhook → a real loopback receiver that verifies the Standard Webhooks signature with
 * the secret stored in moto's Secrets Manager, slack → a loopback receiver with the URL from Secrets Manager.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CreateSecretCommand, PutSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { CreateEmailIdentityCommand, type SESv2Client } from '@aws-sdk/client-sesv2'
import { afterAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { createSecretsManagerClient, createSesClient } from '../../functions/adapters/aws-clients.ts'
import { createFleetNotifiers } from '../../functions/adapters/fleet-notifiers.ts'
import { SecretsManagerSecrets } from '../../functions/adapters/secrets.ts'
import { SesNotifier, toSesAddress } from '../../functions/adapters/ses-notifier.ts'
import { FleetChannelSchema } from '../../functions/platform/runtime-config.ts'
import { MemorySecrets } from '../../shared/adapters/fleet/memory-secrets.ts'
import { buildNotifications, type SlackPayload, toSlackPayload } from '../../shared/app/notify/index.ts'
import type { NotificationV1 } from '../../shared/contracts/index.ts'
import { PortError } from '../../shared/ports/fleet.ts'
import { NotifierError } from '../../shared/ports/notifier.ts'
import { startMotoOrSkip } from '../support/moto.ts'
import { newWebhookSecret, startWebhookReceiver } from '../support/notify-receivers.ts'
import { failure } from '../support/rejection.ts'
import { HOSTS, resolved, result, verified } from '../unit/notify/fixtures.ts'
import { failCalls, recordCalls, sdkError } from './aws-stubs.ts'

/** A real message, built by the same code as in production (subject and text from shared/app/notify). */
const messageFor = (channel: string): NotificationV1 => {
  const [m] = buildNotifications({
    decisions: [verified, resolved].map((d) => ({ ...d, channels: [channel] })),
    results: [{ incidentId: 'inc-disk', result }],
    hosts: HOSTS,
  })
  return m!
}

interface SentEmail {
  source: string
  subject: string
  body: string
  destinations: { ToAddresses?: string[] }
}

describe('SecretsManagerSecrets cache (no server)', () => {
  it('reuses a value within the TTL, asks again after it, and shares one call between concurrent reads', async () => {
    let now = 1_000
    let reads = 0
    const client = createSecretsManagerClient({
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    })
    client.middlewareStack.add(
      () => async () => {
        reads += 1
        return { output: { $metadata: {}, SecretString: `value-${reads}` }, response: {} }
      },
      { step: 'initialize' },
    )
    const secrets = new SecretsManagerSecrets({ client, ttlMs: 60_000, now: () => now })
    expect(await Promise.all([secrets.get('a'), secrets.get('a'), secrets.get('a')])).toEqual([
      'value-1',
      'value-1',
      'value-1',
    ])
    now += 59_999
    expect(await secrets.get('a')).toBe('value-1')
    now += 1
    expect(await secrets.get('a')).toBe('value-2')
    expect(await secrets.get('b')).toBe('value-3')
    expect(reads).toBe(3)
  })
})

const moto = await startMotoOrSkip()
// At the top level: runs even when a filter skips every test of the moto block.
afterAll(() => moto?.stop())

describe.skipIf(!moto)('fleet notifiers on moto', () => {
  let ses: SESv2Client
  let sm: SecretsManagerClient

  beforeEach(async () => {
    await moto!.reset()
    ses = createSesClient({ ...moto!.clientConfig, maxAttempts: 1 })
    sm = createSecretsManagerClient({ ...moto!.clientConfig, maxAttempts: 1 })
  })

  const sentEmails = async (): Promise<SentEmail[]> => {
    const data = (await moto!.data()) as { ses?: { Message?: SentEmail[] } }
    return data.ses?.Message ?? []
  }

  const secret = async (name: string, value: string): Promise<string> =>
    (await sm.send(new CreateSecretCommand({ Name: name, SecretString: value }))).ARN!

  describe('SesNotifier', () => {
    it('sends the subject and plain-text body the notify builders made, from the verified identity to every address', async () => {
      await ses.send(new CreateEmailIdentityCommand({ EmailIdentity: 'alerts.example.com' }))
      const message = messageFor('ops-email')
      const calls = recordCalls(ses)
      const notifier = new SesNotifier({
        client: ses,
        from: 'ANSAI <ansai@alerts.example.com>',
        to: ['ops@example.com', 'oncall@example.com'],
        configurationSet: 'ansai',
      })
      const out = await notifier.send(message)
      expect(out).toMatchObject({ channel: 'ops-email', messageId: message.id, attempts: 1 })
      expect(out.detail).toMatch(/^SES message \S+$/)
      const [mail, ...more] = await sentEmails()
      expect(more).toEqual([])
      expect(mail).toMatchObject({
        source: 'ANSAI <ansai@alerts.example.com>',
        subject: '[ANSAI] RESOLVED disk-pressure /var on web-1 — recovered 1.2 GiB by disk-cleanup',
        destinations: { ToAddresses: ['ops@example.com', 'oncall@example.com'] },
      })
      expect(mail!.subject).toBe(message.subject)
      expect(mail!.body).toBe(message.text)
      expect(mail!.body).toContain('Space recovered: 1.2 GiB\n    logs  1 GiB\n    temp  205 MiB\n')
      expect(mail!.body).toContain('Incident: inc-disk\n')
      const input = calls[0]!.input as {
        Content: { Simple: { Subject: { Charset: string }; Headers: { Name: string; Value: string }[] } }
        ConfigurationSetName: string
      }
      expect(input.Content.Simple.Subject.Charset).toBe('UTF-8')
      expect(input.ConfigurationSetName).toBe('ansai')
      expect(input.Content.Simple.Headers).toEqual([
        { Name: 'References', Value: '<inc-disk@ansai.invalid>' },
        { Name: 'X-ANSAI-Incident', Value: 'inc-disk' },
        { Name: 'X-ANSAI-Event', Value: message.event },
        { Name: 'X-ANSAI-Severity', Value: message.severity },
        { Name: 'X-ANSAI-Message', Value: message.id },
      ])
    })

    it('a display name outside ASCII goes as an RFC 2047 encoded word; ASCII addresses as they are', async () => {
      expect(toSesAddress('ops@example.com')).toBe('ops@example.com')
      expect(toSesAddress('ANSAI <ansai@alerts.example.com>')).toBe('ANSAI <ansai@alerts.example.com>')
      expect(toSesAddress('"Équipe Ops" <ops@example.com>')).toBe(
        `=?UTF-8?B?${Buffer.from('Équipe Ops').toString('base64')}?= <ops@example.com>`,
      )
      await ses.send(new CreateEmailIdentityCommand({ EmailIdentity: 'alerts.example.com' }))
      await new SesNotifier({
        client: ses,
        from: 'Überwachung ANSAI <ansai@alerts.example.com>',
        to: ['Opérations <ops@example.com>'],
      }).send(messageFor('mail'))
      const [mail] = await sentEmails()
      const m = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]+)\?= <ansai@alerts\.example\.com>$/.exec(mail!.source)
      expect(Buffer.from(m![1]!, 'base64').toString('utf8')).toBe('Überwachung ANSAI')
      expect(mail!.destinations.ToAddresses).toEqual([
        `=?UTF-8?B?${Buffer.from('Opérations').toString('base64')}?= <ops@example.com>`,
      ])
    })

    it('an unverified sender: moto answers MessageRejected, a non-retryable NotifierError with the cause', async () => {
      const err = await failure(
        new SesNotifier({ client: ses, from: 'nobody@unverified.example', to: ['ops@example.com'] }).send(
          messageFor('ops-email'),
        ),
      )
      expect(err).toBeInstanceOf(NotifierError)
      expect(err).toMatchObject({ code: 'MessageRejected', retryable: false, channel: 'ops-email', status: 400 })
      expect((err as NotifierError).cause).toMatchObject({ name: 'MessageRejected' })
      expect(await sentEmails()).toEqual([])
    })

    it('throttling is retryable; suspended accounts, unverified MAIL FROM and paused sending are not', async () => {
      const cases = [
        ['TooManyRequestsException', 429, true],
        ['ThrottlingException', 400, true],
        ['InternalServiceErrorException', 500, true],
        ['AccountSuspendedException', 400, false],
        ['MailFromDomainNotVerifiedException', 400, false],
        ['SendingPausedException', 400, false],
        ['LimitExceededException', 400, false],
      ] as const
      for (const [name, status, retryable] of cases) {
        const client = createSesClient({ ...moto!.clientConfig, maxAttempts: 1 })
        failCalls(client, { command: 'SendEmail', times: 1, error: () => sdkError(name, { status }) })
        const err = await failure(
          new SesNotifier({ client, from: 'a@alerts.example.com', to: ['b@example.com'] }).send(messageFor('mail')),
        )
        expect(err, name).toBeInstanceOf(NotifierError)
        expect(err, name).toMatchObject({ code: name, retryable, status, channel: 'mail' })
      }
    })

    it('a header value SES would refuse (not printable ASCII) is left out, the mail still goes', async () => {
      await ses.send(new CreateEmailIdentityCommand({ EmailIdentity: 'a@alerts.example.com' }))
      const calls = recordCalls(ses)
      const message = { ...messageFor('mail'), incidentId: 'inc-ünï' }
      await new SesNotifier({ client: ses, from: 'a@alerts.example.com', to: ['b@example.com'] }).send(message)
      const headers = (calls[0]!.input as { Content: { Simple: { Headers: { Name: string }[] } } }).Content.Simple
        .Headers
      expect(headers.map((h) => h.Name)).toEqual(['X-ANSAI-Event', 'X-ANSAI-Severity', 'X-ANSAI-Message'])
      expect(await sentEmails()).toHaveLength(1)
    })
  })

  describe('SecretsManagerSecrets', () => {
    it('reads a secret by ARN once within the TTL; a rotation shows after it', async () => {
      const arn = await secret('ansai/webhook', 'whsec_first')
      let now = 0
      const calls = recordCalls(sm)
      const secrets = new SecretsManagerSecrets({ client: sm, ttlMs: 1_000, now: () => now })
      expect(await secrets.get(arn)).toBe('whsec_first')
      await sm.send(new PutSecretValueCommand({ SecretId: arn, SecretString: 'whsec_second' }))
      expect(await secrets.get(arn)).toBe('whsec_first')
      now = 1_000
      expect(await secrets.get(arn)).toBe('whsec_second')
      expect(calls.filter((c) => c.command === 'GetSecretValueCommand')).toHaveLength(2)
    })

    it('a binary secret is read as UTF-8', async () => {
      const arn = (
        await sm.send(new CreateSecretCommand({ Name: 'bin', SecretBinary: new TextEncoder().encode('https://x/ü') }))
      ).ARN!
      expect(await new SecretsManagerSecrets({ client: sm }).get(arn)).toBe('https://x/ü')
    })

    it('a missing secret is a non-retryable PortError, and is not cached', async () => {
      const calls = recordCalls(sm)
      const secrets = new SecretsManagerSecrets({ client: sm })
      const missing = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf'
      for (let i = 0; i < 2; i++) {
        const err = await failure(secrets.get(missing))
        expect(err).toBeInstanceOf(PortError)
        expect(err).toMatchObject({ retryable: false, code: 'ResourceNotFoundException' })
        expect((err as PortError).cause).toMatchObject({ name: 'ResourceNotFoundException' })
      }
      expect(calls).toHaveLength(2)
    })

    it('throttling is a retryable PortError', async () => {
      const client = createSecretsManagerClient({ ...moto!.clientConfig, maxAttempts: 1 })
      failCalls(client, { times: 1, error: () => sdkError('ThrottlingException') })
      await expect(new SecretsManagerSecrets({ client }).get('x')).rejects.toMatchObject({
        name: 'PortError',
        retryable: true,
        code: 'ThrottlingException',
      })
    })
  })

  describe('createFleetNotifiers', () => {
    const slackReceiver = async () => {
      const got: SlackPayload[] = []
      const server = createServer((req, res) => {
        const chunks: Buffer[] = []
        req.on('data', (c: Buffer) => chunks.push(c))
        req.on('end', () => {
          got.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as SlackPayload)
          res.writeHead(200).end('ok')
        })
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
      onTestFinished(
        () =>
          new Promise<void>((r) => {
            server.closeAllConnections()
            server.close(() => r())
          }),
      )
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T0/B0/xyz`, got }
    }

    it('builds email, webhook and slack channels; each delivers, with secrets from Secrets Manager', async () => {
      const whsec = newWebhookSecret()
      const hook = await startWebhookReceiver(whsec)
      onTestFinished(() => hook.close())
      const slack = await slackReceiver()
      await ses.send(new CreateEmailIdentityCommand({ EmailIdentity: 'alerts.example.com' }))
      const channels = {
        'ops-email': FleetChannelSchema.parse({
          type: 'email',
          from: 'ansai@alerts.example.com',
          to: ['ops@example.com'],
        }),
        hooks: FleetChannelSchema.parse({
          type: 'webhook',
          url: hook.url,
          secretArn: await secret('ansai/webhook', `${whsec}\n`),
        }),
        chat: FleetChannelSchema.parse({ type: 'slack', urlSecretArn: await secret('ansai/slack', slack.url) }),
      }
      const notifiers = createFleetNotifiers(channels, {
        ses,
        secrets: new SecretsManagerSecrets({ client: sm }),
        http: { jitter: () => 0 },
      })
      expect([...notifiers.keys()]).toEqual(['ops-email', 'hooks', 'chat'])

      const email = messageFor('ops-email')
      expect(await notifiers.get('ops-email')!.send(email)).toMatchObject({ channel: 'ops-email', attempts: 1 })
      expect((await sentEmails()).map((m) => [m.subject, m.body])).toEqual([[email.subject, email.text]])

      const webhook = messageFor('hooks')
      expect(await notifiers.get('hooks')!.send(webhook)).toMatchObject({ detail: 'HTTP 200', attempts: 1 })
      expect(hook.requests.map((r) => [r.status, r.verdict])).toEqual([[200, 'ok']])
      expect(hook.accepted()).toEqual([webhook])
      expect(hook.requests[0]!.headers['webhook-id']).toBe(webhook.id)

      const chat = messageFor('chat')
      expect(await notifiers.get('chat')!.send(chat)).toMatchObject({ detail: 'HTTP 200' })
      expect(slack.got).toEqual([toSlackPayload(chat)])
    })

    it('a webhook signed with a secret the receiver does not share is refused (the test can fail)', async () => {
      const hook = await startWebhookReceiver(newWebhookSecret())
      onTestFinished(() => hook.close())
      const channels = {
        hooks: FleetChannelSchema.parse({
          type: 'webhook',
          url: hook.url,
          secretArn: await secret('ansai/other', newWebhookSecret()),
        }),
      }
      const n = createFleetNotifiers(channels, { ses, secrets: new SecretsManagerSecrets({ client: sm }) })
      const err = await failure(n.get('hooks')!.send(messageFor('hooks')))
      expect(err).toMatchObject({ name: 'NotifierError', status: 400, retryable: false })
      expect(hook.requests.map((r) => r.verdict)).toEqual(['No matching signature found'])
    })

    it('a rotated webhook secret is used once the cache has let the old one go', async () => {
      const first = newWebhookSecret()
      const second = newWebhookSecret()
      const hook1 = await startWebhookReceiver(first)
      onTestFinished(() => hook1.close())
      const arn = await secret('ansai/webhook', first)
      let now = 0
      const notifiers = createFleetNotifiers(
        { hooks: FleetChannelSchema.parse({ type: 'webhook', url: hook1.url, secretArn: arn }) },
        { ses, secrets: new SecretsManagerSecrets({ client: sm, ttlMs: 10_000, now: () => now }) },
      )
      await notifiers.get('hooks')!.send(messageFor('hooks'))
      expect(hook1.accepted()).toHaveLength(1)
      await sm.send(new PutSecretValueCommand({ SecretId: arn, SecretString: second }))
      now = 10_000
      // The receiver still verifies with the first secret: the rotated signature no longer matches.
      await expect(notifiers.get('hooks')!.send(messageFor('hooks'))).rejects.toMatchObject({ status: 400 })
      expect(hook1.requests.map((r) => r.status)).toEqual([200, 400])
    })

    it('a secret that cannot be read fails only its channel, with the Secrets Manager error as cause', async () => {
      await ses.send(new CreateEmailIdentityCommand({ EmailIdentity: 'alerts.example.com' }))
      const missing = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ansai/gone-AbCdEf'
      const notifiers = createFleetNotifiers(
        {
          hooks: FleetChannelSchema.parse({ type: 'webhook', url: 'http://127.0.0.1:9/x', secretArn: missing }),
          mail: FleetChannelSchema.parse({ type: 'email', from: 'a@alerts.example.com', to: ['b@example.com'] }),
        },
        { ses, secrets: new SecretsManagerSecrets({ client: sm }) },
      )
      const err = await failure(notifiers.get('hooks')!.send(messageFor('hooks')))
      expect(err).toBeInstanceOf(NotifierError)
      expect(err).toMatchObject({ channel: 'hooks', code: 'ResourceNotFoundException', retryable: false })
      expect((err as NotifierError).cause).toBeInstanceOf(PortError)
      await notifiers.get('mail')!.send(messageFor('mail'))
      expect(await sentEmails()).toHaveLength(1)
    })

    it('a webhook secret that is no whsec_ secret, or a Slack secret that is no URL: non-retryable ECONFIG', async () => {
      const secrets = new MemorySecrets({ hook: 'not-a-secret', url: 'not a url' })
      const arn = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}`
      const notifiers = createFleetNotifiers(
        {
          hooks: FleetChannelSchema.parse({ type: 'webhook', url: 'http://127.0.0.1:9/x', secretArn: arn('hook') }),
          chat: FleetChannelSchema.parse({ type: 'slack', urlSecretArn: arn('url') }),
        },
        {
          ses,
          secrets: { get: (id) => secrets.get(id.slice(id.lastIndexOf(':') + 1)) },
        },
      )
      for (const name of ['hooks', 'chat']) {
        const err = await failure(notifiers.get(name)!.send(messageFor(name)))
        expect(err, name).toMatchObject({ name: 'NotifierError', channel: name, code: 'ECONFIG', retryable: false })
      }
      const retryable = new MemorySecrets()
      retryable.fail.push(new PortError('throttled', { retryable: true, code: 'ThrottlingException' }))
      const n = createFleetNotifiers(
        { hooks: FleetChannelSchema.parse({ type: 'webhook', url: 'http://127.0.0.1:9/x', secretArn: arn('hook') }) },
        { ses, secrets: retryable },
      )
      await expect(n.get('hooks')!.send(messageFor('hooks'))).rejects.toMatchObject({
        code: 'ThrottlingException',
        retryable: true,
      })
    })
  })
})
