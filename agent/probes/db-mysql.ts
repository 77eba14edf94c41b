import type { ObservationOf } from '../../shared/contracts/index.ts'
import {
  DB_PROBE,
  intField,
  type KeyedRows,
  missingFigure,
  parseKeyedRows,
  ratio,
  textField,
  unescapeBatchField,
} from './db-rows.ts'
import { failed, type ParseResult, parsed, quote, splitLines } from './parse-result.ts'

/**
 * MariaDB and MySQL: the fixed SQL the probe and db-maintenance send through `mariadb --batch --skip-column-names`
 * (tab-separated rows, one per figure, the figure's name first), and pure parsers of what the clients print. The
 * database is the connection's (`--database=`), named in SQL only as `DATABASE()`. Sessions and lock waits come
 * from information_schema (PROCESSLIST, INNODB_TRX): the user needs the PROCESS privilege to see other sessions.
 */

export type DatabaseObservation = ObservationOf<'database'>
export type MysqlEngine = 'mariadb' | 'mysql'

/** Sessions of this database sleeping (idle) with an open InnoDB transaction. */
const IDLE_IN_TRANSACTION_FROM =
  'FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id ' +
  "WHERE p.COMMAND = 'Sleep' AND p.DB = DATABASE() AND p.ID <> CONNECTION_ID()"

/**
 * The probe's statements. Server-wide: connections, max_connections, lock waits (InnoDB row locks and metadata
 * locks), whether replication runs here. This database: sessions idle in a transaction, the tables' size and free
 * space (what OPTIMIZE TABLE gives back).
 */
export function mysqlProbeSql(engine: MysqlEngine): string {
  return [
    "SELECT 'version', VERSION()",
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Slaves_running')",
    "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('max_connections')",
    ...(engine === 'mysql'
      ? [
          "SELECT 'replicas_running', COUNT(*) FROM performance_schema.replication_applier_status WHERE SERVICE_STATE = 'ON'",
        ]
      : []),
    `SELECT 'idle_in_transaction', COUNT(*), COALESCE(MAX(p.TIME), 0) ${IDLE_IN_TRANSACTION_FROM}`,
    "SELECT 'innodb_lock_wait_seconds', COALESCE(MAX(TIMESTAMPDIFF(SECOND, trx_wait_started, NOW())), 0) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'",
    "SELECT 'metadata_lock_wait_seconds', COALESCE(MAX(TIME), 0) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for%lock'",
    "SELECT 'table_bytes', COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0), COALESCE(SUM(DATA_FREE), 0), COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'",
  ]
    .map((s) => `${s};`)
    .join('\n')
}

export interface MysqlProbeFigures {
  version: string
  connections: number
  maxConnections: number
  idleInTransaction: number
  longestIdleInTransactionSeconds: number
  longestLockWaitSeconds: number
  /** DATA_LENGTH + INDEX_LENGTH of this database's tables, as the server reports them. */
  tableBytes: number
  /** DATA_FREE: space allocated to the tables and not used (OPTIMIZE TABLE returns it). */
  freeBytes: number
  tables: number
  /** Replication applier threads running here (a replica); undefined when the server does not say. */
  replicasRunning?: number | undefined
}

const REQUIRED = [
  'version',
  'Threads_connected',
  'max_connections',
  'idle_in_transaction',
  'innodb_lock_wait_seconds',
  'metadata_lock_wait_seconds',
  'table_bytes',
] as const

/** Keys of SHOW GLOBAL STATUS/VARIABLES differ in case between versions: normalise the ones read here. */
const normaliseKeys = (rows: KeyedRows): KeyedRows => {
  const out: KeyedRows = new Map()
  for (const [k, v] of rows) {
    const lower = k.toLowerCase()
    const key = lower === 'threads_connected' ? 'Threads_connected' : lower === 'slaves_running' ? 'Slaves_running' : k
    out.set(key, v)
  }
  return out
}

