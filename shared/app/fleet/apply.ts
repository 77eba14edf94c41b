import type { Host, Incident, Observation, RemediationResultV1 } from '../../contracts/index.ts'
import type { CompiledPolicySet } from '../../engine/compile.ts'
import { type EvaluateOutput, evaluate } from '../../engine/evaluate.ts'
import { allResources, type HostState, type ResourceState } from '../../engine/state.ts'
import type { ActionQueue, AnsaiEvent, EventPublisher, FleetStore, NotificationQueue } from '../../ports/fleet.ts'
import { ConflictError, type VersionedHostState } from '../../ports/store.ts'
import { buildNotifications, type FixOutcome } from '../notify/build.ts'

/** What every fleet use case that evaluates a host needs; composed once per cold start. */
export interface FleetDeps {
  policies: CompiledPolicySet
  store: FleetStore
  actions: ActionQueue
  notifications: NotificationQueue
  events: EventPublisher
  /** Configured channel names (an escalation target naming one is sent there). */
  channels: readonly string[]
  /** Channels for policies that name none. */
  defaultChannels: readonly string[]
  /** The whole fleet decides and tells, and never sends a command. */
  dryRun: boolean
  clock: () => Date
  /**
   * A report that changed only trend samples and the last-seen time (and decided nothing) is written at most this
   * often, in ms (`quietWriteEvery`); 0 or absent: every change is written. Agents re-send their recent reports with
   * each batch, so what a deferred write left out comes again; a tick counts host silence only beyond this interval.
   */
  quietWriteMs?: number
  /**
   * A "fix started" message waits this long on the notifications queue (seconds, 0–900); delivered after the incident
   * resolved, it is dropped: the resolution message tells the whole story in one. 0 or absent: sent at once.
   */
  holdFixStartedSeconds?: number
}

/** What one evaluation of a host did. */
export interface Applied {
  /** False when the state was unchanged and nothing was decided (a quiet tick writes nothing). */
  changed: boolean
  /** A report at or below the last applied sequence: only its trend samples were kept. */
  stale: boolean
  /** A quiet change (trend samples, last-seen time) not written: within `quietWriteMs` of the stored state. */
  deferred?: boolean
  /** The stored state the evaluation started from (undefined for a new host). */
  before: HostState | undefined
  out: EvaluateOutput
}

const MAX_CONFLICTS = 5

/**
 * Results of fixes still pending in the host's incidents, from the store: `record-command-result` stores them as SSM
 * reports them; the next evaluation of the host applies them (a result applies once: only to a pending attempt).
 */
export const pendingResults = async (
  store: FleetStore,
  state: HostState | undefined,
): Promise<RemediationResultV1[]> => {
  if (!state) return []
  const keys: string[] = []
  for (const rs of allResources(state)) {
    for (const a of rs.incident?.attempts ?? []) if (a.status === 'pending') keys.push(a.key)
  }
  const results: RemediationResultV1[] = []
  for (const key of keys) {
    const action = await store.getAction(key)
    if (action?.result) results.push(action.result)
  }
  return results
}

/**
 * The engine's state as the fleet stores it: with the time of the last scheduled tick applied (the engine carries
 * unknown fields along; only the fleet reads this one).
 */
export type TickedHostState = HostState & {
  lastTickAt?: number
  /** What the host index holds about the host (hostname, tags, shard), as written there last. */
  indexed?: string
}

const unchanged = (before: HostState | undefined, after: HostState): boolean =>
  before !== undefined &&
  before.resources === after.resources &&
  before.lastSeq === after.lastSeq &&
  before.lastSeenAt === after.lastSeenAt

const sameJson = (a: unknown, b: unknown): boolean => a === b || JSON.stringify(a) === JSON.stringify(b)

/** Two states of a resource alike in everything but their trend samples. */
const sameButSamples = (a: ResourceState, b: ResourceState): boolean => {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  for (const k of keys) {
    if (k !== 'samples' && !sameJson(a[k as keyof ResourceState], b[k as keyof ResourceState])) return false
  }
  return true
}

/**
 * A quiet change: from `before` to `after` only trend samples, the sequence and the last-seen time moved. Every match
 * history, level, incident, fix and flap record, kept observation and fleet field is the same.
 */
