import { z } from 'zod'
import {
  type Decision,
  type Finding,
  type Host,
  HostIdSchema,
  type RemediationResultV1,
  ReportV1Schema,
  TimestampSchema,
} from '../contracts/index.ts'
import type { CompiledPolicySet } from '../engine/compile.ts'
import { evaluate } from '../engine/evaluate.ts'
import type { HostState } from '../engine/state.ts'

/** A tick: time passes for a host without a report (silent-host and time-based checks run). */
export const TickSchema = z
  .object({
    tick: z.literal(true),
    time: TimestampSchema,
    host: HostIdSchema,
  })
  .strict()

/** One line of a recorded timeline (JSON Lines): a report, or a tick. */
export const TimelineEntrySchema = z.union([ReportV1Schema, TickSchema])
export type TimelineEntry = z.infer<typeof TimelineEntrySchema>

export interface TimelineLineError {
  line: number
  message: string
}

/** Parse a JSONL timeline; every bad line is reported with its number, none is dropped silently. */
export const parseTimeline = (text: string): { entries: TimelineEntry[]; errors: TimelineLineError[] } => {
  const entries: TimelineEntry[] = []
  const errors: TimelineLineError[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (!line || line.startsWith('//')) return
    let json: unknown
    try {
      json = JSON.parse(line)
    } catch (err) {
      errors.push({ line: i + 1, message: `not JSON: ${(err as Error).message}` })
      return
    }
    const parsed = TimelineEntrySchema.safeParse(json)
    if (parsed.success) entries.push(parsed.data)
    else {
      const isTick = typeof json === 'object' && json !== null && 'tick' in json
      const schema = isTick ? TickSchema : ReportV1Schema
      const issues = schema.safeParse(json).error?.issues ?? parsed.error.issues
      errors.push({
        line: i + 1,
        message: issues
          .slice(0, 5)
          .map((iss) => `${iss.path.join('.') || '(line)'}: ${iss.message}`)
          .join('; '),
      })
    }
  })
  return { entries, errors }
}

export interface SimulatedEvent {
  time: string
  host: string
  decision: Decision
}

export interface SimulationResult {
  events: SimulatedEvent[]
  /** Findings of the last evaluation of each host. */
  lastFindings: Finding[]
  states: Record<string, HostState>
  totals: {
    reports: number
    ticks: number
    incidentsOpened: number
    incidentsResolved: number
    fixes: number
    escalations: number
    notifications: number
  }
}

export interface SimulateOptions {
  /** What the backtest assumes each fix did: the engine verifies it against the recorded observations anyway. */
  fixOutcome?: 'succeeded' | 'failed'
  dryRun?: boolean
}

/**
 * Replay a recorded timeline through the engine: what would have happened (incidents, fixes, notifications).
 * Fixes are not executed; their outcome is assumed (`fixOutcome`) and fed back at the host's next entry, and the
 * recorded observations after them decide whether they would have been verified.
 */
export const simulate = (
  policies: CompiledPolicySet,
  entries: readonly TimelineEntry[],
  opts: SimulateOptions = {},
): SimulationResult => {
  const states: Record<string, HostState> = {}
  const hosts: Record<string, Host> = {}
  const pending: Record<string, RemediationResultV1[]> = {}
  const lastFindings: Record<string, Finding[]> = {}
  const events: SimulatedEvent[] = []
  const totals = {
    reports: 0,
    ticks: 0,
    incidentsOpened: 0,
    incidentsResolved: 0,
    fixes: 0,
    escalations: 0,
    notifications: 0,
  }
  for (const entry of entries) {
    const isTick = 'tick' in entry
    const hostId = isTick ? entry.host : entry.host.id
    if (!isTick) hosts[hostId] = entry.host
    const host = hosts[hostId] ?? { id: hostId, hostname: hostId, tags: {} }
    const results = pending[hostId] ?? []
    pending[hostId] = []
    const out = evaluate({
      policies,
      host,
      ...(isTick ? {} : { observations: entry.observations, seq: entry.seq }),
      results,
      state: states[hostId],
      now: entry.time,
      dryRun: opts.dryRun ?? false,
    })
    states[hostId] = out.nextState
    lastFindings[hostId] = out.findings
    if (isTick) totals.ticks++
    else totals.reports++
    for (const d of out.decisions) {
      events.push({ time: entry.time, host: hostId, decision: d })
      if (d.type === 'remediate') {
        totals.fixes++
        const status = d.dryRun ? 'dry-run' : opts.fixOutcome === 'failed' ? 'failed' : 'succeeded'
        pending[hostId]?.push({
          schema: 'ansai.remediation-result.v1',
          key: d.key,
          remediation: d.remediation,
          host: hostId,
          status,
          dryRun: d.dryRun,
          startedAt: entry.time,
          finishedAt: entry.time,
          durationMs: 0,
          summary: `simulated: assumed ${status}`,
          evidence: {},
        })
        continue
      }
      totals.notifications++
      if (d.event === 'ansai.incident.opened.v1') totals.incidentsOpened++
      if (d.event === 'ansai.incident.resolved.v1') totals.incidentsResolved++
      if (d.event === 'ansai.incident.escalated.v1') totals.escalations++
    }
  }
  return { events, lastFindings: Object.values(lastFindings).flat(), states, totals }
}