/** What the client prints for {@link mysqlProbeSql} → figures. */
export function parseMysqlProbe(text: string): ParseResult<MysqlProbeFigures> {
  const parsedRows = parseKeyedRows(text, '\t', 'mariadb')
  if (!parsedRows.ok) return parsedRows
  const rows = normaliseKeys(parsedRows.value)
  const missing = missingFigure(rows, REQUIRED)
  if (missing) return failed(DB_PROBE, `the client printed no ${missing}`)
  const int = (key: string, index = 0): number | string =>
    intField(rows, key, index) ?? `bad ${key} ${quote(textField(rows, key, index) ?? '')}`
  const values = {
    connections: int('Threads_connected'),
    maxConnections: int('max_connections'),
    idle: int('idle_in_transaction'),
    idleSeconds: int('idle_in_transaction', 1),
    innodbWait: int('innodb_lock_wait_seconds'),
    metadataWait: int('metadata_lock_wait_seconds'),
    tableBytes: int('table_bytes'),
    freeBytes: int('table_bytes', 1),
    tables: int('table_bytes', 2),
  }
  for (const v of Object.values(values)) if (typeof v === 'string') return failed(DB_PROBE, v)
  const n = values as Record<keyof typeof values, number>
  const slaves = intField(rows, 'Slaves_running')
  const replicas = intField(rows, 'replicas_running')
  return parsed({
    version: unescapeBatchField(textField(rows, 'version') ?? ''),
    connections: n.connections,
    maxConnections: n.maxConnections,
    idleInTransaction: n.idle,
    longestIdleInTransactionSeconds: n.idleSeconds,
    longestLockWaitSeconds: Math.max(n.innodbWait, n.metadataWait),
    tableBytes: n.tableBytes,
    freeBytes: n.freeBytes,
    tables: n.tables,
    replicasRunning: replicas ?? slaves,
  })
}

/**
 * Figures → observation. `bloatRatio` is the tables' free space (DATA_FREE) over their whole allocation, what
 * OPTIMIZE TABLE reclaims; dead tuples and integrity are not something MariaDB/MySQL tell cheaply: left out.
 * `replicationLagSeconds` comes from the replica status (see {@link parseReplicaStatus}), when there is one.
 */
export function mysqlObservation(
  engine: MysqlEngine,
  name: string,
  f: MysqlProbeFigures,
  replicationLagSeconds?: number,
): DatabaseObservation {
  const obs: DatabaseObservation = {
    kind: 'database',
    engine,
    name,
    reachable: true,
    connections: f.connections,
    maxConnections: f.maxConnections,
    idleInTransaction: f.idleInTransaction,
    longestLockWaitSeconds: f.longestLockWaitSeconds,
    bloatRatio: ratio(f.freeBytes, f.tableBytes),
  }
  if (replicationLagSeconds !== undefined) obs.replicationLagSeconds = replicationLagSeconds
  return obs
}

/** The replica status statement: MySQL renamed it in 8.0.22 (and dropped the old name in 8.4); MariaDB has both. */
export const replicaStatusSql = (engine: MysqlEngine, legacy = false): string =>
  engine === 'mysql' && !legacy ? 'SHOW REPLICA STATUS' : 'SHOW SLAVE STATUS'

/**
 * `SHOW SLAVE STATUS` / `SHOW REPLICA STATUS` printed with `--batch` and column names: a header row, then one row
 * per replication channel. The lag is the largest `Seconds_Behind_Master` (`_Source` in MySQL 8); a channel whose
 * SQL thread is stopped says NULL, which leaves the lag unknown. No row: not a replica (undefined).
 */
export function parseReplicaStatus(text: string): ParseResult<number | undefined> {
  const lines = splitLines(text).filter((l) => l.trim() !== '')
  if (lines.length === 0) return parsed(undefined)
  const header = lines[0]!.split('\t')
  const column = header.findIndex((h) => h === 'Seconds_Behind_Master' || h === 'Seconds_Behind_Source')
  if (column < 0) return failed(DB_PROBE, 'replica status without Seconds_Behind_Master or Seconds_Behind_Source')
  let lag: number | undefined
  for (const line of lines.slice(1)) {
    const value = line.split('\t')[column]
    if (value === undefined || value === 'NULL' || !/^\d+$/.test(value)) return parsed(undefined)
    lag = Math.max(lag ?? 0, Number(value))
  }
  return parsed(lag)
}

// ---------------------------------------------------------------------------------------------------------------
// db-maintenance

/** Figures db-maintenance reads before and after an operation. */
export const MYSQL_MAINTENANCE_SQL = [
  "SELECT 'table_bytes', COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0), COALESCE(SUM(DATA_FREE), 0), COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'",
  `SELECT 'idle_in_transaction', COUNT(*), COALESCE(MAX(p.TIME), 0) ${IDLE_IN_TRANSACTION_FROM}`,
]
  .map((s) => `${s};`)
  .join('\n')

export interface MysqlMaintenanceFigures {
  tableBytes: number
  freeBytes: number
  tables: number
  idleInTransaction: number
}

export function parseMysqlMaintenance(text: string): ParseResult<MysqlMaintenanceFigures> {
  const rows = parseKeyedRows(text, '\t', 'mariadb')
  if (!rows.ok) return rows
  const get = (key: string, index: number): number | undefined => intField(rows.value, key, index)
  const figures = {
    tableBytes: get('table_bytes', 0),
    freeBytes: get('table_bytes', 1),
    tables: get('table_bytes', 2),
    idleInTransaction: get('idle_in_transaction', 0),
  }
  for (const [k, v] of Object.entries(figures))
    if (v === undefined) return failed(DB_PROBE, `the client printed no ${k}`)
  return parsed(figures as MysqlMaintenanceFigures)
}

