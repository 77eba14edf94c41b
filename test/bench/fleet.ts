/**
 * The fleet's cost and scale (issue section "Cost and scale"): `runFleetBench()` returns printable rows (label, value,
 * goal) and notes saying how each figure was obtained. Runnable alone, printing the same:
 *
 *   node --expose-gc test/bench/fleet.ts               cost (moto_server) and scale (in memory), about 2 minutes
 *   node --expose-gc test/bench/fleet.ts --cost-only   the cost part only
 *   node --expose-gc test/bench/fleet.ts --scale-only  the scale part only
 */
import { fileURLToPath } from 'node:url'
import { hasMotoServer } from '../support/moto.ts'
import {
  type CostResult,
  ESM_EMPTY_RECEIVES_PER_MONTH,
  ESM_POLLERS,
  FIXES_PER_HOST_MONTH,
  type HourResult,
  type Monthly,
  perHostHour,
  runFleetCost,
} from './fleet-cost.ts'
import {
  get,
  HOURS_PER_MONTH,
  PRICES,
  priceUsage,
  SERVICES,
  sumUsage,
  totalOf,
  tracesPerMonth,
  type Usage,
} from './fleet-prices.ts'
import {
  type AwsPathFigures,
  type HandlerRun,
  LAMBDA_CPU_SLOWDOWN,
  limitsAt,
  runFleetScale,
  type ScaleResult,
} from './fleet-scale.ts'

export type Row = [label: string, value: string, goal: string]

export interface FleetBenchOptions {
  /** Run the cost part (moto_server; about 1 minute). Default true. */
  cost?: boolean
  /** Run the scale part (in memory; about 1 minute). Default true. */
  scale?: boolean
  /** Hosts of the simulated fleet in the scale part. Default 10,000. */
  hosts?: number
  /** Progress lines (to stderr when run alone). */
  log?: (line: string) => void
}

const GOAL_DOLLARS = 5
const n0 = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 })
const n1 = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 })
const n2 = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2, minimumFractionDigits: 2 })
const n3 = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 3 })
const usd = (n: number) => `$${n < 10 ? n2(n) : n1(n)}`

/** A usage as the billed quantities, one line. */
export const describeUsage = (u: Usage, per = 1): string => {
  const q = (k: string) => get(u, k) / per
  const parts = [
    `SQS ${n2(q('sqs.standard'))}${q('sqs.fifo') ? ` + FIFO ${n2(q('sqs.fifo'))}` : ''} req`,
    `Lambda ${n3(q('lambda.requests'))} inv / ${n1(q('lambda.ms'))} ms`,
    `DynamoDB ${n2(q('ddb.wru'))} WRU + ${n2(q('ddb.gsiWru'))} gsi1 WRU / ${n2(q('ddb.rru'))} RRU`,
  ]
  if (q('eb.events')) parts.push(`EventBridge ${n2(q('eb.events'))}`)
  if (q('scheduler.invocations')) parts.push(`Scheduler ${n3(q('scheduler.invocations'))}`)
  if (q('ses.emails')) parts.push(`SES ${n2(q('ses.emails'))}`)
  if (q('secrets.calls')) parts.push(`Secrets Manager ${n2(q('secrets.calls'))}`)
  if (q('ssm.calls')) parts.push(`SSM ${n2(q('ssm.calls'))} (free)`)
  parts.push(`logs ${n0(q('logs.bytes'))} B`)
  return parts.join(', ')
}

const dollars = (u: Usage): number => totalOf(priceUsage(u))

const topKeys = (u: Usage, prefix: string, k = 4): string =>
  [...u]
    .filter(([key]) => key.startsWith(`${prefix}.`))
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([key, v]) => `${key.slice(prefix.length + 1)} ${n0(v)}`)
    .join(', ')

/**
 * The default mode (host-silent fixed) with changes applied one after another, recomputed from the measured
 * per-host-hour usage of its batches and of its part of the rounds (estimates from measured counts, not measured).
 */
