import { parseDuration } from '../../../shared/engine/duration.ts'
import type { DbMaintenanceParams } from '../../../shared/registry/remediations/db-maintenance.ts'
import { MYSQL_CLIENTS, type MysqlCheckMode, mysqlCheckCommand, mysqlCommand } from '../../probes/db-client.ts'
import {
  MYSQL_MAINTENANCE_SQL,
  type MysqlEngine,
  type MysqlMaintenanceFigures,
  type MysqlSession,
  mysqlAliveSql,
  mysqlIdleInTransactionSql,
  mysqlKillSql,
  parseMysqlCheck,
  parseMysqlMaintenance,
  parseMysqlSessions,
  type TableCheck,
} from '../../probes/db-mysql.ts'
import { formatBytes } from '../disk-cleanup/report.ts'
import {
  exitProblem,
  formatDuration,
  idleSessionsOutcome,
  type MaintenanceRun,
  type Outcome,
  parsedOrFailed,
  plural,
  runFirstDb,
  waitUntilGone,
} from './common.ts'

/**
 * db-maintenance on MariaDB and MySQL:
 *
 * - `analyze`, `optimize`, `integrity-check`: `mariadb-check` (or `mysqlcheck`) `--analyze` / `--optimize` /
 *   `--check` of every table of the database, one by one (ANALYZE TABLE, OPTIMIZE TABLE, CHECK TABLE). mysqlcheck
 *   exits 0 even when a table is corrupt: the verdict is read per table from its output (agent/probes/db-mysql.ts);
 *   any table not OK makes the result `failed`, naming it. For OPTIMIZE, InnoDB rebuilds the table ("doing recreate
 *   + analyze instead"); the bytes recovered are the tables' allocation (DATA_LENGTH + INDEX_LENGTH + DATA_FREE, as
 *   information_schema.TABLES reports it) before minus after.
 * - `terminate-idle-in-transaction`: `KILL CONNECTION` of this database's sessions sleeping with an open InnoDB
 *   transaction for longer than `idleLongerThan` (PROCESSLIST.TIME, whole seconds), never ANSAI's own; verified
 *   when those connections are gone. The list and the kills are two statements: a session that wakes up in
 *   between is still killed (it was idle for longer than the bound a moment before).
 */

const CONNECT_TIMEOUT_SECONDS = 10

type Measured = { ok: true; figures: MysqlMaintenanceFigures } | { ok: false; reason: string }

async function query(run: MaintenanceRun, engine: MysqlEngine, sql: string, timeoutMs: number) {
  return runFirstDb(
    run,
    MYSQL_CLIENTS[engine].client,
    (file) => mysqlCommand(file, run.target, sql, CONNECT_TIMEOUT_SECONDS),
    timeoutMs,
  )
}

async function measure(run: MaintenanceRun, engine: MysqlEngine): Promise<Measured> {
  const ran = await query(run, engine, MYSQL_MAINTENANCE_SQL, run.queryTimeoutMs)
  if (!ran.ok) return ran
  const problem = exitProblem(ran)
  if (problem) return { ok: false, reason: problem }
  const figures = parseMysqlMaintenance(ran.result.stdout)
  return figures.ok ? { ok: true, figures: figures.value } : { ok: false, reason: figures.error.reason }
}

const allocated = (f: MysqlMaintenanceFigures): number => f.tableBytes + f.freeBytes

const figuresEvidence = (f: MysqlMaintenanceFigures) => ({
  tables: f.tables,
  tableBytes: f.tableBytes,
  freeBytes: f.freeBytes,
  idleInTransaction: f.idleInTransaction,
})

const MODES: Record<'analyze' | 'optimize' | 'integrity-check', MysqlCheckMode> = {
  analyze: 'analyze',
  optimize: 'optimize',
  'integrity-check': 'check',
}

export async function maintainMysql(run: MaintenanceRun, params: DbMaintenanceParams): Promise<Outcome> {
  const engine = params.engine as MysqlEngine
  const db = params.database
  const before = await measure(run, engine)
  if (!before.ok) {
    return {
      status: 'failed',
      summary: `cannot reach ${engine} database ${db}: ${before.reason}`,
      error: before.reason,
      evidence: {},
    }
  }
  const evidence: Record<string, unknown> = { before: figuresEvidence(before.figures) }
  if (params.operation === 'terminate-idle-in-transaction') {
    return terminate(
      run,
      engine,
      db,
      parseDuration(params.idleLongerThan ?? '0s') / 1000,
      params.idleLongerThan ?? '',
      evidence,
    )
  }
  if (params.operation === 'analyze' || params.operation === 'optimize' || params.operation === 'integrity-check') {
    return check(run, engine, db, params.operation, before.figures, evidence)
  }
  return { status: 'failed', summary: `${engine} has no ${params.operation}`, error: 'unsupported', evidence }
}

const tableText = (t: TableCheck): string => {
  const said = t.messages.filter((m) => m.level !== 'note').map((m) => m.text)
  return `${t.table}: ${[t.status || 'no status', ...said].join('; ')}`
}

