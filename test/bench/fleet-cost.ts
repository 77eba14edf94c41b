/**
 * Fleet cost, counted for real: the real handlers (middy + Powertools + batch processing), composed as in Lambda
 * (functions/platform/compose.ts) from the example fleet config (infra/fleet.example.yaml: the baseline pack and
 * web.yaml, 16 shards, email + webhook channels), with the real AWS SDK v3 against moto_server, and SDK middleware on
 * every client that counts what AWS bills (./fleet-meter.ts). Lambda's SQS event source mapping is played by
 * `pumpQueue` (moto does not run it); the EventBridge Scheduler and the SSM status rule by direct invocations.
 *
 * Scenarios, each on fresh resources:
 * - a steady healthy host for one simulated hour after a 75-minute warm-up, with the scheduled round as deployed
 *   (every 10 minutes): `default` (60 s local sampling, changes at once, 15-minute heartbeat: 4 batches of 15
 *   reports) and `every-sample` (60 batches of 1 report);
 * - an empty round (the fixed part of every round: plan + 16 shard messages);
 * - one fix: a disk fills → disk-cleanup through SSM → the result recorded → the next report verifies it → resolved,
 *   people told by SES and a signed webhook; then the daily digest.
 *
 * The scenarios deliver one message per receive (one host); the month for `hosts` hosts models the reports event
 * source's batching window ({@link withReportBatches}).
 */

