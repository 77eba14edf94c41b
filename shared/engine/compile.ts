import { Cron } from 'croner'
import type { Level, Policy, Risk } from '../contracts/index.ts'
import { levelRank } from '../contracts/index.ts'
import { findProbe } from '../registry/probes/index.ts'
import { findRemediation, REMEDIATIONS } from '../registry/remediations/index.ts'
import type { ProbeDefinition, RemediationDefinition } from '../registry/types.ts'
import { type Debounce, parseDebounce, parseDuration } from './duration.ts'
import {
  type CompiledExpression,
  closest,
  compileExpression,
  createEnvironment,
  HOST_SIGNAL_VARIABLES,
  type VariableInfo,
  variablesOf,
} from './expressions.ts'

export type Path = readonly (string | number)[]

/** A meaning error found at load time: where (policy and path inside it), what, and how to fix it. */
export interface CompileError {
  policy: string
  /** Index of the policy in the list given to compilePolicies (maps back to file and line). */
  index: number
  path: Path
  message: string
  hint?: string
}

export interface CompiledTier {
  level: Exclude<Level, 'ok'>
  rank: number
  expr: string
  evaluate: CompiledExpression
  debounce: Debounce
}

export type CompiledStep =
  | {
      type: 'run'
      index: number
      atRank: number
      remediation: RemediationDefinition
      params: Record<string, unknown>
      /** Filled from the observation at decision time (see RemediationDefinition.bind). */
      bind: { param: string; field: string } | null
      risk: Risk
      verifyWithinMs: number
    }
  | { type: 'escalate'; index: number; atRank: number; to: string }

export interface CompiledPolicy {
  name: string
  description: string
  index: number
  observe: string
  /** null for the engine's own `host` signal. */
  probe: ProbeDefinition | null
  targets: { tags: Record<string, string[]>; hosts: string[] } | null
  match: ((o: Record<string, unknown>) => boolean) | null
  tiers: CompiledTier[]
  milestones: { field: string; points: number[] } | null
  trend: { windowMs: number; minSamples: number } | null
  ladder: CompiledStep[]
  guards: {
    limit: { max: number; withinMs: number; then: 'escalate' | 'stop' } | null
    cooldownMs: number
    window: { cron: Cron; expr: string; tz: string } | null
    dependsOn: string[]
    flapping: { changes: number; withinMs: number; stableFor: number }
  }
  mode: 'active' | 'passive'
  notify: string[]
  /** Variables the expressions read: shown as evidence in findings and messages. */
  uses: string[]
  /** Every variable an evaluation needs: `uses`, plus the milestone field and the fields params are bound from. */
  needs: string[]
  /** For time-based kinds: the observation fields kept for ticks (what the policy reads and what derive() reads). */
  lastFields: string[]
  source: Policy
}

export interface CompiledPolicySet {
  /** Parents before children (dependsOn), otherwise in the given order. */
  policies: CompiledPolicy[]
  byName: Map<string, CompiledPolicy>
  byKind: Map<string, CompiledPolicy[]>
}

export interface CompileOptions {
  /** Accept remediations whose executor is not built yet (validation and simulation only). */
  allowPlanned?: boolean
}

const TIERS = ['warning', 'critical', 'emergency'] as const