const whatIf = (cost: CostResult): { step: string; total: number; byService: Record<string, number> }[] => {
  const m = cost.monthly.find((x) => x.variant === 'default, host-silent above the heartbeat')
  const hour = cost.hours.find((h) => h.variant === 'default, host-silent above the heartbeat')
  if (!m || !hour) return []
  const batch = new Map(hour.batch)
  const rounds = sumUsage(
    { usage: perHostHour(hour, { ms: hour.roundMsPerHost ?? 0, cpuMs: hour.roundCpuMsPerHost ?? 0 }), times: 1 },
    { usage: hour.batch, times: -1 },
  )
  let ingestTraced = true
  const breakdown = (): Record<string, number> => {
    const perHost = sumUsage(
      { usage: batch, times: HOURS_PER_MONTH },
      { usage: rounds, times: HOURS_PER_MONTH },
      { usage: cost.fix, times: FIXES_PER_HOST_MONTH },
    )
    const all = sumUsage({ usage: perHost, times: m.hosts }, { usage: m.fixed, times: 1 })
    const traces = FUNCTIONS.filter((fn) => ingestTraced || fn !== 'ingest-reports').reduce(
      (n, fn) => n + tracesPerMonth(get(all, `lambda.${fn}.requests`)),
      0,
    )
    return {
      ...priceUsage(all),
      'X-Ray': (traces * PRICES.xray.perMillionTracesRecorded) / 1e6,
      'CloudWatch metrics': m.byService['CloudWatch metrics'],
    }
  }
  const total = (): number => totalOf(breakdown())
  /** Scale one detailed key and its total by `factor`. */
  const scale = (u: Usage, key: string, total: string, factor: number): void => {
    const v = get(u, key)
    u.set(key, v * factor)
    u.set(total, get(u, total) - v * (1 - factor))
  }
  const steps: { step: string; total: number; byService: Record<string, number> }[] = []
  const push = (step: string) => steps.push({ step, total: total(), byService: breakdown() })
  push('as measured (host-silent above the heartbeat)')
  // 1. The state item gzipped (a binary attribute): fewer WRU per put and RRU per read.
  const itemGz = hour.stateItemBytes - hour.stateJsonBytes + hour.stateGzipBytes
  const [w, wGz] = [Math.ceil(hour.stateItemBytes / 1024), Math.ceil(itemGz / 1024)]
  const [r, rGz] = [Math.ceil(hour.stateItemBytes / 4096), Math.ceil(itemGz / 4096)]
  for (const u of [batch, rounds]) {
    scale(u, 'ddb.wru.host-state', 'ddb.wru', wGz / w)
    scale(u, 'ddb.rru.GetItem host-state', 'ddb.rru', rGz / r)
  }
  push(
    `host state gzipped (item ${n1(hour.stateItemBytes / 1024)} → ${n1(itemGz / 1024)} KB: ${w} → ${wGz} WRU per put, ${r} → ${rGz} RRU per read)`,
  )
  // 2. The round touches only hosts with something due: no state read (nor evaluation) per host every 5 minutes.
  scale(rounds, 'ddb.rru.GetItem host-state', 'ddb.rru', 0)
  scale(rounds, 'lambda.evaluate-fleet.ms', 'lambda.ms', 0)
  push('the round reads only hosts with something due')
  // 3. No active tracing on ingest-reports.
  ingestTraced = false
  push('ingest-reports not actively traced (PassThrough or a sampling rule)')
  // 4. A batching window on the reports event source: about 10 messages per receive, delete and invocation (a receive
  // is still billed per 64 KB of the messages it returns).
  const set = (u: Usage, key: string, total: string, value: number): void =>
    scale(u, key, total, value / (get(u, key) || 1))
  const msgs = get(batch, 'sqs.standard.messages')
  const bytes = get(batch, 'sqs.standard.receiveBytes') / Math.max(1, msgs)
  const chunk = PRICES.sqs.billedChunkBytes
  set(batch, 'sqs.standard.receive', 'sqs.standard', (msgs * Math.ceil((10 * bytes) / chunk)) / 10)
  set(batch, 'sqs.standard.delete', 'sqs.standard', msgs / 10)
  set(batch, 'lambda.ingest-reports.requests', 'lambda.requests', msgs / 10)
  push('a batching window on the reports event source (≈10 messages per receive, delete and invocation)')
  // 5. A 60-minute heartbeat: a quarter of the messages, each with 4 × the reports (Lambda ms kept as measured).
  const m60 = msgs / 4
  set(batch, 'sqs.standard.send', 'sqs.standard', m60 * Math.ceil((4 * bytes) / chunk))
  set(batch, 'sqs.standard.receive', 'sqs.standard', (m60 * Math.ceil((40 * bytes) / chunk)) / 10)
  set(batch, 'sqs.standard.delete', 'sqs.standard', m60 / 10)
  set(batch, 'lambda.ingest-reports.requests', 'lambda.requests', m60 / 10)
  scale(batch, 'ddb.wru.host-state', 'ddb.wru', 1 / 4)
  scale(batch, 'ddb.rru.GetItem host-state', 'ddb.rru', 1 / 4)
  const fixed = totalOf(m.fixedByService)
  push(
    `heartbeat 60 min instead of 15 (host-silent after 65 min; changes still sent at once); of which ${usd(fixed)} fixed (any fleet size), so ${usd(total() - fixed)} per 1,000 hosts on top of it`,
  )
  return steps
}