import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { brotliDecompressSync } from 'node:zlib'
import type { Message } from '@aws-sdk/client-sqs'
import type { Context, EventBridgeEvent, SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { createSqsClient, createSsmClient } from '../../functions/adapters/aws-clients.ts'
import { SqsReportSender } from '../../functions/adapters/sqs-queues.ts'
import { SsmCommandRunner } from '../../functions/adapters/ssm-command-runner.ts'
import { decodeState } from '../../functions/adapters/state-codec.ts'
import { createDispatchHandler } from '../../functions/dispatch-remediation/app.ts'
import { createEvaluateFleetHandler } from '../../functions/evaluate-fleet/app.ts'
import { createIngestHandler } from '../../functions/ingest-reports/app.ts'
import {
  type ComposeOptions,
  composeDispatch,
  composeEvaluateFleet,
  composeIngest,
  composeRecordCommandResult,
  composeSendDigest,
  composeSendNotifications,
} from '../../functions/platform/compose.ts'
import { compileFleetPolicies } from '../../functions/platform/env.ts'
import { createObservability } from '../../functions/platform/observability.ts'
import type { FleetRuntimeConfig } from '../../functions/platform/runtime-config.ts'
import { createRecordCommandResultHandler } from '../../functions/record-command-result/app.ts'
import { createSendDigestHandler } from '../../functions/send-digest/app.ts'
import { createSendNotificationsHandler } from '../../functions/send-notifications/app.ts'
import { loadFleetConfig } from '../../infra/config.ts'
import { FUNCTION_SPECS } from '../../infra/layout.ts'
import type { RemediationResultV1 } from '../../shared/contracts/index.ts'
import { parseDuration } from '../../shared/engine/duration.ts'
import type {
  CommandInvocation,
  CommandRequest,
  CommandRunner,
  FleetStore,
  PingStatus,
} from '../../shared/ports/fleet.ts'
import { SSM_KEY_PARAMETER } from '../../shared/registry/ssm.ts'
import {
  createFleetResources,
  createSecret,
  type FleetResources,
  lambdaContext,
  pumpQueue,
  verifySesIdentity,
} from '../support/fleet-harness.ts'
import { type MotoServer, startMoto } from '../support/moto.ts'
import { newWebhookSecret, startWebhookReceiver } from '../support/notify-receivers.ts'
import { findHealthyHost, HEARTBEAT_MS, SAMPLE_MS, type SendMode, SimHost } from './fleet-agent.ts'
import { FleetMeter } from './fleet-meter.ts'
import {
  addTo,
  get,
  HOURS_PER_MONTH,
  PRICES,
  priceUsage,
  SERVICES,
  type Service,
  sumUsage,
  totalOf,
  tracesPerMonth,
  type Usage,
} from './fleet-prices.ts'

const EXAMPLE_CONFIG = fileURLToPath(new URL('../../infra/fleet.example.yaml', import.meta.url))
const MIN = 60_000
/** The scheduled round as the example fleet config (and the default) deploys it. */
const ROUND_MS = parseDuration(loadFleetConfig(EXAMPLE_CONFIG).config.schedules.evaluate)
const ROUNDS_PER_HOUR = 3_600_000 / ROUND_MS
const ROUNDS_PER_MONTH = HOURS_PER_MONTH * ROUNDS_PER_HOUR
const DIGESTS_PER_MONTH = HOURS_PER_MONTH / 24
const WARMUP_MINUTES = 75
const EMPTY_ROUNDS = 6
/** Hosts added for the round measurement (with the steady host: 3 per shard). */
const ROUND_HOSTS = 47
const FROM = 'ansai@example.org'
const ROLE_SESSION = (host: string) => `AROAEXAMPLEHOSTROLE:${host}`

/** The bench's hold of a "fix started" message, seconds (deployed: notifications.holdFixStarted, 2 minutes). */
const FIX_HOLD_S = 4

/** Assumption: fixes per host per month (a disk cleanup, a service restart, ...). */
export const FIXES_PER_HOST_MONTH = 2

/**
 * Assumption for the event source mappings' idle polling: each SQS event source keeps 5 pollers long-polling (20 s),
 * so at most 15 empty ReceiveMessage a minute per queue; 4 queues (3 standard, the FIFO actions queue).
 */
export const ESM_POLLERS = 5
export const ESM_EMPTY_RECEIVES_PER_MONTH = ESM_POLLERS * 3 * 60 * HOURS_PER_MONTH

export type Variant = 'default' | 'every-sample'

/** The reports queue (test/support/fleet-harness.ts names it as the stack does) and its event source's batch size. */
export const REPORTS_QUEUE = 'ansai-reports'
export const REPORTS_BATCH_SIZE = 10

/**
 * The reports event source's maximum batching window, seconds, as infra/control-plane-stack.ts sets it
 * (`EVENT_SOURCES.reports.maxBatchingWindowSeconds`; read from its source, since that table is not exported).
 */
export const reportsBatchingWindow = (): { seconds: number; from: string } => {
  const file = new URL('../../infra/control-plane-stack.ts', import.meta.url)
  const m = /\breports:\s*\{[^}]*maxBatchingWindowSeconds:\s*(\d+(?:\.\d+)?)/.exec(readFileSync(file, 'utf8'))
  return m
    ? { seconds: Number(m[1]), from: 'infra/control-plane-stack.ts EVENT_SOURCES.reports' }
    : { seconds: 0, from: 'none found in infra/control-plane-stack.ts: no window' }
}

/**
 * Messages per receive (and per delete and invocation) on the reports queue with a batching window of `windowSeconds`
 * at `messagesPerSecond`: the messages that arrive during one window, at least 1, at most the batch size. A model,
 * not a measurement: it takes one poller gathering the window's messages (with several pollers splitting them the
 * batches are smaller, down to 1 message per receive, as measured).
 */
export const messagesPerBatch = (messagesPerSecond: number, windowSeconds: number): number =>
  Math.min(REPORTS_BATCH_SIZE, Math.max(1, messagesPerSecond * windowSeconds))

/**
 * A usage measured at one message per receive on the reports queue, with its consumer side as batches of `perBatch`
 * messages: receives (each billed per 64 KB of the messages it returns), DeleteMessageBatch calls and ingest-reports
 * invocations per message divided by `perBatch`, with the ingest invocation's log bytes (Lambda's lines and the one
 * EMF line per invocation; the per-report lines are at DEBUG) likewise. Lambda ms per message are kept as measured
 * (a batch would share the per-invocation overhead: conservative). The agent's sends do not change.
 */
export const withReportBatches = (u: Usage, perBatch: number, share?: IngestShare): Usage => {
  const out: Usage = new Map(u)
  const q = `sqs.queue.${REPORTS_QUEUE}`
  const messages = get(u, `${q}.messages`)
  if (messages === 0 || perBatch === 1) return out
  const set = (key: string, value: number, ...totals: string[]): void => {
    const delta = value - get(out, key)
    out.set(key, value)
    for (const t of totals) out.set(t, get(out, t) + delta)
  }
  const bytesPerMessage = get(u, `${q}.receiveBytes`) / messages
  const batches = messages / perBatch
  const chunks = Math.max(1, Math.ceil((perBatch * bytesPerMessage) / PRICES.sqs.billedChunkBytes))
  set(`${q}.receive`, batches * chunks, 'sqs.standard', 'sqs.standard.receive')
  set(`${q}.delete`, batches, 'sqs.standard', 'sqs.standard.delete')
  const invocations = get(u, 'lambda.ingest-reports.requests')
  if (invocations > 0) {
    const factor = batches / invocations
    set('lambda.ingest-reports.requests', batches, 'lambda.requests')
    set('logs.ingest-reports.bytes', get(u, 'logs.ingest-reports.bytes') * factor, 'logs.bytes')
    const shared = ingestShareFactor(share, perBatch)
    set('lambda.ingest-reports.ms', get(u, 'lambda.ingest-reports.ms') * shared, 'lambda.ms')
    set('lambda.ingest-reports.cpuMs', get(u, 'lambda.ingest-reports.cpuMs') * shared, 'lambda.cpuMs')
  }
  return out
}

/** The functions infra/layout.ts traces actively (the others pass through). */
export const ACTIVELY_TRACED = Object.entries(FUNCTION_SPECS)
  .filter(([, spec]) => spec.tracing === 'active')
  .map(([name]) => name)
/** X-Ray traces recorded in a month of `all`: the actively traced functions only. */
export const xrayTracesOf = (all: Usage): number =>
  ACTIVELY_TRACED.reduce((n, fn) => n + tracesPerMonth(get(all, `lambda.${fn}.requests`)), 0)

export interface HourResult {
  variant: Variant
  mode: SendMode
  /** Usage of the hour: the host's batches (agent send + ingest + what follows) and the hour's rounds. */
  batch: Usage
  round: Usage
  /** The fixed part of one round (an empty table), the mean of several. */
  round0: Usage
  batches: number
  reports: number
  /** Bytes of the host's state item at the end (as DynamoDB counts them), of its state JSON, and of the state as
   * stored in the item (Brotli in `dataZ`, or the JSON in `data` when small). */
  stateItemBytes: number
  stateJsonBytes: number
  stateStoredBytes: number
  /** Mean measured ms of one ingest invocation in this hour. */
  ingestMs: number
  ingestCpuMs: number
  /** What one host adds to a round (a round over `roundHosts` hosts against the empty round): ms and RRU. */
  roundMsPerHost?: number
  roundCpuMsPerHost?: number
  roundRruPerHost?: number
  roundHosts?: number
  /**
   * ingest-reports' ms per invocation with one message and with `k` messages of as many hosts (quiet heartbeats, the
   * shape of the steady hour's): what a batch shares (the per-invocation part: middy, Powertools, the flush).
   */
  ingestShare?: IngestShare
}

export interface IngestShare {
  k: number
  ms1: number
  msK: number
}

/**
 * The factor on ingest-reports' ms per message when the event source delivers `perBatch` messages an invocation,
 * from {@link IngestShare}: (m + o / perBatch) / (m + o), m the ms a message adds, o the per-invocation part.
 */
export const ingestShareFactor = (share: IngestShare | undefined, perBatch: number): number => {
  if (!share || perBatch <= 1 || share.k <= 1) return 1
  const perMessage = Math.max(0, (share.msK - share.ms1) / (share.k - 1))
  const overhead = Math.max(0, share.ms1 - perMessage)
  return perMessage + overhead === 0 ? 1 : (perMessage + overhead / perBatch) / (perMessage + overhead)
}

export interface Monthly {
  variant: Variant
  hosts: number
  /** Per host per month (variable). */
  perHost: Usage
  /** Fixed per deployment per month. */
  fixed: Usage
  byService: Record<Service | 'X-Ray' | 'CloudWatch metrics', number>
  perHostByService: Record<Service, number>
  /** Fixed per deployment (X-Ray is not: it grows with invocations up to the reservoir's cap). */
  fixedByService: Record<Service | 'CloudWatch metrics', number>
  total: number
  xrayTraces: number
  /** The reports event source's batching window as modelled for `hosts` hosts. */
  batching: { windowSeconds: number; messagesPerSecond: number; perBatch: number }
  /** Per host per month before that model (one message per receive, as measured). */
  perHostMeasured: Usage
}

export interface CostResult {
  moto: string
  hours: HourResult[]
  fix: Usage
  digest: Usage
  fixTimeline: { step: string; ms: number }[]
  /** In-process time from the agent's SendMessage of the faulty sample to SSM SendCommand (harness included). */
  faultToCommandMs: number
  /** The functions' own time on that path: the ingest and the dispatch invocations. */
  faultPathMs: number
  /** WARN/ERROR lines the functions logged (fn: message). */
  problems: string[]
  /** Mean latency of each SDK operation against moto (metered phases). */
  latency: { op: string; n: number; meanMs: number }[]
  monthly: Monthly[]
  /** Custom metrics billed for the month (metric-months: a metric with data in half the hours counts ½). */
  customMetrics: number
  /** The EMF metrics the functions emitted in the scenarios. */
  metricsSeen: string[]
  coverage: { metered: number; http: number; clients: number }
  lambda: { fn: string; scope: string; invocations: number; meanMs: number; meanCpuMs: number }[]
  storagePerHostBytes: number
}

const setEnv = (vars: Record<string, string | undefined>): (() => void) => {
  const before: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(vars)) {
    before[k] = process.env[k]
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
  }
  return () => setEnv(before)
}

