import type { CommandRunner, EvaluationQueue, EvaluationTask, PingStatus } from '../../ports/fleet.ts'
import { applyToHost, type FleetDeps } from './apply.ts'

/**
 * `evaluate-fleet`, scheduled: one round over the whole fleet, fanned out as one message per shard, so one schedule
 * covers any number of hosts and policies (never one rule per policy).
 */
export const planRound = async (
  deps: { evaluations: EvaluationQueue; shards: number },
  at: string,
): Promise<EvaluationTask[]> => {
  const tasks = Array.from({ length: deps.shards }, (_, shard) => ({ shard, of: deps.shards, at }))
  await deps.evaluations.send(tasks)
  return tasks
}

export interface ShardDeps extends FleetDeps {
  commands: CommandRunner
  /** Hosts per page of the host index. */
  pageSize?: number
}

export interface ShardOutcome {
  hosts: number
  changed: number
  decisions: number
  /** SSM's ping status of the hosts that are silent by the engine (no report for over `silentAfterMs`). */
  silent: { host: string; ping: PingStatus }[]
}

/**
 * A host is worth asking SSM about when ANSAI has not heard from it for this long (beyond the quiet-write interval):
 * longer than the agent's 15-minute heartbeat, as the baseline host-silent policy, or every healthy host between two
 * heartbeats would be looked up.
 */
const SILENT_AFTER_MS = 20 * 60_000

/**
 * `evaluate-fleet`, one shard: evaluate every host of the shard without a report (a tick at the round's time):
 * silent hosts, clock-driven checks (certificate days left, backup age), forecasts, and fixes whose verification is
 * overdue (escalated). Hosts the engine finds silent are looked up in SSM's ping status for the evidence (agent down
 * while SSM still reaches the host, or the host itself gone). The round's time is the evaluation time, so a
 * redelivered task decides exactly the same (same keys) and changes nothing twice.
 */
export const evaluateShard = async (deps: ShardDeps, task: EvaluationTask): Promise<ShardOutcome> => {
  const out: ShardOutcome = { hosts: 0, changed: 0, decisions: 0, silent: [] }
  const now = Date.parse(task.at)
  // The stored last-seen time may lag by up to the quiet-write interval (a quiet report is written that rarely).
  const grace = deps.quietWriteMs ?? 0
  let cursor: string | undefined
  do {
    const page = await deps.store.listHosts(task.shard, { limit: deps.pageSize ?? 100, ...(cursor ? { cursor } : {}) })
    const silent: string[] = []
    // One batch read for the page (eventually consistent, half the price of a read per host); a host whose tick
    // carries something out is read again, strongly, by applyToHost.
    const states = await deps.store.getHostStates(page.hosts.map((h) => h.id))
    for (const h of page.hosts) {
      const applied = await applyToHost(deps, {
        host: { id: h.id, hostname: h.hostname, tags: h.tags },
        now: task.at,
        round: true,
        prefetched: { stored: states.get(h.id) },
      })
      out.hosts++
      if (applied.changed) out.changed++
      out.decisions += applied.out.decisions.length
      const seen = applied.before?.lastSeenAt
      if (typeof seen === 'number' && now - seen - grace > SILENT_AFTER_MS) silent.push(h.id)
    }
    const pings = silent.length > 0 ? await deps.commands.pingStatus(silent) : {}
    for (const id of silent) out.silent.push({ host: id, ping: pings[id] ?? 'Unknown' })
    cursor = page.cursor
  } while (cursor)
  return out
}
