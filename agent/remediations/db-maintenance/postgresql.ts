import { access, constants } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { parseDuration } from '../../../shared/engine/duration.ts'
import type { DbMaintenanceParams } from '../../../shared/registry/remediations/db-maintenance.ts'
import { clientError, type PgSessionSettings, pgAmcheckCommand, psqlCommand } from '../../probes/db-client.ts'
import {
  fallbackIndexesChecked,
  type IntegrityReport,
  PG_MAINTENANCE_SQL,
  type PgMaintenanceFigures,
  type PgSession,
  parsePgAmcheck,
  parsePgAmcheckFallback,
  parsePgMaintenance,
  parsePgSessions,
  parsePids,
  pgAmcheckFallbackSql,
  pgBackendsAliveSql,
  pgIdleInTransactionSql,
  pgMaintenanceStatement,
} from '../../probes/db-postgresql.ts'
import { formatBytes } from '../disk-cleanup/report.ts'
import {
  exitProblem,
  formatDuration,
  idleSessionsOutcome,
  type MaintenanceRun,
  type Outcome,
  parsedOrFailed,
  plural,
  runDb,
  waitUntilGone,
} from './common.ts'

/**
 * db-maintenance on PostgreSQL, through psql (and pg_amcheck). Every operation reads the database's figures
 * before (PG_MAINTENANCE_SQL: dead and live tuples, sizes, invalid indexes, last vacuum and analyze, the oldest
 * snapshot), runs one fixed statement, reads them again and verifies:
 *
 * - `vacuum`, `vacuum-analyze`: `VACUUM (SKIP_LOCKED)` / `VACUUM (ANALYZE, SKIP_LOCKED)`, never FULL. Verified when
 *   the dead tuples went down (or there were none); when they did not, an old snapshot holds them and the result
 *   names the session (pid, state, age) that holds it.
 * - `analyze`: `ANALYZE (SKIP_LOCKED)`; verified when every user table was analyzed since the run began.
 * - `reindex`: `REINDEX DATABASE CONCURRENTLY <db>` (PostgreSQL 12+; plain before); verified when no index was left
 *   invalid; index bytes recovered measured.
 * - `integrity-check`: `pg_amcheck --install-missing <db>` (heap and B-tree checks) when it is installed (on PATH,
 *   or Debian's /usr/lib/postgresql/<major>/bin, or /usr/pgsql-<major>/bin) and the server is 14+; otherwise the
 *   same amcheck functions through psql (see pgAmcheckFallbackSql). Corruption found makes the result `failed`,
 *   naming the relations.
 * - `terminate-idle-in-transaction`: pg_terminate_backend of this database's sessions idle in a transaction for
 *   longer than `idleLongerThan` (never other databases', never active ones, never ANSAI's own); verified when those
 *   backends are gone.
 *
 * Statements carry `statement_timeout` (the server stops what the client gave up on) and `lock_timeout` 30 s (a
 * maintenance statement never waits long behind another session's lock, holding up everything queued after it).
 */

const LOCK_TIMEOUT_MS = 30_000

const settings = (timeoutMs: number, lock = false): PgSessionSettings => ({
  statementTimeoutMs: Math.max(500, timeoutMs - 1_000),
  lockTimeoutMs: lock ? LOCK_TIMEOUT_MS : undefined,
  connectTimeoutSeconds: 10,
})

type Measured = { ok: true; figures: PgMaintenanceFigures } | { ok: false; reason: string }

async function measure(run: MaintenanceRun): Promise<Measured> {
  const ran = await runDb(
    run,
    psqlCommand(run.target, PG_MAINTENANCE_SQL, settings(run.queryTimeoutMs)),
    run.queryTimeoutMs,
  )
  if (!ran.ok) return ran
  const problem = exitProblem(ran)
  if (problem) return { ok: false, reason: problem }
  const figures = parsePgMaintenance(ran.result.stdout)
  return figures.ok ? { ok: true, figures: figures.value } : { ok: false, reason: figures.error.reason }
}

const figuresEvidence = (f: PgMaintenanceFigures) => ({
  deadTuples: f.deadTuples,
  liveTuples: f.liveTuples,
  tables: f.tables,
  databaseBytes: f.databaseBytes,
  indexBytes: f.indexBytes,
  indexes: f.indexes,
  invalidIndexes: f.invalidIndexes.length > 0 ? f.invalidIndexes : undefined,
  idleInTransaction: f.idleInTransaction,
})

