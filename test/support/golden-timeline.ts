/**
 * Builders for golden-case timelines: reports and ticks with a clock that only moves when told, per-host sequence
 * numbers, and observation builders for every kind the cases use. The committed case files (written by
 * test/support/golden-cases.ts) are what the golden test reads; this module only helps write them.
 */
import type { Host, Observation, ReportV1 } from '../../shared/contracts/index.ts'
import { parseDuration } from '../../shared/engine/duration.ts'

export { cert, fs, procMem, service } from './builders.ts'

export const GiB = 2 ** 30
export const MiB = 2 ** 20
export const MIN = 60_000
export const HOUR = 60 * MIN
export const DAY = 24 * HOUR

export const host = (id: string, tags: Record<string, string> = {}, hostname = id): Host => ({ id, hostname, tags })

export interface TickLine {
  tick: true
  time: string
  host: string
}

export type TimelineLine = ReportV1 | TickLine

/** A timeline under construction: `at` and `advance` move the clock, `report` and `tick` append lines. */
export class TimelineBuilder {
  readonly lines: TimelineLine[] = []
  private t: number
  private readonly seqs = new Map<string, number>()

  constructor(start: string) {
    this.t = Date.parse(start)
    if (!Number.isFinite(this.t)) throw new RangeError(`not a time: ${start}`)
  }

  get now(): number {
    return this.t
  }

  iso(offsetMs = 0): string {
    return new Date(this.t + offsetMs).toISOString()
  }

  /** Move the clock forward by a duration (`5m`, `1d`) or milliseconds. */
  advance(by: string | number): this {
    this.t += typeof by === 'number' ? by : parseDuration(by)
    return this
  }

  /** Set the clock to an absolute time. */
  at(time: string): this {
    this.t = Date.parse(time)
    return this
  }

  /** Append a report; its sequence number is the host's next one unless given (to replay an old or repeated one). */
  report(h: Host, observations: Observation[], opts: { seq?: number; time?: string } = {}): this {
    const seq = opts.seq ?? (this.seqs.get(h.id) ?? 0) + 1
    if (opts.seq === undefined) this.seqs.set(h.id, seq)
    this.lines.push({
      schema: 'ansai.report.v1',
      host: h,
      agent: { version: 'test' },
      time: opts.time ?? this.iso(),
      seq,
      observations,
      probeErrors: [],
    })
    return this
  }

  tick(h: Host | string): this {
    this.lines.push({ tick: true, time: this.iso(), host: typeof h === 'string' ? h : h.id })
    return this
  }

  /** `n` rounds: call `fn(i)` then advance the clock by `step`. */
  repeat(n: number, step: string | number, fn: (i: number) => void): this {
    for (let i = 0; i < n; i++) {
      fn(i)
      this.advance(step)
    }
    return this
  }

  toJsonl(): string {
    return `${this.lines.map((l) => JSON.stringify(l)).join('\n')}\n`
  }
}

/** A filesystem with exact bytes used (for trends, where percentages would round). */
export const fsBytes = (mount: string, bytesUsed: number, bytesTotal: number): Observation => ({
  kind: 'filesystem',
  mount,
  fsType: 'ext4',
  bytesTotal,
  bytesUsed: Math.round(bytesUsed),
  bytesAvailable: bytesTotal - Math.round(bytesUsed),
  inodesTotal: 1_000_000,
  inodesUsed: 10_000,
})

export const backup = (
  job: string,
  newestArtifactAt: string | undefined,
  extra: Partial<Extract<Observation, { kind: 'backup' }>> = {},
): Observation => ({
  kind: 'backup',
  job,
  ...(newestArtifactAt ? { newestArtifactAt } : {}),
  newestArtifactPath: `/var/backups/${job}.tar.gz`,
  sizeBytes: 512 * MiB,
  integrity: 'ok',
  lastExitStatus: 0,
  ...extra,
})

export const cron = (job: string, lastRunAt: string | undefined, lastExitStatus = 0): Observation => ({
  kind: 'cron',
  job,
  ...(lastRunAt ? { lastRunAt } : {}),
  lastExitStatus,
  durationSeconds: 12,
})

export const dns = (name: string, resolved: boolean): Observation => ({
  kind: 'dns',
  name,
  resolved,
  addresses: resolved ? ['10.0.0.5'] : [],
  ...(resolved ? { latencyMs: 3 } : { error: 'SERVFAIL' }),
})

export const database = (
  name: string,
  extra: Partial<Extract<Observation, { kind: 'database' }>> = {},
): Observation => ({ kind: 'database', engine: 'postgresql', name, reachable: true, ...extra })

export const container = (
  name: string,
  health: 'healthy' | 'unhealthy' | 'starting' | 'none',
  state: 'running' | 'exited' = 'running',
): Observation => ({ kind: 'container', runtime: 'docker', name, image: `${name}:1`, state, health, restarts: 0 })

export const custom = (name: string, value: number): Observation => ({ kind: 'custom', name, value })

export const memory = (totalGiB: number, availablePercent: number): Observation => ({
  kind: 'memory',
  totalBytes: totalGiB * GiB,
  availableBytes: Math.round((totalGiB * GiB * availablePercent) / 100),
  swapTotalBytes: 0,
  swapFreeBytes: 0,
})

export const packages = (pending: number, security: number, rebootRequired = false): Observation => ({
  kind: 'packages',
  manager: 'apt',
  pending,
  security,
  rebootRequired,
})
