import type {
  Decision,
  EventType,
  Finding,
  Host,
  Incident,
  Level,
  NotifyDecision,
  Observation,
  RemediationResultV1,
} from '../contracts/index.ts'
import { levelRank } from '../contracts/index.ts'
import type { CompiledPolicy, CompiledPolicySet, CompiledStep } from './compile.ts'
import { formatDuration } from './duration.ts'
import { stableHash } from './hash.ts'
import {
  allResources,
  cloneResourceState,
  emptyHostState,
  type HostState,
  newResourceState,
  type ResourceState,
} from './state.ts'
import { addSample, fitTrendInto, insertOldSample, type TrendFit } from './trend.ts'

export interface EvaluateInput {
  policies: CompiledPolicySet
  host: Host
  /** The observations of a report. Absent: a tick (silent-host checks, time-based checks, overdue verifications). */
  observations?: readonly Observation[]
  /** The report's sequence number; a sequence at or below the last one applied changes no state but samples. */
  seq?: number
  /** Outcomes of fixes decided earlier, matched to attempts by decision key. */
  results?: readonly RemediationResultV1[]
  state: HostState | undefined
  /** Evaluation time: epoch ms or an ISO timestamp. */
  now: number | string
  /** Decide as usual, but mark every fix as dry-run: the caller executes nothing. */
  dryRun?: boolean
  /**
   * Which findings to return: `all` (default: one per evaluated resource, for `ansai check` and status), `problems`
   * (only resources with a level above ok or an incident), `none` (the fleet's ingest path needs decisions and state).
   */
  findings?: 'all' | 'problems' | 'none'
  /**
   * How much later than the stored `lastSeenAt` the host may have been seen without the state recording it (the
   * fleet writes a quiet report's state at most every so often): a tick counts silence only beyond it. Default 0.
   */
  silenceGraceMs?: number
}

export interface EvaluateOutput {
  decisions: Decision[]
  nextState: HostState
  findings: Finding[]
  /**
   * Every incident this call opened or changed, as it is now; resolved ones are here with status `resolved` (they
   * leave the state). What a store keeps for `status` and `history`.
   */
  incidents: Incident[]
}

/** Per-call context, so helpers stay small and the hot path allocates little. */
interface Run {
  input: EvaluateInput
  now: number
  /** ISO form of `now`, made on first use (most evaluations decide nothing). */
  nowIso: string | undefined
  host: Host
  /**
   * The state given in (or an empty one), never changed. A resource state or policy map in `state` that is not the
   * same object as here was made in this call: that is how the copy-on-write helpers know what is theirs to change,
   * without a Set per call.
   */
  prior: HostState
  state: HostState
  decisions: Decision[]
  findings: Finding[]
  /** Resource states cloned into the next state in this call, in the order they were made. */
  touched: ResourceState[] | undefined
  resourcesCopied: boolean
  findingsMode: 'all' | 'problems' | 'none'
  resolved: Incident[] | undefined
  /** Resource states evaluated on an observation in this call (their working copies). */
  evaluated: ResourceState[] | undefined
  /** The result of the trend fit in progress (one object per call, reused). */
  fit: TrendFit | undefined
}

/** Notes are rare: the array is made on the first one. */
const addNote = (notes: string[] | undefined, note: string): string[] => {
  const out = notes ?? []
  out.push(note)
  return out
}

const NO_NOTES: readonly string[] = Object.freeze([])
/** Variables or evidence values by name. */
type Vars = Record<string, unknown>
const NO_VALUES: Readonly<Vars> = Object.freeze({})
const NO_STATES: readonly ResourceState[] = []
const NO_KEYS: readonly string[] = []

/** The part of a time-based observation kept for ticks: what the policy reads and what the clock math needs. */
const lastOf = (p: CompiledPolicy, o: Record<string, unknown>): Record<string, unknown> => {
  const last: Record<string, unknown> = {}
  for (const f of p.lastFields) if (o[f] !== undefined) last[f] = o[f]
  return last
}

/** Whether the kept part changed (lists compare by content). */
const sameLast = (p: CompiledPolicy, a: Record<string, unknown> | undefined, o: Record<string, unknown>): boolean => {
  if (!a) return false
  for (const f of p.lastFields) {
    const x = a[f]
    const y = o[f]
    if (x !== y && !(Array.isArray(x) && Array.isArray(y) && x.join('\u0000') === y.join('\u0000'))) return false
  }
  return true
}

const isoNow = (run: Run): string => {
  run.nowIso ??= new Date(run.now).toISOString()
  return run.nowIso
}

const popcount = (x: number): number => {
  let v = x - ((x >>> 1) & 0x55555555)
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333)
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24
}

const matchesTargets = (p: CompiledPolicy, host: Host): boolean => {
  if (!p.targets) return true
  if (p.targets.hosts.includes(host.id)) return true
  const tags = Object.entries(p.targets.tags)
  if (tags.length === 0) return false
  return tags.every(([k, values]) => {
    const v = host.tags[k]
    return v !== undefined && values.includes(v)
  })
}

