import type { ObservationOf } from '../../shared/contracts/index.ts'
import { DB_PROBE, intField, parseKeyedRows, ratio, textField } from './db-rows.ts'
import { failed, type ParseResult, parsed, quote, splitLines } from './parse-result.ts'

/**
 * SQLite: the fixed SQL the probe and db-maintenance give `sqlite3`, and pure parsers of what it prints. The probe
 * opens the file read-only (`-readonly`: it is never created, never written).
 */

export type DatabaseObservation = ObservationOf<'database'>

/** Pages, free pages (what VACUUM gives back), page size, journal mode. */
export const SQLITE_STATS_SQL = [
  "SELECT 'page_count', page_count FROM pragma_page_count()",
  "SELECT 'freelist_count', freelist_count FROM pragma_freelist_count()",
  "SELECT 'page_size', page_size FROM pragma_page_size()",
  "SELECT 'journal_mode', journal_mode FROM pragma_journal_mode()",
  "SELECT 'tables', count(*) FROM sqlite_schema WHERE type = 'table'",
  "SELECT 'indexes', count(*) FROM sqlite_schema WHERE type = 'index'",
].join(' UNION ALL ')

export interface SqliteFigures {
  pageCount: number
  freelistCount: number
  pageSize: number
  journalMode?: string | undefined
  tables: number
  indexes: number
}

/** What sqlite3 prints for {@link SQLITE_STATS_SQL} → figures. */
export function parseSqliteStats(text: string): ParseResult<SqliteFigures> {
  const rows = parseKeyedRows(text, '|', 'sqlite3', 2)
  if (!rows.ok) return rows
  const figures: Partial<SqliteFigures> = {}
  for (const [key, field] of [
    ['page_count', 'pageCount'],
    ['freelist_count', 'freelistCount'],
    ['page_size', 'pageSize'],
    ['tables', 'tables'],
    ['indexes', 'indexes'],
  ] as const) {
    const n = intField(rows.value, key)
    if (n === undefined)
      return failed(DB_PROBE, `sqlite3 printed no ${key} (${quote(textField(rows.value, key) ?? '')})`)
    figures[field] = n
  }
  figures.journalMode = textField(rows.value, 'journal_mode')
  return parsed(figures as SqliteFigures)
}

/**
 * Figures → observation: `bloatRatio` is the share of free pages (freelist) in the file, what VACUUM gives back.
 * Connections, sessions, lag and tuples are not SQLite notions: left out; so is integrity (a full integrity check
 * reads the whole file: db-maintenance's integrity-check does it on demand).
 */
export function sqliteObservation(name: string, f: SqliteFigures): DatabaseObservation {
  return {
    kind: 'database',
    engine: 'sqlite',
    name,
    reachable: true,
    bloatRatio: f.pageCount > 0 ? ratio(f.freelistCount, f.pageCount - f.freelistCount) : 0,
  }
}

/** The maintenance statement of an operation (integrity-check is {@link SQLITE_INTEGRITY_SQL}). */
export function sqliteMaintenanceStatement(operation: 'vacuum' | 'analyze' | 'reindex' | 'optimize'): string {
  switch (operation) {
    case 'vacuum':
      return 'VACUUM'
    case 'analyze':
      return 'ANALYZE'
    case 'reindex':
      return 'REINDEX'
    case 'optimize':
      return 'PRAGMA optimize'
  }
}

/** At most 100 problems (SQLite's default), `ok` when there are none. */
export const SQLITE_INTEGRITY_SQL = 'PRAGMA integrity_check'
/** The cheaper check (no index content cross-check) db-maintenance runs after REINDEX. */
export const SQLITE_QUICK_CHECK_SQL = 'PRAGMA quick_check'

export interface SqliteIntegrity {
  integrity: 'ok' | 'failed' | 'unknown'
  /** The problems SQLite names (at most 100), or why the check could not run. */
  problems: string[]
}

/** SQLite result codes (`(26)`) and messages that mean the file itself is damaged, not that it cannot be opened. */
const CORRUPT =
  /file is not a database|database disk image is malformed|malformed database schema|\((11|26)\)\s*$|SQLITE_(CORRUPT|NOTADB)/i

/**
 * The output of `PRAGMA integrity_check` (or quick_check) and the exit status of sqlite3: `ok` alone means
 * intact; any other line is a problem. A file SQLite refuses as damaged (not a database, malformed) fails too;
 * a file it cannot open at all (missing, permission denied, locked) is `unknown`, with the reason.
 */
export function parseSqliteIntegrity(stdout: string, stderr: string, exitCode: number | null): SqliteIntegrity {
  const lines = splitLines(stdout)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && l !== '*** in database main ***')
  const errors = splitLines(stderr)
    .map((l) => l.trim().replace(/^(Error|Parse error):\s*/, ''))
    .filter((l) => l.length > 0)
  if (exitCode === 0 && lines.length === 1 && lines[0] === 'ok') return { integrity: 'ok', problems: [] }
  if (exitCode === 0 && lines.length > 0) return { integrity: 'failed', problems: lines.slice(0, 100) }
  if (errors.some((e) => CORRUPT.test(e))) return { integrity: 'failed', problems: [...lines, ...errors].slice(0, 100) }
  return {
    integrity: 'unknown',
    problems: errors.length > 0 ? errors.slice(0, 5) : [`sqlite3 exited ${exitCode ?? 'by a signal'} and said nothing`],
  }
}

/** SQLite's file header: the first 16 bytes of every database file. */
export const SQLITE_HEADER = 'SQLite format 3\u0000'
