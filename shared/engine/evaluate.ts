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
import { addSample, fitTrend, insertOldSample } from './trend.ts'

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
  state: HostState
  decisions: Decision[]
  findings: Finding[]
  /** Resource states cloned into the next state in this call. */
  touched: Set<ResourceState> | undefined
  resourcesCopied: boolean
  copiedPolicies: Set<string> | undefined
  findingsMode: 'all' | 'problems' | 'none'
  resolved: Incident[]
  /** Resource states evaluated on an observation in this call, before and after copying. */
  seen: Set<ResourceState>
  /** Resource states evaluated on an observation in this call (their working copies). */
  evaluated: Set<ResourceState> | undefined
}

/** Notes are rare: the array is made on the first one. */
const addNote = (notes: string[] | undefined, note: string): string[] => {
  const out = notes ?? []
  out.push(note)
  return out
}

const NO_NOTES: readonly string[] = Object.freeze([])

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
  run.copiedPolicies ??= new Set()
  if (!inner || !run.copiedPolicies.has(policy)) {
    inner = { ...inner }
    run.state.resources[policy] = inner
    run.copiedPolicies.add(policy)
  }
  return inner
}

/** Mutable working copy of a resource's state for this call (cloned once per call). */
const working = (run: Run, p: CompiledPolicy, resource: string): ResourceState => {
  const prior = run.state.resources[p.name]?.[resource]
  if (prior && run.touched?.has(prior)) return prior
  const rs = prior ? cloneResourceState(prior) : newResourceState(p.name, resource, p.tiers.length)
  if (rs.hist.length !== p.tiers.length) rs.hist = new Array<number>(p.tiers.length).fill(0)
  writablePolicy(run, p.name)[resource] = rs
  run.touched ??= new Set()
  run.touched.add(rs)
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

/** One evaluation of one policy on one resource: debounce, incident lifecycle, verification, ladder. */
const evaluateResource = (
  run: Run,
  p: CompiledPolicy,
  resource: string,
  vars: Record<string, unknown>,
  obs: Observation | null,
  fresh: boolean,
): void => {
  const prior = run.state.resources[p.name]?.[resource]
  // One evaluation per resource per report: a repeated observation of the same resource is ignored.
  if (prior) {
    if (run.seen.has(prior)) return
    run.seen.add(prior)
  }
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
      const fit = fitTrend(
        kept,
        { tMs: run.now, value, capacity: trendDef.capacity(o) },
        p.trend.windowMs,
        p.trend.minSamples,
      )
      rate = fit.ratePerHour
      eta = trendDef.eta.unit === 'minutes' ? fit.hoursToCapacity * 60 : fit.hoursToCapacity
      if (fit.samples < p.trend.minSamples)
        notes = addNote(notes, `trend: ${fit.samples}/${p.trend.minSamples} samples`)
    }
    vars[trendDef.eta.name] = eta
    vars[trendDef.rate.name] = rate
  }

  // Tiers with debounce; the level is the highest tier whose debounce holds.
  let level: Level = 'ok'
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
    if (popcount(h & mask) >= tier.debounce.times && levelRank(tier.level) > levelRank(level)) level = tier.level
  }
  const keepLast = obs !== null && p.probe?.timeBased === true
  const lastChanged = keepLast && !sameLast(p, prior?.last, obs as unknown as Record<string, unknown>)

  // Fast path: a healthy resource whose state does not change is not copied.
  if (prior && hist === priorHist && !samples && !lastChanged && level === 'ok' && !prior.incident && !prior.level) {
    if (run.findingsMode === 'all')
      pushFinding(run, p, resource, level, pickValues(p, vars), notes ?? (NO_NOTES as string[]))
    return
  }
  const values = pickValues(p, vars)

  const rs = working(run, p, resource)
  run.seen.add(rs)
  run.evaluated ??= new Set()
  run.evaluated.add(rs)
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
  run.findings.push({
    host: run.host.id,
    policy: p.name,
    resource,
    kind: p.observe,
    level,
    values,
    ...(incident ? { incident: incident.id, status: incident.status } : {}),
    notes,
  })
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
    state: { ...prior },
    decisions: [],
    findings: [],
    touched: undefined,
    resourcesCopied: false,
    copiedPolicies: undefined,
    findingsMode: input.findings ?? 'all',
    resolved: [],
    seen: new Set(),
    evaluated: undefined,
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
  const byKind = new Map<string, Observation[]>()
  for (const obs of input.observations ?? NONE) {
    const list = byKind.get(obs.kind)
    if (list) list.push(obs)
    else byKind.set(obs.kind, [obs])
  }
  for (const p of input.policies.policies) {
    if (!matchesTargets(p, run.host)) continue
    if (p.probe === null) {
      // The host signal: silent for how long?
      if (!isReport && prior.lastSeenAt === null) continue
      const silentMinutes = isReport ? 0 : (now - (prior.lastSeenAt as number)) / 60_000
      evaluateResource(run, p, 'host', { silentMinutes }, null, isReport)
      continue
    }
    const probe = p.probe
    if (isReport) {
      const list = byKind.get(p.observe) ?? NONE
      for (const obs of list) {
        const o = obs as unknown as Record<string, unknown>
        if (p.match && !p.match(o)) continue
        const resource = probe.resource(obs as never)
        evaluateResource(run, p, resource, varsFor(p, o, probe.derive(obs as never, clock)), obs, true)
      }
    } else if (probe.timeBased) {
      // A tick: re-evaluate the last observation of clock-dependent kinds (days left, age).
      const states = prior.resources[p.name] ?? {}
      for (const resource in states) {
        const rs = states[resource]!
        if (!rs.last) continue
        const obs = rs.last as unknown as Observation
        const vars = varsFor(p, rs.last, probe.derive(obs as never, { now }))
        evaluateResource(run, p, rs.resource, vars, null, false)
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
  const incidents = [...run.resolved]
  for (const rs of run.touched ?? []) {
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
  if (current && run.evaluated?.has(current)) return
  if (run.now <= Date.parse(inc.attempts[inc.attempts.length - 1]?.verifyBy ?? '')) return
  const p = run.input.policies.byName.get(inc.policy)
  if (!p) return
  checkDeadlines(run, p, working(run, p, inc.resource).incident!)
}