const round = (v: unknown): unknown =>
  typeof v === 'number' && Number.isFinite(v) && !Number.isInteger(v) ? Math.round(v * 100) / 100 : v

const pickValues = (p: CompiledPolicy, vars: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const u of p.uses) {
    const v = vars[u]
    out[u] = typeof v === 'number' && !Number.isFinite(v) ? (v > 0 ? 'Infinity' : '-Infinity') : round(v)
  }
  return out
}

const describeValues = (values: Record<string, unknown>): string =>
  Object.entries(values)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')

/** The resource states of one policy in the next state; both levels are copied on first write. */
const writablePolicy = (run: Run, policy: string): Record<string, ResourceState> => {
  if (!run.resourcesCopied) {
    run.state.resources = { ...run.state.resources }
    run.resourcesCopied = true
  }
  let inner = run.state.resources[policy]
  // Not copied yet in this call while it is still the input's own map.
  if (!inner || inner === run.prior.resources[policy]) {
    inner = { ...inner }
    run.state.resources[policy] = inner
  }
  return inner
}

/**
 * Mutable working copy of a resource's state for this call (cloned once per call). `shareIncident`: the caller will
 * not change the incident, so it is not copied (the copy and the given state hold the same one).
 */
const working = (run: Run, p: CompiledPolicy, resource: string, shareIncident = false): ResourceState => {
  const prior = run.state.resources[p.name]?.[resource]
  // A state that is not the input's own was made in this call: it is already the working copy.
  if (prior && prior !== run.prior.resources[p.name]?.[resource]) return prior
  const rs = prior
    ? shareIncident
      ? { ...prior }
      : cloneResourceState(prior)
    : newResourceState(p.name, resource, p.tiers.length)
  if (rs.hist.length !== p.tiers.length) rs.hist = new Array<number>(p.tiers.length).fill(0)
  writablePolicy(run, p.name)[resource] = rs
  run.touched ??= []
  run.touched.push(rs)
  return rs
}

const notify = (
  run: Run,
  p: CompiledPolicy,
  inc: Incident,
  event: EventType,
  discriminator: string | number,
  summary: string,
  evidence: Record<string, unknown>,
  escalateTo?: string,
): void => {
  inc.updatedAt = isoNow(run)
  const d: NotifyDecision = {
    type: 'notify',
    key: `n-${stableHash(run.host.id, p.name, inc.resource, inc.openedAt, event, discriminator)}`,
    host: run.host.id,
    policy: p.name,
    resource: inc.resource,
    incidentId: inc.id,
    severity: inc.severity,
    at: isoNow(run),
    event,
    channels: p.notify,
    summary,
    evidence: { incident: inc.id, status: inc.status, ...evidence },
    ...(escalateTo ? { escalateTo } : {}),
  }
  run.decisions.push(d)
}

const label = (run: Run, inc: Incident): string => `${inc.resource} on ${run.host.hostname}`

const escalationTarget = (p: CompiledPolicy, inc: Incident): string => {
  const step = p.ladder.find((s) => s.type === 'escalate' && !inc.stepsDone.includes(s.index))
  return step?.type === 'escalate' ? step.to : 'default'
}

const escalate = (run: Run, p: CompiledPolicy, inc: Incident, reason: string, to: string): void => {
  if (inc.status === 'escalated' && inc.escalatedTo === to) return
  inc.status = 'escalated'
  inc.escalatedTo = to
  inc.updatedAt = isoNow(run)
  notify(
    run,
    p,
    inc,
    'ansai.incident.escalated.v1',
    `${to}|${inc.attempts.length}`,
    `${p.name}: ${label(run, inc)} needs a human: ${reason}`,
    {
      reason,
      attempts: inc.attempts.map((a) => ({ remediation: a.remediation, status: a.status, summary: a.summary })),
    },
    to,
  )
}

/** The next ladder step to take: the first one not yet taken whose `at` is at or below the current level. */
const nextStep = (p: CompiledPolicy, inc: Incident, level: Level): CompiledStep | undefined => {
  const rank = levelRank(level)
  // Passive policies alert only: their fixes are passed over, their escalations still page.
  return p.ladder.find(
    (s) => !inc.stepsDone.includes(s.index) && s.atRank <= rank && (p.mode === 'active' || s.type === 'escalate'),
  )
}

const inWindow = (p: CompiledPolicy, now: number): boolean => {
  const w = p.guards.window
  if (!w) return true
  const minute = new Date(Math.floor(now / 60_000) * 60_000)
  return w.cron.match(minute)
}

const parentDown = (run: Run, p: CompiledPolicy): string | undefined => {
  for (const dep of p.guards.dependsOn) {
    const states = run.state.resources[dep]
    for (const resource in states) {
      const inc = states[resource]?.incident
      if (inc && inc.status !== 'resolved') return `${dep} (${resource})`
    }
  }
  return undefined
}

const block = (run: Run, p: CompiledPolicy, inc: Incident, reason: string, notes: string[]): void => {
  notes.push(`fix held back: ${reason}`)
  if (inc.blockedBy === reason) return
  inc.blockedBy = reason
  notify(
    run,
    p,
    inc,
    'ansai.fix.skipped.v1',
    `${reason}|${run.now}`,
    `${p.name}: fix on ${label(run, inc)} held back: ${reason}`,
    {
      reason,
    },
  )
}

