import type {
  Decision,
  Finding,
  Incident,
  RemediateDecision,
  RemediationResultV1,
  ReportV1,
} from '../contracts/index.ts'
import type { CompiledPolicySet } from '../engine/compile.ts'
import { evaluate } from '../engine/evaluate.ts'
import type { Notifier } from '../ports/notifier.ts'
import { ConflictError, type StateStore } from '../ports/store.ts'
import { buildNotifications, type FixOutcome } from './notify/build.ts'
import { type ChannelDelivery, dispatchNotifications } from './notify/dispatch.ts'

/** What observes this host: one report per call. */
export interface Collector {
  collect(): Promise<ReportV1>
}

/** What carries out a fix on this host and says what it did (one bounded result). */
export interface RemediationRunner {
  run(decision: RemediateDecision): Promise<{ result: RemediationResultV1; audit: readonly object[] }>
}

export interface Clock {
  now(): Date
}

export interface RunCycleDeps {
  policies: CompiledPolicySet
  collector: Collector
  runner: RemediationRunner
  store: StateStore
  notifiers: Readonly<Record<string, Notifier>>
  clock: Clock
  /** Progress for people (stderr in the CLI). */
  log?: (line: string) => void
}

export interface RunCycleOptions {
  /** Decide as usual, execute nothing. */
  dryRun: boolean
  /** Collect → evaluate → fix rounds in one cycle: a fix is verified by a fresh collection in the next round. */
  maxRounds?: number
  /** Channels for policies that name none. */
  defaultChannels?: readonly string[]
}

export interface CycleRound {
  report: ReportV1
  decisions: Decision[]
  findings: Finding[]
  results: RemediationResultV1[]
}

export interface CycleOutcome {
  rounds: CycleRound[]
  incidents: Incident[]
  deliveries: ChannelDelivery[]
}

const RETRY_BACKOFF_MS = [60_000, 300_000, 1_800_000, 7_200_000]
const MAX_DELIVERY_ATTEMPTS = 8

/**
 * One cycle of the single-host shape: collect → evaluate → fix → verify → notify, with every step recorded in the
 * store. A fix is executed once per decision key (the store says which keys are new), so a crash and a rerun never
 * run a fix twice; state moves forward only through the store's conditional write. After fixes, the host is
 * collected again and the results are fed back, so a fix is verified within the same cycle where it can be.
 */
export const runCycle = async (deps: RunCycleDeps, opts: RunCycleOptions): Promise<CycleOutcome> => {
  const { store, clock, log = () => {} } = deps
  const rounds: CycleRound[] = []
  const incidents = new Map<string, Incident>()
  let results: RemediationResultV1[] = []
  let earlier: FixOutcome[] = []
  const maxRounds = opts.maxRounds ?? 3

  for (let round = 0; round < maxRounds; round++) {
    const report = await deps.collector.collect()
    const host = report.host
    const { out, newKeys } = await evaluateAndStore(deps, report, results, opts.dryRun)
    const at = clock.now().toISOString()
    for (const inc of out.incidents) {
      await store.upsertIncident(inc)
      incidents.set(inc.id, inc)
    }

    // Fixes, each once per key.
    const fresh = new Set(newKeys)
    const fixes = out.decisions.filter((d): d is RemediateDecision => d.type === 'remediate' && fresh.has(d.key))
    const done: RemediationResultV1[] = []
    for (const d of fixes) {
      log(`${d.dryRun ? 'would run' : 'running'} ${d.remediation} on ${d.resource} (${d.policy})`)
      const { result, audit } = await deps.runner.run(d)
      await store.recordResult(result)
      await store.appendAudit([
        {
          kind: 'action',
          at,
          hostId: host.id,
          incidentId: d.incidentId,
          key: d.key,
          id: `action:${d.key}`,
          data: { decision: d },
        },
        {
          kind: 'result',
          at: result.finishedAt,
          hostId: host.id,
          incidentId: d.incidentId,
          key: d.key,
          id: `result:${d.key}`,
          data: { result, items: audit },
        },
      ])
      log(`  ${result.status}: ${result.summary}`)
      done.push(result)
    }

    // Notifications: one message per incident and channel, queued first so a failed delivery is retried later.
    const messages = buildNotifications({
      decisions: out.decisions,
      results: [...done, ...earlier],
      hosts: [host],
      channels: Object.keys(deps.notifiers),
      ...(opts.defaultChannels ? { defaultChannels: opts.defaultChannels } : {}),
    })
    await store.enqueueNotifications(messages)

    rounds.push({ report, decisions: out.decisions, findings: out.findings, results: done })
    earlier = done.map((result) => ({
      incidentId: fixes.find((f) => f.key === result.key)?.incidentId ?? '',
      result,
    }))
    results = done
    // Verify in the next round only when something ran; a dry run changes nothing to verify.
    if (done.length === 0 || opts.dryRun) break
  }

  const deliveries = await deliver(deps)
  return { rounds, incidents: [...incidents.values()], deliveries }
}