/**
 * The host side of SSM Run Command (moto runs nothing): the agent's result line for the decision, as printed. And
 * SSM's ping status, answered here: moto 5.2 fails DescribeInstanceInformation filtered by instance ids (HTTP 500),
 * so the calls the adapter would make (50 hosts each) are counted instead (SSM APIs carry no charge).
 */
class CannedHostRunner implements CommandRunner {
  readonly outputs = new Map<string, string>()
  sentAt: number | undefined
  private readonly ssm: CommandRunner
  /** A closure, not the meter itself: the meter's own unmetered client must stay out of reach of `instrument`. */
  private readonly count: (key: string, n: number) => void
  constructor(ssm: CommandRunner, count: (key: string, n: number) => void) {
    this.ssm = ssm
    this.count = count
  }
  async send(request: CommandRequest): Promise<{ commandId: string }> {
    const sent = await this.ssm.send(request)
    this.sentAt ??= performance.now()
    const key = request.parameters[SSM_KEY_PARAMETER] ?? ''
    const now = new Date().toISOString()
    const result: RemediationResultV1 = {
      schema: 'ansai.remediation-result.v1',
      key,
      remediation: 'disk-cleanup',
      host: request.host,
      status: 'succeeded',
      dryRun: false,
      startedAt: now,
      finishedAt: now,
      durationMs: 850,
      summary: 'removed 212 rotated logs older than 30 days and the package cache: 7.9 GiB',
      bytesRecovered: { logs: 6_442_450_944, packageCache: 2_040_109_465 },
      items: ['/var/log/app/app.log.31.gz', '/var/log/app/app.log.32.gz', '/var/cache/apt/archives'],
      itemsTotal: 213,
      evidence: { usedPercentBefore: 96, usedPercentAfter: 88 },
    }
    this.outputs.set(sent.commandId, `${JSON.stringify(result)}\n`)
    return sent
  }
  async getInvocation(commandId: string, host: string): Promise<CommandInvocation> {
    const inv = await this.ssm.getInvocation(commandId, host)
    const out = this.outputs.get(commandId)
    return out ? { ...inv, stdout: out, stderr: '', responseCode: 0, status: 'Success' } : inv
  }
  async pingStatus(hosts: readonly string[]): Promise<Record<string, PingStatus>> {
    const calls = Math.ceil(new Set(hosts).size / 50)
    this.count('call.SSM.DescribeInstanceInformation', calls)
    this.count('ssm.calls', calls)
    return Object.fromEntries(hosts.map((h) => [h, 'Online' as const]))
  }
}

type Handler<E, R = unknown> = (event: E, context: Context) => Promise<R>

