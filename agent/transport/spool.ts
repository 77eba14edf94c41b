import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ReportV1 } from '../../shared/contracts/index.ts'

export interface SpoolEntry {
  file: string
  seq: number
  bytes: number
}

export interface SpoolLimits {
  /** At most this many reports (default 1,440: a day at one per minute). */
  maxReports: number
  /** And at most this many bytes on disk (default 32 MiB). */
  maxBytes: number
}

export const DEFAULT_SPOOL_LIMITS: SpoolLimits = { maxReports: 1440, maxBytes: 32 * 1024 * 1024 }

const NAME = /^(\d{1,16})\.json$/

/**
 * Reports waiting to be sent, one file per report, named by sequence number (so the oldest sorts first). It holds
 * them while the heartbeat is not due and while the queue is unreachable. Bounded: past its limits the OLDEST reports
 * are dropped (and counted), so a host that stays cut off for days keeps its most recent day and never fills its disk.
 * Each file is written to a temporary name and renamed, so a crash never leaves half a report behind.
 */
export class ReportSpool {
  readonly dir: string
  readonly limits: SpoolLimits

  constructor(dir: string, limits: Partial<SpoolLimits> = {}) {
    this.dir = dir
    this.limits = { ...DEFAULT_SPOOL_LIMITS, ...limits }
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  }

  /** Add a report; returns how many of the oldest were dropped to stay within the limits. */
  add(report: ReportV1): { dropped: number } {
    const file = `${String(report.seq).padStart(16, '0')}.json`
    const tmp = join(this.dir, `.${file}.tmp`)
    writeFileSync(tmp, JSON.stringify(report), { mode: 0o600 })
    renameSync(tmp, join(this.dir, file))
    return { dropped: this.enforceLimits() }
  }

  /** Spooled reports, oldest first. */
  list(): SpoolEntry[] {
    const out: SpoolEntry[] = []
    for (const name of readdirSync(this.dir)) {
      const m = NAME.exec(name)
      if (!m) continue
      out.push({ file: name, seq: Number(m[1]), bytes: statSync(join(this.dir, name)).size })
    }
    return out.sort((a, b) => a.seq - b.seq)
  }

  /** The reports of these entries; an unreadable file (a damaged disk) is skipped and removed, never sent half. */
  read(entries: readonly SpoolEntry[]): ReportV1[] {
    const out: ReportV1[] = []
    for (const e of entries) {
      try {
        out.push(JSON.parse(readFileSync(join(this.dir, e.file), 'utf8')) as ReportV1)
      } catch {
        rmSync(join(this.dir, e.file), { force: true })
      }
    }
    return out
  }

  remove(entries: readonly SpoolEntry[]): void {
    for (const e of entries) rmSync(join(this.dir, e.file), { force: true })
  }

  private enforceLimits(): number {
    const entries = this.list()
    let bytes = entries.reduce((n, e) => n + e.bytes, 0)
    let dropped = 0
    while (entries.length > 1 && (entries.length > this.limits.maxReports || bytes > this.limits.maxBytes)) {
      const oldest = entries.shift()!
      rmSync(join(this.dir, oldest.file), { force: true })
      bytes -= oldest.bytes
      dropped++
    }
    return dropped
  }
}