/** Whole seconds as SQL text: a non-negative safe integer. */
const wholeSeconds = (seconds: number): string => {
  if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`not a duration in seconds: ${seconds}`)
  return String(Math.floor(seconds))
}

/**
 * Sessions of this database sleeping in an open transaction for more than `seconds` (PROCESSLIST.TIME counts whole
 * seconds since the session's last command), never this one: `id \t seconds \t user` rows.
 */
export const mysqlIdleInTransactionSql = (seconds: number): string =>
  `SELECT p.ID, p.TIME, p.USER ${IDLE_IN_TRANSACTION_FROM} AND p.TIME > ${wholeSeconds(seconds)} ORDER BY p.TIME DESC, p.ID;`

export interface MysqlSession {
  id: number
  idleSeconds: number
  user: string
}

/** The rows of {@link mysqlIdleInTransactionSql}. */
export function parseMysqlSessions(text: string): ParseResult<MysqlSession[]> {
  const sessions: MysqlSession[] = []
  for (const [i, line] of splitLines(text).entries()) {
    if (line.trim() === '') continue
    const [id, time, ...user] = line.split('\t')
    if (!id || !/^\d+$/.test(id) || !time || !/^\d+$/.test(time)) {
      return failed(DB_PROBE, `session row ${i + 1} is not id, time, user: ${quote(line)}`)
    }
    sessions.push({ id: Number(id), idleSeconds: Number(time), user: unescapeBatchField(user.join('\t')) })
  }
  return parsed(sessions)
}

/** `KILL CONNECTION <id>;` for each (ids are the integers the server listed). */
export function mysqlKillSql(ids: readonly number[]): string {
  for (const id of ids) if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`not a connection id: ${id}`)
  return ids.map((id) => `KILL CONNECTION ${id};`).join('\n')
}

/** Which of these connections still exist: one id per row. */
export function mysqlAliveSql(ids: readonly number[]): string {
  for (const id of ids) if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`not a connection id: ${id}`)
  return `SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (${ids.join(',')}) ORDER BY ID;`
}

export interface TableCheck {
  /** `database.table`. */
  table: string
  /** The table's last status line (`OK`, `Corrupt`, `Table is already up to date`, ...). */
  status: string
  ok: boolean
  /** note/warning/error lines, in order. */
  messages: { level: string; text: string }[]
}

/**
 * `mysqlcheck --analyze|--optimize|--check <db>` output: per table either one line, the name padded to 50 columns
 * and its status (`shop.items <spaces> OK`), or a line with the name followed by `note     : ...`,
 * `warning  : ...`, `error    : ...` and `status   : OK` lines. mysqlcheck exits 0 even when a table is corrupt: the
 * verdict is in these lines. A table is not ok when an `error` line names it, or when its status is other than
 * `OK` or `Table is already up to date`.
 */
export function parseMysqlCheck(text: string): ParseResult<TableCheck[]> {
  const tables: TableCheck[] = []
  let current: TableCheck | undefined
  for (const [i, raw] of splitLines(text).entries()) {
    const line = raw.trimEnd()
    if (line.trim() === '') continue
    const message = /^(note|warning|error|status|info)\s*:\s?(.*)$/i.exec(line)
    if (message) {
      if (!current) return failed(DB_PROBE, `mysqlcheck line ${i + 1} names no table: ${quote(line)}`)
      const level = message[1]!.toLowerCase()
      const text = message[2]!.trim()
      if (level === 'status') current.status = text
      else current.messages.push({ level, text })
      continue
    }
    // `%-50s %s`: the name padded to 50 columns, then the status; a longer name has one space before it
    const padded = /^(.+?)\s{2,}(\S.*)$/.exec(line) ?? /^(.+?)\s(OK|Table is already up to date)$/.exec(line)
    const table = padded ? padded[1]! : line.trim()
    if (!table.includes('.')) return failed(DB_PROBE, `mysqlcheck line ${i + 1} is not a table: ${quote(line)}`)
    current = { table, status: padded ? padded[2]!.trim() : '', ok: true, messages: [] }
    tables.push(current)
  }
  for (const t of tables) {
    const errors = t.messages.some((m) => m.level === 'error')
    t.ok = !errors && (t.status === '' || OK_STATUS.test(t.status))
  }
  return parsed(tables)
}

const OK_STATUS = /^(OK|Table is already up to date)$/i
