import type { ObservationOf } from '../../shared/contracts/index.ts'
import { quotePgIdentifier } from './db-client.ts'
import {
  boolField,
  DB_PROBE,
  intField,
  jsonNumber,
  jsonString,
  type KeyedRows,
  missingFigure,
  numberField,
  parseJsonLines,
  parseKeyedRows,
  ratio,
  textField,
} from './db-rows.ts'
import { failed, type ParseResult, parsed, problem, quote, splitLines } from './parse-result.ts'

/**
 * PostgreSQL: the fixed SQL the probe and db-maintenance send through `psql -A -t` (one `key|value` row per
 * figure), and pure parsers of what psql prints. Works with PostgreSQL 10 and later (pg_stat_activity.backend_type);
 * figures of later versions are read in a way older ones tolerate (`to_jsonb(row) ->> 'column'` is NULL where the
 * column does not exist). The database is always the connection's (`current_database()`): no name in the SQL.
 */

export type DatabaseObservation = ObservationOf<'database'>

const IDLE_IN_TRANSACTION = "state IN ('idle in transaction', 'idle in transaction (aborted)')"

/**
 * The probe's query. Server-wide: connections (client backends), max_connections, lock waits, replication.
 * This database: sessions idle in a transaction, live and dead tuples of user tables, data checksum failures, size.
 */
export const PG_PROBE_SQL = [
  "SELECT 'server_version_num', current_setting('server_version_num')",
  "SELECT 'connections', (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::text",
  "SELECT 'max_connections', current_setting('max_connections')",
  `SELECT 'idle_in_transaction', (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND ${IDLE_IN_TRANSACTION})::text`,
  `SELECT 'longest_idle_in_transaction_seconds', (SELECT round(max(extract(epoch FROM clock_timestamp() - state_change))::numeric, 3) FROM pg_stat_activity WHERE datname = current_database() AND ${IDLE_IN_TRANSACTION})::text`,
  "SELECT 'lock_waiters', (SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted)::text",
  "SELECT 'longest_lock_wait_seconds', (SELECT coalesce(round(max(extract(epoch FROM clock_timestamp() - coalesce((to_jsonb(l) ->> 'waitstart')::timestamptz, a.query_start)))::numeric, 3), 0) FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted)::text",
  "SELECT 'live_tuples', (SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables)::text",
  "SELECT 'dead_tuples', (SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables)::text",
  "SELECT 'in_recovery', pg_is_in_recovery()::text",
  "SELECT 'standby_lag_seconds', CASE WHEN pg_is_in_recovery() THEN CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 ELSE round(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::numeric, 3) END END::text",
  "SELECT 'standbys', (SELECT count(*) FROM pg_stat_replication)::text",
  "SELECT 'replica_lag_seconds', (SELECT round(coalesce(max(extract(epoch FROM replay_lag)), 0)::numeric, 3) FROM pg_stat_replication HAVING count(*) > 0)::text",
  "SELECT 'data_checksums', current_setting('data_checksums')",
  "SELECT 'checksum_failures', (SELECT to_jsonb(d) ->> 'checksum_failures' FROM pg_stat_database d WHERE datname = current_database())",
  "SELECT 'database_bytes', pg_database_size(current_database())::text",
].join('\nUNION ALL ')

const PROBE_REQUIRED = [
  'server_version_num',
  'connections',
  'max_connections',
  'idle_in_transaction',
  'live_tuples',
  'dead_tuples',
  'in_recovery',
] as const

export interface PgProbeFigures {
  serverVersionNum: number
  connections: number
  maxConnections: number
  idleInTransaction: number
  longestIdleInTransactionSeconds?: number | undefined
  lockWaiters?: number | undefined
  longestLockWaitSeconds?: number | undefined
  liveTuples: number
  deadTuples: number
  inRecovery: boolean
  standbyLagSeconds?: number | undefined
  standbys?: number | undefined
  replicaLagSeconds?: number | undefined
  dataChecksums?: boolean | undefined
  checksumFailures?: number | undefined
  databaseBytes?: number | undefined
}