type Hold =
  | { kind: 'wait' | 'block' | 'escalate'; reason: string }
  | { kind: 'params'; params: Record<string, unknown> }
  | undefined

/** The guards in order: dependencies, window, cooldown, limit, then the bound params. */
const heldBack = (
  run: Run,
  p: CompiledPolicy,
  rs: ResourceState,
  step: Extract<CompiledStep, { type: 'run' }>,
  vars: Record<string, unknown>,
): Hold => {
  const down = parentDown(run, p)
  if (down) return { kind: 'block', reason: `depends on ${down}, which is down` }
  if (!inWindow(p, run.now)) {
    return {
      kind: 'block',
      reason: `outside the maintenance window '${p.guards.window?.expr}' (${p.guards.window?.tz})`,
    }
  }
  const lastFix = rs.fixes?.[rs.fixes.length - 1]
  if (p.guards.cooldownMs > 0 && lastFix !== undefined && run.now - lastFix < p.guards.cooldownMs) {
    return { kind: 'wait', reason: `cooling down: ${formatDuration(p.guards.cooldownMs - (run.now - lastFix))} left` }
  }
  const limit = p.guards.limit
  if (limit) {
    const recent = (rs.fixes ?? []).filter((t) => run.now - t < limit.withinMs)
    rs.fixes = recent.length ? recent : undefined
    if (recent.length >= limit.max) {
      const reason = `limit reached: ${limit.max} fixes within ${formatDuration(limit.withinMs)}`
      return { kind: limit.then === 'escalate' ? 'escalate' : 'block', reason }
    }
  }
  if (!step.bind) return undefined
  const value = vars[step.bind.field]
  const checked = step.remediation.params.safeParse({ ...step.params, [step.bind.param]: value })
  if (!checked.success) {
    return {
      kind: 'block',
      reason: `${step.bind.field} '${String(value)}' is not a valid ${step.remediation.id} ${step.bind.param}`,
    }
  }
  return { kind: 'params', params: checked.data as Record<string, unknown> }
}

/** Take ladder steps while the incident is open and the guards allow it. */
const advanceLadder = (
  run: Run,
  p: CompiledPolicy,
  rs: ResourceState,
  inc: Incident,
  level: Level,
  vars: Record<string, unknown>,
  values: Record<string, unknown>,
  notes: string[],
): void => {
  if (inc.status !== 'open' && inc.status !== 'escalated') return
  // A dry run shows the first fix it would make for an incident, then holds: nothing was done to verify.
  if (run.input.dryRun && inc.attempts.length > 0) {
    notes.push(`dry-run: would have run ${inc.attempts.map((a) => a.remediation).join(', ')}; holding`)
    return
  }
  const step = nextStep(p, inc, level)
  if (!step) {
    const ranAll = p.ladder.length > 0 && p.ladder.every((s) => inc.stepsDone.includes(s.index))
    if (ranAll && inc.status === 'open' && p.ladder.some((s) => s.type === 'run')) {
      inc.status = 'failed'
      inc.updatedAt = isoNow(run)
      notify(
        run,
        p,
        inc,
        'ansai.incident.failed.v1',
        inc.attempts.length,
        `${p.name}: every fix for ${label(run, inc)} was tried and the problem remains`,
        { values },
      )
    }
    return
  }
  if (step.type === 'escalate') {
    inc.stepsDone.push(step.index)
    escalate(run, p, inc, inc.attempts.length ? 'the fixes did not clear it' : `it is ${level}`, step.to)
    return
  }
  if (p.mode === 'passive') {
    notes.push('passive: alert only')
    return
  }
  const held = heldBack(run, p, rs, step, vars)
  if (held?.kind === 'wait') {
    notes.push(held.reason)
    return
  }
  if (held?.kind === 'escalate') {
    notes.push(held.reason)
    escalate(run, p, inc, held.reason, escalationTarget(p, inc))
    return
  }
  if (held?.kind === 'block') {
    block(run, p, inc, held.reason, notes)
    return
  }
  const params = held?.kind === 'params' ? held.params : step.params
  const attempt = inc.attempts.length + 1
  const key = `r-${stableHash(run.host.id, p.name, inc.resource, inc.openedAt, step.index, attempt)}`
  const verifyBy = new Date(run.now + step.verifyWithinMs).toISOString()
  inc.stepsDone.push(step.index)
  inc.attempts.push({
    key,
    step: step.index,
    remediation: step.remediation.id,
    startedAt: isoNow(run),
    verifyBy,
    status: 'pending',
  })
  inc.status = 'remediating'
  inc.blockedBy = undefined
  inc.updatedAt = isoNow(run)
  rs.fixes = [...(rs.fixes ?? []), run.now]
  const dryRun = run.input.dryRun === true
  const reason = `${p.name}: ${inc.resource} is ${level} (${describeValues(values)})`
  run.decisions.push({
    type: 'remediate',
    key,
    host: run.host.id,
    policy: p.name,
    resource: inc.resource,
    incidentId: inc.id,
    severity: level,
    at: isoNow(run),
    step: step.index,
    attempt,
    remediation: step.remediation.id,
    params,
    risk: step.risk,
    dryRun,
    verifyBy,
    reason,
  })
  notify(
    run,
    p,
    inc,
    'ansai.fix.started.v1',
    key,
    `${p.name}: running ${step.remediation.id} on ${label(run, inc)}${dryRun ? ' (dry-run)' : ''}`,
    { remediation: step.remediation.id, params, dryRun, values },
  )
}