const FUNCTIONS = [
  'ingest-reports',
  'evaluate-fleet',
  'dispatch-remediation',
  'record-command-result',
  'send-notifications',
  'send-digest',
] as const

const costRows = (cost: CostResult, rows: Row[], notes: string[]): void => {
  const by = (v: string) => cost.monthly.find((m) => m.variant === v)!
  const def = by('default')
  const every = by('every-sample')
  const fixedSilent = by('default, host-silent above the heartbeat')
  const hourOf = (v: string) => cost.hours.find((h) => h.variant === v)!
  const hDef = hourOf('default')
  const hEvery = hourOf('every-sample')
  const hFixed = hourOf('default, host-silent above the heartbeat')
  const goal = (total: number) => `goal ≤ $${GOAL_DOLLARS}: ${total <= GOAL_DOLLARS ? 'met' : 'NOT met'}`
  const steps = whatIf(cost)
  const last = steps[steps.length - 1]
  rows.push(
    ['fleet $/month, 1,000 hosts, default mode as shipped', usd(def.total), goal(def.total)],
    [
      'fleet $/month, 1,000 hosts, default, host-silent above heartbeat',
      usd(fixedSilent.total),
      goal(fixedSilent.total),
    ],
    ['fleet $/month, 1,000 hosts, every-sample mode', usd(every.total), ''],
  )
  if (last)
    rows.push(['fleet $/month, 1,000 hosts, default + suggested changes (estimate)', usd(last.total), goal(last.total)])
  rows.push(['  of which fixed, any fleet size (default)', usd(totalOf(fixedSilent.fixedByService)), ''])
  for (const s of [...SERVICES, 'X-Ray', 'CloudWatch metrics'] as const) {
    if (def.byService[s] < 0.005 && fixedSilent.byService[s] < 0.005) continue
    rows.push([
      `  ${s}: as shipped / host-silent fixed`,
      `${usd(def.byService[s])} / ${usd(fixedSilent.byService[s])}`,
      '',
    ])
  }
  const perMillion = (h: HourResult) => usd((dollars(h.batch) / h.reports) * 1e6)
  const tick = { ms: hFixed.roundMsPerHost ?? 0, cpuMs: hFixed.roundCpuMsPerHost ?? 0 }
  const roundPart = (h: HourResult) =>
    positive(sumUsage({ usage: perHostHour(h, tick), times: 1 }, { usage: h.batch, times: -1 }))
  const pathMs = cost.faultPathMs
  const sendCommandMs = cost.latency.find((l) => l.op === 'SSM.SendCommand')?.meanMs ?? 0
  rows.push(
    [
      'fleet $ per million reports: default / host-silent fixed / every-sample',
      `${perMillion(hDef)} / ${perMillion(hFixed)} / ${perMillion(hEvery)}`,
      '',
    ],
    ['fleet $ per fix (full disk → cleanup → verified → resolved → told)', `$${dollars(cost.fix).toFixed(5)}`, ''],
    [
      'fleet fault → SSM command: functions (moto SendCommand excluded)',
      `${n2((pathMs - sendCommandMs) / 1000)} s`,
      'goal: acted on ≤ 60 s after the fault',
    ],
  )
  notes.push(
    '',
    `Fleet cost: the real handlers (compose.ts, middy, Powertools, batch processor) with the real AWS SDK v3 against moto_server, SDK middleware (middlewareStack.add, build step) on every client (${cost.coverage.clients}: the functions', the agent's sender, the event source stand-in's) counting each request by service and operation; ${n0(cost.coverage.metered)} requests metered, ${n0(cost.coverage.http)} HTTP requests to moto seen meanwhile by node:diagnostics_channel${cost.coverage.metered === cost.coverage.http ? ' (all metered)' : ' (MISMATCH: a client is not metered)'}.`,
    "Scenarios: one healthy host for 1 simulated hour after a 75-minute warm-up, with the scheduled round every 5 minutes as deployed (default: the agent's own gate decides; 4 heartbeats of 15 reports; every-sample: 60 messages of 1 report); 6 empty rounds (the fixed part of a round); one fix in real time: the disk at 96 % → the gate sends at once → ingest → actions FIFO → dispatch → SSM SendCommand (moto) → the host's result line (canned: moto runs nothing) → the SSM status event → record-command-result → the next report verifies → resolved → SES + signed webhook; then the daily digest.",
    "Config: infra/fleet.example.yaml as the CDK app compiles it (baseline pack + web.yaml, inode-pressure off, 16 shards, ops-email default; the fix also tells the webhook channel, its secret from Secrets Manager). Reports: the engine bench's typical host (20 observations), every service up, moved to the simulated clock.",
    `Prices: test/bench/aws-prices-us-east-1.json, dated ${PRICES.date}, ${PRICES.note} Month = ${HOURS_PER_MONTH} h = ${n0(HOURS_PER_MONTH * 12)} rounds (a 30-day month: 8,640).`,
    'How each quantity is obtained:',
    "  SQS: each request per 64 KB chunk of its payload, the agent's SendMessageBatch included; the consumer side as the event source mapping does it (one ReceiveMessage and one DeleteMessageBatch per batch; with one host a batch is one message, which is also what 1,000 hosts give at ~1 message/s). Empty receives are left out of the scenarios and priced as idle polling:",
    `  assumption: ${ESM_POLLERS} pollers per queue long-polling 20 s = ${n0(ESM_EMPTY_RECEIVES_PER_MONTH)} empty receives per queue-month, 4 queues (AWS does not document the idle poller count; an upper bound once a queue is busy).`,
    `  Lambda: one invocation per handler call; ms = wall time of the invocation against moto, each rounded up to 1 ms, at 512 MB arm64; no INIT. At 512 MB a function has 0.29 vCPU, so its CPU part runs ~${n1(LAMBDA_CPU_SLOWDOWN)}× longer than here: Lambda in the default mode would be ${usd(lambdaAt512(def))} instead of ${usd(def.byService.Lambda)}.`,
    '  DynamoDB: computed per request (moto returns no ConsumedCapacity) with a shadow of every item written (size = attribute names + values as DynamoDB counts them): WRU = ceil(max(old, new)/1 KB) per item, ×2 in TransactWriteItems, a failed condition the old item (≥ 1); gsi1 (ALL projection) another ceil(item/1 KB) when an indexed item changes (delete + put when its key moves); RRU = ceil(bytes/4 KB) strongly consistent, ½ on gsi1, a query summed before rounding, a missing key 1 unit (conservative).',
    "  EventBridge: PutEvents entries on ANSAI's bus per 64 KB (the SSM status event on the default bus is free); Scheduler: one per round and per digest; SES: recipients; Secrets Manager: API calls (cached 5 min); SSM: counted, free.",
    "  CloudWatch Logs: the functions' output (Powertools JSON at INFO, EMF) measured per invocation + 355 B of Lambda's START/END/REPORT lines (estimate). X-Ray (active tracing on every function): per function min(rate, 1/s) + 5 % of the rest (Lambda's fixed sampling). Custom metrics: distinct EMF metrics seen × $0.30.",
    `  Per 1,000 hosts per month = (the steady hour − 12 × the empty round) × ${HOURS_PER_MONTH} × 1,000 + ${FIXES_PER_HOST_MONTH} fixes per host-month (assumption) × 1,000 + fixed (any fleet size): the empty round × ${n0(HOURS_PER_MONTH * 12)}, the digest × ${n1(HOURS_PER_MONTH / 24)}, idle polling, ${cost.customMetrics} custom metrics. Free tiers ignored. Left out: DynamoDB storage (${n1(cost.storagePerHostBytes / 1024)} KB of state per host, about $${(((cost.storagePerHostBytes * 2 * 1000) / 2 ** 30) * PRICES.dynamodb.storagePerGbMonth).toFixed(3)} per 1,000 hosts with its copies), alarms, the dashboard, the secret ($0.40), SSM's S3 output.`,
    'Billed quantities:',
    `  per report, default as shipped: ${describeUsage(hDef.batch, hDef.reports)}`,
    `  per report, default host-silent fixed: ${describeUsage(hFixed.batch, hFixed.reports)}`,
    `  per report, every-sample: ${describeUsage(hEvery.batch, hEvery.reports)}`,
    `  per fix: ${describeUsage(cost.fix)}`,
    `  a round's fixed part (16 shards, empty): ${describeUsage(hDef.round0)}`,
    `  a host's part of its 12 rounds per hour, as shipped: ${describeUsage(roundPart(hDef))}`,
    `  a host's part of its 12 rounds per hour, host-silent fixed: ${describeUsage(roundPart(hFixed))}`,
    `  the daily digest: ${describeUsage(cost.digest)}`,
    `  WRU of a host-hour as shipped by item: ${topKeys(sumUsage({ usage: hDef.batch, times: 1 }, { usage: hDef.round, times: 1 }), 'ddb.wru', 6)}; host-state item ${n0(hDef.stateItemBytes)} B (JSON ${n0(hDef.stateJsonBytes)} B, gzipped ${n0(hDef.stateGzipBytes)} B)`,
    `Fix timeline in process (ms, moto and the harness included): ${cost.fixTimeline.map((t) => `${t.step} ${n0(t.ms)}`).join('; ')}. The functions on the fault's path (ingest + dispatch) took ${n0(pathMs)} ms, ${n0(sendCommandMs)} ms of it moto's SSM SendCommand (moto is slow there; the per-fix Lambda ms include it). The agent samples every 60 s and its gate sends a change at once, in both modes: a fault is acted on one sampling interval after it appears at worst, plus this, plus the event source's polling delay (long polling: under a second).`,
    `moto's latency per call (mean ms × calls, behind the Lambda times; DynamoDB in-region is typically a few ms too): ${cost.latency
      .map((l) => `${l.op} ${n1(l.meanMs)} × ${n0(l.n)}`)
      .join(', ')}.`,
    'Per 1,000 hosts per month, by service:',
    ...[def, fixedSilent, every].map((mm) => `  ${explain(mm)}`),
  )
  if (def.total > GOAL_DOLLARS) {
    notes.push(
      `The $${GOAL_DOLLARS} goal is NOT met in the default mode (${usd(def.total)}). Where the money goes:`,
      `  1. host-silent (baseline pack: warning when silentMinutes > 5, critical > 15) against the 15-minute heartbeat: every round 5-15 min after a heartbeat finds a healthy host silent, opens an incident and mails it, and the next heartbeat resolves it and mails again: ${n1(get(hDef.batch, 'ses.emails') + get(hDef.round, 'ses.emails'))} emails per host-hour (SES ${usd(def.byService.SES)}; DynamoDB ${usd(def.byService.DynamoDB)} with the incident, decision, audit and state writes; EventBridge ${usd(def.byService.EventBridge)}). With thresholds above the heartbeat (warning > 20 min, critical > 35 min), measured: ${usd(fixedSilent.total)}. SILENT_AFTER_MS (5 min) in evaluate-fleet has the same mismatch: it asks SSM for the ping status of most healthy hosts every round.`,
      `  2. DynamoDB (${usd(fixedSilent.byService.DynamoDB)} with host-silent fixed): each batch reads (strongly consistent) and rewrites the whole host state, a ${n1(hFixed.stateItemBytes / 1024)} KB item: ${Math.ceil(hFixed.stateItemBytes / 1024)} WRU per put (trend samples of 4 filesystems and 3 services are most of it), and every round reads every host's state (${n1(hFixed.roundRruPerHost ?? 2)} RRU per host per round, ${n0(12 * HOURS_PER_MONTH)} rounds a month).`,
      `  3. X-Ray active tracing on every function (${usd(fixedSilent.byService['X-Ray'])}): ingest-reports runs about once a second at 1,000 hosts, so Lambda's 1-per-second reservoir traces nearly every invocation.`,
      `  4. SQS (${usd(fixedSilent.byService.SQS)}): 3 requests per batch (the agent's send, the receive, the delete; one message per receive at this rate) + ${usd(fixedSilent.fixedByService.SQS)} of idle polling; and the fixed part: ${usd(totalOf(fixedSilent.fixedByService))} (${cost.customMetrics} custom metrics ${usd(fixedSilent.fixedByService['CloudWatch metrics'])}, idle polling, rounds, digest).`,
      'What would bring it down (each applied on top of the previous, recomputed from the measured counts: estimates, not measurements):',
      ...steps.map((s) => `  → ${s.step}: ${usd(s.total)}`),
      `  After all of them, by service: ${Object.entries(last?.byService ?? {})
        .filter(([, v]) => v >= 0.005)
        .map(([k, v]) => `${k} ${usd(v)}`)
        .join(', ')}.`,
      '  The changes: (1) baseline host-silent thresholds above the agent heartbeat (or silentMinutes counted from the expected heartbeat), and SILENT_AFTER_MS likewise; (2) DynamoDbFleetStore.putHostState/getHostState: `data` gzipped in a binary attribute (or the trend samples in their own item, written only when a sample is kept); (3) evaluateShard: keep lastSeenAt and the next due time (certificate and backup checks, verifyBy) on the index item listHosts already returns, and applyToHost only the hosts that are due; (4) infra FleetFunction: tracing PassThrough (or a sampling rule) for ingest-reports; (5) infra SqsEventSource for reports: maxBatchingWindow of a few seconds (the 60 s goal holds); (6) fleet config: a 60-minute heartbeat with host-silent after 65 min (changes still go out at once; a dead host is then noticed after an hour, or sooner through SSM ping status).',
    )
  }
  notes.push(
    'moto 5.2 answers SSM DescribeInstanceInformation filtered by instance ids with HTTP 500, which fails the shard of every silent host (3 receives, then the DLQ): the bench answers the ping status itself (Online) and counts the calls the adapter would make (50 hosts each).',
  )
  if (cost.problems.length > 0)
    notes.push(
      `Function log lines at WARN/ERROR during the cost run: ${cost.problems.length} (first: ${cost.problems[0]})`,
    )
}