const figuresOf = (rows: KeyedRows): PgProbeFigures | string => {
  const missing = missingFigure(rows, PROBE_REQUIRED)
  if (missing) return `psql printed no ${missing}`
  const need = (key: string): number | string =>
    intField(rows, key) ?? `bad ${key} ${quote(textField(rows, key) ?? '')}`
  const version = need('server_version_num')
  const connections = need('connections')
  const maxConnections = need('max_connections')
  const idle = need('idle_in_transaction')
  const live = need('live_tuples')
  const dead = need('dead_tuples')
  const inRecovery = boolField(rows, 'in_recovery')
  for (const v of [version, connections, maxConnections, idle, live, dead]) if (typeof v === 'string') return v
  if (inRecovery === undefined) return `bad in_recovery ${quote(textField(rows, 'in_recovery') ?? '')}`
  return {
    serverVersionNum: version as number,
    connections: connections as number,
    maxConnections: maxConnections as number,
    idleInTransaction: idle as number,
    longestIdleInTransactionSeconds: numberField(rows, 'longest_idle_in_transaction_seconds'),
    lockWaiters: intField(rows, 'lock_waiters'),
    longestLockWaitSeconds: numberField(rows, 'longest_lock_wait_seconds'),
    liveTuples: live as number,
    deadTuples: dead as number,
    inRecovery,
    standbyLagSeconds: numberField(rows, 'standby_lag_seconds'),
    standbys: intField(rows, 'standbys'),
    replicaLagSeconds: numberField(rows, 'replica_lag_seconds'),
    dataChecksums: boolField(rows, 'data_checksums'),
    checksumFailures: intField(rows, 'checksum_failures'),
    databaseBytes: intField(rows, 'database_bytes'),
  }
}

/** What psql prints for {@link PG_PROBE_SQL} → figures. */
export function parsePgProbe(text: string): ParseResult<PgProbeFigures> {
  const rows = parseKeyedRows(text, '|', 'psql')
  if (!rows.ok) return rows
  const figures = figuresOf(rows.value)
  return typeof figures === 'string' ? failed(DB_PROBE, figures) : parsed(figures)
}

/**
 * Figures → observation. `bloatRatio` is the share of dead tuples among the user tables' tuples (what VACUUM
 * reclaims); `replicationLagSeconds` is this server's replay lag on a standby, or the largest replay lag of its
 * standbys on a primary (absent without standbys); `integrity` is known only with data checksums on: `failed` once
 * a checksum failure was counted in this database, else `ok`.
 */
export function pgObservation(name: string, f: PgProbeFigures): DatabaseObservation {
  const obs: DatabaseObservation = {
    kind: 'database',
    engine: 'postgresql',
    name,
    reachable: true,
    connections: f.connections,
    maxConnections: f.maxConnections,
    idleInTransaction: f.idleInTransaction,
    deadTuples: f.deadTuples,
    bloatRatio: ratio(f.deadTuples, f.liveTuples),
  }
  if (f.longestLockWaitSeconds !== undefined) obs.longestLockWaitSeconds = f.longestLockWaitSeconds
  const lag = f.inRecovery ? f.standbyLagSeconds : f.replicaLagSeconds
  if (lag !== undefined) obs.replicationLagSeconds = lag
  if (f.dataChecksums === true) obs.integrity = (f.checksumFailures ?? 0) > 0 ? 'failed' : 'ok'
  return obs
}

// ---------------------------------------------------------------------------------------------------------------
// db-maintenance

/** Figures db-maintenance reads before and after an operation (and in a dry-run). */
export const PG_MAINTENANCE_SQL = [
  "SELECT 'server_version_num', current_setting('server_version_num')",
  "SELECT 'clock', round(extract(epoch FROM clock_timestamp())::numeric, 3)::text",
  "SELECT 'tables', (SELECT count(*) FROM pg_stat_user_tables)::text",
  "SELECT 'live_tuples', (SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables)::text",
  "SELECT 'dead_tuples', (SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables)::text",
  "SELECT 'database_bytes', pg_database_size(current_database())::text",
  "SELECT 'index_bytes', (SELECT coalesce(sum(pg_relation_size(indexrelid)), 0) FROM pg_stat_user_indexes)::text",
  "SELECT 'indexes', (SELECT count(*) FROM pg_stat_user_indexes)::text",
  "SELECT 'invalid_indexes', (SELECT coalesce(string_agg(indexrelid::regclass::text, ',' ORDER BY indexrelid), '') FROM pg_index WHERE NOT indisvalid)",
  "SELECT 'oldest_vacuum', (SELECT round(extract(epoch FROM min(greatest(last_vacuum, last_autovacuum)))::numeric, 3) FROM pg_stat_user_tables)::text",
  "SELECT 'never_vacuumed', (SELECT count(*) FROM pg_stat_user_tables WHERE last_vacuum IS NULL AND last_autovacuum IS NULL)::text",
  "SELECT 'oldest_analyze', (SELECT round(extract(epoch FROM min(greatest(last_analyze, last_autoanalyze)))::numeric, 3) FROM pg_stat_user_tables)::text",
  "SELECT 'never_analyzed', (SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NULL AND last_autoanalyze IS NULL)::text",
  `SELECT 'idle_in_transaction', (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND ${IDLE_IN_TRANSACTION})::text`,
  "SELECT 'xmin_holder', (SELECT json_build_object('pid', pid, 'state', state, 'xminAge', age(backend_xmin), 'seconds', round(extract(epoch FROM clock_timestamp() - coalesce(xact_start, backend_start))::numeric, 3))::text FROM pg_stat_activity WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid() ORDER BY age(backend_xmin) DESC LIMIT 1)",
].join('\nUNION ALL ')