const openIncident = (
  run: Run,
  p: CompiledPolicy,
  rs: ResourceState,
  level: Level,
  values: Record<string, unknown>,
): Incident => {
  const flap = p.guards.flapping
  const recent = (rs.flaps ?? []).filter((t) => run.now - t < flap.withinMs)
  const flapping = recent.length >= flap.changes
  rs.flaps = [...recent, run.now]
  const inc: Incident = {
    id: `inc-${stableHash(run.host.id, p.name, rs.resource, run.now)}`,
    host: run.host.id,
    policy: p.name,
    resource: rs.resource,
    kind: p.observe,
    status: 'open',
    severity: level,
    peakSeverity: level,
    openedAt: isoNow(run),
    updatedAt: isoNow(run),
    stepsDone: [],
    attempts: [],
    milestones: [],
    flapping,
    lastValues: values,
  }
  notify(
    run,
    p,
    inc,
    'ansai.incident.opened.v1',
    level,
    `${p.name}: ${label(run, inc)} is ${level} (${describeValues(values)})${flapping ? ' — flapping, held open until stable' : ''}`,
    { values, flapping },
  )
  return inc
}

const resolveIncident = (
  run: Run,
  p: CompiledPolicy,
  rs: ResourceState,
  inc: Incident,
  values: Record<string, unknown>,
): void => {
  const fixed = inc.attempts.filter((a) => a.status === 'verified' || a.status === 'succeeded')
  inc.status = 'resolved'
  inc.resolvedAt = isoNow(run)
  inc.updatedAt = isoNow(run)
  run.resolved ??= []
  run.resolved.push(inc)
  const by = fixed.length ? ` after ${fixed.map((a) => a.remediation).join(', ')}` : ''
  notify(run, p, inc, 'ansai.incident.resolved.v1', 'resolved', `${p.name}: ${label(run, inc)} is healthy again${by}`, {
    values,
    durationMs: run.now - Date.parse(inc.openedAt),
    fixes: inc.attempts.map((a) => ({ remediation: a.remediation, status: a.status, summary: a.summary })),
  })
  rs.flaps = [...(rs.flaps ?? []).filter((t) => run.now - t < p.guards.flapping.withinMs), run.now]
  rs.incident = undefined
  rs.okStreak = undefined
}

/** Verification of the newest attempt on this observation: verified when the level fell below the step's tier. */
const verify = (
  run: Run,
  p: CompiledPolicy,
  rs: ResourceState,
  inc: Incident,
  level: Level,
  values: Record<string, unknown>,
): void => {
  if (inc.status !== 'verifying') return
  const a = inc.attempts[inc.attempts.length - 1]
  if (!a) return
  const step = p.ladder.find((s) => s.index === a.step)
  const atRank = step?.atRank ?? 1
  if (levelRank(level) < atRank) {
    a.status = 'verified'
    // The fix changed the resource: the growth before it says nothing about the growth after it.
    rs.samples = undefined
    notify(run, p, inc, 'ansai.fix.verified.v1', a.key, `${p.name}: ${a.remediation} fixed ${label(run, inc)}`, {
      remediation: a.remediation,
      values,
      summary: a.summary,
    })
  } else {
    a.status = 'unverified'
    notify(
      run,
      p,
      inc,
      'ansai.fix.failed.v1',
      a.key,
      `${p.name}: ${a.remediation} ran but ${inc.resource} is still ${level}`,
      { remediation: a.remediation, values, summary: a.summary },
    )
  }
  inc.status = inc.escalatedTo ? 'escalated' : 'open'
  inc.updatedAt = isoNow(run)
}

/** Deadlines: a fix with no result in time failed; a fix not confirmed in time is escalated. */
const checkDeadlines = (run: Run, p: CompiledPolicy, inc: Incident): void => {
  const a = inc.attempts[inc.attempts.length - 1]
  if (!a || run.now <= Date.parse(a.verifyBy)) return
  if (inc.status === 'remediating' && a.status === 'pending') {
    a.status = 'failed'
    a.summary = 'no result before the verification deadline'
    inc.status = inc.escalatedTo ? 'escalated' : 'open'
    inc.updatedAt = isoNow(run)
    notify(
      run,
      p,
      inc,
      'ansai.fix.failed.v1',
      a.key,
      `${p.name}: ${a.remediation} on ${label(run, inc)} gave no result in time`,
      { remediation: a.remediation },
    )
  } else if (inc.status === 'verifying') {
    a.status = 'unverified'
    escalate(run, p, inc, `no observation confirmed ${a.remediation} before ${a.verifyBy}`, escalationTarget(p, inc))
  }
}