const holderText = (f: PgMaintenanceFigures): string =>
  f.xminHolder
    ? `the oldest snapshot is held by pid ${f.xminHolder.pid} (${f.xminHolder.state ?? 'unknown state'}${
        f.xminHolder.seconds !== undefined ? `, ${Math.round(f.xminHolder.seconds)} s` : ''
      })`
    : 'an old snapshot (a long transaction, a replication slot or a prepared transaction) holds them'

export async function maintainPostgres(run: MaintenanceRun, params: DbMaintenanceParams): Promise<Outcome> {
  const db = params.database
  const before = await measure(run)
  if (!before.ok) {
    return {
      status: 'failed',
      summary: `cannot reach postgresql database ${db}: ${before.reason}`,
      error: before.reason,
      evidence: {},
    }
  }
  const b = before.figures
  const evidence: Record<string, unknown> = { serverVersionNum: b.serverVersionNum, before: figuresEvidence(b) }
  switch (params.operation) {
    case 'vacuum':
    case 'vacuum-analyze':
    case 'analyze':
    case 'reindex':
      return statement(run, params.operation, db, b, evidence)
    case 'integrity-check':
      return integrity(run, db, b, evidence)
    case 'terminate-idle-in-transaction':
      return terminate(
        run,
        db,
        parseDuration(params.idleLongerThan ?? '0s') / 1000,
        params.idleLongerThan ?? '',
        evidence,
      )
    default:
      return { status: 'failed', summary: `postgresql has no ${params.operation}`, error: 'unsupported', evidence }
  }
}

async function statement(
  run: MaintenanceRun,
  operation: 'vacuum' | 'vacuum-analyze' | 'analyze' | 'reindex',
  db: string,
  b: PgMaintenanceFigures,
  evidence: Record<string, unknown>,
): Promise<Outcome> {
  const sql = pgMaintenanceStatement(operation, db, b.serverVersionNum)
  evidence.statement = sql
  const now =
    operation === 'reindex'
      ? `${plural(b.indexes, 'index', 'indexes')}, ${formatBytes(b.indexBytes)}`
      : `${b.deadTuples} dead tuples in ${plural(b.tables, 'table')}, ${formatBytes(b.databaseBytes)}`
  if (run.ctx.dryRun) {
    run.audit.push({ action: 'would-run', target: `postgresql:${db}`, detail: sql })
    return { status: 'dry-run', summary: `dry-run: would run ${sql} on ${db} (now ${now})`, evidence }
  }
  run.ctx.log(`db-maintenance: ${sql} on postgresql ${db}`)
  const ran = await runDb(
    run,
    psqlCommand(run.target, sql, settings(run.operationTimeoutMs, true)),
    run.operationTimeoutMs,
  )
  const durationMs = ran.ok ? ran.result.durationMs : undefined
  evidence.operationMs = durationMs
  if (!ran.ok)
    return { status: 'failed', summary: `${sql} on ${db} failed: ${ran.reason}`, error: ran.reason, evidence }
  const problem = exitProblem(ran)
  if (problem) {
    run.audit.push({ action: 'failed', target: `postgresql:${db}`, detail: `${sql}: ${problem}` })
    return { status: 'failed', summary: `${sql} on ${db} failed: ${problem}`, error: problem, evidence }
  }
  run.audit.push({
    action: operation,
    target: `postgresql:${db}`,
    detail: `${sql} in ${formatDuration(durationMs ?? 0)}`,
  })
  const after = await measure(run)
  if (!after.ok) {
    return {
      status: 'failed',
      summary: `${sql} on ${db} ran, but the figures after it could not be read: ${after.reason}`,
      error: after.reason,
      evidence,
    }
  }
  const a = after.figures
  evidence.after = figuresEvidence(a)
  const took = formatDuration(durationMs ?? 0)
  const problems: string[] = []
  const bytesRecovered: Record<string, number> = {}
  let summary: string
  if (operation === 'reindex') {
    const recovered = Math.max(0, b.indexBytes - a.indexBytes)
    bytesRecovered.reindex = recovered
    const leftInvalid = a.invalidIndexes.filter((i) => !b.invalidIndexes.includes(i))
    if (leftInvalid.length > 0) {
      problems.push(`left invalid: ${leftInvalid.join(', ')} (drop them: the reindex did not finish)`)
    }
    summary = `${sql} on ${db} in ${took}: indexes ${formatBytes(b.indexBytes)} -> ${formatBytes(a.indexBytes)} (${formatBytes(recovered)} recovered)`
  } else {
    const vacuumed = operation !== 'analyze'
    const analyzed = operation !== 'vacuum'
    const parts: string[] = []
    if (vacuumed) {
      bytesRecovered[operation] = Math.max(0, b.databaseBytes - a.databaseBytes)
      parts.push(`dead tuples ${b.deadTuples} -> ${a.deadTuples}`)
      if (b.deadTuples > 0 && a.deadTuples >= b.deadTuples) {
        problems.push(`the dead tuples did not go down (${b.deadTuples} -> ${a.deadTuples}): ${holderText(a)}`)
        if (a.xminHolder) evidence.xminHolder = a.xminHolder
      }
      parts.push(`size ${formatBytes(b.databaseBytes)} -> ${formatBytes(a.databaseBytes)}`)
    }
    if (analyzed) {
      const stale =
        a.neverAnalyzed > 0 || (a.tables > 0 && (a.oldestAnalyze === undefined || a.oldestAnalyze < b.clock - 1))
      parts.push(`${plural(a.tables, 'table')} analyzed`)
      if (stale) problems.push('not every table was analyzed (one was locked, or the role may not analyze it)')
    }
    summary = `${sql} on ${db} in ${took}: ${parts.join(', ')}`
  }
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
  return { status: 'succeeded', summary, evidence, bytesRecovered }
}

