/**
 * Fleet scale, on one core: the ingest use case on the in-memory twins (reports per second, p50/p99 per report); the
 * real `ingest-reports` handler (middy, Powertools logger/metrics/tracer, the batch processor) with in-memory deps fed
 * SQS events of 10 records, for a simulated fleet of 10,000 hosts in both transport modes; and a scheduled round over
 * those 10,000 hosts (evaluateShard, one tick per host). In-memory on purpose: against moto it would measure moto.
 * {@link limitsAt} then turns these figures and the AWS path measured by the cost bench into the limits at 100,000
 * hosts.
 */
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import type { SQSEvent, SQSRecord } from 'aws-lambda'
import { reportBody } from '../../functions/adapters/sqs-queues.ts'
import { createIngestHandler } from '../../functions/ingest-reports/app.ts'
import { compileFleetPolicies } from '../../functions/platform/env.ts'
import { createObservability } from '../../functions/platform/observability.ts'
import { loadFleetConfig } from '../../infra/config.ts'
import { FUNCTION_SPECS } from '../../infra/layout.ts'
import { MemoryCommandRunner } from '../../shared/adapters/fleet/memory-command-runner.ts'
import { MemoryEventPublisher } from '../../shared/adapters/fleet/memory-event-publisher.ts'
import { MemoryFleetStore } from '../../shared/adapters/fleet/memory-fleet-store.ts'
import { MemoryActionQueue, MemoryNotificationQueue } from '../../shared/adapters/fleet/memory-queues.ts'
import { evaluateShard } from '../../shared/app/fleet/evaluate-fleet.ts'
import { type IngestDeps, ingestReport } from '../../shared/app/fleet/ingest-report.ts'
import type { ReportBatchV1, ReportV1 } from '../../shared/contracts/index.ts'
import { parseDuration } from '../../shared/engine/duration.ts'
import { lambdaContext } from '../support/fleet-harness.ts'
import { reportFor } from './engine.ts'

const EXAMPLE_CONFIG = fileURLToPath(new URL('../../infra/fleet.example.yaml', import.meta.url))
const MiB = 2 ** 20
const START = Date.parse('2026-11-23T00:00:00Z')
const gc = (globalThis as { gc?: () => void }).gc

export interface Dist {
  n: number
  p50: number
  p99: number
  max: number
  mean: number
}

const dist = (xs: number[]): Dist => {
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
  return {
    n: s.length,
    p50: at(0.5),
    p99: at(0.99),
    max: s[s.length - 1] ?? Number.NaN,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  }
}

export interface HandlerRun {
  mode: 'default' | 'every-sample'
  hosts: number
  cycles: number
  reportsPerMessage: number
  messages: number
  reports: number
  reportsPerSecond: number
  messagesPerSecond: number
  /** Per invocation (a batch of 10 messages), ms. */
  batchMs: Dist
  /** Per message, ms of thread CPU (mean), for the Lambda estimate. */
  cpuMsPerMessage: number
  /** Heap the run left held (the in-memory store of the fleet, the handler), after a gc; peak RSS so far. */
  storeMiB: number
  peakRssMiB: number
  logBytesPerInvocation: number
}

export interface ScaleResult {
  policies: number
  observationsPerReport: number
  useCase: { hosts: number; cycles: number; reports: number; reportsPerSecond: number; perReportMs: Dist }
  handler: HandlerRun[]
  round: {
    hosts: number
    shards: number
    quietMsPerHost: number
    silentMsPerHost: number
    silentDecisionsPerHost: number
  }
  storeHeapMiBPer10k: number
}

const quiet = async <T>(fn: () => Promise<T>): Promise<{ value: T; bytes: number }> => {
  const streams = [process.stdout, process.stderr] as const
  const writes = streams.map((s) => s.write)
  let bytes = 0
  for (const s of streams) {
    s.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength
      const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined
      cb?.()
      return true
    }) as typeof s.write
  }
  try {
    return { value: await fn(), bytes }
  } finally {
    streams.forEach((s, i) => {
      s.write = writes[i]!
    })
  }
}

/** Heap the in-memory store holds: measured by replacing it with an empty one (with --expose-gc; else NaN). */
const heapHeldBy = (deps: { store: MemoryFleetStore }): number => {
  if (!gc) return Number.NaN
  gc()
  const before = process.memoryUsage().heapUsed
  deps.store = new MemoryFleetStore()
  gc()
  return before - process.memoryUsage().heapUsed
}