export const quietChange = (before: HostState, after: HostState): boolean => {
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (k === 'resources' || k === 'lastSeq' || k === 'lastSeenAt') continue
    if (!sameJson(before[k as keyof HostState], after[k as keyof HostState])) return false
  }
  if (before.resources === after.resources) return true
  const policies = Object.keys(after.resources)
  if (policies.length !== Object.keys(before.resources).length) return false
  for (const p of policies) {
    const was = before.resources[p]
    const is = after.resources[p]!
    if (!was) return false
    if (was === is) continue
    const resources = Object.keys(is)
    if (resources.length !== Object.keys(was).length) return false
    for (const r of resources) {
      const a = was[r]
      const b = is[r]!
      if (!a || (a !== b && !sameButSamples(a, b))) return false
    }
  }
  return true
}

export const eventsOf = (out: EvaluateOutput): AnsaiEvent[] =>
  out.decisions.flatMap((d) =>
    d.type === 'notify'
      ? [
          {
            type: d.event,
            time: d.at,
            host: d.host,
            incidentId: d.incidentId,
            policy: d.policy,
            resource: d.resource,
            detail: { key: d.key, severity: d.severity, summary: d.summary, evidence: d.evidence },
          },
        ]
      : [],
  )

/** One report's part of an evaluation: its observations, sequence and time. */
export interface ReportInput {
  observations: readonly Observation[]
  seq: number
  now: string
}

/** Evaluate reports one after another (or a tick) from a state; the outputs merged, the last state kept. */
const evaluateAll = (
  deps: FleetDeps,
  host: Host,
  reports: readonly ReportInput[] | undefined,
  now: string,
  state: HostState | undefined,
  results: readonly RemediationResultV1[],
): { out: EvaluateOutput; stale: boolean } => {
  const steps = reports && reports.length > 0 ? reports : [undefined]
  const decisions: EvaluateOutput['decisions'] = []
  const incidents = new Map<string, Incident>()
  let current = state
  let last: EvaluateOutput | undefined
  let stale = true
  for (const [i, r] of steps.entries()) {
    last = evaluate({
      policies: deps.policies,
      host,
      ...(r ? { observations: r.observations, seq: r.seq } : {}),
      results: i === 0 ? results : [],
      state: current,
      now: r?.now ?? now,
      dryRun: deps.dryRun,
      findings: 'none',
      silenceGraceMs: deps.quietWriteMs ?? 0,
    })
    if (!r || current === undefined || r.seq > current.lastSeq) stale = false
    decisions.push(...last.decisions)
    for (const inc of last.incidents) incidents.set(inc.id, inc)
    current = last.nextState
  }
  return { out: { decisions, nextState: last!.nextState, findings: [], incidents: [...incidents.values()] }, stale }
}

/**
 * Evaluate one host against its stored state and carry the decisions out: a batch of its reports (one after another,
 * in the order given: the transport sends them oldest first), or a tick when there are none. Decisions are recorded,
 * fixes and messages queued, events published, then the state moves forward with one conditional write.
 *
 * The side effects come before the state write, and all of them are idempotent by deterministic keys (decision keys,
 * message ids; the actions FIFO queue deduplicates by key and the dispatcher claims each key once). So a crash at any
 * point is repaired by the redelivery of the same message: until the state write lands, the same input gives the same
 * decisions again; after it, the reports are stale and decide nothing new. A lost race with another writer of the
 * same host re-reads and re-evaluates.
 *
 * Reads are cheap first: the state is read eventually consistent (or taken from the round's batch read), which may be
 * a moment old. Nothing is carried out on such a read: an evaluation with side effects reads again, strongly, and
 * evaluates again; a plain state write is conditional, so an old read shows up as a conflict. A quiet report (only
 * trend samples and the last-seen time moved) is not written while the stored state is younger than
 * `quietWriteMs`: the agent re-sends it with its next batches.
 */