const fireMilestones = (run: Run, p: CompiledPolicy, inc: Incident, vars: Record<string, unknown>): void => {
  const m = p.milestones
  if (!m) return
  const v = vars[m.field]
  if (typeof v !== 'number' || Number.isNaN(v)) return
  let lowest: number | undefined
  for (const point of m.points) {
    if (v <= point && !inc.milestones.includes(point)) {
      inc.milestones.push(point)
      lowest = point
    }
  }
  if (lowest === undefined) return
  notify(
    run,
    p,
    inc,
    'ansai.milestone.reached.v1',
    lowest,
    `${p.name}: ${label(run, inc)}: ${m.field} ${round(v)} ≤ ${lowest}`,
    { field: m.field, point: lowest, value: round(v) },
  )
}

/**
 * Whether the rest of evaluateResource would leave this open incident exactly as it is, at a level above ok equal to
 * the incident's severity: nothing to verify or past its deadline (status open or escalated), no new milestone, no
 * ladder step to take, not every fix tried, no dry-run hold. Each clause mirrors a change made by verify,
 * checkDeadlines, fireMilestones or advanceLadder.
 */
const idle = (run: Run, p: CompiledPolicy, inc: Incident, level: Level, vars: Vars): boolean => {
  if (inc.status !== 'open' && inc.status !== 'escalated') return false
  if (inc.severity !== level || levelRank(level) > levelRank(inc.peakSeverity)) return false
  if (run.input.dryRun && inc.attempts.length > 0) return false
  const m = p.milestones
  if (m) {
    const v = vars[m.field]
    if (typeof v === 'number' && !Number.isNaN(v)) {
      for (const point of m.points) if (v <= point && !inc.milestones.includes(point)) return false
    }
  }
  if (nextStep(p, inc, level)) return false
  const ranAll = p.ladder.length > 0 && p.ladder.every((s) => inc.stepsDone.includes(s.index))
  return !(ranAll && inc.status === 'open' && p.ladder.some((s) => s.type === 'run'))
}

/**
 * One evaluation of one policy on one resource: debounce, incident lifecycle, verification, ladder. `prior` is the
 * resource's current state (`run.state.resources[p.name][resource]`), looked up by the caller; callers evaluate a
 * resource at most once per call.
 */
