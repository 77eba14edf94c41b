/**
 * The whole fleet path in process, with the real AWS SDK against moto_server: a host's report batch → reports queue
 * → ingest-reports → DynamoDB → actions FIFO → dispatch-remediation → the SSM command moto records → the host runs
 * the real `ansai-agent remediate` with the document's SSM_* variables → the status event → record-command-result →
 * the next report verifies the fix → incident resolved → send-notifications → SES (moto) and a signed webhook.
 * Lambda's SQS event source mapping is played by `pumpQueue` (moto does not run it).
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge'
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs'
import { ListCommandsCommand, SSMClient } from '@aws-sdk/client-ssm'
import type { SQSEvent } from 'aws-lambda'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSqsClient, createSsmClient } from '../../functions/adapters/aws-clients.ts'
import { createDynamoDbClient, DynamoDbFleetStore } from '../../functions/adapters/dynamodb-store.ts'
import { SqsReportSender } from '../../functions/adapters/sqs-queues.ts'
import { SsmCommandRunner } from '../../functions/adapters/ssm-command-runner.ts'
import { createDispatchHandler } from '../../functions/dispatch-remediation/app.ts'
import { createIngestHandler } from '../../functions/ingest-reports/app.ts'
import {
  type ComposeOptions,
  composeDispatch,
  composeIngest,
  composeRecordCommandResult,
  composeSendNotifications,
} from '../../functions/platform/compose.ts'
import { createObservability } from '../../functions/platform/observability.ts'
import type { FleetRuntimeConfig } from '../../functions/platform/runtime-config.ts'
import { createRecordCommandResultHandler } from '../../functions/record-command-result/app.ts'
import { createSendNotificationsHandler } from '../../functions/send-notifications/app.ts'
import type { Observation, ReportV1 } from '../../shared/contracts/index.ts'
import type { CommandInvocation, CommandRequest, CommandRunner } from '../../shared/ports/fleet.ts'
import { REMEDIATIONS } from '../../shared/registry/remediations/index.ts'
import { fs } from '../support/builders.ts'
import {
  createFleetResources,
  createSecret,
  type FleetResources,
  lambdaContext,
  peekQueue,
  pumpQueue,
  TEST_MAX_RECEIVE_COUNT,
  verifySesIdentity,
} from '../support/fleet-harness.ts'
import { type MotoServer, startMotoOrSkip } from '../support/moto.ts'
import { newWebhookSecret, startWebhookReceiver, type WebhookReceiver } from '../support/notify-receivers.ts'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const HOST = { id: 'i-0a1b2c3d4e5f60718', hostname: 'web-7', tags: { role: 'web' } }
const OTHER = 'i-0ffffffffffffffff'
const ROLE_SESSION = (host: string) => `AROAEXAMPLEHOSTROLE:${host}`
const MiB = 1024 * 1024
const DAY = 86_400_000

/**
 * The host side of SSM Run Command, which moto does not run: after moto records a command, run what the ANSAI-*
 * document runs (`ansai-agent remediate <type>`) with the document's parameters as SSM_<name> variables, as the SSM
 * Agent does with interpolationType ENV_VAR, and answer GetCommandInvocation with moto's status and that output.
 */
class HostEmulatingRunner implements CommandRunner {
  readonly outputs = new Map<string, { stdout: string; stderr: string; code: number }>()
  private readonly ssm: CommandRunner
  constructor(ssm: CommandRunner) {
    this.ssm = ssm
  }
  async send(request: CommandRequest): Promise<{ commandId: string }> {
    const sent = await this.ssm.send(request)
    const def = REMEDIATIONS.find((r) => r.ssmDocument === request.document)!
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' }
    for (const [name, value] of Object.entries(request.parameters)) env[`SSM_${name}`] = value
    this.outputs.set(sent.commandId, await run(['agent/cli/ansai-agent.ts', 'remediate', def.id], env))
    return sent
  }
  async getInvocation(commandId: string, host: string): Promise<CommandInvocation> {
    const inv = await this.ssm.getInvocation(commandId, host)
    const out = this.outputs.get(commandId)
    return out
      ? {
          ...inv,
          stdout: out.stdout,
          stderr: out.stderr,
          responseCode: out.code,
          status: out.code === 0 ? 'Success' : 'Failed',
        }
      : inv
  }
  pingStatus(hosts: readonly string[]) {
    return this.ssm.pingStatus(hosts)
  }
}