const positive = (u: Usage): Usage => new Map([...u].filter(([, v]) => v > 0))

const lambdaAt512 = (m: Monthly): number =>
  ((get(m.perHost, 'lambda.ms') + get(m.perHost, 'lambda.cpuMs') * (LAMBDA_CPU_SLOWDOWN - 1)) / 1000) *
    0.5 *
    PRICES.lambda.arm64PerGbSecond *
    m.hosts +
  (get(m.perHost, 'lambda.requests') * m.hosts * PRICES.lambda.perMillionRequests) / 1e6 +
  m.fixedByService.Lambda

const explain = (m: Monthly): string =>
  `${m.variant}: ${SERVICES.map((s) => `${s} ${usd(m.byService[s])}`).join(', ')}, X-Ray ${usd(m.byService['X-Ray'])} (${n0(m.xrayTraces)} traces), metrics ${usd(m.byService['CloudWatch metrics'])}; fixed ${usd(totalOf(m.fixedByService))}`

const scaleRows = (scale: ScaleResult, cost: CostResult | undefined, rows: Row[], notes: string[]): void => {
  const u = scale.useCase
  const [every, def] = scale.handler as [HandlerRun, HandlerRun]
  rows.push(
    [`fleet ingestReport, in-memory twins (${n0(u.hosts)} hosts)`, `${n0(u.reportsPerSecond)} reports/s`, ''],
    ['  per report p50 / p99', `${n3(u.perReportMs.p50)} / ${n3(u.perReportMs.p99)} ms`, ''],
    ['fleet ingest-reports handler, every-sample (1 report/message)', `${n0(every.reportsPerSecond)} reports/s`, ''],
    ['  per SQS event of 10 messages p50 / p99', `${n2(every.batchMs.p50)} / ${n2(every.batchMs.p99)} ms`, ''],
    ['fleet ingest-reports handler, default (15 reports/message)', `${n0(def.reportsPerSecond)} reports/s`, ''],
    ['  per SQS event of 10 messages p50 / p99', `${n2(def.batchMs.p50)} / ${n2(def.batchMs.p99)} ms`, ''],
    [
      `fleet in-memory store of ${n0(def.hosts)} hosts, heap: every-sample / default`,
      `${n0(every.storeMiB)} / ${n0(def.storeMiB)} MiB`,
      '',
    ],
    [
      'fleet round, tick per host in memory: quiet / all silent',
      `${n3(scale.round.quietMsPerHost)} / ${n3(scale.round.silentMsPerHost)} ms`,
      '',
    ],
  )
  const hFixed = cost?.hours.find((h) => h.variant === 'default, host-silent above the heartbeat')
  const hEvery = cost?.hours.find((h) => h.variant === 'every-sample')
  const aws: AwsPathFigures | undefined =
    hFixed && hEvery && hFixed.roundMsPerHost !== undefined
      ? {
          ingestMsDefault: hFixed.ingestMs,
          ingestCpuMsDefault: hFixed.ingestCpuMs,
          ingestMsEverySample: hEvery.ingestMs,
          ingestCpuMsEverySample: hEvery.ingestCpuMs,
          roundMsPerHost: hFixed.roundMsPerHost,
          roundCpuMsPerHost: hFixed.roundCpuMsPerHost ?? 0,
          roundRruPerHost: hFixed.roundRruPerHost ?? Number.NaN,
          stateItemBytes: hFixed.stateItemBytes,
          stateJsonBytes: hFixed.stateJsonBytes,
          stateGzipBytes: hFixed.stateGzipBytes,
        }
      : undefined
  if (aws) {
    rows.push([
      `fleet round against moto (${hFixed!.roundHosts} hosts): per host`,
      `${n1(aws.roundMsPerHost)} ms, ${n1(aws.roundRruPerHost)} RRU`,
      '',
    ])
  }
  const limits = limitsAt(scale, aws)
  for (const l of limits) rows.push([`fleet @100,000 hosts: ${l.what}`, l.value, l.bound])
  notes.push(
    '',
    `Fleet scale, one thread, no AWS: the ${scale.policies} compiled policies of the example fleet config; the engine bench's typical reports (${scale.observationsPerReport} observations). ingestReport: ${n0(u.hosts)} hosts × ${u.cycles} cycles of single reports (the first, new hosts, not timed), process.hrtime per call, MemoryFleetStore and the in-memory queues (drained as they fill); the store holds ${n1(scale.storeHeapMiBPer10k)} MiB per 10,000 hosts.`,
    `ingest-reports handler: createIngestHandler (middy + Powertools logger, metrics, tracer + the batch processor) on the same in-memory deps, SQS events of 10 records built here; ${scale.handler.map((h) => `${h.mode}: ${n0(h.hosts)} hosts × ${h.cycles} cycles (the first not timed), ${n0(h.messages)} messages timed, ${n2(h.cpuMsPerMessage)} ms CPU per message, ${n0(h.logBytesPerInvocation)} B of logs and EMF per invocation, the store ${n0(h.storeMiB)} MiB of heap after`).join('; ')}; peak RSS of the process ${n0(Math.max(...scale.handler.map((h) => h.peakRssMiB)))} MiB (all parts so far). In memory on purpose: against moto it would measure moto; the AWS path's times come from the cost run.`,
    `Round: evaluateShard over 16 shards of the ${n0(scale.round.hosts)} hosts, 2 min after their last report (quiet) and 10 min after (all silent: ${n2(scale.round.silentDecisionsPerHost)} decisions per host, the host-silent warning).`,
    `Limits at 100,000 hosts${aws ? ` (AWS path from the cost run: ingest ${n1(aws.ingestMsDefault)} ms per 15-report message, ${n1(aws.ingestMsEverySample)} ms per 1-report message, a round ${n1(aws.roundMsPerHost)} ms per host, wall time against moto)` : ' (without the cost run: CPU figures only)'}; AWS quotas as documented unless marked assumption:`,
    ...limits.map((l) => `  ${l.what}: ${l.value} (${l.bound}). ${l.note}.`),
  )
}

