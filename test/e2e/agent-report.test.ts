/**
 * `ansai-agent report` in the fleet shape, the real CLI against moto_server's SQS: the first report goes out at once
 * (nothing sent yet), quiet minutes are spooled for the heartbeat, a change of policy state goes out at once with the
 * spooled samples, and an unreachable queue keeps everything spooled (exit 75) until it is back. Every send also
 * carries the reports sent within `fleet.resendMinutes` (90m by default) again, as context.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ReportBatchV1 } from '../../shared/contracts/index.ts'
import { ANSAI_AGENT_CLI, runAnsai } from '../support/ansai-cli.ts'
import { type MotoServer, startMotoOrSkip } from '../support/moto.ts'
import { reportBatchOfBody } from '../support/report-bodies.ts'

const moto: MotoServer | undefined = await startMotoOrSkip()
afterAll(() => moto?.stop())

const HOST_ID = 'i-0123456789abcdef0'

describe.skipIf(!moto)('ansai-agent report to the fleet', () => {
  let dir: string
  let sqs: SQSClient
  let queueUrl: string
  let metrics: string
  const env = () => ({
    AWS_ENDPOINT_URL: moto!.endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_EC2_METADATA_DISABLED: 'true',
  })
  const writeConfig = (url: string) => {
    const config = join(dir, 'config.yaml')
    writeFileSync(
      config,
      `host: { id: ${HOST_ID}, tags: { role: web } }
policies:
  builtin: false
  paths: [${join(dir, 'policies')}]
probes:
  services: { units: [], failedAny: false }
  filesystems: { enabled: false }
  memory: { enabled: false }
  certificates: { files: [] }
  cron: { enabled: false }
  packages: { enabled: false }
  containers: { enabled: false }
  custom: { enabled: true, dir: ${metrics} }
state: { dir: ${join(dir, 'state')} }
fleet:
  reportsQueueUrl: ${url}
  region: us-east-1
  heartbeat: 15m
`,
    )
    return config
  }
  const setQueueDepth = (value: number) => writeFileSync(join(metrics, 'queue-depth.value'), `${value}\n`)
  /** The reports waiting in the spool (it also holds `sent/`: the sent ones kept for resending). */
  const spooled = () => readdirSync(join(dir, 'state', 'spool')).filter((f) => f.endsWith('.json'))
  const report = (config: string, ...args: string[]) =>
    runAnsai(['report', '--json', '--config', config, ...args], { cli: ANSAI_AGENT_CLI, env: env() })
  const received = async (): Promise<ReportBatchV1[]> => {
    const out: ReportBatchV1[] = []
    for (;;) {
      const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }))
      if (!r.Messages?.length) return out
      for (const m of r.Messages) {
        out.push(reportBatchOfBody(m.Body!))
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }))
      }
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ansai-report-'))
    metrics = join(dir, 'metrics')
    mkdirSync(metrics)
    mkdirSync(join(dir, 'policies'))
    writeFileSync(
      join(dir, 'policies', 'queue.yaml'),
      `apiVersion: ansai/v1
kind: Policy
metadata: { name: queue-backlog }
spec:
  observe: custom
  match: { name: queue-depth }
  severity:
    critical: { when: "value > 1000.0" }
  remediate:
    - escalate: page
`,
    )
    sqs = new SQSClient(moto!.clientConfig)
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'ansai-reports' }))).QueueUrl!
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('sends the first report, spools quiet ones, and sends a change at once with what was spooled', async () => {
    const config = writeConfig(queueUrl)
    setQueueDepth(10)
    const first = await report(config)
    expect(first.code, first.err).toBe(0)
    expect(JSON.parse(first.out)).toMatchObject({ host: HOST_ID, reason: 'heartbeat', drain: { sentReports: 1 } })
    const [batch] = await received()
    expect(batch!.reports.map((r) => [r.host.id, r.host.tags.role])).toEqual([[HOST_ID, 'web']])
    expect(batch!.reports[0]!.observations).toEqual([
      expect.objectContaining({ kind: 'custom', name: 'queue-depth', value: 10 }),
    ])

    for (let i = 0; i < 2; i++) {
      const quiet = await report(config)
      expect(JSON.parse(quiet.out).reason).toBeUndefined()
    }
    expect(await received()).toEqual([])
    expect(spooled()).toHaveLength(2)

    setQueueDepth(5000)
    const change = JSON.parse((await report(config)).out)
    expect(change.reason).toBe('change')
    expect(change.changes).toContain('queue-backlog/queue-depth: ok → critical')
    expect(change.drain).toMatchObject({ sentReports: 3, contextReports: 1 })
    const [sent] = await received()
    expect(sent!.reason).toBe('change')
    // The first report (already sent) comes again first, as context; then the spooled ones and the change.
    expect(sent!.reports.map((r) => r.observations[0])).toEqual([
      expect.objectContaining({ value: 10 }),
      expect.objectContaining({ value: 10 }),
      expect.objectContaining({ value: 10 }),
      expect.objectContaining({ value: 5000 }),
    ])
    expect(sent!.reports.map((r) => r.seq)).toEqual([...sent!.reports.map((r) => r.seq)].sort((a, b) => a - b))
  })

  it('keeps reports spooled while the queue is unreachable (exit 75) and sends them all once it is back', async () => {
    const down = writeConfig('http://127.0.0.1:9/123456789012/ansai-reports')
    setQueueDepth(10) // back to ok: a change, so this run tries at once
    const failed = await report(down)
    expect(failed.code).toBe(75)
    expect(failed.err).toMatch(/did not take the reports \(kept, 1 spooled\)/)
    const again = await report(down) // a change not sent yet is tried again at every run
    expect(again.code).toBe(75)
    expect(spooled()).toHaveLength(2)
    expect(readdirSync(join(dir, 'state', 'spool', 'sent'))).toHaveLength(4) // nothing moved while it failed

    const up = writeConfig(queueUrl)
    const back = await report(up)
    expect(back.code, back.err).toBe(0)
    expect(JSON.parse(back.out)).toMatchObject({
      reason: 'change',
      drain: { sentReports: 3, left: 0, contextReports: 4 },
    })
    const seqs = (await received()).flatMap((b) => b.reports.map((r) => r.seq))
    // The 4 sent before, again, then the 3 kept while the queue was away: each once, in order.
    expect(seqs).toHaveLength(7)
    expect(seqs).toEqual([...new Set(seqs)].sort((x, y) => x - y))
    expect(spooled()).toEqual([])
    expect(readdirSync(join(dir, 'state', 'spool', 'sent'))).toHaveLength(7)
  })

  it('says clearly what is missing when the host has no instance id', async () => {
    const config = writeConfig(queueUrl)
    writeFileSync(config, (await import('node:fs')).readFileSync(config, 'utf8').replace(`id: ${HOST_ID}, `, ''))
    const r = await report(config)
    expect(r.code).not.toBe(0)
    expect(r.err).toMatch(/no SSM instance id[^\n]*set host\.id/)
  })
})