const evaluateResource = (
  run: Run,
  p: CompiledPolicy,
  resource: string,
  prior: ResourceState | undefined,
  vars: Record<string, unknown>,
  obs: Observation | null,
  fresh: boolean,
): void => {
  let notes: string[] | undefined

  // Trend values.
  const trendDef = p.probe?.trend
  let samples: number[] | undefined
  if (trendDef) {
    let rate = 0
    let eta = Number.POSITIVE_INFINITY
    if (p.trend && obs) {
      const o = obs as never
      const value = trendDef.value(o)
      const stored = prior?.samples ?? NO_SAMPLES
      const kept = addSample(stored, run.now, value, p.trend.windowMs)
      if (kept !== stored) samples = kept
      run.fit ??= { ratePerHour: 0, hoursToCapacity: Number.POSITIVE_INFINITY, samples: 0 }
      const fit = fitTrendInto(
        run.fit,
        kept,
        run.now,
        value,
        trendDef.capacity(o),
        p.trend.windowMs,
        p.trend.minSamples,
      )
      rate = fit.ratePerHour
      eta = trendDef.eta.unit === 'minutes' ? fit.hoursToCapacity * 60 : fit.hoursToCapacity
      // Notes only reach findings: the fleet ingest path (findings 'none') does not build them.
      if (fit.samples < p.trend.minSamples && run.findingsMode !== 'none')
        notes = addNote(notes, `trend: ${fit.samples}/${p.trend.minSamples} samples`)
    }
    vars[trendDef.eta.name] = eta
    vars[trendDef.rate.name] = rate
  }

  // Tiers with debounce; the level is the highest tier whose debounce holds.
  let level: Level = 'ok'
  let rank = 0
  const tiers = p.tiers
  const priorHist = prior && prior.hist.length === tiers.length ? prior.hist : undefined
  let hist = priorHist
  for (let i = 0; i < tiers.length; i++) {
    const tier = tiers[i]!
    let hit = false
    try {
      hit = tier.evaluate(vars)
    } catch (err) {
      notes = addNote(notes, `${tier.level}: ${(err as Error).message.split('\n')[0]}`)
    }
    const before = priorHist?.[i] ?? 0
    const h = ((before << 1) | (hit ? 1 : 0)) >>> 0
    if (h !== before || !hist) {
      if (hist === priorHist) hist = priorHist ? [...priorHist] : new Array<number>(tiers.length).fill(0)
      hist![i] = h
    }
    const mask = tier.debounce.within >= 32 ? 0xffffffff : (1 << tier.debounce.within) - 1
    if (popcount(h & mask) >= tier.debounce.times && tier.rank > rank) {
      level = tier.level
      rank = tier.rank
    }
  }
  const keepLast = obs !== null && p.probe?.timeBased === true
  const lastChanged = keepLast && !sameLast(p, prior?.last, obs as unknown as Record<string, unknown>)

  const unchanged = prior && hist === priorHist && !samples && !lastChanged
  // Fast path: a healthy resource whose state does not change is not copied.
  if (unchanged && level === 'ok' && !prior.incident && !prior.level) {
    if (run.findingsMode === 'all')
      pushFinding(run, p, resource, level, pickValues(p, vars), notes ?? (NO_NOTES as string[]))
    return
  }
  // Still at the level of its open incident, which has nothing to do (a certificate in its warning weeks, a disk in
  // its warning band): the incident is left as it is, and shared with the given state rather than copied. The rest
  // of the resource's state is copied only if it changed (match history, trend sample, kept observation).
  if (
    prior?.incident &&
    level === prior.level &&
    prior.okStreak === undefined &&
    idle(run, p, prior.incident, level, vars)
  ) {
    if (!unchanged) {
      const rs = working(run, p, resource, true)
      run.evaluated ??= []
      run.evaluated.push(rs)
      rs.hist = hist ?? rs.hist
      if (samples) rs.samples = samples
      if (lastChanged) rs.last = lastOf(p, obs as unknown as Record<string, unknown>)
    }
    if (run.findingsMode !== 'none')
      pushFinding(run, p, resource, level, pickValues(p, vars), notes ?? (NO_NOTES as string[]), prior.incident)
    return
  }
  // The evidence values are read only by incidents, decisions and findings; a healthy resource that only keeps a
  // new trend sample (the common slow path) on the fleet ingest path needs none of them.
  const values =
    level !== 'ok' || prior?.incident || run.findingsMode !== 'none' ? pickValues(p, vars) : (NO_VALUES as Vars)

  const rs = working(run, p, resource)
  run.evaluated ??= []
  run.evaluated.push(rs)
  rs.hist = hist ?? rs.hist
  if (samples) rs.samples = samples
  if (lastChanged) rs.last = lastOf(p, obs as unknown as Record<string, unknown>)
  rs.level = level === 'ok' ? undefined : level
  const out: string[] = notes ?? []

  let inc = rs.incident
  if (inc) {
    // A fresh observation confirms or refutes a fix, even a late one; a tick's old observation never does.
    if (fresh) verify(run, p, rs, inc, level, values)
    checkDeadlines(run, p, inc)
  }
  if (level === 'ok') {
    if (inc && inc.status !== 'remediating') {
      rs.okStreak = (rs.okStreak ?? 0) + 1
      const needed = inc.flapping ? p.guards.flapping.stableFor : 1
      if (rs.okStreak >= needed) resolveIncident(run, p, rs, inc, values)
      else out.push(`flapping: ${rs.okStreak}/${needed} healthy cycles before it resolves`)
    }
  } else {
    rs.okStreak = undefined
    if (!inc) {
      inc = openIncident(run, p, rs, level, values)
      rs.incident = inc
    } else {
      const from = inc.severity
      if (level !== from) {
        inc.updatedAt = isoNow(run)
        inc.severity = level
        inc.lastValues = values
      }
      if (levelRank(level) > levelRank(inc.peakSeverity)) inc.peakSeverity = level
      if (levelRank(level) > levelRank(from)) {
        notify(
          run,
          p,
          inc,
          'ansai.incident.worsened.v1',
          `${level}|${run.now}`,
          `${p.name}: ${label(run, inc)} is now ${level} (${describeValues(values)})`,
          { values, from },
        )
      }
    }
    fireMilestones(run, p, inc, vars)
    advanceLadder(run, p, rs, inc, level, vars, values, out)
  }

  const current = rs.incident
  if (run.findingsMode === 'none' || (run.findingsMode === 'problems' && level === 'ok' && !current)) return
  pushFinding(run, p, resource, level, values, out, current)
}

const pushFinding = (
  run: Run,
  p: CompiledPolicy,
  resource: string,
  level: Level,
  values: Record<string, unknown>,
  notes: string[],
  incident?: Incident,
): void => {
  // Two literals rather than a spread of an optional part: one finding per resource on `ansai check`.
  const host = run.host.id
  const kind = p.observe
  run.findings.push(
    incident
      ? { host, policy: p.name, resource, kind, level, values, incident: incident.id, status: incident.status, notes }
      : { host, policy: p.name, resource, kind, level, values, notes },
  )
}

