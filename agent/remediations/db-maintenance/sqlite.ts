import { open, stat, statfs } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { DbMaintenanceParams } from '../../../shared/registry/remediations/db-maintenance.ts'
import { type OsUser, sqliteCommand } from '../../probes/db-client.ts'
import {
  parseSqliteIntegrity,
  parseSqliteStats,
  SQLITE_HEADER,
  SQLITE_INTEGRITY_SQL,
  SQLITE_QUICK_CHECK_SQL,
  SQLITE_STATS_SQL,
  type SqliteFigures,
  sqliteMaintenanceStatement,
} from '../../probes/db-sqlite.ts'
import { formatBytes } from '../disk-cleanup/report.ts'
import { exitProblem, formatDuration, type MaintenanceRun, type Outcome, plural, runDb } from './common.ts'

/**
 * db-maintenance on an SQLite file, with the sqlite3 command-line shell.
 *
 * The file must exist and be a regular file (sqlite3 would otherwise create an empty database), and start with
 * SQLite's header. Run by root, sqlite3 runs as the file's owner and group (setpriv, no supplementary groups): no
 * more privilege than the application has, and a journal or WAL file it creates is the application's. Each
 * statement waits up to 30 s for another connection's lock (`.timeout`).
 *
 * - `vacuum`: `VACUUM` rebuilds the file without its free pages. It needs free space for a copy: refused when the
 *   file's filesystem has less available than the file's size. Bytes recovered are measured: the blocks
 *   (st_blocks × 512) of the file, its `-wal` and its `-journal` before minus after. Verified when no free page is
 *   left.
 * - `analyze` (`ANALYZE`, verified by sqlite_stat1), `reindex` (`REINDEX`, then `PRAGMA quick_check` must say ok),
 *   `optimize` (`PRAGMA optimize`).
 * - `integrity-check`: `PRAGMA integrity_check`, read-only; any problem it names, or a file SQLite refuses as not a
 *   database or malformed, makes the result `failed` with the problems.
 */

const BUSY_TIMEOUT_MS = 30_000

interface FileState {
  /** st_blocks × 512 of the file, -wal and -journal: the disk space they take. */
  allocatedBytes: number
  /** st_size of the same. */
  sizeBytes: number
  files: Record<string, number>
}

async function fileState(path: string): Promise<FileState> {
  const state: FileState = { allocatedBytes: 0, sizeBytes: 0, files: {} }
  for (const p of [path, `${path}-wal`, `${path}-journal`]) {
    try {
      const s = await stat(p)
      state.allocatedBytes += s.blocks * 512
      state.sizeBytes += s.size
      state.files[p] = s.size
    } catch {
      // absent: takes nothing
    }
  }
  return state
}

type Checked =
  | { ok: true; owner: OsUser | undefined; size: number }
  | { ok: false; reason: string; notADatabase?: boolean }

