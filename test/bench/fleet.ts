/**
 * The fleet's cost and scale (issue section "Cost and scale"): `runFleetBench()` returns printable rows (label, value,
 * goal) and notes saying how each figure was obtained. Runnable alone, printing the same:
 *
 *   node --expose-gc test/bench/fleet.ts               cost (moto_server) and scale (in memory), about 2 minutes
 *   node --expose-gc test/bench/fleet.ts --cost-only   the cost part only
 *   node --expose-gc test/bench/fleet.ts --scale-only  the scale part only
 */
import { fileURLToPath } from 'node:url'
import { FUNCTION_SPECS } from '../../infra/layout.ts'
import { hasMotoServer } from '../support/moto.ts'
import {
  ACTIVELY_TRACED,
  type CostResult,
  ESM_EMPTY_RECEIVES_PER_MONTH,
  ESM_POLLERS,
  FIXES_PER_HOST_MONTH,
  HEARTBEAT_MS,
  type HourResult,
  type Monthly,
  monthly,
  perHostHour,
  REPORTS_BATCH_SIZE,
  REPORTS_QUEUE,
  ROUNDS_PER_HOUR,
  reportsBatchingWindow,
  runFleetCost,
  withReportBatches,
} from './fleet-cost.ts'
import {
  get,
  HOURS_PER_MONTH,
  LAMBDA_MEMORY_GB,
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
  SILENT_TICK_MINUTES,
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

/** Sets a detailed key to `value` and moves the totals it is part of by the difference. */
const setKey = (u: Usage, key: string, value: number, ...totals: string[]): void => {
  const delta = value - get(u, key)
  u.set(key, value)
  for (const t of totals) u.set(t, get(u, t) + delta)
}

/** Scales every `ddb.<unit>.<detail>` key whose detail matches, with its total `ddb.<unit>`. */
const scaleDdb = (u: Usage, detail: RegExp, factor: number, units = ['wru', 'gsiWru', 'rru']): void => {
  for (const key of [...u.keys()]) {
    const m = /^ddb\.(\w+)\.(.+)$/.exec(key)
    if (m && units.includes(m[1]!) && detail.test(m[2]!)) setKey(u, key, get(u, key) * factor, `ddb.${m[1]}`)
  }
}

const HOUR_MS = 60 * 60_000
const HEARTBEAT_MINUTES = HEARTBEAT_MS / 60_000

/** A change not shipped, as what it does to a host's hour: its report batches and its part of the rounds. */
interface Change {
  step: string
  apply: (batch: Usage, rounds: Usage) => void
}

const CHANGES: Change[] = [
  {
    step: '(a) the round reads only hosts with something due (no state read nor evaluation per quiet host)',
    apply: (_batch, rounds) => {
      scaleDdb(rounds, /^round/, 0, ['rru'])
      setKey(rounds, 'lambda.evaluate-fleet.ms', 0, 'lambda.ms')
      setKey(rounds, 'lambda.evaluate-fleet.cpuMs', 0, 'lambda.cpuMs')
    },
  },
  {
    step: `(b) a 60-minute heartbeat instead of ${HEARTBEAT_MINUTES} (host-silent then above 65 min, SILENT_AFTER_MS likewise; changes still sent at once)`,
    apply: (batch) => {
      // A quarter of the messages, each with 4 × the reports: per-message quantities × 1/4, Lambda ms as measured.
      const f = HEARTBEAT_MS / HOUR_MS
      const q = `sqs.queue.${REPORTS_QUEUE}`
      const chunk = PRICES.sqs.billedChunkBytes
      const messages = get(batch, `${q}.messages`) * f
      const chunks = (bytes: number) => messages * Math.max(1, Math.ceil(bytes / messages / chunk))
      setKey(batch, `${q}.send`, chunks(get(batch, `${q}.sendBytes`)), 'sqs.standard', 'sqs.standard.send')
      setKey(batch, `${q}.receive`, chunks(get(batch, `${q}.receiveBytes`)), 'sqs.standard', 'sqs.standard.receive')
      setKey(batch, `${q}.delete`, get(batch, `${q}.delete`) * f, 'sqs.standard', 'sqs.standard.delete')
      setKey(batch, `${q}.messages`, messages, 'sqs.standard.messages')
      setKey(
        batch,
        'lambda.ingest-reports.requests',
        get(batch, 'lambda.ingest-reports.requests') * f,
        'lambda.requests',
      )
      setKey(batch, 'logs.ingest-reports.bytes', get(batch, 'logs.ingest-reports.bytes') * f, 'logs.bytes')
      scaleDdb(batch, /host-state$/, f)
    },
  },
]

interface Step {
  step: string
  total: number
  /** The step alone on the default mode as shipped. */
  alone: number
  month: Monthly
}

const tickOf = (h: HourResult) => ({
  ms: h.roundMsPerHost ?? 0,
  cpuMs: h.roundCpuMsPerHost ?? 0,
  ...(h.roundRruPerHost !== undefined ? { rru: h.roundRruPerHost } : {}),
})

/** A host's part of its rounds in an hour (what perHostHour adds to its batches). */
const roundPart = (h: HourResult, tick: { ms: number; cpuMs: number; rru?: number }): Usage =>
  sumUsage({ usage: perHostHour(h, tick), times: 1 }, { usage: h.batch, times: -1 })

/**
 * The default mode with the changes not shipped applied one after another ({@link CHANGES}), each month recomputed
 * by `monthly` (the batching window at the new message rate, X-Ray of the actively traced functions, the fixed part)
 * from the measured per-host-hour usage of its batches and of its part of the rounds: estimates, not measurements.
 */
const whatIf = (cost: CostResult, tick: { ms: number; cpuMs: number; rru?: number }): Step[] => {
  const m = cost.monthly.find((x) => x.variant === 'default')
  const hour = cost.hours.find((h) => h.variant === 'default')
  if (!m || !hour) return []
  const base = () => ({ batch: new Map(hour.batch), rounds: roundPart(hour, tick) })
  const month = (p: { batch: Usage; rounds: Usage }): Monthly =>
    monthly(
      'default',
      sumUsage({ usage: p.batch, times: 1 }, { usage: p.rounds, times: 1 }),
      hour.round0,
      cost.fix,
      cost.digest,
      cost.customMetrics,
      m.hosts,
      hour.ingestShare,
    )
  const chain = base()
  const first = month(chain)
  const steps: Step[] = [{ step: 'as shipped (measured)', total: first.total, alone: first.total, month: first }]
  for (const c of CHANGES) {
    c.apply(chain.batch, chain.rounds)
    const alone = base()
    c.apply(alone.batch, alone.rounds)
    const mm = month(chain)
    steps.push({ step: c.step, total: mm.total, alone: month(alone).total, month: mm })
  }
  return steps
}

/** A usage's dollars by what bills them (a queue's requests, a function, an item type, ...), largest first. */
const costItems = (u: Usage, customMetrics: number): { what: string; usd: number }[] => {
  const p = PRICES
  const out = new Map<string, number>()
  const add = (what: string, usd: number) => {
    if (usd > 0) out.set(what, (out.get(what) ?? 0) + usd)
  }
  const wru = p.dynamodb.onDemandPerMillionWriteRequestUnits / 1e6
  const rules: [RegExp, (m: RegExpExecArray, v: number) => [string, number]][] = [
    [/^ddb\.wru\.(.+)$/, (m, v) => [`DynamoDB writes: ${m[1]}`, v * wru]],
    [/^ddb\.gsiWru\.(.+)$/, (m, v) => [`DynamoDB gsi1 writes: ${m[1]}`, v * wru]],
    [
      /^ddb\.rru\.(.+)$/,
      (m, v) => [`DynamoDB reads: ${m[1]}`, (v * p.dynamodb.onDemandPerMillionReadRequestUnits) / 1e6],
    ],
    [
      /^sqs\.queue\.(.+)\.(send|receive|delete)$/,
      (m, v) => [
        `SQS ${m[1]}: ${m[2]}s`,
        (v * (m[1]!.endsWith('.fifo') ? p.sqs.fifoPerMillionRequests : p.sqs.standardPerMillionRequests)) / 1e6,
      ],
    ],
    [/^lambda\.([^.]+)\.requests$/, (m, v) => [`Lambda ${m[1]}`, (v * p.lambda.perMillionRequests) / 1e6]],
    [/^lambda\.([^.]+)\.ms$/, (m, v) => [`Lambda ${m[1]}`, (v / 1000) * LAMBDA_MEMORY_GB * p.lambda.arm64PerGbSecond]],
    [/^logs\.([^.]+)\.bytes$/, (m, v) => [`CloudWatch Logs ${m[1]}`, (v / 2 ** 30) * p.cloudwatch.logsIngestionPerGb]],
  ]
  for (const [key, v] of u) {
    for (const [re, price] of rules) {
      const m = re.exec(key)
      if (m) {
        add(...price(m, v))
        break
      }
    }
  }
  const idle = get(u, 'sqs.idle') / 4
  add(
    'SQS idle polling (4 queues, assumption)',
    (3 * idle * p.sqs.standardPerMillionRequests + idle * p.sqs.fifoPerMillionRequests) / 1e6,
  )
  const by = priceUsage(u)
  add('SES emails', by.SES)
  add('EventBridge events', by.EventBridge)
  add('Scheduler invocations', by.Scheduler)
  add('Secrets Manager calls', by['Secrets Manager'])
  add(`CloudWatch custom metrics (${customMetrics})`, customMetrics * p.cloudwatch.customMetricPerMonth)
  for (const fn of ACTIVELY_TRACED)
    add(`X-Ray ${fn}`, (tracesPerMonth(get(u, `lambda.${fn}.requests`)) * p.xray.perMillionTracesRecorded) / 1e6)
  return [...out].map(([what, usd]) => ({ what, usd })).sort((a, b) => b.usd - a.usd)
}

const pct = (part: number, whole: number) => `${whole > 0 ? Math.round((100 * part) / whole) : 0} %`

const costRows = (cost: CostResult, rows: Row[], notes: string[]): void => {
  const by = (v: string) => cost.monthly.find((m) => m.variant === v)!
  const def = by('default')
  const every = by('every-sample')
  const hourOf = (v: string) => cost.hours.find((h) => h.variant === v)!
  const hDef = hourOf('default')
  const hEvery = hourOf('every-sample')
  const tick = tickOf(hDef)
  const met = (total: number) => (total <= GOAL_DOLLARS ? 'met' : 'NOT met')
  const goal = (total: number) => `goal ≤ $${GOAL_DOLLARS}: ${met(total)}`
  const steps = whatIf(cost, tick)
  const last = steps[steps.length - 1]
  const fixedDef = totalOf(def.fixedByService)
  const window = reportsBatchingWindow()
  rows.push(
    ['fleet $/month, 1,000 hosts, default mode as shipped', usd(def.total), goal(def.total)],
    ['fleet $/month, 1,000 hosts, every-sample mode', usd(every.total), ''],
  )
  if (last)
    rows.push([
      'fleet $/month, 1,000 hosts, default + (a)-(b) not shipped (estimate)',
      usd(last.total),
      goal(last.total),
    ])
  rows.push(['  of which fixed, any fleet size (default)', usd(fixedDef), ''])
  for (const s of [...SERVICES, 'X-Ray', 'CloudWatch metrics'] as const) {
    if (def.byService[s] < 0.005) continue
    rows.push([`  default: ${s}`, usd(def.byService[s]), ''])
  }
  rows.push([
    `  reports per receive and invocation (${window.seconds} s window, modelled): default / every-sample`,
    `${n1(def.batching.perBatch)} / ${n1(every.batching.perBatch)}`,
    '',
  ])
  const perMillion = (h: HourResult, m: Monthly) =>
    usd(
      (dollars(withReportBatches(h.batch, m.batching.perBatch, cost.hours.find((x) => x.ingestShare)?.ingestShare)) /
        h.reports) *
        1e6,
    )
  const pathMs = cost.faultPathMs
  const sendCommandMs = cost.latency.find((l) => l.op === 'SSM.SendCommand')?.meanMs ?? 0
  rows.push(
    [
      'fleet $ per million reports: default / every-sample',
      `${perMillion(hDef, def)} / ${perMillion(hEvery, every)}`,
      '',
    ],
    ['fleet $ per fix (full disk → cleanup → verified → resolved → told)', `$${dollars(cost.fix).toFixed(5)}`, ''],
    [
      'fleet fault → SSM command: functions (moto SendCommand excluded)',
      `${n2((pathMs - sendCommandMs) / 1000)} s`,
      'goal: acted on ≤ 60 s after the fault',
    ],
  )
  const traced = ACTIVELY_TRACED.join(', ')
  const passThrough = Object.keys(FUNCTION_SPECS).filter((fn) => !ACTIVELY_TRACED.includes(fn))
  const batchOf = (m: Monthly) => {
    const q = `sqs.queue.${REPORTS_QUEUE}`
    const kb = get(m.perHostMeasured, `${q}.receiveBytes`) / Math.max(1, get(m.perHostMeasured, `${q}.messages`)) / 1024
    return `${n2(m.batching.messagesPerSecond)} messages/s of ${n1(kb)} KB → ${n1(m.batching.perBatch)} per receive, delete and invocation`
  }
  notes.push(
    '',
    `Fleet cost: the real handlers (compose.ts, middy, Powertools, batch processor) with the real AWS SDK v3 against moto_server, SDK middleware (middlewareStack.add, build step) on every client (${cost.coverage.clients}: the functions', the agent's sender, the event source stand-in's) counting each request by service and operation; ${n0(cost.coverage.metered)} requests metered, ${n0(cost.coverage.http)} HTTP requests to moto seen meanwhile by node:diagnostics_channel${cost.coverage.metered === cost.coverage.http ? ' (all metered)' : ' (MISMATCH: a client is not metered)'}.`,
    `Scenarios: one healthy host for 1 simulated hour after a 75-minute warm-up, with the scheduled round every ${60 / ROUNDS_PER_HOUR} minutes as deployed (default: the agent's own gate decides; 4 heartbeats of 15 new reports, each after the reports of the 90 minutes before (the agent's resendMinutes), the fleet writing quiet state once an hour; every-sample: 60 messages of 1 report, every one written); 6 empty rounds (the fixed part of a round); one fix in real time: the disk at 96 % → the gate sends at once → ingest → actions FIFO → dispatch → SSM SendCommand (moto) → the host's result line (canned: moto runs nothing) → the SSM status event → record-command-result → the next report verifies → resolved (checked) → SES + signed webhook; then the daily digest.`,
    "Config: infra/fleet.example.yaml as the CDK app compiles it (baseline pack + web.yaml, inode-pressure off, 16 shards, ops-email default; the fix also tells the webhook channel, its secret from Secrets Manager). Reports: the engine bench's typical host (20 observations), every service up, moved to the simulated clock.",
    `Prices: test/bench/aws-prices-us-east-1.json, dated ${PRICES.date}, ${PRICES.note} Month = ${HOURS_PER_MONTH} h = ${n0(HOURS_PER_MONTH * 12)} rounds (a 30-day month: 8,640).`,
    'How each quantity is obtained:',
    `  SQS: each request per 64 KB chunk of its payload, the agent's SendMessageBatch included; the consumer side as the event source mapping does it (one ReceiveMessage and one DeleteMessageBatch per batch). The scenarios have one host, so every batch is one message. The reports queue's event source has a ${window.seconds} s maximum batching window (${window.from}), modelled for the month: at M messages/s (hosts × messages per host-hour / 3,600) a receive, its delete and the ingest invocation carry k = min(${REPORTS_BATCH_SIZE}, max(1, M × ${window.seconds})) messages, so the reports queue's receives (billed per 64 KB of the k messages) and deletes and ingest-reports' invocations and its per-invocation log bytes are the measured ones per message / k; Lambda ms per message as measured, less the share of the per-invocation part a batch of k saves (${((sh) => (sh ? `measured in a one-shard fleet: ingest-reports ${n1(sh.ms1)} ms with 1 message, ${n1(sh.msK)} ms with ${sh.k}: ${n1(Math.max(0, (sh.msK - sh.ms1) / (sh.k - 1)))} ms a message plus ${n1(Math.max(0, sh.ms1 - Math.max(0, (sh.msK - sh.ms1) / (sh.k - 1))))} ms an invocation` : 'not measured: ms per message as measured, conservative'))(cost.hours.find((x) => x.ingestShare)?.ingestShare)}), the agent's sends unchanged. 1,000 hosts: default ${batchOf(def)}; every-sample ${batchOf(every)}. The model takes one poller gathering a window's messages with one receive per batch; AWS documents neither how many receives its pollers make while a window fills nor how several pollers split the messages: were the receives to stay one per message, default would be ${usd(def.total + receiveGap(def))} (SQS +${usd(receiveGap(def))}); with no batching at all (one message per receive, delete and invocation, as measured) ${usd(def.total + unbatchedGap(def))}. Empty receives are left out of the scenarios and priced as idle polling:`,
    `  assumption: ${ESM_POLLERS} pollers per queue long-polling 20 s = ${n0(ESM_EMPTY_RECEIVES_PER_MONTH)} empty receives per queue-month, 4 queues (AWS does not document the idle poller count; an upper bound once a queue is busy).`,
    `  Lambda: one invocation per handler call; ms = wall time of the invocation against moto, each rounded up to 1 ms, at 512 MB arm64; no INIT. At 512 MB a function has 0.29 vCPU, so its CPU part runs ~${n1(LAMBDA_CPU_SLOWDOWN)}× longer than here: Lambda in the default mode would be ${usd(lambdaAt512(def))} instead of ${usd(def.byService.Lambda)}.`,
    '  DynamoDB: computed per request (moto returns no ConsumedCapacity) with a shadow of every item written (size = attribute names + values as DynamoDB counts them, a binary attribute by its bytes): WRU = ceil(max(old, new)/1 KB) per item, ×2 in TransactWriteItems, a failed condition the old item (≥ 1); gsi1 (ALL projection) another ceil(item/1 KB) when an indexed item changes (delete + put when its key moves); RRU = ceil(bytes/4 KB) strongly consistent, ½ on gsi1, a query summed before rounding, a missing key 1 unit (conservative).',
    "  EventBridge: PutEvents entries on ANSAI's bus per 64 KB (the SSM status event on the default bus is free); Scheduler: one per round and per digest; SES: recipients; Secrets Manager: API calls (cached 5 min); SSM: counted, free.",
    `  CloudWatch Logs: the functions' output (Powertools JSON at INFO, EMF) measured per invocation + 355 B of Lambda's START/END/REPORT lines (estimate). X-Ray: active tracing on ${traced} (infra/layout.ts), per function min(rate, 1/s) + 5 % of the rest (Lambda's fixed sampling); ${passThrough.join(' and ')} pass through (a trace only when the caller sent a sampled trace header; the agent and the scheduler send none), none counted. Custom metrics: distinct EMF metrics seen × $0.30.`,
    `  Per 1,000 hosts per month = ((the steady hour − 12 × the empty round) × ${HOURS_PER_MONTH} + ${FIXES_PER_HOST_MONTH} fixes per host-month (assumption)) with the batching window as above, × 1,000, + fixed (any fleet size): the empty round × ${n0(HOURS_PER_MONTH * 12)}, the digest × ${n1(HOURS_PER_MONTH / 24)}, idle polling, ${cost.customMetrics} custom metrics. Free tiers ignored. Left out: DynamoDB storage (${n1(cost.storagePerHostBytes / 1024)} KB of state per host, about $${(((cost.storagePerHostBytes * 2 * 1000) / 2 ** 30) * PRICES.dynamodb.storagePerGbMonth).toFixed(4)} per 1,000 hosts with its copies), alarms, the dashboard, the secret ($0.40), SSM's S3 output.`,
    'Billed quantities (as measured: one message per receive):',
    `  per report, default: ${describeUsage(hDef.batch, hDef.reports)}`,
    `  per report, every-sample: ${describeUsage(hEvery.batch, hEvery.reports)}`,
    `  per fix: ${describeUsage(cost.fix)}`,
    `  a round's fixed part (16 shards, empty): ${describeUsage(hDef.round0)}`,
    `  a host's part of its ${ROUNDS_PER_HOUR} rounds per hour: ${describeUsage(positive(roundPart(hDef, tick)))} (${n1(hDef.roundRruPerHost ?? Number.NaN)} RRU and ${n1(tick.ms)} ms (${n1(tick.cpuMs)} ms CPU) per host per round, measured over ${hDef.roundHosts ?? 0} hosts)`,
    `  the daily digest: ${describeUsage(cost.digest)}`,
    `  WRU of a host-hour (default) by item: ${topKeys(sumUsage({ usage: hDef.batch, times: 1 }, { usage: hDef.round, times: 1 }), 'ddb.wru', 6)}; ${stateNote(hDef)}`,
    `Fix timeline in process (ms, moto and the harness included): ${cost.fixTimeline.map((t) => `${t.step} ${n0(t.ms)}`).join('; ')}. The functions on the fault's path (ingest + dispatch) took ${n0(pathMs)} ms, ${n0(sendCommandMs)} ms of it moto's SSM SendCommand (moto is slow there; the per-fix Lambda ms include it). The agent samples every 60 s and its gate sends a change at once, in both modes: a fault is acted on one sampling interval after it appears at worst, plus this, plus the reports event source's batching window (up to ${window.seconds} s) and polling delay.`,
    `moto's latency per call (mean ms × calls, behind the Lambda times; DynamoDB in-region is typically a few ms too): ${cost.latency
      .map((l) => `${l.op} ${n1(l.meanMs)} × ${n0(l.n)}`)
      .join(', ')}.`,
    'Per 1,000 hosts per month, by service:',
    ...[def, every].map((mm) => `  ${explain(mm)}`),
  )
  // Where the money goes: the default month's dollars by what bills them, from the figures above.
  const all = sumUsage({ usage: def.perHost, times: def.hosts }, { usage: def.fixed, times: 1 })
  const items = costItems(all, cost.customMetrics)
  const top = items.slice(0, 8)
  const services = [...SERVICES, 'X-Ray', 'CloudWatch metrics'] as const
  const ranked = [...services]
    .filter((s) => def.byService[s] >= 0.005)
    .sort((a, b) => def.byService[b] - def.byService[a])
  const w = Math.ceil(hDef.stateItemBytes / 1024)
  const item = hDef.stateItemBytes
  const edge = Math.max(1, Math.round(item / 1024)) * 1024
  const messages = get(hDef.batch, `sqs.queue.${REPORTS_QUEUE}.messages`)
  const messageBytes = get(hDef.batch, `sqs.queue.${REPORTS_QUEUE}.receiveBytes`) / Math.max(1, messages)
  const hostStateWru = get(hDef.batch, 'ddb.wru.host-state')
  const statePuts = get(hDef.batch, 'call.DynamoDB.PutItem')
  notes.push(
    `The $${GOAL_DOLLARS} goal (default mode, 1,000 hosts, a month): ${usd(def.total)}, ${met(def.total)}; ${usd(fixedDef)} of it is fixed (any fleet size), so the hosts add ${usd(def.total - fixedDef)} per 1,000.`,
    `Where the money goes (default, 1,000 hosts, a month), by service: ${ranked.map((s) => `${s} ${usd(def.byService[s])} (${pct(def.byService[s], def.total)})`).join(', ')}.`,
    `  The largest items (${pct(
      top.reduce((n, i) => n + i.usd, 0),
      def.total,
    )} of the month): ${top.map((i) => `${i.what} ${usd(i.usd)}`).join('; ')}.`,
    `  A host-hour (default): ${n0(messages)} report messages of ${n1(messageBytes / 1024)} KB (SQS bills each 64 KB: ${Math.max(1, Math.ceil(messageBytes / PRICES.sqs.billedChunkBytes))} per send, ${Math.max(1, Math.ceil((def.batching.perBatch * messageBytes) / PRICES.sqs.billedChunkBytes))} per receive of ${n1(def.batching.perBatch)} messages), ${n0(hostStateWru)} WRU for ${n0(statePuts)} host-state put${statePuts === 1 ? '' : 's'} (quiet heartbeats are written once an hour; ${n2(hostStateWru / Math.max(1, statePuts))} a put: the item is ${n0(item)} B at the end of the hour, ${Math.abs(item - edge) <= 128 ? `within ${n0(Math.abs(item - edge))} B of the ${edge / 1024} KB unit boundary` : `${w} WRU`}), ${n0(get(hDef.batch, 'ddb.rru'))} RRU reading it, and ${ROUNDS_PER_HOUR} rounds reading the host's state (${n1(ROUNDS_PER_HOUR * (hDef.roundRruPerHost ?? 0))} RRU, ${n0(ROUNDS_PER_HOUR * tick.ms)} ms of evaluate-fleet).`,
  )
  if (steps.length > 1 && last) {
    notes.push(
      'What would bring it down (changes not shipped, each applied on top of the previous; recomputed from the measured counts with the batching window at the new message rate: estimates, not measurements; in brackets the change alone on the default as shipped):',
      ...steps.map(
        (s, i) =>
          `  → ${s.step}: ${usd(s.total)}${i > 0 ? ` (${signed(s.total - steps[i - 1]!.total)}; alone ${usd(s.alone)})${s.month.batching.perBatch !== steps[i - 1]!.month.batching.perBatch ? `; reports queue: ${batchOf(s.month)}` : ''}` : ''}`,
      ),
      `  After all of them: ${usd(last.total)}, the goal ${met(last.total)}; ${usd(fixedDef)} fixed, so ${usd(last.total - fixedDef)} per 1,000 hosts on top of it. By service: ${services
        .filter((s) => last.month.byService[s] >= 0.005)
        .map((s) => `${s} ${usd(last.month.byService[s])}`)
        .join(', ')}.`,
      '  What each would take: (a) evaluateShard: keep lastSeenAt and the next due time (certificate and backup checks, verifyBy) on the index item listHosts already returns, and applyToHost only the hosts that are due; (b) the fleet config: a 60-minute heartbeat, with the baseline host-silent thresholds and SILENT_AFTER_MS above it (a dead host is then noticed after an hour, or sooner through SSM ping status).',
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

const signed = (n: number): string => `${Math.abs(n) < 0.005 ? '±' : n < 0 ? '−' : '+'}${usd(Math.abs(n))}`

/** The host-state item: its size, its JSON and the state as stored. */
const stateNote = (h: HourResult): string =>
  `host-state item ${n0(h.stateItemBytes)} B as DynamoDB counts it (state JSON ${n0(h.stateJsonBytes)} B, stored ${h.stateStoredBytes < h.stateJsonBytes ? `slim and Brotli in st: ${n0(h.stateStoredBytes)} B` : `as JSON in data: ${n0(h.stateStoredBytes)} B`}; uncompressed the item would be ${n0(h.stateItemBytes - h.stateStoredBytes + h.stateJsonBytes)} B, ${Math.ceil((h.stateItemBytes - h.stateStoredBytes + h.stateJsonBytes) / 1024)} WRU a put instead of ${Math.ceil(h.stateItemBytes / 1024)})`

/** What the month would cost more were the reports queue's receives one per message (the window's other savings kept). */
/** What the month would cost more with every batch one message (as measured: the window's model left out). */
const unbatchedGap = (m: Monthly): number =>
  (totalOf(priceUsage(m.perHostMeasured)) - totalOf(priceUsage(m.perHost))) * m.hosts

const receiveGap = (m: Monthly): number => {
  const key = `sqs.queue.${REPORTS_QUEUE}.receive`
  return ((get(m.perHostMeasured, key) - get(m.perHost, key)) * m.hosts * PRICES.sqs.standardPerMillionRequests) / 1e6
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
    [
      'fleet ingest-reports handler, default (15 new reports/message after 90 re-sent)',
      `${n0(def.reportsPerSecond)} reports/s`,
      '',
    ],
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
  const hDef = cost?.hours.find((h) => h.variant === 'default')
  const hEvery = cost?.hours.find((h) => h.variant === 'every-sample')
  const aws: AwsPathFigures | undefined =
    hDef && hEvery && hDef.roundMsPerHost !== undefined
      ? {
          ingestMsDefault: hDef.ingestMs,
          ingestCpuMsDefault: hDef.ingestCpuMs,
          ingestMsEverySample: hEvery.ingestMs,
          ingestCpuMsEverySample: hEvery.ingestCpuMs,
          roundMsPerHost: hDef.roundMsPerHost,
          roundCpuMsPerHost: hDef.roundCpuMsPerHost ?? 0,
          roundRruPerHost: hDef.roundRruPerHost ?? Number.NaN,
          stateItemBytes: hDef.stateItemBytes,
          stateJsonBytes: hDef.stateJsonBytes,
          stateStoredBytes: hDef.stateStoredBytes,
        }
      : undefined
  if (aws) {
    rows.push([
      `fleet round against moto (${hDef!.roundHosts} hosts): per host`,
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
    `Round: evaluateShard over 16 shards of the ${n0(scale.round.hosts)} hosts, 2 min after their last report (quiet) and ${SILENT_TICK_MINUTES} min after (all silent: ${n2(scale.round.silentDecisionsPerHost)} decisions per host, the host-silent warning).`,
    `Limits at 100,000 hosts${aws ? ` (AWS path from the cost run: ingest ${n1(aws.ingestMsDefault)} ms per heartbeat message (15 new reports after 90 re-sent), ${n1(aws.ingestMsEverySample)} ms per 1-report message, a round ${n1(aws.roundMsPerHost)} ms per host, wall time against moto)` : ' (without the cost run: CPU figures only)'}; AWS quotas as documented unless marked assumption:`,
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