const globToRegExp = (glob: string): RegExp =>
  new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`)

const compileMatch = (match: Record<string, unknown>): ((o: Record<string, unknown>) => boolean) => {
  const tests = Object.entries(match).map(([field, want]) => {
    const options = (Array.isArray(want) ? want : [want]).map((w) =>
      typeof w === 'string' && w.includes('*') ? globToRegExp(w) : w,
    )
    // Plain loops: runs for every observation of the kind, and some()/every() callbacks would be made per call.
    return (o: Record<string, unknown>) => {
      const have = o[field]
      for (const w of options) {
        if (w instanceof RegExp ? typeof have === 'string' && w.test(have) : have === w) return true
      }
      return false
    }
  })
  return (o) => {
    for (const t of tests) if (!t(o)) return false
    return true
  }
}

const isValidTimeZone = (tz: string): boolean => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

const DEFAULT_VERIFY_MS = 10 * 60_000

/** Check one policy's meaning and compile its expressions once. */
const compileOne = (policy: Policy, index: number, opts: CompileOptions, errors: CompileError[]): CompiledPolicy => {
  const name = policy.metadata.name
  const spec = policy.spec
  const fail = (path: Path, message: string, hint?: string) =>
    errors.push({ policy: name, index, path: ['spec', ...path], message, ...(hint ? { hint } : {}) })

  const probe = spec.observe === 'host' ? null : (findProbe(spec.observe) ?? null)
  const variables: Map<string, VariableInfo> = probe ? variablesOf(probe) : HOST_SIGNAL_VARIABLES
  const env = createEnvironment(variables)

  // Targets: present means a real selector; never empty, never a wildcard.
  let targets: CompiledPolicy['targets'] = null
  if (spec.targets) {
    const tags = spec.targets.tags ?? {}
    const hosts = spec.targets.hosts ?? []
    if (Object.keys(tags).length === 0 && hosts.length === 0) {
      fail(
        ['targets'],
        'an empty target selector is refused',
        'name tags or hosts, or leave targets out to apply the policy wherever its pack is enabled',
      )
    }
    for (const [tag, values] of Object.entries(tags)) {
      values.forEach((v, i) => {
        if (v.includes('*')) fail(['targets', 'tags', tag, i], `wildcard target '${v}' is refused`, 'list the values')
      })
    }
    hosts.forEach((h, i) => {
      if (h.includes('*')) fail(['targets', 'hosts', i], `wildcard target '${h}' is refused`, 'list the host ids')
    })
    targets = { tags, hosts }
  }

  // Match: only fields the kind has.
  let match: CompiledPolicy['match'] = null
  if (spec.match) {
    for (const field of Object.keys(spec.match)) {
      if (!variables.has(field) || (probe && !(field in (probe.schema as unknown as { shape: object }).shape))) {
        const known = probe ? Object.keys((probe.schema as unknown as { shape: object }).shape) : []
        const hint = closest(field, known)
        fail(
          ['match', field],
          `'${spec.observe}' observations have no field '${field}'`,
          hint ? `did you mean '${hint}'?` : `fields: ${known.filter((k) => k !== 'kind').join(', ')}`,
        )
      }
    }
    match = compileMatch(spec.match)
  }

  // Severity tiers.
  const tiers: CompiledTier[] = []
  const uses = new Set<string>()
  for (const level of TIERS) {
    const tier = spec.severity[level]
    if (!tier) continue
    const compiled = compileExpression(env, variables, tier.when)
    if (!compiled.ok) {
      fail(['severity', level, 'when'], `expression: ${compiled.error}`)
      continue
    }
    for (const u of compiled.uses) uses.add(u)
    let debounce: Debounce = { times: 1, within: 1 }
    try {
      debounce = parseDebounce(tier.for)
    } catch (err) {
      fail(['severity', level, 'for'], (err as Error).message)
    }
    tiers.push({ level, rank: levelRank(level), expr: tier.when, evaluate: compiled.evaluate, debounce })
  }

  // Milestones.
  let milestones: CompiledPolicy['milestones'] = null
  if (spec.milestones) {
    const v = variables.get(spec.milestones.field)
    if (v?.type !== 'double') {
      fail(['milestones', 'field'], `'${spec.milestones.field}' is not a numeric value of '${spec.observe}'`)
    }
    uses.add(spec.milestones.field)
    milestones = { field: spec.milestones.field, points: [...new Set(spec.milestones.at)].sort((a, b) => b - a) }
  }

  // Trend: only kept when an expression reads a trend value.
  let trend: CompiledPolicy['trend'] = null
  const readsTrend = probe?.trend && (uses.has(probe.trend.eta.name) || uses.has(probe.trend.rate.name))
  if (spec.trend && !probe?.trend) fail(['trend'], `'${spec.observe}' has no trend values`)
  if (readsTrend) {
    trend = {
      windowMs: parseDuration(spec.trend?.window ?? '1h'),
      minSamples: spec.trend?.minSamples ?? 4,
    }
  }

  // Ladder.
  const definedRanks = tiers.map((t) => t.rank)
  const lowestRank = definedRanks.length ? Math.min(...definedRanks) : 1
  const verifyWithinMs = spec.verify ? parseDuration(spec.verify.within) : DEFAULT_VERIFY_MS
  const ladder: CompiledStep[] = []
  // A step without `at` runs from the level of the step before it (the first: the lowest tier defined).
  let inheritedRank = lowestRank
  spec.remediate.forEach((step, i) => {
    const atRank = step.at ? levelRank(step.at) : inheritedRank
    inheritedRank = atRank
    if (step.at && !definedRanks.some((r) => r >= atRank)) {
      fail(['remediate', i, 'at'], `no severity tier at or above '${step.at}' is defined, so this step never runs`)
    }
    if ('escalate' in step) {
      ladder.push({ type: 'escalate', index: i, atRank, to: step.escalate })
      return
    }
    const def = findRemediation(step.run)
    if (!def) {
      const hint = closest(
        step.run,
        REMEDIATIONS.map((r) => r.id),
      )
      fail(['remediate', i, 'run'], `unknown remediation '${step.run}'`, hint ? `did you mean '${hint}'?` : undefined)
      return
    }
    if (def.status === 'planned' && !opts.allowPlanned) {
      fail(
        ['remediate', i, 'run'],
        `remediation '${def.id}' is planned: its executor is not built yet, so this policy cannot run`,
        'use another remediation, or validate with --allow-planned to check the rest',
      )
    }
    if (!def.appliesTo.includes('*') && !def.appliesTo.includes(spec.observe as never)) {
      fail(
        ['remediate', i, 'run'],
        `'${def.id}' acts on ${def.appliesTo.join(', ')}, not on '${spec.observe}' observations`,
      )
    }
    // The observed resource fills a param only when the params are incomplete without it.
    const binding = def.bind?.[spec.observe as keyof typeof def.bind]
    const asGiven = def.params.safeParse(step.params)
    const bound = !asGiven.success && binding && !(binding.param in step.params) ? binding : undefined
    const parsed = bound ? def.params.safeParse({ ...step.params, [bound.param]: bound.placeholder }) : asGiven
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const path = issue.path as (string | number)[]
        const missing = issue.code === 'invalid_type' && /received undefined$/.test(issue.message)
        fail(
          ['remediate', i, 'params', ...path],
          missing ? `${def.id} needs '${path.join('.')}'` : issue.message,
          missing
            ? `add it under params (${def.id} params: ${Object.keys((def.params as unknown as { shape?: object }).shape ?? {}).join(', ')})`
            : undefined,
        )
      }
      return
    }
    const risk = def.riskOf ? def.riskOf(parsed.data as never) : def.risk
    if (risk === 'destructive' && !spec.allowDestructive) {
      fail(
        ['remediate', i, 'run'],
        `'${def.id}' is destructive here (it deletes data) and needs an explicit opt-in`,
        'add `allowDestructive: true` under spec',
      )
    }
    ladder.push({
      type: 'run',
      index: i,
      atRank,
      remediation: def,
      params: bound ? step.params : (parsed.data as Record<string, unknown>),
      bind: bound ? { param: bound.param, field: bound.field } : null,
      risk,
      verifyWithinMs: step.verify ? parseDuration(step.verify.within) : verifyWithinMs,
    })
  })

  // Durations that bound a window must be longer than zero, or the guard never holds.
  const positive: [Path, string | undefined][] = [
    [['guards', 'limit', 'within'], spec.guards.limit?.within],
    [['verify', 'within'], spec.verify?.within],
    [['guards', 'flapping', 'within'], spec.guards.flapping?.within],
    [['trend', 'window'], spec.trend?.window],
    ...spec.remediate.map((st, i): [Path, string | undefined] => [
      ['remediate', i, 'verify', 'within'],
      'run' in st ? st.verify?.within : undefined,
    ]),
  ]
  for (const [path, text] of positive) {
    if (text !== undefined && parseDuration(text) === 0)
      fail(path, `'${text}' is zero: this window must be longer than 0`)
  }

  // Guards.
  const g = spec.guards
  const def0 = ladder.find((s) => s.type === 'run')
  const defaults = def0?.type === 'run' ? def0.remediation.defaultGuards : {}
  const limitSpec = g.limit ?? defaults.limit
  let window: CompiledPolicy['guards']['window'] = null
  if (g.window) {
    if (!isValidTimeZone(g.window.tz)) fail(['guards', 'window', 'tz'], `unknown time zone '${g.window.tz}'`)
    else {
      try {
        window = {
          cron: new Cron(g.window.cron, { timezone: g.window.tz, paused: true }),
          expr: g.window.cron,
          tz: g.window.tz,
        }
      } catch (err) {
        fail(
          ['guards', 'window', 'cron'],
          `cron: ${(err as Error).message}`,
          "five fields: minute hour day month weekday, e.g. '* 0-6 * * *'",
        )
      }
    }
  }
  const flap = g.flapping ?? { changes: 4, within: '1h', stableFor: 5 }

  const needs = [
    ...new Set([
      ...uses,
      ...(milestones ? [milestones.field] : []),
      ...ladder.flatMap((st) => (st.type === 'run' && st.bind ? [st.bind.field] : [])),
    ]),
  ]
  return {
    name,
    description: policy.metadata.description ?? '',
    index,
    observe: spec.observe,
    probe,
    targets,
    match,
    tiers,
    milestones,
    trend,
    ladder,
    guards: {
      limit: limitSpec ? { max: limitSpec.max, withinMs: parseDuration(limitSpec.within), then: limitSpec.then } : null,
      cooldownMs: g.cooldown ? parseDuration(g.cooldown) : defaults.cooldown ? parseDuration(defaults.cooldown) : 0,
      window,
      dependsOn: g.dependsOn,
      flapping: { changes: flap.changes, withinMs: parseDuration(flap.within), stableFor: flap.stableFor },
    },
    mode: spec.mode,
    notify: spec.notify,
    uses: [...uses],
    needs,
    lastFields: probe?.timeBased ? [...new Set([...needs, ...probe.identity, ...(probe.clockFields ?? [])])] : [],
    source: policy,
  }
}

/** Check the meaning of a set of schema-valid policies and compile them once; errors carry policy and path. */
export const compilePolicies = (
  policies: readonly Policy[],
  opts: CompileOptions = {},
): { set: CompiledPolicySet; errors: CompileError[] } => {
  const errors: CompileError[] = []
  const compiled: CompiledPolicy[] = []
  const seen = new Map<string, number>()
  policies.forEach((p, index) => {
    const prior = seen.get(p.metadata.name)
    if (prior !== undefined) {
      errors.push({
        policy: p.metadata.name,
        index,
        path: ['metadata', 'name'],
        message: `duplicate policy name '${p.metadata.name}' (also policy #${prior + 1})`,
        hint: 'policy names are unique across all loaded packs; override a pack policy by disabling it',
      })
      return
    }
    seen.set(p.metadata.name, index)
    compiled.push(compileOne(p, index, opts, errors))
  })

  const byName = new Map(compiled.map((c) => [c.name, c]))
  // Dependencies: known names, no loops; order parents first.
  for (const c of compiled) {
    c.guards.dependsOn.forEach((dep, i) => {
      if (!byName.has(dep)) {
        const hint = closest(dep, [...byName.keys()])
        errors.push({
          policy: c.name,
          index: c.index,
          path: ['spec', 'guards', 'dependsOn', i],
          message: `depends on unknown policy '${dep}'`,
          ...(hint ? { hint: `did you mean '${hint}'?` } : {}),
        })
      }
    })
  }
  const ordered: CompiledPolicy[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (c: CompiledPolicy, trail: string[]) => {
    const s = state.get(c.name)
    if (s === 'done') return
    if (s === 'visiting') {
      const loop = [...trail.slice(trail.indexOf(c.name)), c.name]
      errors.push({
        policy: c.name,
        index: c.index,
        path: ['spec', 'guards', 'dependsOn'],
        message: `dependency loop: ${loop.join(' → ')}`,
        hint: 'a policy cannot depend on itself, directly or through others',
      })
      return
    }
    state.set(c.name, 'visiting')
    for (const dep of c.guards.dependsOn) {
      const parent = byName.get(dep)
      if (parent) visit(parent, [...trail, c.name])
    }
    state.set(c.name, 'done')
    ordered.push(c)
  }
  for (const c of compiled) visit(c, [])

  const byKind = new Map<string, CompiledPolicy[]>()
  for (const c of ordered) {
    const list = byKind.get(c.observe) ?? []
    list.push(c)
    byKind.set(c.observe, list)
  }
  return { set: { policies: ordered, byName, byKind }, errors }
}

export const rankOf = levelRank