interface Fleet {
  res: FleetResources
  meter: FleetMeter
  runner: CannedHostRunner
  ingest: Handler<SQSEvent, SQSBatchResponse>
  evaluate: Handler<unknown>
  dispatch: Handler<SQSEvent, SQSBatchResponse>
  record: Handler<EventBridgeEvent<string, unknown>>
  notify: Handler<SQSEvent, SQSBatchResponse>
  digest: Handler<unknown>
  agentSender: SqsReportSender
  /** The functions' store (unmetered reads for the bench's own checks go through it only while not counting). */
  store: FleetStore
  policies: ReturnType<typeof compileFleetPolicies>
  clients: number
  /** The functions' clock. */
  setNow: (ms: number | undefined) => void
  close: () => Promise<void>
}

/** Fresh resources in moto and the six handlers, composed once (a cold start each), every client metered. */
const startFleet = async (moto: MotoServer, config: FleetRuntimeConfig, webhookUrl?: string): Promise<Fleet> => {
  await moto.reset()
  const res = await createFleetResources(moto)
  await verifySesIdentity(moto, FROM)
  const secret = newWebhookSecret()
  const secretArn = await createSecret(moto, 'ansai/ops-webhook', secret)
  const receiver = webhookUrl ? undefined : await startWebhookReceiver(secret)
  const channels = {
    ...config.channels,
    'ops-webhook': { type: 'webhook' as const, url: webhookUrl ?? receiver!.url, secretArn },
  }
  const cfg: FleetRuntimeConfig = { ...config, channels }
  let simNow: number | undefined
  const opts: ComposeOptions = {
    env: res.env,
    config: cfg,
    clientConfig: moto.clientConfig,
    clock: () => new Date(simNow ?? Date.now()),
  }
  const meter = new FleetMeter({ clientConfig: moto.clientConfig, tableName: res.table })
  const runner = new CannedHostRunner(new SsmCommandRunner({ client: createSsmClient(moto.clientConfig) }), (k, n) =>
    meter.add(k, n),
  )
  const deps = {
    ingest: composeIngest(opts),
    evaluate: { ...composeEvaluateFleet(opts), commands: runner },
    dispatch: { ...composeDispatch(opts), commands: runner },
    record: { ...composeRecordCommandResult(opts), commands: runner },
    notify: composeSendNotifications(opts),
    digest: composeSendDigest(opts),
  }
  const clients = meter.instrument(deps, 'functions')
  meter.instrument(res.sqs, 'esm')
  const agentSqs = createSqsClient(moto.clientConfig)
  meter.instrument(agentSqs, 'agent')
  const obs = (name: string) => createObservability(name)
  return {
    res,
    meter,
    runner,
    ingest: meter.lambda('ingest-reports', createIngestHandler(deps.ingest, obs('ingest-reports'))),
    evaluate: meter.lambda('evaluate-fleet', createEvaluateFleetHandler(deps.evaluate, obs('evaluate-fleet'))),
    dispatch: meter.lambda('dispatch-remediation', createDispatchHandler(deps.dispatch, obs('dispatch-remediation'))),
    record: meter.lambda(
      'record-command-result',
      createRecordCommandResultHandler(deps.record, obs('record-command-result')),
    ),
    notify: meter.lambda('send-notifications', createSendNotificationsHandler(deps.notify, obs('send-notifications'))),
    digest: meter.lambda('send-digest', createSendDigestHandler(deps.digest, obs('send-digest'))),
    agentSender: new SqsReportSender({ client: agentSqs, queueUrl: res.queues.reports }),
    store: deps.ingest.store,
    policies: compileFleetPolicies(cfg),
    clients: clients + 2,
    setNow: (ms) => {
      simNow = ms
    },
    close: async () => {
      meter.close()
      await receiver?.close()
    },
  }
}

const senderIdOf = (m: Message) => ROLE_SESSION(m.MessageAttributes?.host?.StringValue ?? '')

/** Lambda's event source mappings: every queue drained, in causal order, until nothing is left. */
const drain = async (f: Fleet, queues: ('reports' | 'evaluations' | 'actions' | 'notifications')[]): Promise<void> => {
  const q = f.res.queues
  for (let pass = 0; pass < 10; pass++) {
    let n = 0
    if (queues.includes('reports')) n += (await pumpQueue(f.res.sqs, q.reports, f.ingest, { senderIdOf })).invocations
    if (queues.includes('evaluations')) n += (await pumpQueue(f.res.sqs, q.evaluations, f.evaluate)).invocations
    if (queues.includes('actions')) n += (await pumpQueue(f.res.sqs, q.actions, f.dispatch)).invocations
    if (queues.includes('notifications')) n += (await pumpQueue(f.res.sqs, q.notifications, f.notify)).invocations
    if (n === 0) return
  }
}

const ALL = ['reports', 'evaluations', 'actions', 'notifications'] as const

/** A scheduled round: Scheduler invokes evaluate-fleet, which fans out one message per shard. */
const round = async (f: Fleet, atMs: number): Promise<void> => {
  f.setNow(atMs)
  f.meter.add('scheduler.invocations', 1)
  await f.evaluate({ scheduledTime: new Date(atMs).toISOString() }, lambdaContext('evaluate-fleet'))
  await drain(f, [...ALL])
}

