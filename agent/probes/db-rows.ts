import { failed, type ParseResult, parsed, quote, splitLines } from './parse-result.ts'

/**
 * Pure helpers shared by the database parsers (db-postgresql.ts, db-mysql.ts, db-sqlite.ts): the probes' queries
 * print one `key<separator>value...` row per figure, so each parser reads a map of rows and picks typed figures out
 * of it; absent or NULL figures stay undefined (never invented).
 */

export const DB_PROBE = 'database'

/** The rows of a key/value output: the key, then the remaining fields. */
export type KeyedRows = Map<string, string[]>

/**
 * `key|value` (psql -A, sqlite3 -list) or `key\tvalue\tvalue2` (mariadb --batch) lines → map. Blank lines are
 * skipped; a key seen twice, or a line without a separator, fails (the text is not what the query prints).
 * `fields` caps the split (the last field keeps any further separators).
 */
export function parseKeyedRows(text: string, separator: string, what: string, fields = 8): ParseResult<KeyedRows> {
  if (typeof text !== 'string') return failed(DB_PROBE, `${what}: output is not text`)
  const rows: KeyedRows = new Map()
  for (const [i, raw] of splitLines(text).entries()) {
    const line = raw.trimEnd()
    if (line.trim() === '') continue
    const parts = line.split(separator)
    if (parts.length < 2) return failed(DB_PROBE, `${what}: line ${i + 1} is not key${separator}value: ${quote(line)}`)
    const key = parts[0]!
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return failed(DB_PROBE, `${what}: line ${i + 1}: bad key ${quote(key)}`)
    if (rows.has(key)) return failed(DB_PROBE, `${what}: ${key} printed twice`)
    const values = parts.slice(1, fields - 1)
    if (parts.length > fields - 1) values.push(parts.slice(fields - 1).join(separator))
    rows.set(key, values)
  }
  if (rows.size === 0) return failed(DB_PROBE, `${what}: printed nothing`)
  return parsed(rows)
}

const isNull = (v: string | undefined): boolean => v === undefined || v === '' || v === 'NULL' || v === '\\N'

/** A non-negative integer figure (`12`, `12.0`), or undefined when absent, NULL or not such a number. */
export function intField(rows: KeyedRows, key: string, index = 0): number | undefined {
  const v = rows.get(key)?.[index]?.trim()
  if (isNull(v) || !/^\d+(\.0+)?$/.test(v!)) return undefined
  const n = Number(v)
  return Number.isSafeInteger(n) ? n : undefined
}

/** A non-negative decimal figure (`12.345`), or undefined. Negative values (clock skew) read as 0. */
export function numberField(rows: KeyedRows, key: string, index = 0): number | undefined {
  const v = rows.get(key)?.[index]?.trim()
  if (isNull(v) || !/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(v!)) return undefined
  const n = Number(v)
  if (!Number.isFinite(n)) return undefined
  return Math.max(0, Math.round(n * 1000) / 1000)
}

/** A text figure, or undefined when absent or NULL. */
export function textField(rows: KeyedRows, key: string, index = 0): string | undefined {
  const v = rows.get(key)?.[index]
  return isNull(v) ? undefined : v
}

/** PostgreSQL's `true`/`false` (or `on`/`off`), or undefined. */
export function boolField(rows: KeyedRows, key: string, index = 0): boolean | undefined {
  const v = textField(rows, key, index)?.toLowerCase()
  if (v === 'true' || v === 't' || v === 'on') return true
  if (v === 'false' || v === 'f' || v === 'off') return false
  return undefined
}

/** The figures a parser requires: the first one missing, or undefined when all are there. */
export function missingFigure(rows: KeyedRows, keys: readonly string[]): string | undefined {
  return keys.find((k) => !rows.has(k))
}

/** Undoes mariadb/mysql `--batch` escaping of a field: `\t`, `\n`, `\r`, `\0`, `\\`. */
export function unescapeBatchField(field: string): string {
  return field.replace(/\\(.)/g, (_, c: string) =>
    c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c === '0' ? '\0' : c,
  )
}

/** Lines of JSON objects (psql printing `json_build_object(...)` rows) → objects; a bad line fails. */
export function parseJsonLines(text: string, what: string): ParseResult<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = []
  for (const [i, line] of splitLines(text).entries()) {
    if (line.trim() === '') continue
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch {
      return failed(DB_PROBE, `${what}: line ${i + 1} is not JSON: ${quote(line)}`)
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return failed(DB_PROBE, `${what}: line ${i + 1} is not a JSON object`)
    }
    out.push(value as Record<string, unknown>)
  }
  return parsed(out)
}

/** A field of a JSON row as a non-negative number, or undefined. */
export const jsonNumber = (row: Record<string, unknown>, key: string): number | undefined => {
  const v = row[key]
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined
}

/** A field of a JSON row as a string (null → undefined). */
export const jsonString = (row: Record<string, unknown>, key: string): string | undefined => {
  const v = row[key]
  return typeof v === 'string' ? v : undefined
}

/** `a / (a + b)`, 0 when both are 0, rounded to 4 decimals, within 0..1. */
export function ratio(part: number, rest: number): number {
  const total = part + rest
  if (!(total > 0)) return 0
  return Math.min(1, Math.max(0, Math.round((part / total) * 10_000) / 10_000))
}