export const applyToHost = async (
  deps: FleetDeps,
  input: {
    host: Host
    reports?: readonly ReportInput[]
    now: string
    /** A tick of a scheduled round (`at` = the round's time): applied at most once per host and round. */
    round?: boolean
    /** The host's state as a batch read found it (a round's page): used instead of a first read. */
    prefetched?: { stored: VersionedHostState | undefined }
    /**
     * The host index entry for this host (`key`: what it holds, compared with what the state says was indexed last;
     * `write`: writes it). Written before the state when it differs, so the index never misses a host with state.
     */
    index?: { key: string; write: () => Promise<void> }
  },
): Promise<Applied> => {
  const { store } = deps
  const tick = input.round === true && (!input.reports || input.reports.length === 0)
  const tickAt = Date.parse(input.now)
  const quietMs = deps.quietWriteMs ?? 0
  let strong = false
  for (let attempt = 1; ; attempt++) {
    const stored =
      attempt === 1 && input.prefetched
        ? input.prefetched.stored
        : await store.getHostState(input.host.id, { consistent: strong })
    // A scheduled round's task delivered twice (SQS is at-least-once) ticks a host once: a tick at or before the
    // last one applied changes nothing (its debounce history would otherwise move a second time).
    const before = stored?.state as TickedHostState | undefined
    const lastTick = before?.lastTickAt
    if (tick && stored && lastTick !== undefined && tickAt <= lastTick) {
      return {
        changed: false,
        stale: true,
        before: stored.state,
        out: { decisions: [], nextState: stored.state, findings: [], incidents: [] },
      }
    }
    const results = await pendingResults(store, stored?.state)
    const { out, stale } = evaluateAll(deps, input.host, input.reports, input.now, stored?.state, results)
    if (tick) (out.nextState as TickedHostState).lastTickAt = tickAt
    const reindex = input.index !== undefined && before?.indexed !== input.index.key
    if (reindex) out.nextState = { ...out.nextState, indexed: input.index!.key } as TickedHostState
    const sideEffects = out.decisions.length > 0 || out.incidents.length > 0 || reindex
    if (!sideEffects && unchanged(stored?.state, out.nextState)) {
      return { changed: false, stale, before: stored?.state, out }
    }
    if (
      !sideEffects &&
      !tick &&
      quietMs > 0 &&
      stored &&
      (out.nextState.lastSeenAt ?? 0) - (stored.state.lastSeenAt ?? 0) < quietMs &&
      quietChange(stored.state, out.nextState)
    ) {
      return { changed: false, stale, deferred: true, before: stored.state, out }
    }
    if (sideEffects && !strong) {
      // Carry nothing out on a state that may be a moment old: read it again, strongly, and evaluate again.
      strong = true
      continue
    }
    strong = true
    if (reindex) await input.index!.write()
    await carryOut(deps, input.host, out, results)
    try {
      await store.putHostState(input.host.id, out.nextState, stored?.version)
      return { changed: true, stale, before: stored?.state, out }
    } catch (err) {
      if (err instanceof ConflictError && attempt < MAX_CONFLICTS) continue
      throw err
    }
  }
}

const carryOut = async (
  deps: FleetDeps,
  host: Host,
  out: EvaluateOutput,
  results: readonly RemediationResultV1[],
): Promise<void> => {
  const at = deps.clock().toISOString()
  const { store } = deps
  if (out.decisions.length > 0) await store.recordDecisions(host.id, out.decisions, at)
  for (const inc of out.incidents) await store.upsertIncident(inc)

  const fixes = out.decisions.filter((d) => d.type === 'remediate' && !d.dryRun)
  if (fixes.length > 0) await deps.actions.send(fixes.filter((d) => d.type === 'remediate'))

  const outcomes: FixOutcome[] = results.map((result) => ({
    incidentId: incidentOf(out.incidents, result.key),
    result,
  }))
  const messages = buildNotifications({
    decisions: out.decisions,
    results: outcomes,
    hosts: [host],
    channels: deps.channels,
    defaultChannels: deps.defaultChannels,
  })
  const hold = deps.holdFixStartedSeconds ?? 0
  const held = hold > 0 ? messages.filter((m) => m.event === 'ansai.fix.started.v1') : []
  const now = held.length > 0 ? messages.filter((m) => m.event !== 'ansai.fix.started.v1') : messages
  if (now.length > 0) await deps.notifications.send(now)
  if (held.length > 0) await deps.notifications.send(held, { delaySeconds: hold })
  const events = eventsOf(out)
  if (events.length > 0) await deps.events.publish(events)

  await store.appendAudit(
    out.decisions.map((d) => ({
      kind: 'decision' as const,
      at,
      hostId: host.id,
      incidentId: d.incidentId,
      key: d.key,
      id: `decision:${d.key}`,
      data: { decision: d },
    })),
  )
}

const incidentOf = (incidents: readonly Incident[], key: string): string =>
  incidents.find((i) => i.attempts.some((a) => a.key === key))?.id ?? ''