const makeDeps = (clock: { now: number }): IngestDeps & { store: MemoryFleetStore } => {
  const config = loadFleetConfig(EXAMPLE_CONFIG).runtime
  return {
    policies: compileFleetPolicies(config),
    store: new MemoryFleetStore(),
    actions: new MemoryActionQueue({ clock: () => new Date(clock.now) }),
    notifications: new MemoryNotificationQueue(),
    events: new MemoryEventPublisher(),
    channels: Object.keys(config.channels),
    defaultChannels: config.defaultChannels,
    dryRun: false,
    clock: () => new Date(clock.now),
    shards: config.shards,
    quietWriteMs: parseDuration(config.quietWriteEvery),
  }
}

const drainQueues = (deps: IngestDeps): void => {
  ;(deps.actions as MemoryActionQueue).drain()
  ;(deps.notifications as MemoryNotificationQueue).drain()
  ;(deps.events as MemoryEventPublisher).published.length = 0
}

/** The typical report of host h at minute `cycle` (the engine bench's fleet generator). */
const report = (h: number, cycle: number): ReportV1 => reportFor('typical', h, cycle)

/** ingestReport alone on the in-memory twins, one report per call, as the every-sample transport sends them. */
const runUseCase = async (hosts: number, cycles: number) => {
  const clock = { now: START }
  const deps = makeDeps(clock)
  const times: number[] = []
  let seconds = 0
  for (let c = 0; c < cycles; c++) {
    const bodies = Array.from({ length: hosts }, (_, h) => JSON.stringify(report(h, c)))
    clock.now = START + c * 60_000
    const receivedAt = new Date(clock.now).toISOString()
    const t0 = performance.now()
    for (let h = 0; h < hosts; h++) {
      const s = process.hrtime.bigint()
      await ingestReport(deps, { body: bodies[h]!, messageId: `m-${c}-${h}`, receivedAt })
      if (c > 0) times.push(Number(process.hrtime.bigint() - s) / 1e6)
    }
    if (c > 0) seconds += (performance.now() - t0) / 1000
    drainQueues(deps)
  }
  const storeBytes = heapHeldBy(deps)
  const reports = hosts * (cycles - 1)
  return {
    result: { hosts, cycles, reports, reportsPerSecond: reports / seconds, perReportMs: dist(times) },
    storeHeapMiBPer10k: (storeBytes / MiB / hosts) * 10_000,
  }
}

const sqsRecord = (body: string, id: string, hostId: string, sentMs: number): SQSRecord => ({
  messageId: id,
  receiptHandle: id,
  body,
  attributes: {
    ApproximateReceiveCount: '1',
    SentTimestamp: String(sentMs),
    SenderId: `AROAEXAMPLEHOSTROLE:${hostId}`,
    ApproximateFirstReceiveTimestamp: String(sentMs),
  },
  messageAttributes: {},
  md5OfBody: '',
  eventSource: 'aws:sqs',
  eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:ansai-reports',
  awsRegion: 'us-east-1',
})

/**
 * The real ingest handler, in-memory deps, SQS events of 10 records; the first cycle (new hosts) is warm-up. Each
 * event's messages are built just before it (untimed), so the process holds one event's input at a time.
 */
