import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { type GateDecision, gateReport } from '../../shared/app/report-gate.ts'
import type { ReportV1 } from '../../shared/contracts/index.ts'
import type { CompiledPolicySet } from '../../shared/engine/compile.ts'
import type { HostState } from '../../shared/engine/state.ts'
import type { ReportSender } from '../../shared/ports/fleet.ts'
import { type DrainOptions, type DrainResult, drainSpool } from './drain.ts'
import type { ReportSpool } from './spool.ts'

/** What the transport keeps between runs (beside the spool): its copy of the engine state and the last send. */
export interface TransportState {
  v: 1
  hostState?: HostState
  lastSentAt: number | null
  /** A change that could not be sent yet: every run tries again until it goes (not only at the heartbeat). */
  changePending?: boolean
}

export const readTransportState = (path: string): TransportState => {
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as TransportState
    if (s?.v === 1) return s
  } catch {
    // missing or damaged: start afresh (the worst case is one early heartbeat)
  }
  return { v: 1, lastSentAt: null }
}

const writeTransportState = (path: string, s: TransportState): void => {
  writeFileSync(`${path}.tmp`, JSON.stringify(s), { mode: 0o600 })
  renameSync(`${path}.tmp`, path)
}

export interface TransportDeps {
  policies: CompiledPolicySet
  spool: ReportSpool
  sender: ReportSender
  /** Where {@link TransportState} is kept (a JSON file in the state directory). */
  statePath: string
  heartbeatMs: number
  /**
   * Every send also carries the reports already sent within this window (config `fleet.resendMinutes`): the control
   * plane writes a quiet host's state at most hourly, and these carry the trend samples of the heartbeats it did not
   * write. 0: nothing is re-sent and nothing kept.
   */
  resendMs: number
  now: () => number
  /** Test hooks for the retry backoff. */
  retry?: Pick<DrainOptions, 'sleep' | 'random' | 'maxAttempts' | 'baseDelayMs' | 'capDelayMs'>
}

export interface TransportOutcome {
  /** Why the spool was sent (or undefined: kept for the heartbeat). */
  reason: 'change' | 'heartbeat' | 'spool-full' | 'manual' | undefined
  changes: GateDecision['changes']
  /** Oldest reports dropped because the spool was full (the queue unreachable for a long time). */
  dropped: number
  drain?: DrainResult
}

/**
 * `ansai-agent report` in the fleet: spool this report, and send the spool when a policy's state changed (at once),
 * when the heartbeat is due, or when the spool runs full. Each send puts the reports sent within `resendMs` first (as
 * context). A send that fails leaves everything spooled for the next run.
 */
export const transportReport = async (
  deps: TransportDeps,
  report: ReportV1,
  opts: { force?: boolean } = {},
): Promise<TransportOutcome> => {
  const state = readTransportState(deps.statePath)
  const now = deps.now()
  const gate = gateReport({
    policies: deps.policies,
    host: report.host,
    observations: report.observations,
    seq: report.seq,
    state: state.hostState,
    now,
    lastSentAt: state.lastSentAt,
    heartbeatMs: deps.heartbeatMs,
  })
  const { dropped } = deps.spool.add(report)
  const nearlyFull = deps.spool.list().length >= deps.spool.limits.maxReports * 0.8
  const reason = opts.force
    ? 'manual'
    : (gate.reason ?? (state.changePending ? 'change' : nearlyFull ? 'spool-full' : undefined))
  let drain: DrainResult | undefined
  let lastSentAt = state.lastSentAt
  let changePending = state.changePending === true || reason === 'change'
  if (reason) {
    drain = await drainSpool({
      spool: deps.spool,
      sender: deps.sender,
      reason,
      resend: { now, windowMs: deps.resendMs },
      ...deps.retry,
    })
    if (!drain.error && drain.left === 0) {
      lastSentAt = now
      changePending = false
    }
  } else {
    deps.spool.pruneSent(now, deps.resendMs) // the drain prunes when it runs; `sent/` shrinks at every run
  }
  writeTransportState(deps.statePath, {
    v: 1,
    hostState: gate.nextState,
    lastSentAt,
    ...(changePending ? { changePending } : {}),
  })
  return { reason, changes: gate.changes, dropped, ...(drain ? { drain } : {}) }
}