/** pg_amcheck on PATH, else where PostgreSQL's packages put it for this server's major version. */
async function findPgAmcheck(run: MaintenanceRun, serverVersionNum: number): Promise<string | undefined> {
  if (run.pgAmcheck !== undefined) return run.pgAmcheck ?? undefined
  const major = Math.floor(serverVersionNum / 10_000)
  const path = (run.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter((d) => d.startsWith('/'))
  const candidates = [
    ...path.map((d) => join(d, 'pg_amcheck')),
    `/usr/lib/postgresql/${major}/bin/pg_amcheck`,
    `/usr/pgsql-${major}/bin/pg_amcheck`,
  ]
  for (const file of candidates) {
    try {
      await access(file, constants.X_OK)
      return file
    } catch {
      // not there
    }
  }
  return undefined
}

async function integrity(
  run: MaintenanceRun,
  db: string,
  b: PgMaintenanceFigures,
  evidence: Record<string, unknown>,
): Promise<Outcome> {
  // pg_amcheck supports servers from 14 (verify_heapam)
  const tool = b.serverVersionNum >= 140_000 ? await findPgAmcheck(run, b.serverVersionNum) : undefined
  const method = tool ? 'pg_amcheck' : 'amcheck through psql'
  evidence.method = method
  if (run.ctx.dryRun) {
    run.audit.push({ action: 'would-check', target: `postgresql:${db}`, detail: method })
    return {
      status: 'dry-run',
      summary: `dry-run: would check ${db} with ${method} (heap and B-tree indexes; installs the amcheck extension if missing)`,
      evidence,
    }
  }
  run.ctx.log(`db-maintenance: integrity check of postgresql ${db} with ${method}`)
  let report: IntegrityReport
  let durationMs: number
  if (tool) {
    const ran = await runDb(
      run,
      pgAmcheckCommand(tool, run.target, settings(run.operationTimeoutMs)),
      run.operationTimeoutMs,
    )
    if (!ran.ok)
      return {
        status: 'failed',
        summary: `integrity check of ${db} failed: ${ran.reason}`,
        error: ran.reason,
        evidence,
      }
    durationMs = ran.result.durationMs
    const parsed = parsePgAmcheck(ran.result.stdout, ran.result.exitCode)
    if (!parsed.ok) {
      const why = `${parsed.error.reason}: ${clientError(ran.result.stderr, ran.result.stdout)}`
      return { status: 'failed', summary: `integrity check of ${db} could not run: ${why}`, error: why, evidence }
    }
    report = parsed.value
  } else {
    const ran = await runDb(
      run,
      psqlCommand(run.target, pgAmcheckFallbackSql(b.serverVersionNum), settings(run.operationTimeoutMs)),
      run.operationTimeoutMs,
    )
    if (!ran.ok)
      return {
        status: 'failed',
        summary: `integrity check of ${db} failed: ${ran.reason}`,
        error: ran.reason,
        evidence,
      }
    durationMs = ran.result.durationMs
    const problem = exitProblem(ran)
    if (problem)
      return {
        status: 'failed',
        summary: `integrity check of ${db} could not run: ${problem}`,
        error: problem,
        evidence,
      }
    const parsed = parsePgAmcheckFallback(ran.result.stdout, ran.result.stderr)
    if (!parsed.ok)
      return {
        status: 'failed',
        summary: `integrity check of ${db}: ${parsed.error.reason}`,
        error: parsed.error.reason,
        evidence,
      }
    report = parsed.value
    evidence.indexesChecked = fallbackIndexesChecked(ran.result.stderr)
    if (b.serverVersionNum < 140_000) evidence.heapChecked = false // verify_heapam exists from 14
  }
  evidence.operationMs = durationMs
  evidence.integrity = report.integrity
  evidence.findings = report.findings.slice(0, 20).map((f) => `${f.object}: ${f.message}`)
  evidence.findingsTotal = report.findings.length
  run.audit.push({ action: 'integrity-check', target: `postgresql:${db}`, detail: `${report.integrity} (${method})` })
  if (report.integrity === 'ok') {
    return {
      status: 'succeeded',
      summary: `integrity of ${db} ok (${method}, ${formatDuration(durationMs)})`,
      evidence,
    }
  }
  const what = `${plural(report.findings.length, 'problem')} in ${report.relations.join(', ')}`
  return {
    status: 'failed',
    summary: `integrity check of ${db} FAILED: ${what}`,
    error: `corruption found: ${what}`,
    evidence,
    items: report.relations,
  }
}

const sessionText = (s: PgSession): string =>
  `pid ${s.pid} (${[s.user, s.application].filter(Boolean).join(', ') || 'unknown'}; idle in transaction ${Math.round(s.idleSeconds)} s)`

async function terminate(
  run: MaintenanceRun,
  db: string,
  seconds: number,
  bound: string,
  evidence: Record<string, unknown>,
): Promise<Outcome> {
  evidence.idleLongerThan = bound
  const ran = await runDb(
    run,
    psqlCommand(run.target, pgIdleInTransactionSql(seconds, !run.ctx.dryRun), settings(run.queryTimeoutMs)),
    run.queryTimeoutMs,
  )
  const sessions = parsedOrFailed(ran, `end the sessions of ${db}`, parsePgSessions, evidence)
  if (!sessions.ok) return sessions.outcome
  const found = sessions.value
  const early = idleSessionsOutcome(run, found, sessionText, {
    db,
    bound,
    target: `postgresql:${db}`,
    wouldAction: 'would-terminate',
    evidence,
  })
  if (early) return early
  const items = found.map(sessionText)
  const signalled = found.filter((s) => s.terminated)
  for (const s of signalled) run.audit.push({ action: 'terminate', target: `postgresql:${db}`, detail: sessionText(s) })
  // pg_terminate_backend only signals: wait (bounded) until those backends are gone
  const alive = await waitUntilGone(
    run,
    signalled.map((s) => s.pid),
    async (pids) => {
      const check = await runDb(
        run,
        psqlCommand(run.target, pgBackendsAliveSql([...pids]), settings(run.queryTimeoutMs)),
        run.queryTimeoutMs,
      )
      return !check.ok || exitProblem(check) ? undefined : parsePids(check.result.stdout)
    },
  )
  evidence.terminated = signalled.map((s) => s.pid)
  evidence.stillAlive = alive.length > 0 ? alive : undefined
  const notSignalled = found.filter((s) => !s.terminated).map((s) => s.pid)
  if (notSignalled.length > 0) evidence.notSignalled = notSignalled
  const ended = signalled.length - alive.length
  const summary = `ended ${plural(ended, 'session')} of ${db} idle in a transaction for longer than ${bound}: ${items.slice(0, 5).join(', ')}`
  if (alive.length > 0 || notSignalled.length > 0) {
    const why = [
      alive.length > 0 ? `still there after 5 s: pid ${alive.join(', ')}` : '',
      notSignalled.length > 0 ? `not allowed to signal pid ${notSignalled.join(', ')} (pg_signal_backend)` : '',
    ]
      .filter(Boolean)
      .join('; ')
    return { status: 'failed', summary: `${summary}; ${why}`, error: why, evidence, items, itemsTotal: items.length }
  }
  return { status: 'succeeded', summary, evidence, items, itemsTotal: items.length }
}