/** One simulated hour of a steady host (after the warm-up), rounds included; and the fixed part of a round. */
const steadyHour = async (
  moto: MotoServer,
  config: FleetRuntimeConfig,
  variant: Variant,
  mode: SendMode,
  hostIndex: number,
  log: (s: string) => void,
  roundHosts = 0,
): Promise<{ hour: HourResult; fleet: Fleet }> => {
  const f = await startFleet(moto, config, 'http://127.0.0.1:9/unused')
  const { meter } = f
  // Aligned to the Scheduler's 5-minute marks; the last sample lands before now (SQS stamps messages with now).
  const t0 = Math.floor((Date.now() - (WARMUP_MINUTES + 70) * MIN) / ROUND_MS) * ROUND_MS
  if (t0 + (WARMUP_MINUTES + 60) * MIN > Date.now())
    throw new Error('fleet bench: the simulated hour would end in the future')
  // One round uncounted (code warm, as in a warm container), then the fixed part of a round (empty table): the mean
  // of EMPTY_ROUNDS rounds.
  await round(f, t0 - (EMPTY_ROUNDS + 1) * ROUND_MS)
  meter.counting = true
  meter.scope = 'round0'
  for (let k = EMPTY_ROUNDS; k >= 1; k--) await round(f, t0 - k * ROUND_MS)
  meter.counting = false
  const host = new SimHost(hostIndex, f.policies, f.agentSender, mode)
  const step = async (m: number): Promise<void> => {
    const at = t0 + m * MIN
    if (at % ROUND_MS === 0) {
      meter.scope = 'round'
      await round(f, at)
    }
    meter.scope = 'batch'
    f.setNow(at + SAMPLE_MS / 2)
    if (await host.sample(at + SAMPLE_MS / 2)) await drain(f, ['reports', 'actions', 'notifications'])
  }
  for (let m = 0; m < WARMUP_MINUTES; m++) await step(m)
  const sentBefore = host.sent.length
  const reportsBefore = host.freshSent
  const invBefore = meter.invocations.length
  meter.counting = true
  for (let m = WARMUP_MINUTES; m < WARMUP_MINUTES + 60; m++) await step(m)
  meter.counting = false
  await meter.settle()
  const ingests = meter.invocations.slice(invBefore).filter((i) => i.fn === 'ingest-reports' && i.scope === 'batch')
  // What a host adds to a round, measured where a round's per-shard work (one index query, one batch read per 100
  // hosts) is shared as at fleet scale: a fleet of one shard (1,000 hosts in 16 shards are 63 a shard), its empty
  // round first, then the round over `roundHosts` + 1 hosts, each warmed by one message of its last 75 minutes.
  let roundMsPerHost: number | undefined
  let roundRruPerHost: number | undefined
  let roundCpuMsPerHost: number | undefined
  let ingestShare: IngestShare | undefined
  if (roundHosts > 0) {
    const g = await startFleet(moto, { ...config, shards: 1 }, 'http://127.0.0.1:9/unused')
    const end = t0 + (WARMUP_MINUTES + 60) * MIN
    await round(g, end - 10 * ROUND_MS)
    g.meter.counting = true
    g.meter.scope = 'round0'
    for (let k = EMPTY_ROUNDS; k >= 1; k--) await round(g, end - (k + 2) * ROUND_MS)
    g.meter.counting = false
    g.setNow(end - 20_000)
    const hosts: SimHost[] = []
    for (let i = 0; i <= roundHosts; i++) {
      const other = new SimHost(hostIndex + i, g.policies, g.agentSender, mode)
      await other.catchUp(Array.from({ length: WARMUP_MINUTES }, (_, k) => end - (WARMUP_MINUTES - k) * MIN + 20_000))
      await drain(g, ['reports'])
      hosts.push(other)
    }
    await drain(g, [...ALL])
    await round(g, end - ROUND_MS) // unmetered: every host ticked once (code warm, as in a warm container)
    g.meter.counting = true
    g.meter.scope = 'roundN'
    await round(g, end)
    g.meter.counting = false
    await g.meter.settle()
    // ingest-reports with one message, and with K of K hosts at once: a quiet heartbeat each (8 new reports after
    // their context), as in the steady hour.
    const K = 6
    const at = (n: number) => Array.from({ length: 8 }, (_, k) => end + (n * 8 + k) * 20_000)
    const ms: Record<'one' | 'many', number[]> = { one: [], many: [] }
    for (const [n, size] of [
      [0, K],
      [1, 1],
      [2, K],
      [3, 1],
      [4, 1],
    ] as const) {
      for (let i = 0; i < size; i++) await hosts[(n * K + i) % hosts.length]!.catchUp(at(n))
      const before = g.meter.invocations.length
      g.meter.counting = true
      g.meter.scope = 'calibration'
      await pumpQueue(g.res.sqs, g.res.queues.reports, g.ingest, { senderIdOf, maxInvocations: 1 })
      g.meter.counting = false
      const inv = g.meter.invocations.slice(before).filter((i) => i.fn === 'ingest-reports')
      if (inv.length === 1) (size === 1 ? ms.one : ms.many).push(inv[0]!.ms)
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
    if (ms.one.length > 0 && ms.many.length > 0) ingestShare = { k: K, ms1: mean(ms.one), msK: mean(ms.many) }
    const r0 = sumUsage({ usage: g.meter.of('round0'), times: 1 / EMPTY_ROUNDS })
    const rn = g.meter.of('roundN')
    const n = roundHosts + 1
    roundMsPerHost = (get(rn, 'lambda.evaluate-fleet.ms') - get(r0, 'lambda.evaluate-fleet.ms')) / n
    // Queries by their bytes (a host's share of its shard's page), everything else as billed.
    const rru = (u: Usage) => get(u, 'ddb.rru') - get(u, 'ddb.rruQuery') + get(u, 'ddb.rruQueryExact')
    roundRruPerHost = (rru(rn) - rru(r0)) / n
    roundCpuMsPerHost = (get(rn, 'lambda.evaluate-fleet.cpuMs') - get(r0, 'lambda.evaluate-fleet.cpuMs')) / n
    await g.close()
  }
  const image = meter.imageOf(`HOST#${host.host.id}`, 'STATE')
  const packed = image?.st?.B ?? image?.dataZ?.B
  const unpacked = packed ? brotliDecompressSync(packed).toString('utf8') : (image?.data?.S ?? '')
  const stateJson = image?.st?.B ? JSON.stringify(decodeState(unpacked)) : unpacked
  const hour: HourResult = {
    variant,
    mode,
    batch: meter.of('batch'),
    round: meter.of('round'),
    round0: sumUsage({ usage: meter.of('round0'), times: 1 / EMPTY_ROUNDS }),
    batches: host.sent.length - sentBefore,
    reports: host.freshSent - reportsBefore,
    stateItemBytes: meter.sizeOf(`HOST#${host.host.id}`, 'STATE'),
    stateJsonBytes: Buffer.byteLength(stateJson),
    stateStoredBytes: packed ? packed.byteLength : Buffer.byteLength(stateJson),
    ingestMs: ingests.reduce((n, i) => n + i.ms, 0) / Math.max(1, ingests.length),
    ingestCpuMs: ingests.reduce((n, i) => n + i.cpuMs, 0) / Math.max(1, ingests.length),
    ...(roundMsPerHost !== undefined
      ? {
          roundMsPerHost,
          roundCpuMsPerHost: roundCpuMsPerHost!,
          roundRruPerHost: roundRruPerHost!,
          roundHosts: roundHosts + 1,
        }
      : {}),
    ...(ingestShare ? { ingestShare } : {}),
  }
  log(
    `  ${variant}: ${hour.batches} batches, ${hour.reports} reports, ${meter.invocations.length - invBefore} invocations in the hour`,
  )
  return { hour, fleet: f }
}

/** One fix end to end (real time: webhooks are signed with it), then the daily digest. */
const oneFix = async (
  moto: MotoServer,
  config: FleetRuntimeConfig,
  hostIndex: number,
  log: (s: string) => void,
): Promise<{
  fix: Usage
  digest: Usage
  timeline: { step: string; ms: number }[]
  faultToCommandMs: number
  faultPathMs: number
  f: Fleet
}> => {
  // The "fix started" message is held (2 minutes as deployed; here FIX_HOLD_S, real time): the fix resolves within it,
  // so the message is dropped when it comes due and the resolution message is the one people get.
  const cfg: FleetRuntimeConfig = {
    ...config,
    defaultChannels: ['ops-email', 'ops-webhook'],
    holdFixStarted: `${FIX_HOLD_S}s`,
  }
  const f = await startFleet(moto, cfg)
  const { meter } = f
  const host = new SimHost(hostIndex, f.policies, f.agentSender, 'default')
  // Warm-up ends with a heartbeat (minute 60), so the faulty sample goes out alone.
  const start = Date.now() - 66 * MIN
  for (let m = 0; m <= 60; m++) {
    if (await host.sample(start + m * MIN)) await drain(f, ['reports'])
  }
  const timeline: { step: string; ms: number }[] = []
  const t0 = performance.now()
  const mark = (step: string) => timeline.push({ step, ms: performance.now() - t0 })
  meter.counting = true
  meter.scope = 'fix'
  // The disk fills: the next sample sees / at 96 % (emergency: no debounce), the gate sends it at once.
  host.fault = (o) =>
    o.kind === 'filesystem' && o.mount === '/'
      ? { ...o, bytesUsed: Math.round(o.bytesTotal * 0.96), bytesAvailable: Math.round(o.bytesTotal * 0.04) }
      : o
  const sentAt = performance.now()
  const faulty = await host.sample(Date.now() - 2 * MIN)
  if (!faulty) throw new Error('fleet bench: the gate did not send the faulty sample at once')
  mark('faulty sample sent (change)')
  const firstInvocation = meter.invocations.length
  await drain(f, ['reports'])
  mark('ingest: incident opened, fix queued')
  await drain(f, ['actions'])
  const faultToCommandMs = (f.runner.sentAt ?? Number.NaN) - sentAt
  const faultPathMs = meter.invocations
    .slice(firstInvocation)
    .filter((i) => i.fn === 'ingest-reports' || i.fn === 'dispatch-remediation')
    .reduce((n, i) => n + i.ms, 0)
  mark('dispatch: SSM SendCommand')
  await drain(f, ['notifications'])
  mark('notifications: none due ("fix started" is held)')
  const [commandId] = [...f.runner.outputs.keys()]
  if (!commandId) throw new Error('fleet bench: no SSM command was sent for the full disk')
  const event: EventBridgeEvent<string, unknown> = {
    version: '0',
    id: 'ev-1',
    'detail-type': 'EC2 Command Invocation Status-change Notification',
    source: 'aws.ssm',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: [],
    detail: {
      'command-id': commandId,
      'instance-id': host.host.id,
      'document-name': 'ANSAI-CleanupDisk',
      status: 'Success',
    },
  }
  meter.add('eb.awsEvents', 1)
  await f.record(event, lambdaContext('record-command-result'))
  await drain(f, [...ALL])
  mark('record-command-result: verifying')
  // The agent re-collects after the fix and the gate sends the change (critical → ok) at once.
  host.fault = (o) => o
  await new Promise((r) => setTimeout(r, 5))
  const verifying = await host.sample(Date.now())
  if (!verifying) throw new Error('fleet bench: the gate did not send the verifying sample')
  await drain(f, [...ALL])
  mark('ingest: verified, resolved, people told')
  meter.counting = false
  // The bench's own check: the fix went the whole way (a fix that failed or escalated would be priced as a fix).
  const [incident] = await f.store.listIncidents({ hostId: host.host.id, status: 'all', limit: 1 })
  if (incident?.status !== 'resolved' || !incident.attempts.some((a) => a.status === 'verified'))
    throw new Error(
      `fleet bench: the fix did not end verified and resolved: ${JSON.stringify(incident)?.slice(0, 3000)}`,
    )
  meter.counting = true
  const due = sentAt + FIX_HOLD_S * 1000 + 300 - performance.now()
  if (due > 0) await new Promise((r) => setTimeout(r, due))
  await drain(f, ['notifications'])
  mark('the held "fix started" came due: dropped, the incident had resolved')
  meter.scope = 'digest'
  meter.add('scheduler.invocations', 1)
  await f.digest({}, lambdaContext('send-digest'))
  await drain(f, ['notifications'])
  mark('daily digest sent')
  meter.counting = false
  await meter.settle()
  const fix = meter.of('fix')
  log(
    `  fix: ${get(fix, 'lambda.requests')} invocations, ${get(fix, 'ses.emails')} emails, ${get(fix, 'call.SSM.SendCommand')} SSM command(s)`,
  )
  if (get(fix, 'call.SSM.SendCommand') !== 1) throw new Error('fleet bench: the fix did not send exactly one command')
  return { fix, digest: meter.of('digest'), timeline, faultToCommandMs, faultPathMs, f }
}

/**
 * The per-host usage of an hour: its batches and its part of the hour's rounds (the rounds' fixed part taken out; a
 * quantity that comes out below zero, within timing noise, counts 0). One host's milliseconds in a round are lost in
 * the noise of 16 shard invocations on a shared machine, so when the round is quiet for the host (nothing decided)
 * its Lambda time there is `tick` (what a host adds to a round, measured over 48 hosts) × 12.
 */
export const perHostHour = (h: HourResult, tick?: { ms: number; cpuMs: number; rru?: number }): Usage => {
  const rounds = sumUsage({ usage: h.round, times: 1 }, { usage: h.round0, times: -ROUNDS_PER_HOUR })
  for (const [k, v] of rounds) if (v < 0) rounds.set(k, 0)
  const quiet = get(rounds, 'ddb.wru') === 0
  if (tick && quiet) {
    const replace = (key: string, total: string, value: number) => {
      rounds.set(total, get(rounds, total) - get(rounds, key) + value)
      rounds.set(key, value)
    }
    replace('lambda.evaluate-fleet.ms', 'lambda.ms', ROUNDS_PER_HOUR * tick.ms)
    replace('lambda.evaluate-fleet.cpuMs', 'lambda.cpuMs', ROUNDS_PER_HOUR * tick.cpuMs)
    if (tick.rru !== undefined) {
      // One host alone in its shard pays a whole rounded unit for the shard's query: take its share of a page instead.
      for (const k of [...rounds.keys()]) if (k.startsWith('ddb.rru')) rounds.delete(k)
      rounds.set('ddb.rru', ROUNDS_PER_HOUR * tick.rru)
      rounds.set(
        "ddb.rru.round: a host's share (batch read + its bytes of the shard's query)",
        ROUNDS_PER_HOUR * tick.rru,
      )
    }
  }
  return sumUsage({ usage: h.batch, times: 1 }, { usage: rounds, times: 1 })
}

const esmIdle = (): Usage => {
  const u: Usage = new Map()
  addTo(u, 'sqs.standard', 3 * ESM_EMPTY_RECEIVES_PER_MONTH)
  addTo(u, 'sqs.fifo', ESM_EMPTY_RECEIVES_PER_MONTH)
  addTo(u, 'sqs.idle', 4 * ESM_EMPTY_RECEIVES_PER_MONTH)
  return u
}

export const monthly = (
  variant: Variant,
  perHostHourUsage: Usage,
  round0: Usage,
  fix: Usage,
  digest: Usage,
  customMetrics: number,
  hosts = 1000,
  share?: IngestShare,
): Monthly => {
  const perHostMeasured = sumUsage(
    { usage: perHostHourUsage, times: HOURS_PER_MONTH },
    { usage: fix, times: FIXES_PER_HOST_MONTH },
  )
  const fixed = sumUsage(
    { usage: round0, times: ROUNDS_PER_MONTH },
    { usage: digest, times: DIGESTS_PER_MONTH },
    { usage: esmIdle(), times: 1 },
  )
  // The reports event source's batching window at this fleet's message rate (the scenarios deliver one per receive).
  const windowSeconds = reportsBatchingWindow().seconds
  const messagesPerSecond = (get(perHostHourUsage, `sqs.queue.${REPORTS_QUEUE}.messages`) * hosts) / 3600
  const perBatch = messagesPerBatch(messagesPerSecond, windowSeconds)
  const perHost = withReportBatches(perHostMeasured, perBatch, share)
  const all = sumUsage({ usage: perHost, times: hosts }, { usage: fixed, times: 1 })
  // X-Ray only for the functions the stack traces actively (the high-volume ones pass through: infra/layout.ts).
  const xrayTraces = xrayTracesOf(all)
  const xray = (xrayTraces * PRICES.xray.perMillionTracesRecorded) / 1e6
  const metrics = customMetrics * PRICES.cloudwatch.customMetricPerMonth
  const fixedByService = { ...priceUsage(fixed), 'CloudWatch metrics': metrics }
  const perHostByService = priceUsage(perHost)
  const byService = { ...priceUsage(all), 'X-Ray': xray, 'CloudWatch metrics': metrics }
  return {
    variant,
    hosts,
    perHost,
    fixed,
    byService,
    perHostByService,
    fixedByService,
    total: totalOf(byService),
    xrayTraces,
    batching: { windowSeconds, messagesPerSecond, perBatch },
    perHostMeasured,
  }
}

export const runFleetCost = async (
  opts: { log?: (s: string) => void; variants?: readonly Variant[] } = {},
): Promise<CostResult> => {
  const log = opts.log ?? (() => {})
  const restore = setEnv({
    POWERTOOLS_LOG_LEVEL: 'INFO',
    POWERTOOLS_SERVICE_NAME: 'ansai',
    POWERTOOLS_METRICS_NAMESPACE: 'ANSAI',
    POWERTOOLS_METRICS_DISABLED: undefined,
    POWERTOOLS_DEV: undefined,
  })
  const moto = await startMoto()
  const fleets: Fleet[] = []
  try {
    const base = loadFleetConfig(EXAMPLE_CONFIG).runtime
    const policies = compileFleetPolicies(base)
    const hostIndex = findHealthyHost(policies, WARMUP_MINUTES + 70)
    log(`  moto_server at ${moto.endpoint}; healthy host: typical #${hostIndex}`)
    const runs: { variant: Variant; mode: SendMode; config: FleetRuntimeConfig }[] = [
      { variant: 'default', mode: 'default', config: base },
      // Every sample sent alone, and written: no context comes again to bring deferred samples back.
      { variant: 'every-sample', mode: 'every-sample', config: { ...base, quietWriteEvery: '0m' } },
    ]
    const hours: HourResult[] = []
    const metrics = new Set<string>()
    let metered = 0
    let http = 0
    let clients = 0
    const lambda = new Map<string, { fn: string; scope: string; n: number; ms: number; cpu: number }>()
    const problems: string[] = []
    const latency = new Map<string, { n: number; ms: number }>()
    const fixMetrics = new Set<string>()
    const keep = (f: Fleet, tag: string) => {
      fleets.push(f)
      for (const m of f.meter.metrics) (tag === 'fix' ? fixMetrics : metrics).add(m)
      metered += f.meter.metered
      http += f.meter.http
      clients = Math.max(clients, f.clients)
      for (const [k, l] of f.meter.latency) {
        const e = latency.get(k) ?? { n: 0, ms: 0 }
        e.n += l.n
        e.ms += l.ms
        latency.set(k, e)
      }
      for (const p of f.meter.problems) {
        let message = p.line
        try {
          const j = JSON.parse(p.line) as { message?: string; error?: { message?: string } }
          message = `${j.message ?? ''}${j.error?.message ? `: ${j.error.message}` : ''}`
        } catch {
          // not JSON
        }
        problems.push(`${tag} ${p.fn}: ${message.slice(0, 300)}`)
      }
      for (const i of f.meter.invocations) {
        const k = `${tag}|${i.fn}|${i.scope}`
        const e = lambda.get(k) ?? { fn: i.fn, scope: `${tag}: ${i.scope}`, n: 0, ms: 0, cpu: 0 }
        e.n++
        e.ms += i.ms
        e.cpu += i.cpuMs
        lambda.set(k, e)
      }
    }
    for (const r of runs) {
      if (opts.variants && !opts.variants.includes(r.variant)) continue
      const roundHosts = r.variant === 'default' ? ROUND_HOSTS : 0
      const { hour, fleet } = await steadyHour(moto, r.config, r.variant, r.mode, hostIndex, log, roundHosts)
      hours.push(hour)
      keep(fleet, r.variant)
    }
    const fx = await oneFix(moto, base, hostIndex, log)
    keep(fx.f, 'fix')
    const storagePerHostBytes = hours[0]?.stateItemBytes ?? 0
    // A custom metric is billed for each hour it has data. One the steady hour emits has data every hour; one only a
    // fix emits, in the hours with a fix: 1 − e^(−fixes an hour) of them at 1,000 hosts (Poisson).
    const fixesPerHour = (1000 * FIXES_PER_HOST_MONTH) / HOURS_PER_MONTH
    const fixOnly = [...fixMetrics].filter((m) => !metrics.has(m))
    const customMetrics = metrics.size + fixOnly.length * (1 - Math.exp(-fixesPerHour))
    const metricsSeen = [...metrics, ...fixOnly.map((m) => `${m} (fixes only)`)]
    const measured = hours.find((h) => h.roundMsPerHost !== undefined)
    const tick = measured && {
      ms: measured.roundMsPerHost!,
      cpuMs: measured.roundCpuMsPerHost ?? 0,
      rru: measured.roundRruPerHost!,
    }
    const share = hours.find((h) => h.ingestShare)?.ingestShare
    const month = hours.map((h) =>
      monthly(h.variant, perHostHour(h, tick), h.round0, fx.fix, fx.digest, customMetrics, 1000, share),
    )
    return {
      moto: moto.endpoint,
      hours,
      fix: fx.fix,
      digest: fx.digest,
      fixTimeline: fx.timeline,
      faultToCommandMs: fx.faultToCommandMs,
      faultPathMs: fx.faultPathMs,
      problems,
      latency: [...latency].map(([op, l]) => ({ op, n: l.n, meanMs: l.ms / l.n })).sort((a, b) => b.n - a.n),
      monthly: month,
      customMetrics,
      metricsSeen,
      coverage: { metered, http, clients },
      lambda: [...lambda.values()].map((e) => ({
        fn: e.fn,
        scope: e.scope,
        invocations: e.n,
        meanMs: e.ms / e.n,
        meanCpuMs: e.cpu / e.n,
      })),
      storagePerHostBytes,
    }
  } finally {
    for (const f of fleets) await f.close()
    await moto.stop()
    restore()
  }
}

export { HEARTBEAT_MS, ROUNDS_PER_HOUR, ROUNDS_PER_MONTH, SERVICES }
