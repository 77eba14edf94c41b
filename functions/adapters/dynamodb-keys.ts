/**
 * Keys of the one ANSAI table (single-table design; the layout table is in `dynamodb-store.ts`): key builders,
 * sortable encodings of times and sequence numbers, day buckets and index shards, and the item size guard.
 */
import { StoreError } from '../../shared/ports/store.ts'

/**
 * Shards of every time-bucketed gsi1 partition (`…#<day>#<shard>`) and of the open-incident and pending-outbox
 * partitions. Readers query every shard and merge. Fixed: changing it hides what was written under the old count.
 */
export const BUCKET_SHARDS = 8

export const DAY_MS = 86_400_000

/** DynamoDB's item size limit (names and values, the whole item, also for the copy in gsi1). */
export const ITEM_LIMIT_BYTES = 400 * 1024

/** Families of time-bucketed gsi1 partitions; the calendar item of each lists its days that hold items. */
export type Family = 'incidents-resolved' | 'decisions' | 'results' | 'audit' | 'dedup' | 'outbox-done'

const TIME_OFFSET = 1e15

/**
 * Epoch ms as a fixed-width string that sorts like the number (negative times too): `ms + 10^15`, 16 digits.
 * Times beyond ±10^15 ms (the year 33,658) cannot be stored.
 */
export const encodeTime = (ms: number, what = 'time'): string => {
  if (!Number.isSafeInteger(ms) || Math.abs(ms) >= TIME_OFFSET) {
    throw new StoreError(`${what}: ${String(ms)} ms is outside the storable range`, { code: 'invalid' })
  }
  return String(ms + TIME_OFFSET).padStart(16, '0')
}

/** A sequence number (≥ 0) as a fixed-width sortable string. */
export const encodeSeq = (seq: number): string => String(seq).padStart(16, '0')

/** The UTC day number (days since 1970-01-01) of an epoch-ms time. */
export const dayOf = (ms: number): number => Math.floor(ms / DAY_MS)

/** The day as `yyyy-mm-dd` (UTC), as it appears in keys. */
export const dayName = (day: number): string => {
  const iso = new Date(day * DAY_MS).toISOString()
  return iso.slice(0, iso.indexOf('T'))
}

/** FNV-1a (32 bits) of a string: a stable, well-spread shard of an id. */
const fnv1a = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h >>> 0
}

export const shardOfId = (id: string): number => fnv1a(id) % BUCKET_SHARDS

/** A key of the table. */
export interface Key {
  pk: string
  sk: string
  [name: string]: unknown
}

export const keys = {
  hostState: (host: string): Key => ({ pk: `HOST#${host}`, sk: 'STATE' }),
  hostIndex: (host: string): Key => ({ pk: `HOST#${host}`, sk: 'INDEX' }),
  hostIncident: (host: string, incidentId: string): Key => ({ pk: `HOST#${host}`, sk: `INCIDENT#${incidentId}` }),
  decision: (key: string): Key => ({ pk: `ACTION#${key}`, sk: 'DECISION' }),
  result: (key: string): Key => ({ pk: `ACTION#${key}`, sk: 'RESULT' }),
  claim: (key: string): Key => ({ pk: `ACTION#${key}`, sk: 'CLAIM' }),
  command: (commandId: string): Key => ({ pk: `CMD#${commandId}`, sk: 'CMD' }),
  incident: (id: string): Key => ({ pk: `INCIDENT#${id}`, sk: 'INCIDENT' }),
  audit: (host: string, atMs: number, seq: number): Key => ({
    pk: `AUDIT#${host}#${dayName(dayOf(atMs))}`,
    sk: `${encodeTime(atMs)}#${encodeSeq(seq)}`,
  }),
  auditPartition: (host: string, day: number): string => `AUDIT#${host}#${dayName(day)}`,
  auditId: (id: string): Key => ({ pk: `AUDITID#${id}`, sk: 'AUDITID' }),
  dedup: (id: string): Key => ({ pk: `DEDUP#${id}`, sk: 'DEDUP' }),
  outbox: (id: string): Key => ({ pk: `OUTBOX#${id}`, sk: 'OUTBOX' }),
  calendar: (family: Family): Key => ({ pk: 'CALENDAR', sk: family }),
  counter: (name: string): Key => ({ pk: 'COUNTER', sk: name }),
}

/** gsi1 partitions. */
export const index = {
  shard: (shard: number): string => `SHARD#${shard}`,
  openIncidents: (shard: number): string => `INCIDENTS-OPEN#${shard}`,
  /** The gsi1 partition of a time-bucketed family on a day, in one shard. */
  bucket: (family: Family, day: number, shard: number): string => `${BUCKET_PREFIX[family]}#${dayName(day)}#${shard}`,
  pendingOutbox: (shard: number): string => `OUTBOX-PENDING#${shard}`,
}

const BUCKET_PREFIX: Record<Family, string> = {
  'incidents-resolved': 'INCIDENTS-RESOLVED',
  decisions: 'DECISIONS',
  results: 'RESULTS',
  audit: 'AUDIT-LOG',
  dedup: 'DEDUP-LOG',
  'outbox-done': 'OUTBOX-DONE',
}

/** A gsi1 sort key of a time-bucketed item: the time, then what makes it unique. */
export const timeSortKey = (ms: number, tail: string): string => `${encodeTime(ms)}#${tail}`

/** Greater than every `timeSortKey(ms, …)`: the upper bound of a range that ends at `ms` inclusive. */
export const timeSortKeyEnd = (ms: number): string => `${encodeTime(ms)}$`

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8')

/**
 * The size DynamoDB counts for an item (attribute names plus values), rounded up: numbers count as their widest
 * encoding (21 bytes), maps and lists 3 bytes plus 1 per element.
 */
export const itemSize = (item: Record<string, unknown>): number => {
  const valueSize = (v: unknown): number => {
    if (typeof v === 'string') return utf8(v)
    if (typeof v === 'number' || typeof v === 'bigint') return 21
    if (typeof v === 'boolean' || v === null || v === undefined) return 1
    if (v instanceof Uint8Array) return v.byteLength
    if (v instanceof Set) return [...v].reduce((n: number, x) => n + valueSize(x), 0)
    if (Array.isArray(v)) return 3 + v.reduce((n: number, x) => n + 1 + valueSize(x), 0)
    if (typeof v === 'object') {
      return 3 + Object.entries(v as object).reduce((n, [k, x]) => n + 1 + utf8(k) + valueSize(x), 0)
    }
    return 0
  }
  return Object.entries(item).reduce((n, [k, v]) => n + utf8(k) + valueSize(v), 0)
}

/** Refuses an item DynamoDB would refuse for its size, with a message that says what and how big. */
export const checkItemSize = (item: Record<string, unknown>, what: string): void => {
  const size = itemSize(item)
  if (size > ITEM_LIMIT_BYTES) {
    throw new StoreError(
      `${what}: ${size} bytes as a DynamoDB item, over the 400 KB (${ITEM_LIMIT_BYTES} bytes) item limit; nothing was stored`,
      { code: 'invalid' },
    )
  }
}