/** The file exists, is a regular file with SQLite's header (or empty); who owns it. */
async function checkFile(path: string, agentIsRoot: boolean): Promise<Checked> {
  let s: Awaited<ReturnType<typeof stat>>
  try {
    s = await stat(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return { ok: false, reason: code === 'ENOENT' ? `${path} does not exist` : `${path}: ${code ?? String(err)}` }
  }
  if (!s.isFile()) return { ok: false, reason: `${path} is not a regular file` }
  if (s.size > 0) {
    const handle = await open(path, 'r')
    try {
      const buf = Buffer.alloc(16)
      const { bytesRead } = await handle.read(buf, 0, 16, 0)
      if (bytesRead < 16 || buf.toString('latin1') !== SQLITE_HEADER) {
        return { ok: false, reason: `${path} is not an SQLite 3 database (no SQLite header)`, notADatabase: true }
      }
    } finally {
      await handle.close()
    }
  }
  const owner =
    agentIsRoot && s.uid !== 0
      ? { name: String(s.uid), uid: s.uid, gid: s.gid, home: dirname(path), clearGroups: true }
      : undefined
  return { ok: true, owner, size: s.size }
}

async function readStats(
  run: MaintenanceRun,
  path: string,
): Promise<{ ok: true; figures: SqliteFigures } | { ok: false; reason: string }> {
  const ran = await runDb(
    run,
    sqliteCommand(path, SQLITE_STATS_SQL, { readonly: true, busyTimeoutMs: BUSY_TIMEOUT_MS }),
    run.queryTimeoutMs,
  )
  if (!ran.ok) return ran
  const problem = exitProblem(ran)
  if (problem) return { ok: false, reason: problem }
  const figures = parseSqliteStats(ran.result.stdout)
  return figures.ok ? { ok: true, figures: figures.value } : { ok: false, reason: figures.error.reason }
}

export async function maintainSqlite(
  run: MaintenanceRun,
  params: DbMaintenanceParams,
  agentIsRoot: boolean,
): Promise<Outcome> {
  const path = params.database
  const checked = await checkFile(path, agentIsRoot)
  if (!checked.ok) {
    const evidence: Record<string, unknown> = {}
    if (params.operation === 'integrity-check' && checked.notADatabase) {
      evidence.integrity = 'failed'
      return {
        status: 'failed',
        summary: `integrity check of ${path} FAILED: ${checked.reason}`,
        error: checked.reason,
        evidence,
      }
    }
    return { status: 'failed', summary: `cannot maintain ${path}: ${checked.reason}`, error: checked.reason, evidence }
  }
  run.user = checked.owner
  const evidence: Record<string, unknown> = {}
  if (checked.owner) evidence.runAsUid = checked.owner.uid
  if (params.operation === 'integrity-check') return integrity(run, path, evidence)
  if (params.operation === 'terminate-idle-in-transaction') {
    return { status: 'failed', summary: 'sqlite has no sessions to end', error: 'unsupported', evidence }
  }
  const operation = params.operation as 'vacuum' | 'analyze' | 'reindex' | 'optimize'
  const stats = await readStats(run, path)
  if (!stats.ok) {
    return { status: 'failed', summary: `cannot read ${path}: ${stats.reason}`, error: stats.reason, evidence }
  }
  const b = stats.figures
  const filesBefore = await fileState(path)
  const freeBytes = b.freelistCount * b.pageSize
  evidence.before = { ...figuresEvidence(b), ...filesEvidence(filesBefore) }
  const sql = sqliteMaintenanceStatement(operation)
  evidence.statement = sql

  if (operation === 'vacuum') {
    const fs = await statfs(dirname(path))
    const available = Number(fs.bavail) * Number(fs.bsize)
    evidence.availableBytes = available
    if (available < checked.size) {
      const why = `VACUUM needs up to the file's size free (${formatBytes(checked.size)}); ${formatBytes(available)} available`
      return { status: 'failed', summary: `not vacuuming ${path}: ${why}`, error: why, evidence }
    }
  }
  if (run.ctx.dryRun) {
    run.audit.push({ action: `would-${operation}`, target: path, detail: sql })
    const gain =
      operation === 'vacuum'
        ? `, would recover at least ${formatBytes(freeBytes)} (${plural(b.freelistCount, 'free page')}; more from half-empty pages)`
        : ''
    return {
      status: 'dry-run',
      summary: `dry-run: would run ${sql} on ${path} (${formatBytes(filesBefore.sizeBytes)}${gain})`,
      evidence,
    }
  }
  run.ctx.log(`db-maintenance: ${sql} on ${path}`)
  const ran = await runDb(
    run,
    sqliteCommand(path, sql, { readonly: false, busyTimeoutMs: BUSY_TIMEOUT_MS }),
    run.operationTimeoutMs,
  )
  if (!ran.ok)
    return { status: 'failed', summary: `${sql} on ${path} failed: ${ran.reason}`, error: ran.reason, evidence }
  const problem = exitProblem(ran)
  if (problem) {
    run.audit.push({ action: 'failed', target: path, detail: `${sql}: ${problem}` })
    return { status: 'failed', summary: `${sql} on ${path} failed: ${problem}`, error: problem, evidence }
  }
  const durationMs = ran.result.durationMs
  evidence.operationMs = durationMs
  const filesAfter = await fileState(path)
  const after = await readStats(run, path)
  evidence.after = {
    ...(after.ok ? figuresEvidence(after.figures) : { error: after.reason }),
    ...filesEvidence(filesAfter),
  }
  const took = formatDuration(durationMs)
  const problems: string[] = []
  const bytesRecovered: Record<string, number> = {}
  let summary = `${sql} on ${path} in ${took}`
  if (operation === 'vacuum') {
    const recovered = Math.max(0, filesBefore.allocatedBytes - filesAfter.allocatedBytes)
    bytesRecovered.vacuum = recovered
    summary += `: ${formatBytes(filesBefore.sizeBytes)} -> ${formatBytes(filesAfter.sizeBytes)}, ${formatBytes(recovered)} recovered`
    if (!after.ok) problems.push(`the file could not be read after VACUUM: ${after.reason}`)
    else if (after.figures.freelistCount > 0)
      problems.push(`${plural(after.figures.freelistCount, 'free page')} left after VACUUM`)
  } else if (operation === 'analyze') {
    const stat1 = await runDb(
      run,
      sqliteCommand(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'", {
        readonly: true,
        busyTimeoutMs: BUSY_TIMEOUT_MS,
      }),
      run.queryTimeoutMs,
    )
    const present = stat1.ok && stat1.result.exitCode === 0 && stat1.result.stdout.trim() === '1'
    evidence.statistics = present
    if (!present) problems.push('no sqlite_stat1 table after ANALYZE')
    else summary += ': statistics in sqlite_stat1'
  } else if (operation === 'reindex') {
    const quick = await runDb(
      run,
      sqliteCommand(path, SQLITE_QUICK_CHECK_SQL, { readonly: true, busyTimeoutMs: BUSY_TIMEOUT_MS }),
      run.operationTimeoutMs,
    )
    const verdict = quick.ok
      ? parseSqliteIntegrity(quick.result.stdout, quick.result.stderr, quick.result.exitCode)
      : { integrity: 'unknown' as const, problems: [quick.reason] }
    evidence.quickCheck = verdict.integrity
    if (verdict.integrity !== 'ok')
      problems.push(`quick_check after REINDEX: ${verdict.problems.slice(0, 3).join('; ')}`)
    else summary += `: ${plural(b.indexes, 'index', 'indexes')} rebuilt, quick_check ok`
  }
  run.audit.push({ action: operation, target: path, detail: summary })
  evidence.verified = problems.length === 0
  if (problems.length > 0) {
    evidence.problems = problems
    return {
      status: 'failed',
      summary: `${summary}; ${problems[0]}`,
      error: problems.join('; '),
      evidence,
      bytesRecovered,
    }
  }
  return { status: 'succeeded', summary, evidence, ...(operation === 'vacuum' ? { bytesRecovered } : {}) }
}