export interface PgMaintenanceFigures {
  serverVersionNum: number
  /** The server's clock, epoch seconds. */
  clock: number
  tables: number
  liveTuples: number
  deadTuples: number
  databaseBytes: number
  indexBytes: number
  indexes: number
  invalidIndexes: string[]
  /** Epoch seconds of the least recently vacuumed / analyzed user table (absent when one never was). */
  oldestVacuum?: number | undefined
  neverVacuumed: number
  oldestAnalyze?: number | undefined
  neverAnalyzed: number
  idleInTransaction: number
  /** The session whose snapshot is the oldest (it keeps VACUUM from removing newer dead tuples). */
  xminHolder?: { pid: number; state?: string | undefined; xminAge?: number | undefined; seconds?: number | undefined }
}

const MAINTENANCE_REQUIRED = [
  'server_version_num',
  'clock',
  'tables',
  'live_tuples',
  'dead_tuples',
  'database_bytes',
  'index_bytes',
  'indexes',
  'never_vacuumed',
  'never_analyzed',
  'idle_in_transaction',
] as const

/** What psql prints for {@link PG_MAINTENANCE_SQL} → figures. */
export function parsePgMaintenance(text: string): ParseResult<PgMaintenanceFigures> {
  const rows = parseKeyedRows(text, '|', 'psql', 2)
  if (!rows.ok) return rows
  const r = rows.value
  const missing = missingFigure(r, MAINTENANCE_REQUIRED)
  if (missing) return failed(DB_PROBE, `psql printed no ${missing}`)
  const ints: Record<string, number> = {}
  for (const key of MAINTENANCE_REQUIRED) {
    if (key === 'clock') continue
    const n = intField(r, key)
    if (n === undefined) return failed(DB_PROBE, `bad ${key} ${quote(textField(r, key) ?? '')}`)
    ints[key] = n
  }
  const clock = numberField(r, 'clock')
  if (clock === undefined) return failed(DB_PROBE, `bad clock ${quote(textField(r, 'clock') ?? '')}`)
  const figures: PgMaintenanceFigures = {
    serverVersionNum: ints.server_version_num!,
    clock,
    tables: ints.tables!,
    liveTuples: ints.live_tuples!,
    deadTuples: ints.dead_tuples!,
    databaseBytes: ints.database_bytes!,
    indexBytes: ints.index_bytes!,
    indexes: ints.indexes!,
    invalidIndexes: (textField(r, 'invalid_indexes') ?? '').split(',').filter((s) => s.length > 0),
    oldestVacuum: numberField(r, 'oldest_vacuum'),
    neverVacuumed: ints.never_vacuumed!,
    oldestAnalyze: numberField(r, 'oldest_analyze'),
    neverAnalyzed: ints.never_analyzed!,
    idleInTransaction: ints.idle_in_transaction!,
  }
  const holder = textField(r, 'xmin_holder')
  if (holder !== undefined) {
    try {
      const row = JSON.parse(holder) as Record<string, unknown>
      const pid = jsonNumber(row, 'pid')
      if (pid !== undefined) {
        figures.xminHolder = {
          pid,
          state: jsonString(row, 'state'),
          xminAge: jsonNumber(row, 'xminAge'),
          seconds: jsonNumber(row, 'seconds'),
        }
      }
    } catch {
      // a figure for the evidence only: left out
    }
  }
  return parsed(figures)
}

/** PostgreSQL 12 added `VACUUM (SKIP_LOCKED)` and `REINDEX ... CONCURRENTLY`. */
const PG12 = 120_000