async function check(
  run: MaintenanceRun,
  engine: MysqlEngine,
  db: string,
  operation: 'analyze' | 'optimize' | 'integrity-check',
  b: MysqlMaintenanceFigures,
  evidence: Record<string, unknown>,
): Promise<Outcome> {
  const mode = MODES[operation]
  const what = `${mode.toUpperCase()} TABLE of every table of ${db}`
  if (run.ctx.dryRun) {
    run.audit.push({ action: `would-${mode}`, target: `${engine}:${db}`, detail: what })
    return {
      status: 'dry-run',
      summary: `dry-run: would run ${what} (${plural(b.tables, 'table')}, ${formatBytes(allocated(b))} allocated, ${formatBytes(b.freeBytes)} free)`,
      evidence,
    }
  }
  run.ctx.log(`db-maintenance: ${what} (${engine})`)
  const ran = await runFirstDb(
    run,
    MYSQL_CLIENTS[engine].check,
    (file) => mysqlCheckCommand(file, run.target, mode),
    run.operationTimeoutMs,
  )
  if (!ran.ok) return { status: 'failed', summary: `${what} failed: ${ran.reason}`, error: ran.reason, evidence }
  const problem = exitProblem(ran)
  if (problem) return { status: 'failed', summary: `${what} failed: ${problem}`, error: problem, evidence }
  const tables = parseMysqlCheck(ran.result.stdout)
  if (!tables.ok)
    return { status: 'failed', summary: `${what}: ${tables.error.reason}`, error: tables.error.reason, evidence }
  const durationMs = ran.result.durationMs
  evidence.operationMs = durationMs
  evidence.tablesDone = tables.value.length
  const bad = tables.value.filter((t) => !t.ok)
  for (const t of tables.value) {
    run.audit.push({ action: mode, target: `${engine}:${t.table}`, detail: tableText(t) })
  }
  const after = await measure(run, engine)
  const bytesRecovered: Record<string, number> = {}
  if (after.ok) {
    evidence.after = figuresEvidence(after.figures)
    if (operation === 'optimize') bytesRecovered.optimize = Math.max(0, allocated(b) - allocated(after.figures))
  } else {
    evidence.afterError = after.reason
  }
  if (operation === 'integrity-check') evidence.integrity = bad.length === 0 ? 'ok' : 'failed'
  const took = formatDuration(durationMs)
  if (bad.length > 0) {
    const items = bad.map(tableText)
    const verdict = operation === 'integrity-check' ? 'FAILED' : 'failed for'
    return {
      status: 'failed',
      summary: `${mode.toUpperCase()} TABLE ${verdict} ${plural(bad.length, 'table')} of ${tables.value.length} in ${db}: ${items.slice(0, 3).join(', ')}`,
      error: items.slice(0, 10).join(' | '),
      evidence,
      items,
      itemsTotal: items.length,
      ...(operation === 'optimize' ? { bytesRecovered } : {}),
    }
  }
  const tail =
    operation === 'optimize' && after.ok
      ? `: ${formatBytes(allocated(b))} -> ${formatBytes(allocated(after.figures))} allocated (${formatBytes(bytesRecovered.optimize ?? 0)} recovered)`
      : operation === 'integrity-check'
        ? ': integrity ok'
        : ''
  return {
    status: 'succeeded',
    summary: `${mode.toUpperCase()} TABLE of ${plural(tables.value.length, 'table')} in ${db} in ${took}${tail}`,
    evidence,
    ...(operation === 'optimize' ? { bytesRecovered } : {}),
  }
}

const sessionText = (s: MysqlSession): string =>
  `connection ${s.id} (${s.user}; idle in transaction ${s.idleSeconds} s)`

async function terminate(
  run: MaintenanceRun,
  engine: MysqlEngine,
  db: string,
  seconds: number,
  bound: string,
  evidence: Record<string, unknown>,
): Promise<Outcome> {
  evidence.idleLongerThan = bound
  const listed = await query(run, engine, mysqlIdleInTransactionSql(seconds), run.queryTimeoutMs)
  const sessions = parsedOrFailed(listed, `list the sessions of ${db}`, parseMysqlSessions, evidence)
  if (!sessions.ok) return sessions.outcome
  const found = sessions.value
  const early = idleSessionsOutcome(run, found, sessionText, {
    db,
    bound,
    target: `${engine}:${db}`,
    wouldAction: 'would-kill',
    evidence,
  })
  if (early) return early
  const items = found.map(sessionText)
  const ids = found.map((s) => s.id)
  // --force: one connection that ended meanwhile (ERROR 1094) does not stop the other kills
  const killed = await runFirstDb(
    run,
    MYSQL_CLIENTS[engine].client,
    (file) => mysqlCommand(file, run.target, mysqlKillSql(ids), CONNECT_TIMEOUT_SECONDS, { force: true }),
    run.queryTimeoutMs,
  )
  if (!killed.ok)
    return { status: 'failed', summary: `KILL failed: ${killed.reason}`, error: killed.reason, evidence, items }
  for (const s of found) run.audit.push({ action: 'kill', target: `${engine}:${db}`, detail: sessionText(s) })
  const alive = await waitUntilGone(run, ids, async (ids) => {
    const check = await query(run, engine, mysqlAliveSql([...ids]), run.queryTimeoutMs)
    if (!check.ok || exitProblem(check)) return undefined
    return check.result.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^\d+$/.test(l))
      .map(Number)
  })
  evidence.killed = ids
  if (killed.result.exitCode !== 0) evidence.killErrors = killed.result.stderr.trim().split('\n').slice(0, 5)
  const summary = `ended ${plural(ids.length - alive.length, 'session')} of ${db} idle in a transaction for longer than ${bound}: ${items.slice(0, 5).join(', ')}`
  if (alive.length > 0) {
    evidence.stillAlive = alive
    const why = `still there after 5 s: connection ${alive.join(', ')}${killed.result.exitCode !== 0 ? ` (${exitProblem(killed)})` : ''}`
    return { status: 'failed', summary: `${summary}; ${why}`, error: why, evidence, items, itemsTotal: items.length }
  }
  return { status: 'succeeded', summary, evidence, items, itemsTotal: items.length }
}
