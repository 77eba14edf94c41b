/**
 * The host side of the fleet bench: a host that samples every 60 s and sends as the agent's transport does
 * (agent/transport/transport.ts): each sample goes through the same gate (shared/app/report-gate.ts: the policies
 * evaluated locally, a change goes out at once, otherwise the reports wait for the heartbeat), then the spool goes
 * out as one `ansai.report-batch.v1` through the real SQS sender, after the already-sent reports of the last 90
 * minutes (the agent's `fleet.resendMinutes`: the fleet writes a quiet host's state once an hour, and this context
 * brings what it left out again). `every-sample` mode sends each report alone, without context.
 *
 * Its reports are the engine bench's `typical` fleet (20 observations: 4 filesystems, 8 services, memory, 3
 * per-service memory, 2 certificates, a backup, DNS), moved to the simulated clock, with every service up.
 */

import { gateReport } from '../../shared/app/report-gate.ts'
import type { Host, Observation, ReportBatchV1, ReportV1 } from '../../shared/contracts/index.ts'
import type { CompiledPolicySet } from '../../shared/engine/compile.ts'
import { evaluate } from '../../shared/engine/evaluate.ts'
import { allResources, type HostState } from '../../shared/engine/state.ts'
import type { ReportSender } from '../../shared/ports/fleet.ts'
import { reportFor } from './engine.ts'

export type SendMode = 'default' | 'every-sample'
export const HEARTBEAT_MS = 15 * 60_000
export const SAMPLE_MS = 60_000
/** The agent's default `fleet.resendMinutes`: the fleet's 60-minute quiet-write interval + the heartbeat + margin. */
export const RESEND_MS = 90 * 60_000
/** Reports per batch (ReportBatchV1Schema). */
const MAX_BATCH = 120

const hostId = (h: number): string => `i-${(0xa000000 + h).toString(16).padStart(17, '0')}`

/** The `typical` report of host `h` at its `cycle`, moved to `timeMs` (certificates and backups move with it). */
export const healthyReport = (h: number, cycle: number, timeMs: number, seq: number): ReportV1 => {
  const r = reportFor('typical', h, cycle)
  const shift = timeMs - Date.parse(r.time)
  const move = (iso: string): string => new Date(Date.parse(iso) + shift).toISOString()
  const observations = r.observations.map((o): Observation => {
    if (o.kind === 'certificate') return { ...o, notAfter: move(o.notAfter) }
    if (o.kind === 'backup' && o.newestArtifactAt) return { ...o, newestArtifactAt: move(o.newestArtifactAt) }
    if (o.kind === 'service') return { ...o, activeState: 'active', subState: 'running', mainPid: 1000 }
    return o
  })
  return {
    ...r,
    host: { ...r.host, id: hostId(h), hostname: `web-${h}` },
    time: new Date(timeMs).toISOString(),
    seq,
    observations,
  }
}

/** The first host index whose reports stay healthy (no level, no incident) for `cycles` minutes. */
export const findHealthyHost = (policies: CompiledPolicySet, cycles: number, from = 0): number => {
  for (let h = from; h < from + 500; h++) {
    let state: HostState | undefined
    let healthy = true
    const t0 = Date.parse('2026-01-01T00:00:00Z')
    for (let c = 0; c < cycles && healthy; c++) {
      const r = healthyReport(h, c, t0 + c * SAMPLE_MS, c + 1)
      const out = evaluate({
        policies,
        host: r.host,
        observations: r.observations,
        seq: r.seq,
        state,
        now: r.time,
        findings: 'none',
      })
      state = out.nextState
      if (out.incidents.length > 0 || out.decisions.length > 0) healthy = false
      for (const rs of allResources(state)) if (rs.level) healthy = false
    }
    if (healthy) return h
  }
  throw new Error('no healthy host among 500')
}

/** One simulated host and its agent transport. */
export class SimHost {
  readonly index: number
  readonly host: Host
  private seq = 0
  private cycle = 0
  private state: HostState | undefined
  private lastSentAt: number | null = null
  private spool: ReportV1[] = []
  /** Reports already sent, kept `resendMs` to go along with the next batches (the agent's `fleet.resendMinutes`). */
  private sentLog: ReportV1[] = []
  /** 0: no context (every-sample mode: each report alone, and the fleet writes every one). */
  readonly resendMs: number
  /** Replaces observations (a fault); identity when healthy. */
  fault: (o: Observation) => Observation = (o) => o
  readonly sent: ReportBatchV1[] = []
  /** Reports sent for the first time (the batches also carry re-sent context). */
  freshSent = 0
  mode: SendMode
  private readonly policies: CompiledPolicySet
  private readonly sender: ReportSender

  constructor(index: number, policies: CompiledPolicySet, sender: ReportSender, mode: SendMode) {
    this.index = index
    this.policies = policies
    this.sender = sender
    this.mode = mode
    this.resendMs = mode === 'default' ? RESEND_MS : 0
    this.host = healthyReport(index, 0, 0, 0).host
  }

  /** Samples at each of `times` kept in the spool, then sent as one batch (a host that was offline, catching up). */
  async catchUp(times: readonly number[]): Promise<ReportBatchV1> {
    for (const t of times) {
      const base = healthyReport(this.index, this.cycle++, t, ++this.seq)
      const gate = gateReport({
        policies: this.policies,
        host: base.host,
        observations: base.observations,
        seq: base.seq,
        state: this.state,
        now: t,
        lastSentAt: this.lastSentAt,
        heartbeatMs: HEARTBEAT_MS,
      })
      this.state = gate.nextState
      this.spool.push(base)
    }
    return this.send('heartbeat', times[times.length - 1] ?? 0)
  }

  /** Take a sample at `timeMs`; send the spool when the gate says so (or always, every-sample). */
  async sample(timeMs: number, opts: { force?: boolean } = {}): Promise<ReportBatchV1 | undefined> {
    const base = healthyReport(this.index, this.cycle++, timeMs, ++this.seq)
    const report: ReportV1 = { ...base, observations: base.observations.map((o) => this.fault(o)) }
    const gate = gateReport({
      policies: this.policies,
      host: report.host,
      observations: report.observations,
      seq: report.seq,
      state: this.state,
      now: timeMs,
      lastSentAt: this.lastSentAt,
      heartbeatMs: HEARTBEAT_MS,
    })
    this.state = gate.nextState
    this.spool.push(report)
    const reason = opts.force ? 'change' : this.mode === 'every-sample' ? 'heartbeat' : gate.reason
    if (!reason) return undefined
    return this.send(reason, timeMs)
  }

  /** The spool as one batch, after the context (already-sent reports of the last `resendMs`), as the agent sends. */
  private async send(reason: ReportBatchV1['reason'], timeMs: number): Promise<ReportBatchV1> {
    this.sentLog = this.sentLog.filter((r) => Date.parse(r.time) >= timeMs - this.resendMs)
    const context = this.resendMs > 0 ? this.sentLog.slice(-(MAX_BATCH - this.spool.length)) : []
    const batch: ReportBatchV1 = {
      schema: 'ansai.report-batch.v1',
      reason,
      ...(context.length > 0 ? { resentThrough: context[context.length - 1]!.seq } : {}),
      reports: [...context, ...this.spool],
    }
    await this.sender.send(batch)
    this.freshSent += this.spool.length
    if (this.resendMs > 0) this.sentLog.push(...this.spool)
    this.spool = []
    this.lastSentAt = timeMs
    this.sent.push(batch)
    return batch
  }
}