/** Feed fix outcomes to their attempts: succeeded → verifying; failed or skipped → the ladder moves on. */
const applyResults = (run: Run, results: readonly RemediationResultV1[]): void => {
  for (const result of results) {
    for (const prior of allResources(run.state)) {
      const attempt = prior.incident?.attempts.find((a) => a.key === result.key)
      if (attempt?.status !== 'pending') continue
      const p = run.input.policies.byName.get(prior.policy)
      if (!p) continue
      const rs = working(run, p, prior.resource)
      const inc = rs.incident!
      const a = inc.attempts.find((x) => x.key === result.key)!
      a.finishedAt = result.finishedAt
      a.summary = result.summary
      inc.updatedAt = isoNow(run)
      if (result.status === 'succeeded') {
        a.status = 'succeeded'
        inc.status = 'verifying'
        // The fix changed the resource: the growth before it says nothing about the growth after it, and a forecast
        // over samples from before it (a disk at 96 % a minute before a cleanup) would fail the fix's verification.
        rs.samples = undefined
      } else if (result.status === 'dry-run') {
        // Nothing ran: nothing to verify. In a dry run the ladder holds here (see advanceLadder).
        a.status = 'skipped'
        inc.status = inc.escalatedTo ? 'escalated' : 'open'
      } else {
        a.status = result.status === 'skipped' ? 'skipped' : 'failed'
        inc.status = inc.escalatedTo ? 'escalated' : 'open'
        notify(
          run,
          p,
          inc,
          'ansai.fix.failed.v1',
          a.key,
          `${p.name}: ${a.remediation} on ${label(run, inc)} ${a.status}: ${result.error ?? result.summary}`,
          { remediation: a.remediation, error: result.error, summary: result.summary },
        )
      }
    }
  }
}

const NONE: readonly Observation[] = []
const NO_SAMPLES: readonly number[] = []

/**
 * Resources already evaluated for the policy at hand in this call: the first `size` entries of `list` (reused from
 * policy to policy, never shrunk, so it is allocated once per call). A short list is scanned linearly (a host has a
 * few resources of a kind, and a Set per policy and call costs more than the scan); a long one moves to a Set.
 */
interface Seen {
  list: string[]
  size: number
  set: Set<string> | undefined
}

const resetSeen = (seen: Seen): void => {
  seen.size = 0
  seen.set = undefined
}

/** False when `resource` was already evaluated for this policy: a repeated observation is ignored. */
const firstVisit = (seen: Seen, resource: string): boolean => {
  if (seen.set) {
    if (seen.set.has(resource)) return false
    seen.set.add(resource)
    return true
  }
  const list = seen.list
  for (let i = 0; i < seen.size; i++) if (list[i] === resource) return false
  list[seen.size++] = resource
  if (seen.size > 16) seen.set = new Set(list.slice(0, seen.size))
  return true
}

/**
 * The variables a policy's expressions read, for the observation at `index` of the report: its derived values,
 * then the fields the policy needs (a derived value wins unless undefined, as in varsFor), then, set by
 * evaluateResource, the trend values. One object per observation is made and shared by the policies on its kind:
 * derive() is pure, so every policy would compute the same derived values; fields are the observation's own; trend
 * values are written by each policy before its tiers read them; and a variable a policy does not need is never read
 * by it (`needs` covers every variable its expressions, milestones and bound params read).
 */
const varsOf = (
  p: CompiledPolicy,
  probe: NonNullable<CompiledPolicy['probe']>,
  obs: Observation,
  index: number,
  cache: (Vars | undefined)[],
  clock: { now: number },
): Vars => {
  let vars = cache[index]
  if (vars === undefined) {
    // derive() returns a new object each call (test/unit/engine/derive.test.ts checks every probe): it becomes the
    // variables object itself, written to below, rather than copied.
    vars = probe.derive(obs as never, clock) as Vars
    cache[index] = vars
  }
  const o = obs as unknown as Vars
  for (const name of p.needs) if (vars[name] === undefined) vars[name] = o[name]
  return vars
}

/** The variables one policy's expressions read, from the observation and its derived values. */
const varsFor = (
  p: CompiledPolicy,
  o: Record<string, unknown>,
  derived: Record<string, unknown>,
): Record<string, unknown> => {
  const vars: Record<string, unknown> = {}
  for (const name of p.needs) {
    const d = derived[name]
    vars[name] = d !== undefined ? d : o[name]
  }
  return vars
}

const toMs = (now: number | string): number => {
  const ms = typeof now === 'number' ? now : Date.parse(now)
  if (!Number.isFinite(ms)) throw new RangeError(`evaluate: 'now' is not a time: ${String(now)}`)
  return ms
}

/**
 * The engine: data in, data out. Pure and deterministic: no I/O, no clock, no randomness; the same input always
 * gives the same output, and the input is never mutated.
 */