const runHandler = async (
  mode: 'default' | 'every-sample',
  hosts: number,
  cycles: number,
): Promise<{ run: HandlerRun; deps: ReturnType<typeof makeDeps>; lastMs: number }> => {
  const clock = { now: START }
  gc?.()
  const heap0 = process.memoryUsage().heapUsed
  const deps = makeDeps(clock)
  const handler = createIngestHandler(deps, createObservability('ingest-reports'))
  // New reports a message: a heartbeat's 15 minutes, or one minute alone. A heartbeat also carries the 90 minutes
  // before again (the agent's resendMinutes), packed as the agent's SQS sender packs it; the first one carries its 105.
  const perMessage = mode === 'default' ? 15 : 1
  const context = mode === 'default' ? 90 : 0
  const times: number[] = []
  let cpuMs = 0
  let messages = 0
  let invocations = 0
  let logBytes = 0
  let lastMs = START
  for (let c = 0; c < cycles; c++) {
    const minute0 = context + c * perMessage
    lastMs = START + (minute0 + perMessage - 1) * 60_000
    clock.now = lastMs
    const measured = c > 0
    const { bytes } = await quiet(async () => {
      for (let i = 0; i < hosts; i += 10) {
        const records: SQSRecord[] = []
        for (let h = i; h < Math.min(hosts, i + 10); h++) {
          const from = minute0 - context
          const reports = Array.from({ length: perMessage + context }, (_, k) => report(h, from + k))
          const resent = c > 0 && context > 0 ? { resentThrough: reports[context - 1]!.seq } : {}
          const batch: ReportBatchV1 = { schema: 'ansai.report-batch.v1', reason: 'heartbeat', ...resent, reports }
          const body = context > 0 ? reportBody(batch) : JSON.stringify(batch)
          records.push(sqsRecord(body, `m-${c}-${h}`, reports[0]!.host.id, lastMs))
        }
        const event: SQSEvent = { Records: records }
        const cpu0 = process.threadCpuUsage()
        const s = process.hrtime.bigint()
        const out = await handler(event, lambdaContext('ingest-reports'))
        const ms = Number(process.hrtime.bigint() - s) / 1e6
        const cpu = process.threadCpuUsage(cpu0)
        if (out.batchItemFailures.length > 0) throw new Error(`fleet scale: ${out.batchItemFailures.length} failures`)
        invocations++
        if (measured) {
          times.push(ms)
          cpuMs += (cpu.user + cpu.system) / 1000
          messages += records.length
        }
        if (i % 1000 === 0) drainQueues(deps)
      }
    })
    logBytes += bytes
  }
  drainQueues(deps)
  gc?.()
  const storeMiB = gc ? (process.memoryUsage().heapUsed - heap0) / MiB : Number.NaN
  const seconds = times.reduce((a, b) => a + b, 0) / 1000
  return {
    run: {
      mode,
      hosts,
      cycles,
      reportsPerMessage: perMessage,
      messages,
      reports: messages * perMessage,
      reportsPerSecond: (messages * perMessage) / seconds,
      messagesPerSecond: messages / seconds,
      batchMs: dist(times),
      cpuMsPerMessage: cpuMs / messages,
      storeMiB,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      logBytesPerInvocation: logBytes / invocations,
    },
    deps,
    lastMs,
  }
}

/**
 * Minutes after the last report of the "all silent" round: past the baseline host-silent warning (> 20 min), counted
 * beyond the quiet-write interval (a quiet host's last-seen time is written that rarely).
 */
/** The scheduled round's period, seconds, as the example config deploys it. */
const ROUND_S = parseDuration(loadFleetConfig(EXAMPLE_CONFIG).config.schedules.evaluate) / 1000

export const SILENT_TICK_MINUTES =
  20 + parseDuration(loadFleetConfig(EXAMPLE_CONFIG).runtime.quietWriteEvery) / 60_000 + 5

/** One scheduled round over every host in the store: 16 shards, a tick per host (quiet, then all silent). */
const runRound = async (deps: ReturnType<typeof makeDeps>, lastMs: number, shards: number) => {
  const commands = new MemoryCommandRunner()
  const tick = async (atMs: number) => {
    let hosts = 0
    let decisions = 0
    const t0 = performance.now()
    for (let shard = 0; shard < shards; shard++) {
      const out = await evaluateShard({ ...deps, commands }, { shard, of: shards, at: new Date(atMs).toISOString() })
      hosts += out.hosts
      decisions += out.decisions
      drainQueues(deps)
    }
    return { hosts, decisions, msPerHost: (performance.now() - t0) / hosts }
  }
  const q = await quiet(() => tick(lastMs + 2 * 60_000))
  const s = await quiet(() => tick(lastMs + SILENT_TICK_MINUTES * 60_000))
  return {
    hosts: q.value.hosts,
    shards,
    quietMsPerHost: q.value.msPerHost,
    silentMsPerHost: s.value.msPerHost,
    silentDecisionsPerHost: s.value.decisions / s.value.hosts,
  }
}