/** Evaluate against the stored state and store the next one, retrying when another writer got there first. */
const evaluateAndStore = async (
  deps: RunCycleDeps,
  report: ReportV1,
  results: RemediationResultV1[],
  dryRun: boolean,
) => {
  const { store } = deps
  for (let attempt = 1; ; attempt++) {
    const stored = await store.getHostState(report.host.id)
    const out = evaluate({
      policies: deps.policies,
      host: report.host,
      observations: report.observations,
      seq: report.seq,
      results,
      state: stored?.state,
      now: report.time,
      dryRun,
    })
    try {
      await store.putHostState(report.host.id, out.nextState, stored?.version)
    } catch (err) {
      if (err instanceof ConflictError && attempt < 5) continue
      throw err
    }
    const at = deps.clock.now().toISOString()
    const newKeys = await store.recordDecisions(report.host.id, out.decisions, at)
    await store.appendAudit([
      {
        kind: 'observation',
        at: report.time,
        hostId: report.host.id,
        id: `report:${report.host.id}:${report.seq}`,
        data: {
          seq: report.seq,
          observations: report.observations.length,
          probeErrors: report.probeErrors,
          problems: out.findings
            .filter((f) => f.level !== 'ok')
            .map((f) => ({ policy: f.policy, resource: f.resource, level: f.level, values: f.values })),
        },
      },
      ...out.decisions.map((d) => ({
        kind: 'decision' as const,
        at,
        hostId: report.host.id,
        incidentId: d.incidentId,
        key: d.key,
        id: `decision:${d.key}`,
        data: { decision: d },
      })),
    ])
    return { out, newKeys }
  }
}

/** Send what the outbox holds, due now: sent once (dedup), a failure kept with a backoff, never lost. */
const deliver = async (deps: RunCycleDeps): Promise<ChannelDelivery[]> => {
  const { store, clock } = deps
  const now = clock.now()
  const pending = await store.pendingNotifications(200, now.toISOString())
  if (pending.length === 0) return []
  const deliveries = await dispatchNotifications({
    messages: pending.map((p) => p.message),
    notifiers: deps.notifiers,
    dedup: store,
    now: now.getTime(),
  })
  for (const [i, d] of deliveries.entries()) {
    const entry = pending[i]!
    if (d.outcome === 'sent' || d.outcome === 'duplicate') {
      await store.markNotificationSent(d.messageId, now.toISOString())
      continue
    }
    const attempts = entry.attempts + 1
    const retryable = d.error?.retryable !== false && attempts < MAX_DELIVERY_ATTEMPTS
    const backoff = RETRY_BACKOFF_MS[Math.min(attempts - 1, RETRY_BACKOFF_MS.length - 1)]!
    await store.markNotificationFailed(
      d.messageId,
      now.toISOString(),
      d.error?.message ?? d.outcome,
      retryable ? new Date(now.getTime() + backoff).toISOString() : null,
    )
    deps.log?.(`notification ${d.messageId} to ${d.channel} ${d.outcome}: ${d.error?.message ?? ''}`)
  }
  return deliveries
}