const figuresEvidence = (f: SqliteFigures) => ({
  pageSize: f.pageSize,
  pageCount: f.pageCount,
  freelistCount: f.freelistCount,
  journalMode: f.journalMode,
  tables: f.tables,
  indexes: f.indexes,
})

const filesEvidence = (s: FileState) => ({ sizeBytes: s.sizeBytes, allocatedBytes: s.allocatedBytes })

async function integrity(run: MaintenanceRun, path: string, evidence: Record<string, unknown>): Promise<Outcome> {
  if (run.ctx.dryRun) {
    run.audit.push({ action: 'would-check', target: path, detail: SQLITE_INTEGRITY_SQL })
    return { status: 'dry-run', summary: `dry-run: would run ${SQLITE_INTEGRITY_SQL} on ${path} (read-only)`, evidence }
  }
  run.ctx.log(`db-maintenance: ${SQLITE_INTEGRITY_SQL} on ${path}`)
  const ran = await runDb(
    run,
    sqliteCommand(path, SQLITE_INTEGRITY_SQL, { readonly: true, busyTimeoutMs: BUSY_TIMEOUT_MS }),
    run.operationTimeoutMs,
  )
  if (!ran.ok)
    return {
      status: 'failed',
      summary: `integrity check of ${path} failed: ${ran.reason}`,
      error: ran.reason,
      evidence,
    }
  const verdict = parseSqliteIntegrity(ran.result.stdout, ran.result.stderr, ran.result.exitCode)
  evidence.integrity = verdict.integrity
  evidence.operationMs = ran.result.durationMs
  run.audit.push({ action: 'integrity-check', target: path, detail: verdict.integrity })
  if (verdict.integrity === 'ok') {
    return {
      status: 'succeeded',
      summary: `integrity of ${path} ok (${formatDuration(ran.result.durationMs)})`,
      evidence,
    }
  }
  if (verdict.integrity === 'failed') {
    evidence.problemsTotal = verdict.problems.length
    return {
      status: 'failed',
      summary: `integrity check of ${path} FAILED: ${plural(verdict.problems.length, 'problem')}, first: ${verdict.problems[0]}`,
      error: `corruption found: ${verdict.problems.slice(0, 5).join(' | ')}`,
      evidence,
      items: verdict.problems,
      itemsTotal: verdict.problems.length,
    }
  }
  const why = verdict.problems.join('; ')
  return { status: 'failed', summary: `integrity of ${path} could not be checked: ${why}`, error: why, evidence }
}