export const runFleetScale = async (opts: { hosts?: number; log?: (s: string) => void } = {}): Promise<ScaleResult> => {
  const hosts = opts.hosts ?? 10_000
  const log = opts.log ?? (() => {})
  const env = { ...process.env }
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO'
  process.env.POWERTOOLS_SERVICE_NAME = 'ansai'
  process.env.POWERTOOLS_METRICS_NAMESPACE = 'ANSAI'
  delete process.env.POWERTOOLS_METRICS_DISABLED
  try {
    const useCase = await runUseCase(hosts, 4)
    log(`  ingestReport (in memory): ${Math.round(useCase.result.reportsPerSecond)} reports/s`)
    let every: HandlerRun
    {
      // its in-memory fleet is dropped at the end of this block
      const r = await runHandler('every-sample', hosts, 4)
      every = r.run
      log(`  handler, every-sample: ${Math.round(every.reportsPerSecond)} reports/s`)
    }
    // A quiet host's state is written once an hour: 1 warm-up heartbeat, then 4 measured (an hour: 3 deferred, 1
    // written). Fewer hosts: each message carries 105 reports, and the figures are per message.
    const def = await runHandler('default', Math.min(hosts, 2_000), 5)
    log(`  handler, default: ${Math.round(def.run.reportsPerSecond)} reports/s`)
    const policies = def.deps.policies.policies.length
    const round = await runRound(def.deps, def.lastMs, 16)
    log(`  round: ${round.quietMsPerHost.toFixed(3)} ms per host (quiet)`)
    const defRun = def.run
    return {
      policies,
      observationsPerReport: report(0, 0).observations.length,
      useCase: useCase.result,
      handler: [every, defRun],
      round,
      storeHeapMiBPer10k: useCase.storeHeapMiBPer10k,
    }
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k]
    Object.assign(process.env, env)
  }
}

/** Lambda gives a function one full vCPU at 1,769 MB; at 512 MB its CPU share is 512/1769. */
export const LAMBDA_CPU_SLOWDOWN = 1769 / 512

export interface AwsPathFigures {
  /** Measured ms (against moto) and thread CPU ms of one ingest invocation of one message. */
  ingestMsDefault: number
  ingestCpuMsDefault: number
  ingestMsEverySample: number
  ingestCpuMsEverySample: number
  /** What a host adds to a round (its tick: a consistent read of its state + the evaluation), against moto. */
  roundMsPerHost: number
  roundCpuMsPerHost: number
  roundRruPerHost: number
  /** State item bytes (as DynamoDB counts them), its state JSON, and the state as stored (Brotli in `dataZ`). */
  stateItemBytes: number
  stateJsonBytes: number
  stateStoredBytes: number
}