const run = (args: string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string; code: number }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b) => (stdout += b))
    child.stderr.on('data', (b) => (stderr += b))
    child.once('error', reject)
    child.once('close', (code) => resolve({ stdout, stderr, code: code ?? -1 }))
  })

// The functions' JSON logs: errors only (the poison-message test reads them), no EMF metrics on stdout.
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR'
process.env.POWERTOOLS_METRICS_DISABLED = 'true'

const moto: MotoServer | undefined = await startMotoOrSkip()
afterAll(() => moto?.stop())

describe.skipIf(!moto)('the fleet path against moto_server', () => {
  let res: FleetResources
  let webhook: WebhookReceiver
  let dir: string
  let opts: ComposeOptions
  let seq = 0
  // Everything on the real clock, as in AWS: SQS stamps messages with it, a report is never taken to be in its
  // future, and a fix is confirmed only by an observation made after it finished.
  let clock = Date.now() - 60_000
  // The functions run on the real clock (webhooks are signed with it and checked within a replay window).
  const now = () => new Date()
  const obs = (name: string) => createObservability(name)
  let eventsTap: string

  const report = (observations: Observation[]): ReportV1 => {
    clock = Math.max(clock + 1, Date.now())
    return {
      schema: 'ansai.report.v1',
      host: HOST,
      agent: { version: 'test' },
      time: new Date(clock).toISOString(),
      seq: ++seq,
      observations,
      probeErrors: [],
    }
  }

  beforeAll(async () => {
    res = await createFleetResources(moto!)
    dir = mkdtempSync(join(tmpdir(), 'ansai-fleet-'))
    mkdirSync(join(dir, 'log'))
    writeFileSync(join(dir, 'log', 'old.log'), Buffer.alloc(2 * MiB, 'o'))
    const old = (Date.now() - 40 * DAY) / 1000
    utimesSync(join(dir, 'log', 'old.log'), old, old)
    writeFileSync(join(dir, 'log', 'new.log'), 'still being written\n')

    const secret = newWebhookSecret()
    webhook = await startWebhookReceiver(secret)
    await verifySesIdentity(moto!, 'ansai@example.com')
    const secretArn = await createSecret(moto!, 'ansai/webhook', secret)

    const config: FleetRuntimeConfig = {
      version: 1,
      policies: [
        {
          file: 'fleet-test.yaml',
          text: `apiVersion: ansai/v1
kind: Policy
metadata: { name: root-disk }
spec:
  observe: filesystem
  match: { mount: / }
  severity:
    critical: { when: "usedPercent >= 90.0" }
  remediate:
    - run: disk-cleanup
      params: { roots: [${join(dir, 'log')}], logsOlderThan: 30d }
    - escalate: page
  guards:
    limit: { max: 2, within: 1h, then: escalate }
  allowDestructive: true
  notify: [ops-email, hooks]
`,
        },
      ],
      disable: [],
      channels: {
        'ops-email': { type: 'email', from: 'ANSAI <ansai@example.com>', to: ['ops@example.com'] },
        hooks: { type: 'webhook', url: webhook.url, secretArn },
      },
      defaultChannels: [],
      digestChannels: [],
      shards: 2,
      dryRun: false,
      verifyWithin: '15m',
      maxCommandsPerMinute: 100,
      quietWriteEvery: '60m',
      metrics: 'all',
      holdFixStarted: '0s',
    }
    opts = { env: res.env, config, clientConfig: moto!.clientConfig, clock: now }

    // ANSAI's own events, as a user's integration would take them: a rule on the bus into a queue.
    const eb = new EventBridgeClient(moto!.clientConfig)
    eventsTap = (await res.sqs.send(new CreateQueueCommand({ QueueName: 'events-tap' }))).QueueUrl!
    const tapArn = (
      await res.sqs.send(new GetQueueAttributesCommand({ QueueUrl: eventsTap, AttributeNames: ['QueueArn'] }))
    ).Attributes!.QueueArn!
    await eb.send(
      new PutRuleCommand({ Name: 'tap', EventBusName: res.bus, EventPattern: JSON.stringify({ source: ['ansai'] }) }),
    )
    await eb.send(new PutTargetsCommand({ Rule: 'tap', EventBusName: res.bus, Targets: [{ Id: 'q', Arn: tapArn }] }))
  })

  afterAll(async () => {
    await webhook?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('heals a full disk end to end: one command, verified, resolved, told by SES and a signed webhook', async () => {
    const hostRunner = new HostEmulatingRunner(new SsmCommandRunner({ client: createSsmClient(moto!.clientConfig) }))
    const ingest = createIngestHandler(composeIngest(opts), obs('ingest-reports'))
    const dispatch = createDispatchHandler(
      { ...composeDispatch(opts), commands: hostRunner },
      obs('dispatch-remediation'),
    )
    const record = createRecordCommandResultHandler(
      { ...composeRecordCommandResult(opts), commands: hostRunner },
      obs('record-command-result'),
    )
    const notify = createSendNotificationsHandler(composeSendNotifications(opts), obs('send-notifications'))
    const agentQueue = new SqsReportSender({
      client: createSqsClient(moto!.clientConfig),
      queueUrl: res.queues.reports,
    })
    const asHost = { senderIdOf: () => ROLE_SESSION(HOST.id) }

    // 1. The agent sends its spool: two minutes of a full disk.
    await agentQueue.send({
      schema: 'ansai.report-batch.v1',
      reason: 'change',
      reports: [report([fs('/', 95)]), report([fs('/', 96)])],
    })
    expect(await pumpQueue(res.sqs, res.queues.reports, ingest, asHost)).toMatchObject({ succeeded: 1, failed: 0 })
    const store = new DynamoDbFleetStore({ client: createDynamoDbClient(moto!.clientConfig), tableName: res.table })
    expect((await store.getHostState(HOST.id))?.state.lastSeq).toBe(2)
    const open = await store.listIncidents({ status: 'open', limit: 10 })
    expect(open.map((i) => [i.policy, i.severity])).toEqual([['root-disk', 'critical']])

    // 2. The action, delivered twice (a redelivery after the FIFO dedup window), gives one command.
    const [action] = await peekQueue(res.sqs, res.queues.actions)
    expect(action).toBeDefined()
    await res.sqs.send(
      new SendMessageCommand({
        QueueUrl: res.queues.actions,
        MessageBody: action!.Body!,
        MessageGroupId: HOST.id,
        MessageDeduplicationId: 'redelivered-later',
      }),
    )
    expect(await pumpQueue(res.sqs, res.queues.actions, dispatch)).toMatchObject({ succeeded: 2, failed: 0 })
    const ssm = new SSMClient(moto!.clientConfig)
    const commands = (await ssm.send(new ListCommandsCommand({}))).Commands ?? []
    expect(commands).toHaveLength(1)
    const cmd = commands[0]!
    expect(cmd.DocumentName).toBe('ANSAI-CleanupDisk')
    expect(cmd.InstanceIds).toEqual([HOST.id])
    expect(cmd.Parameters).toMatchObject({
      roots: [JSON.stringify([join(dir, 'log')])],
      logsOlderThan: ['30d'],
      ansaiDryRun: ['false'],
    })

    // 3. The host ran it: the old log is gone, the young one is there.
    expect(existsSync(join(dir, 'log', 'old.log'))).toBe(false)
    expect(statSync(join(dir, 'log', 'new.log')).size).toBeGreaterThan(0)

    // 4. SSM's status event (twice: EventBridge delivers at least once).
    const event = {
      version: '0',
      id: 'ev-1',
      'detail-type': 'EC2 Command Invocation Status-change Notification',
      source: 'aws.ssm',
      account: '123456789012',
      time: now().toISOString(),
      region: 'us-east-1',
      resources: [],
      detail: {
        'command-id': cmd.CommandId,
        'instance-id': HOST.id,
        'document-name': cmd.DocumentName,
        status: 'Success',
      },
    }
    expect(await record(event, lambdaContext('record-command-result'))).toMatchObject({
      status: 'recorded',
      result: 'succeeded',
    })
    expect(await record(event, lambdaContext('record-command-result'))).toMatchObject({ status: 'duplicate' })
    const action2 = await store.getAction(JSON.parse(action!.Body!).key)
    expect(action2?.result?.bytesRecovered).toEqual({ logs: 2 * MiB })
    expect((await store.listIncidents({ status: 'open', limit: 10 })).map((i) => i.status)).toEqual(['verifying'])

    // 5. The next report (the agent sends one after each fix) verifies it.
    await agentQueue.send({ schema: 'ansai.report-batch.v1', reason: 'change', reports: [report([fs('/', 61)])] })
    await pumpQueue(res.sqs, res.queues.reports, ingest, asHost)
    expect(await store.listIncidents({ status: 'open', limit: 10 })).toEqual([])
    const [resolved] = await store.listIncidents({ status: 'all', limit: 10 })
    expect(resolved?.status).toBe('resolved')

    // 6. People are told: SES (moto) and the signed webhook, each message once.
    expect(await pumpQueue(res.sqs, res.queues.notifications, notify)).toMatchObject({ failed: 0 })
    const data = (await moto!.data()) as { ses?: { Message?: { subject?: string; body?: string }[] } }
    const mails = data.ses?.Message ?? []
    const hooks = webhook.accepted()
    expect(hooks.length).toBeGreaterThanOrEqual(2)
    expect(mails.length).toBe(hooks.length)
    expect(hooks.some((m) => m.event === 'ansai.incident.resolved.v1')).toBe(true)
    expect(mails.some((m) => /RESOLVED/.test(m.subject ?? ''))).toBe(true)
    expect(mails.map((m) => m.body ?? '').join('\n')).toContain('disk-cleanup')
    expect(webhook.requests.every((r) => r.verdict === 'ok')).toBe(true)

    // 7. ANSAI's events reached its bus (a user's rule took them into a queue).
    const tapped = (await peekQueue(res.sqs, eventsTap)).map((m) => JSON.parse(m.Body!)['detail-type'])
    expect(tapped).toEqual(
      expect.arrayContaining(['ansai.incident.opened.v1', 'ansai.fix.verified.v1', 'ansai.incident.resolved.v1']),
    )
  })

  it('a poison message ends in the DLQ with its error logged, and never blocks the rest of its batch', async () => {
    const ingest = createIngestHandler(composeIngest(opts), obs('ingest-reports'))
    const logged: string[] = []
    const streams = [process.stdout, process.stderr]
    const writes = streams.map((s) => s.write.bind(s))
    streams.forEach((s, i) => {
      s.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
        logged.push(String(chunk))
        return writes[i]!(chunk, ...rest)
      }) as typeof s.write
    })
    try {
      await res.sqs.send(
        new SendMessageCommand({ QueueUrl: res.queues.reports, MessageBody: '{"schema":"ansai.report.v1","host":' }),
      )
      const good = { schema: 'ansai.report-batch.v1', reason: 'heartbeat', reports: [report([fs('/', 62)])] }
      await res.sqs.send(new SendMessageCommand({ QueueUrl: res.queues.reports, MessageBody: JSON.stringify(good) }))
      const out = await pumpQueue(res.sqs, res.queues.reports, ingest, { senderIdOf: () => ROLE_SESSION(HOST.id) })
      expect(out.succeeded).toBe(1)
      expect(out.failed).toBe(TEST_MAX_RECEIVE_COUNT)
    } finally {
      streams.forEach((s, i) => {
        s.write = writes[i]!
      })
    }
    const dlq = await peekQueue(res.sqs, res.queues.reportsDlq)
    expect(dlq.map((m) => m.Body)).toEqual(['{"schema":"ansai.report.v1","host":'])
    expect(logged.join('')).toMatch(/InvalidReportError[\s\S]*report is not JSON/)
  })

  it('rejects and audits a report sent with another instance’s credentials', async () => {
    const ingest = createIngestHandler(composeIngest(opts), obs('ingest-reports'))
    const spoofed = {
      schema: 'ansai.report-batch.v1',
      reason: 'change',
      reports: [{ ...report([fs('/', 99)]), host: { id: OTHER, hostname: 'db-1', tags: {} } }],
    }
    const event: SQSEvent = {
      Records: [
        {
          messageId: 'spoof-1',
          receiptHandle: 'r',
          body: JSON.stringify(spoofed),
          attributes: {
            ApproximateReceiveCount: '1',
            SentTimestamp: String(clock),
            SenderId: ROLE_SESSION(HOST.id),
            ApproximateFirstReceiveTimestamp: String(clock),
          },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:ansai-reports',
          awsRegion: 'us-east-1',
        },
      ],
    }
    expect(await ingest(event, lambdaContext('ingest-reports'))).toEqual({ batchItemFailures: [] })
    const store = new DynamoDbFleetStore({ client: createDynamoDbClient(moto!.clientConfig), tableName: res.table })
    expect(await store.getHostState(OTHER)).toBeUndefined()
    const audit = await store.listAudit({ hostId: OTHER, limit: 5 })
    expect(audit.map((a) => a.kind)).toEqual(['error'])
    expect(JSON.stringify(audit[0]!.data)).toContain(ROLE_SESSION(HOST.id))
  })

  it('refuses malicious params before SendCommand', async () => {
    const dispatch = createDispatchHandler(composeDispatch(opts), obs('dispatch-remediation'))
    const ssm = new SSMClient(moto!.clientConfig)
    const before = ((await ssm.send(new ListCommandsCommand({}))).Commands ?? []).length
    const evil = {
      key: 'r-00000000deadbeef',
      host: HOST.id,
      policy: 'root-disk',
      resource: '/',
      incidentId: 'inc-0000000000000001',
      severity: 'critical',
      at: now().toISOString(),
      type: 'remediate',
      step: 0,
      attempt: 1,
      remediation: 'disk-cleanup',
      params: { roots: ['/var/log$(reboot)'], logsOlderThan: '30d' },
      risk: 'destructive',
      dryRun: false,
      verifyBy: now().toISOString(),
      reason: 'test',
    }
    await res.sqs.send(
      new SendMessageCommand({
        QueueUrl: res.queues.actions,
        MessageBody: JSON.stringify(evil),
        MessageGroupId: HOST.id,
        MessageDeduplicationId: evil.key,
      }),
    )
    expect(await pumpQueue(res.sqs, res.queues.actions, dispatch)).toMatchObject({ succeeded: 1, failed: 0 })
    expect(((await ssm.send(new ListCommandsCommand({}))).Commands ?? []).length).toBe(before)
    const store = new DynamoDbFleetStore({ client: createDynamoDbClient(moto!.clientConfig), tableName: res.table })
    const action = await store.getAction(evil.key)
    expect(action?.result?.status).toBe('failed')
    expect(action?.result?.error).toMatch(
      /refused before SendCommand: roots: .*refused by the document's allowedPattern/,
    )
  })
})
