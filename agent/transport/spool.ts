import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type ReportV1, ReportV1Schema } from '../../shared/contracts/report.ts'

export interface SpoolEntry {
  file: string
  seq: number
  bytes: number
}

/** A report the queue already took, kept in `sent/` to ride along with the next sends ({@link ReportSpool.recentSent}). */
export interface SentReport {
  entry: SpoolEntry
  report: ReportV1
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
 *
 * Once the queue took a report, it moves (a rename, atomic) to `sent/`: the control plane writes a quiet host's
 * state at most hourly, so the transport re-sends the recent sent reports with each batch for their trend samples
 * (the fleet engine applies a report at or below its last sequence as samples only). `sent/` is pruned by the
 * reports' own `time` and held to the same limits as the spool.
 */
export class ReportSpool {
  readonly dir: string
  readonly sentDir: string
  readonly limits: SpoolLimits

  constructor(dir: string, limits: Partial<SpoolLimits> = {}) {
    this.dir = dir
    this.sentDir = join(dir, 'sent')
    this.limits = { ...DEFAULT_SPOOL_LIMITS, ...limits }
    mkdirSync(this.sentDir, { recursive: true, mode: 0o700 })
  }

  /** Add a report; returns how many of the oldest were dropped to stay within the limits. */
  add(report: ReportV1): { dropped: number } {
    const file = `${String(report.seq).padStart(16, '0')}.json`
    const tmp = join(this.dir, `.${file}.tmp`)
    writeFileSync(tmp, JSON.stringify(report), { mode: 0o600 })
    renameSync(tmp, join(this.dir, file))
    return { dropped: this.enforceLimits() }
  }

  /** Spooled reports (not sent yet), oldest first. */
  list(): SpoolEntry[] {
    return listDir(this.dir)
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

  /** The queue took these: move them to `sent/` (a rename: a report is either waiting or sent, never both). */
  markSent(entries: readonly SpoolEntry[]): void {
    for (const e of entries) {
      try {
        renameSync(join(this.dir, e.file), join(this.sentDir, e.file))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
    }
  }

  /** The queue took these and nothing is re-sent: delete them. */
  remove(entries: readonly SpoolEntry[]): void {
    for (const e of entries) rmSync(join(this.dir, e.file), { force: true })
  }

  /**
   * Prune `sent/`: keep the reports whose own `time` lies within the last `windowMs` before `now` (a report dated
   * after `now`, from a clock that went back, is outside too), at most the spool's limits of them (the oldest go
   * first). A file that does not parse, or is not the report its name says, is removed. `windowMs` 0 empties `sent/`.
   * Cheap (no schema check): every run does it.
   */
  pruneSent(now: number, windowMs: number): void {
    this.scanSent(now, windowMs, readSentCheap)
  }

  /**
   * {@link pruneSent}, then what `sent/` keeps, oldest first, each checked as the control plane checks a report (one
   * bad report would make it refuse every batch it rides in): a file that fails is removed, never sent.
   */
  recentSent(now: number, windowMs: number): SentReport[] {
    return this.scanSent(now, windowMs, readSentChecked)
  }

  private scanSent(now: number, windowMs: number, read: (path: string, seq: number) => ReportV1 | undefined) {
    const kept: SentReport[] = []
    for (const entry of listDir(this.sentDir)) {
      const path = join(this.sentDir, entry.file)
      const report = windowMs > 0 ? read(path, entry.seq) : undefined
      const at = report ? Date.parse(report.time) : Number.NaN
      if (report && at >= now - windowMs && at <= now) kept.push({ entry, report })
      else rmSync(path, { force: true })
    }
    let bytes = kept.reduce((n, s) => n + s.entry.bytes, 0)
    while (kept.length > 0 && (kept.length > this.limits.maxReports || bytes > this.limits.maxBytes)) {
      const oldest = kept.shift()!
      rmSync(join(this.sentDir, oldest.entry.file), { force: true })
      bytes -= oldest.entry.bytes
    }
    return kept
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

const listDir = (dir: string): SpoolEntry[] => {
  const out: SpoolEntry[] = []
  for (const name of readdirSync(dir)) {
    const m = NAME.exec(name)
    if (!m) continue
    out.push({ file: name, seq: Number(m[1]), bytes: statSync(join(dir, name)).size })
  }
  return out.sort((a, b) => a.seq - b.seq)
}

/** A sent report as far as pruning needs it: JSON, with the seq its file name says and a `time`. */
const readSentCheap = (path: string, seq: number): ReportV1 | undefined => {
  try {
    const report = JSON.parse(readFileSync(path, 'utf8')) as Partial<ReportV1> | null
    return report?.seq === seq && typeof report.time === 'string' ? (report as ReportV1) : undefined
  } catch {
    return undefined
  }
}

/** A sent report, checked as the control plane checks it; undefined when it is not the valid report its name says. */
const readSentChecked = (path: string, seq: number): ReportV1 | undefined => {
  try {
    const parsed = ReportV1Schema.safeParse(JSON.parse(readFileSync(path, 'utf8')))
    return parsed.success && parsed.data.seq === seq ? parsed.data : undefined
  } catch {
    return undefined
  }
}