/**
 * The maintenance statement of an operation. `VACUUM` is never `FULL` (it would lock every table and rewrite it);
 * from PostgreSQL 12 it skips tables another session holds a conflicting lock on (SKIP_LOCKED) rather than queue
 * behind them. `REINDEX DATABASE` is CONCURRENTLY from 12 (writes go on; system catalogs are skipped there).
 */
export function pgMaintenanceStatement(
  operation: 'vacuum' | 'vacuum-analyze' | 'analyze' | 'reindex',
  database: string,
  serverVersionNum: number,
): string {
  const modern = serverVersionNum >= PG12
  switch (operation) {
    case 'vacuum':
      return modern ? 'VACUUM (SKIP_LOCKED)' : 'VACUUM'
    case 'vacuum-analyze':
      return modern ? 'VACUUM (ANALYZE, SKIP_LOCKED)' : 'VACUUM ANALYZE'
    case 'analyze':
      return modern ? 'ANALYZE (SKIP_LOCKED)' : 'ANALYZE'
    case 'reindex':
      return `REINDEX DATABASE ${modern ? 'CONCURRENTLY ' : ''}${quotePgIdentifier(database)}`
  }
}

/** Seconds as a SQL numeric literal: finite, non-negative, at most 3 decimals. */
const secondsLiteral = (seconds: number): string => {
  if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`not a duration in seconds: ${seconds}`)
  return String(Math.round(seconds * 1000) / 1000)
}

/**
 * Sessions of this database idle in a transaction for longer than `seconds` (never this session), one JSON row
 * each; with `terminate`, each is ended with pg_terminate_backend (a dry-run lists them only).
 */
export function pgIdleInTransactionSql(seconds: number, terminate: boolean): string {
  return [
    "SELECT json_build_object('pid', pid, 'user', usename, 'application', application_name, 'client', client_addr::text,",
    "'state', state, 'idleSeconds', round(extract(epoch FROM clock_timestamp() - state_change)::numeric, 3),",
    `'terminated', ${terminate ? 'pg_terminate_backend(pid)' : 'false'})`,
    `FROM pg_stat_activity WHERE datname = current_database() AND ${IDLE_IN_TRANSACTION}`,
    `AND pid <> pg_backend_pid() AND state_change < clock_timestamp() - make_interval(secs => ${secondsLiteral(seconds)})`,
    'ORDER BY state_change, pid',
  ].join(' ')
}

/** Which of these backends still exist (after pg_terminate_backend, until they are gone). */
export function pgBackendsAliveSql(pids: readonly number[]): string {
  for (const pid of pids) if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error(`not a pid: ${pid}`)
  return `SELECT pid FROM pg_stat_activity WHERE pid = ANY (ARRAY[${pids.join(',')}]::int[]) ORDER BY pid`
}

export interface PgSession {
  pid: number
  user?: string | undefined
  application?: string | undefined
  client?: string | undefined
  idleSeconds: number
  terminated: boolean
}

/** The rows of {@link pgIdleInTransactionSql}. */
export function parsePgSessions(text: string): ParseResult<PgSession[]> {
  const rows = parseJsonLines(text, 'psql')
  if (!rows.ok) return rows
  const sessions: PgSession[] = []
  for (const row of rows.value) {
    const pid = jsonNumber(row, 'pid')
    if (pid === undefined) return failed(DB_PROBE, 'psql: a session row without pid')
    sessions.push({
      pid,
      user: jsonString(row, 'user'),
      application: jsonString(row, 'application'),
      client: jsonString(row, 'client'),
      idleSeconds: jsonNumber(row, 'idleSeconds') ?? 0,
      terminated: row.terminated === true,
    })
  }
  return parsed(sessions)
}

/** One pid per line (psql -A -t of {@link pgBackendsAliveSql}). */
export function parsePids(text: string): number[] {
  return splitLines(text)
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l))
    .map(Number)
}

// ---------------------------------------------------------------------------------------------------------------
// integrity

export interface IntegrityFinding {
  /** `btree index "app.public.items_payload"`, `heap table "app.public.items", block 1, offset 3`. */
  object: string
  message: string
}

export interface IntegrityReport {
  integrity: 'ok' | 'failed'
  findings: IntegrityFinding[]
  /** Relations with at least one finding. */
  relations: string[]
}

const relationOf = (object: string): string => /"([^"]+)"/.exec(object)?.[1] ?? object

const reportOf = (findings: IntegrityFinding[]): IntegrityReport => ({
  integrity: findings.length > 0 ? 'failed' : 'ok',
  findings,
  relations: [...new Set(findings.map((f) => relationOf(f.object)))],
})