export const runFleetBench = async (opts: FleetBenchOptions = {}): Promise<{ rows: Row[]; notes: string[] }> => {
  const rows: Row[] = []
  const notes: string[] = []
  const log = opts.log ?? (() => {})
  let cost: CostResult | undefined
  if (opts.cost !== false && !hasMotoServer()) {
    rows.push(['fleet cost (needs moto_server: pip install "moto[server]")', 'skipped', ''])
    notes.push('', 'Fleet cost skipped: moto_server is not on PATH (pip install "moto[server]").')
  } else if (opts.cost !== false) {
    log('fleet cost: moto_server, the real handlers (about a minute)')
    cost = await runFleetCost({ log })
    costRows(cost, rows, notes)
  }
  if (opts.scale !== false) {
    log(`fleet scale: in memory, ${n0(opts.hosts ?? 10_000)} hosts (about a minute)`)
    const scale = await runFleetScale({ hosts: opts.hosts ?? 10_000, log })
    scaleRows(scale, cost, rows, notes)
  }
  return { rows, notes }
}

/** The rows as run.ts prints them: label, value (right-aligned), goal. */
export const formatRows = (rows: readonly Row[]): string => {
  const w = Math.max(...rows.map((r) => r[0].length))
  const v = Math.max(...rows.map((r) => r[1].length))
  return rows.map(([name, value, goal]) => `${name.padEnd(w)}  ${value.padStart(v)}  ${goal}`.trimEnd()).join('\n')
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const costOnly = process.argv.includes('--cost-only')
  const scaleOnly = process.argv.includes('--scale-only')
  const { rows, notes } = await runFleetBench({
    cost: !scaleOnly,
    scale: !costOnly,
    log: (line) => process.stderr.write(`${line}\n`),
  })
  console.log(`${formatRows(rows)}\n${notes.join('\n')}`)
}
