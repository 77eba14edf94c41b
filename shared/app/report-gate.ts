import type { Host, Observation } from '../contracts/index.ts'
import type { CompiledPolicySet } from '../engine/compile.ts'
import { evaluate } from '../engine/evaluate.ts'
import { allResources, type HostState } from '../engine/state.ts'

export interface GateInput {
  policies: CompiledPolicySet
  host: Host
  observations: readonly Observation[]
  seq: number
  /** The agent's own copy of the engine state (what it saw last time). */
  state: HostState | undefined
  now: number
  /** When a batch last went out (epoch ms), or null when never. */
  lastSentAt: number | null
  heartbeatMs: number
}

export interface GateDecision {
  /** Send the spooled reports now, and why; undefined: keep it spooled for the heartbeat. */
  reason: 'change' | 'heartbeat' | undefined
  /** What changed, for the log: `policy/resource: ok → critical`. */
  changes: string[]
  nextState: HostState
}

/**
 * Is this report worth sending at once? The agent evaluates the same policies locally, with the same engine, as the
 * control plane will (a dry run: nothing is decided for real here). A change of any policy's state (a level, an
 * incident opening or closing, a decision the engine would make) goes out now, so the control plane acts on a fault
 * within one sampling interval; otherwise the report waits in the spool for the heartbeat. Pure: no I/O, no clock.
 */
export const gateReport = (input: GateInput): GateDecision => {
  const out = evaluate({
    policies: input.policies,
    host: input.host,
    observations: input.observations,
    seq: input.seq,
    state: input.state,
    now: input.now,
    dryRun: true,
    findings: 'none',
  })
  const changes: string[] = []
  const before = new Map<string, string>()
  if (input.state)
    for (const rs of allResources(input.state)) before.set(`${rs.policy}/${rs.resource}`, rs.level ?? 'ok')
  for (const rs of allResources(out.nextState)) {
    const id = `${rs.policy}/${rs.resource}`
    const was = before.get(id) ?? 'ok'
    const is = rs.level ?? 'ok'
    if (was !== is) changes.push(`${id}: ${was} → ${is}`)
    before.delete(id)
  }
  for (const [id, was] of before) if (was !== 'ok') changes.push(`${id}: ${was} → gone`)
  for (const inc of out.incidents) changes.push(`${inc.policy}/${inc.resource}: incident ${inc.status}`)
  for (const d of out.decisions)
    if (d.type === 'remediate') changes.push(`${d.policy}/${d.resource}: would run ${d.remediation}`)

  const heartbeatDue = input.lastSentAt === null || input.now - input.lastSentAt >= input.heartbeatMs
  const reason = changes.length > 0 ? 'change' : heartbeatDue ? 'heartbeat' : undefined
  return { reason, changes: [...new Set(changes)], nextState: out.nextState }
}