/**
 * `pg_amcheck` output: nothing when every relation checks out (exit 0); otherwise, per problem, a line naming the
 * object (`btree index "db.schema.name":`, `heap table "db.schema.name", block 1, offset 2:`) and indented lines
 * saying what is wrong (exit 2). Exit 1 (or any other) is an error, not a verdict.
 */
export function parsePgAmcheck(stdout: string, exitCode: number | null): ParseResult<IntegrityReport> {
  if (exitCode !== 0 && exitCode !== 2) return failed(DB_PROBE, `pg_amcheck exited ${exitCode ?? 'by a signal'}`)
  const findings: IntegrityFinding[] = []
  let current: IntegrityFinding | undefined
  for (const line of splitLines(stdout)) {
    if (line.trim() === '') continue
    if (/^\S/.test(line)) {
      current = { object: line.replace(/:\s*$/, ''), message: '' }
      findings.push(current)
    } else if (current) {
      const text = line.trim().replace(/^(ERROR|DETAIL):\s+/, '')
      current.message = current.message ? `${current.message} ${text}` : text
    }
  }
  if (exitCode === 2 && findings.length === 0) return failed(DB_PROBE, 'pg_amcheck exited 2 without naming a problem')
  if (exitCode === 0 && findings.length > 0)
    return parsed(reportOf(findings), [problem(DB_PROBE, 'pg_amcheck exited 0 but printed problems')])
  return parsed(reportOf(findings))
}

/**
 * The fallback when pg_amcheck is not installed: the same amcheck functions through psql. The extension is
 * installed if missing (as `pg_amcheck --install-missing` does), then every valid B-tree index is checked with
 * `bt_index_check` (each failure becomes a WARNING naming the index, and the check goes on), and from PostgreSQL
 * 14 every table with `verify_heapam` (one JSON row per problem).
 */
export function pgAmcheckFallbackSql(serverVersionNum: number): string[] {
  const statements = [
    'CREATE EXTENSION IF NOT EXISTS amcheck WITH SCHEMA pg_catalog',
    [
      'DO $ansai$ DECLARE r record; checked int := 0; bad int := 0; BEGIN',
      "FOR r IN SELECT c.oid, format('%s.%s.%s', current_database(), n.nspname, c.relname) AS name FROM pg_index i",
      'JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace',
      "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree'",
      "AND i.indisvalid AND i.indisready AND c.relpersistence <> 't' ORDER BY c.oid LOOP",
      'BEGIN PERFORM bt_index_check(r.oid); checked := checked + 1;',
      'EXCEPTION WHEN OTHERS THEN bad := bad + 1; RAISE WARNING \'ansai-amcheck: btree index "%": %\', r.name, SQLERRM; END;',
      "END LOOP; RAISE NOTICE 'ansai-amcheck: % btree indexes checked, % corrupt', checked + bad, bad; END $ansai$",
    ].join(' '),
  ]
  if (serverVersionNum >= 140_000) {
    statements.push(
      [
        "SELECT json_build_object('object', format('heap table \"%s.%s.%s\", block %s, offset %s', current_database(),",
        "n.nspname, c.relname, v.blkno, v.offnum), 'message', v.msg) FROM pg_class c",
        'JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL verify_heapam(c.oid) v',
        "WHERE c.relkind IN ('r', 'm', 't') AND c.relpersistence <> 't'",
      ].join(' '),
    )
  }
  return statements
}

/** What psql prints for {@link pgAmcheckFallbackSql}: WARNING lines on stderr, heap rows on stdout. */
export function parsePgAmcheckFallback(stdout: string, stderr: string): ParseResult<IntegrityReport> {
  const findings: IntegrityFinding[] = []
  for (const line of splitLines(stderr)) {
    const m = /^(?:psql:[^W]*)?WARNING:\s+ansai-amcheck: (btree index "[^"]*"): (.*)$/.exec(line.trim())
    if (m) findings.push({ object: m[1]!, message: m[2]! })
  }
  const heap = parseJsonLines(stdout, 'psql')
  if (!heap.ok) return heap
  for (const row of heap.value) {
    findings.push({ object: jsonString(row, 'object') ?? 'heap table', message: jsonString(row, 'message') ?? '' })
  }
  return parsed(reportOf(findings))
}

/** How many indexes the fallback checked, from its NOTICE (evidence). */
export function fallbackIndexesChecked(stderr: string): number | undefined {
  const m = /ansai-amcheck: (\d+) btree indexes checked/.exec(stderr)
  return m ? Number(m[1]) : undefined
}