export const evaluate = (input: EvaluateInput): EvaluateOutput => {
  const now = toMs(input.now)
  const prior = input.state ?? emptyHostState(input.host.id)
  const run: Run = {
    input,
    now,
    nowIso: undefined,
    host: input.host,
    prior,
    state: { ...prior },
    decisions: [],
    findings: [],
    touched: undefined,
    resourcesCopied: false,
    findingsMode: input.findings ?? 'all',
    resolved: undefined,
    evaluated: undefined,
    fit: undefined,
  }
  if (input.results?.length) applyResults(run, input.results)

  const isReport = input.observations !== undefined
  const stale = isReport && input.seq !== undefined && input.seq <= prior.lastSeq

  if (stale) {
    // An old or repeated report: keep its trend samples, never move state back.
    for (const obs of input.observations ?? []) {
      for (const p of input.policies.byKind.get(obs.kind) ?? []) {
        const trend = p.probe?.trend
        if (!p.trend || !trend || !matchesTargets(p, run.host)) continue
        const resource = p.probe!.resource(obs as never)
        if (p.match && !p.match(obs as unknown as Record<string, unknown>)) continue
        const existing = run.state.resources[p.name]?.[resource]
        if (!existing) continue
        const stored = existing.samples ?? NO_SAMPLES
        const kept = insertOldSample(stored, now, trend.value(obs as never), p.trend.windowMs)
        if (kept !== stored) working(run, p, resource).samples = kept
      }
    }
    return output(run)
  }

  if (isReport) {
    run.state.lastSeenAt = now
    if (input.seq !== undefined) run.state.lastSeq = input.seq
  }

  const clock = { now }
  const observations = input.observations ?? NONE
  const count = observations.length
  // Kinds read once: reading `kind` from observations of many shapes is a slow (megamorphic) property load, and
  // every policy scans them.
  const kinds: string[] = new Array(count)
  for (let i = 0; i < count; i++) kinds[i] = observations[i]!.kind
  const varsByObservation: (Vars | undefined)[] = new Array(count)
  const seen: Seen = { list: [], size: 0, set: undefined }
  for (const p of input.policies.policies) {
    if (!matchesTargets(p, run.host)) continue
    // The policy's resource states as they are now (results may have copied some): each resource is evaluated at
    // most once per call, so an entry read here is still current when its resource comes up.
    const states = run.state.resources[p.name]
    if (p.probe === null) {
      // The host signal: silent for how long?
      if (!isReport && prior.lastSeenAt === null) continue
      const silentMinutes = isReport
        ? 0
        : Math.max(0, now - (prior.lastSeenAt as number) - (input.silenceGraceMs ?? 0)) / 60_000
      evaluateResource(run, p, 'host', states?.host, { silentMinutes }, null, isReport)
      continue
    }
    const probe = p.probe
    resetSeen(seen)
    if (isReport) {
      // The state keys, to look resources up by (see below): a host reports its resources in the same order every
      // time, and its states were added in that order.
      const keys = states ? Object.keys(states) : NO_KEYS
      let next = 0
      // Observations in report order, those of other kinds passed over: a scan is cheaper than grouping them by
      // kind in a Map on every call, and the order of evaluations (so of decisions and events) stays the same.
      for (let i = 0; i < count; i++) {
        if (kinds[i] !== p.observe) continue
        const obs = observations[i]!
        const o = obs as unknown as Vars
        if (p.match && !p.match(o)) continue
        let resource = probe.resource(obs as never)
        // A resource name read from a new report is a new string: as a property key, V8 must first hash it and find
        // its own (internalized) copy in a global table, for each of the ~25 resources of a report. The next state
        // key in order is almost always the same name, and comparing two strings is cheaper: when it is, that key
        // (already V8's copy) is used from here on; otherwise the name is looked up as it is.
        const key = keys[next]
        if (key === resource) {
          resource = key
          next++
        }
        if (!firstVisit(seen, resource)) continue
        const vars = varsOf(p, probe, obs, i, varsByObservation, clock)
        evaluateResource(run, p, resource, states?.[resource], vars, obs, true)
      }
    } else if (probe.timeBased) {
      // A tick: re-evaluate the last observation of clock-dependent kinds (days left, age).
      const priorStates = prior.resources[p.name] ?? {}
      for (const key in priorStates) {
        const rs = priorStates[key]!
        if (!rs.last || !firstVisit(seen, rs.resource)) continue
        const obs = rs.last as unknown as Observation
        const vars = varsFor(p, rs.last, probe.derive(obs as never, { now }))
        evaluateResource(run, p, rs.resource, states?.[rs.resource], vars, null, false)
      }
    }
  }

  // Deadlines of incidents whose resource was not evaluated in this call.
  for (const policy in prior.resources) {
    const states = prior.resources[policy]!
    for (const resource in states) {
      const inc = states[resource]!.incident
      if (inc && (inc.status === 'remediating' || inc.status === 'verifying')) overdue(run, inc)
    }
  }

  return output(run)
}

/** Incidents opened or changed in this call: those of the resource states it copied, and the resolved ones. */
const output = (run: Run): EvaluateOutput => {
  const incidents = run.resolved ?? []
  for (const rs of run.touched ?? NO_STATES) {
    const inc = rs.incident
    if (!inc) continue
    const before = run.input.state?.resources[rs.policy]?.[rs.resource]?.incident
    if (!before || before.updatedAt !== inc.updatedAt || before.status !== inc.status || before.id !== inc.id)
      incidents.push(inc)
  }
  return { decisions: run.decisions, nextState: run.state, findings: run.findings, incidents }
}

/** A fix whose resource was not evaluated in this call may still be past its deadline. */
const overdue = (run: Run, inc: Incident): void => {
  const current = run.state.resources[inc.policy]?.[inc.resource]
  if (current && run.evaluated?.includes(current)) return
  if (run.now <= Date.parse(inc.attempts[inc.attempts.length - 1]?.verifyBy ?? '')) return
  const p = run.input.policies.byName.get(inc.policy)
  if (!p) return
  checkDeadlines(run, p, working(run, p, inc.resource).incident!)
}