export interface Limit {
  what: string
  value: string
  bound: string
  note: string
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

/** Wall ms measured here → ms at 512 MB: the CPU part runs LAMBDA_CPU_SLOWDOWN × longer. */
const at512 = (ms: number, cpuMs: number): number => ms - cpuMs + cpuMs * LAMBDA_CPU_SLOWDOWN

/** The limits that bind at `hosts` hosts, from the measured figures and AWS quotas (named in each note). */
export const limitsAt = (scale: ScaleResult, aws: AwsPathFigures | undefined, hosts = 100_000): Limit[] => {
  const out: Limit[] = []
  const msgsDefault = hosts / 900
  const msgsEvery = hosts / 60
  out.push({
    what: 'reports/s (messages/s), default / every-sample',
    value: `${fmt(msgsDefault * 15)} (${fmt(msgsDefault)}) / ${fmt(msgsEvery)} (${fmt(msgsEvery)})`,
    bound: 'SQS standard: unlimited',
    note: 'default: one heartbeat per host per 15 minutes (15 new reports, 90 minutes re-sent, packed); every-sample: one 1-report message per host per minute; SQS standard queues have no throughput quota',
  })
  const d = aws
    ? at512(aws.ingestMsDefault, aws.ingestCpuMsDefault)
    : scale.handler[1]!.cpuMsPerMessage * LAMBDA_CPU_SLOWDOWN
  const e = aws
    ? at512(aws.ingestMsEverySample, aws.ingestCpuMsEverySample)
    : scale.handler[0]!.cpuMsPerMessage * LAMBDA_CPU_SLOWDOWN
  out.push({
    what: 'ingest-reports concurrency, default / every-sample',
    value: `${fmt(msgsDefault * (d / 1000), 1)} / ${fmt(msgsEvery * (e / 1000), 1)}`,
    bound: 'account quota 1,000',
    note: `Little's law: messages/s × seconds per message; ${fmt(d, 1)} ms per heartbeat message (15 new reports after 90 re-sent) and ${fmt(e, 1)} ms per 1-report message at 512 MB (${aws ? 'the wall time against moto with its CPU part' : 'the CPU time here'} × ${fmt(LAMBDA_CPU_SLOWDOWN, 2)}: 512 MB is 0.29 vCPU); the event source scales pollers up to 1,250 concurrent invocations per queue; one core here takes ${fmt(scale.handler[1]!.reportsPerSecond)} reports/s through the handler (default) and ${fmt(scale.handler[0]!.reportsPerSecond)} (every-sample)`,
  })
  if (aws) {
    const item = aws.stateItemBytes
    const plain = item - aws.stateStoredBytes + aws.stateJsonBytes
    const wru = Math.ceil(item / 1024)
    const rounds = (hosts * Math.ceil(item / 4096) * 0.5) / ROUND_S
    out.push({
      what: 'DynamoDB WRU/s, default / every-sample',
      value: `${fmt((hosts / 3600) * wru)} / ${fmt(msgsEvery * wru)}`,
      bound: 'new on-demand table: 4,000',
      note: `a conditional put of the ${fmt(item / 1024, 1)} KB host-state item (${wru} WRU; its ${fmt(aws.stateJsonBytes / 1024, 1)} KB of state JSON stored slim as ${fmt(aws.stateStoredBytes / 1024, 1)} KB of Brotli, as JSON ${Math.ceil(plain / 1024)} WRU): once a host-hour for a quiet host (quietWriteEvery), per message when every sample is sent and written; changes add theirs; a new on-demand table serves 4,000 WRU/s and 12,000 RRU/s at once and then twice its previous peak (warm throughput can be set); rounds read ${fmt(rounds)} RRU/s on average (every host's state every ${ROUND_S} s, eventually consistent), in bursts while 16 shards run`,
    })
  }
  out.push({
    what: 'DynamoDB busiest partition (gsi1 SHARD#n writes/s)',
    value: fmt(hosts / 3600 / 16, 1),
    bound: '1,000 WCU / 3,000 RCU per partition',
    note: `the host index entry (gsi1 SHARD#<n> of 16) is written when a host is new or its hostname or tags change; the figure is the worst case, every host re-indexed once an hour; host state, index and incidents live in their host's or their own partition; the other shared gsi1 families are split 8 ways (BUCKET_SHARDS): no partition comes near its limit`,
  })
  const tick = aws ? at512(aws.roundMsPerHost, aws.roundCpuMsPerHost) : scale.round.quietMsPerHost * LAMBDA_CPU_SLOWDOWN
  const perShard = hosts / 16
  const timeout = FUNCTION_SPECS['evaluate-fleet'].timeoutSeconds
  out.push({
    what: 'evaluate-fleet: seconds per shard (16 shards)',
    value: fmt((perShard * tick) / 1000),
    bound: `timeout ${timeout} s, period ${ROUND_S} s`,
    note: `${fmt(perShard)} hosts per shard × ${fmt(tick, 1)} ms per host at 512 MB (${aws ? `measured against moto: ${fmt(aws.roundMsPerHost, 1)} ms and ${fmt(aws.roundRruPerHost, 1)} RRU per host, its share of the page's batch read and the tick` : 'the in-memory tick'}; in memory the tick alone is ${fmt(scale.round.quietMsPerHost, 3)} ms here); for ≤ 60 s per shard ${fmt(Math.ceil((hosts * tick) / 60_000))} shards; a shard must also finish before the next round ${ROUND_S} s later`,
  })
  out.push({
    what: 'SSM DescribeInstanceInformation per round, healthy / all silent',
    value: `0 / ${fmt(hosts / 50)}`,
    bound: 'assumption: tens of calls/s',
    note: `a round asks SSM for the ping status of the hosts silent > 20 min beyond the quiet-write interval (SILENT_AFTER_MS, above the 15-minute heartbeat, as the baseline host-silent warning), 50 per call: none in a healthy fleet; were every host silent (the agents or their network down), ${fmt(hosts / 50)} calls a round, ${fmt(hosts / 50 / ROUND_S, 1)} calls/s on average and bursts while 16 shards run; SSM does not publish per-action rates (assumption: read APIs throttle at tens of calls/s per account and region; the SDK's adaptive retries back off)`,
  })
  out.push({
    what: 'a fault on every host: enqueue actions / run them',
    value: `${fmt(hosts / 300)} s / ${fmt(hosts / 100 / 60, 1)} h`,
    bound: 'FIFO 300 calls/s; breaker 100 commands/min',
    note: `at 2 fixes per host-month the actions queue sees ${fmt((hosts * 2) / (730 * 3600), 2)} messages/s; a correlated fault on all hosts sends one SendMessageBatch per host (FIFO quota: 300 calls/s per action without high-throughput mode, 3,000 messages/s batched; order holds per message group = host); dispatch then runs at ANSAI's fleet breaker (maxCommandsPerMinute 100), which binds before SSM SendCommand's own rate (not published per action; assumption: tens of calls/s)`,
  })
  return out
}
