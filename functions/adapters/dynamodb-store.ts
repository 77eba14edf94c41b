/**
 * The FleetStore (and so the StateStore) of the fleet shape on the ONE DynamoDB table (`TABLE` in
 * functions/platform/names.ts: `pk`/`sk`, TTL attribute `expiresAt`, index `gsi1` on `gsi1pk`/`gsi1sk` projecting
 * ALL attributes). Single-table design; every item carries `type`. What JSON carries is stored as JSON text in `data`
 * (an exact round trip: no 32-level nesting limit, no number surprises), beside the few attributes that conditions,
 * indexes and filters need.
 *
 * | item (`type`)       | pk                   | sk                    | gsi1pk                         | gsi1sk                | TTL (`expiresAt`, s)      |
 * |---------------------|----------------------|-----------------------|--------------------------------|-----------------------|---------------------------|
 * | host-state (`st`)   | `HOST#<host>`        | `STATE`               | –                              | –                     | –                         |
 * | host (index)        | `HOST#<host>`        | `INDEX`               | `SHARD#<n>`                    | `HOST#<host>`         | –                         |
 * | host-incident (ref) | `HOST#<host>`        | `INCIDENT#<id>`       | –                              | –                     | – (prune)                 |
 * | decision            | `ACTION#<key>`       | `DECISION`            | `DECISIONS#<day>#<s>`          | `<t(at)>#<key>`       | retention.actionsMs       |
 * | result              | `ACTION#<key>`       | `RESULT`              | `RESULTS#<day>#<s>`            | `<t(finished)>#<key>` | retention.actionsMs       |
 * | claim               | `ACTION#<key>`       | `CLAIM`               | –                              | –                     | lease end + claimsMs      |
 * | command             | `CMD#<commandId>`    | `CMD`                 | –                              | –                     | at + claimsMs             |
 * | command tokens      | `RATE#commands#<minute>` | `RATE`            | –                              | –                     | at + 1 d                  |
 * | incident (open)     | `INCIDENT#<id>`      | `INCIDENT`            | `INCIDENTS-OPEN#<s>`           | `<t(opened)>#<id>`    | –                         |
 * | incident (resolved) | `INCIDENT#<id>`      | `INCIDENT`            | `INCIDENTS-RESOLVED#<day>#<s>` | `<t(index)>#<id>`     | – (prune)                 |
 * | audit               | `AUDIT#<host>#<day>` | `<t(at)>#<seq>`       | `AUDIT-LOG#<day>#<s(host)>`    | `<t(at)>#<seq>`       | at + auditMs (90 d)       |
 * | audit-id            | `AUDITID#<id>`       | `AUDITID`             | –                              | –                     | at + auditMs              |
 * | dedup               | `DEDUP#<messageId>`  | `DEDUP`               | `DEDUP-LOG#<day>#<s>`          | `<t(at)>#<id>`        | at + dedupMs (14 d)       |
 * | outbox (pending)    | `OUTBOX#<messageId>` | `OUTBOX`              | `OUTBOX-PENDING#<s>`           | `<seq>`               | –                         |
 * | outbox (sent, dead) | `OUTBOX#<messageId>` | `OUTBOX`              | `OUTBOX-DONE#<day>#<s>`        | `<t(done)>#<id>`      | done + notificationsMs    |
 * | calendar            | `CALENDAR`           | `<family>`            | –                              | –                     | –                         |
 * | counter             | `COUNTER`            | `audit-seq` `outbox-seq` | –                           | –                     | –                         |
 *
 * `<t(x)>`: epoch ms + 10^15 as 16 digits (sorts like the number); `<seq>`: 16 digits; `<day>`: the UTC `yyyy-mm-dd`
 * of the time in the sort key; `<s>`: 0…7 (`BUCKET_SHARDS`), a hash of the id (of the host for audit); `<n>`: the
 * host's shard of the scheduled round (`FleetHost.shard`). A resolved incident's index time `<t(index)>` is the
 * latest of its openedAt, resolvedAt (else updatedAt) and its attempts' startedAt: nothing the walks below look for
 * (an opening, a resolution, a fix start) comes after it, which keeps them exact. No sample items: no port stores
 * samples yet (trend samples live in the host state).
 *
 * No hot item at 100,000 hosts: a report writes its own host's partition (`HOST#<host>`) and items keyed by its
 * decision, incident or message ids; every shared index partition is split 8 ways by hash (`SHARD#<n>` as many ways
 * as the fleet has shards, 16 by default; keep it ≥ 8 for a large fleet, every report touches its host's entry).
 * Two small shared items remain, written rarely: the `CALENDAR` (a number set of the days each bucketed family has
 * items on; a store instance ADDs a day the first time it writes on it, so about once per Lambda container, family
 * and day) and the `COUNTER`s of audit and outbox order (reserved in blocks of 1,000 per container).
 *
 * Reads. Host state: strongly consistent unless the caller allows an eventually consistent read (`getHostState`
 * with `consistent: false`, `getHostStates` of a round's page): those callers write conditionally afterwards, and
 * re-read strongly before any side effect. Without a clock, "newest first" starts from the calendar: listings walk the days it lists, newest first,
 * query all 8 shards of a day and merge, and stop as soon as nothing older can come first. Base-table reads (`get*`,
 * `getAction`, per-host listings, `seen`, the re-check of pending messages) are strongly consistent; gsi1 reads
 * (global listings, `listHosts`, `summarize`, `prune`) are eventually consistent in DynamoDB (moto is consistent).
 * Per host: incidents through the host's references, audit through its day partitions. Per incident: audit through
 * the incident's host, from the day before it opened (else, for an unknown incident, the whole log).
 *
 * Writes. Host state: a conditional put on `version`. Decisions, audit entries (with their id marks) and outbox
 * messages: TransactWriteItems, all of a batch or nothing for up to 100 items (a larger batch is stored one
 * transaction at a time), each item `attribute_not_exists` (first write wins: a lost condition drops that key and the
 * rest is written again). Results, dedup marks, commands: `attribute_not_exists`; incidents: `updatedMs <= :new`;
 * hosts: `lastSeenMs <= :new`; claims: free, or lease over and no command. Throttling is retried by the SDK
 * ({@link createDynamoDbClient}); transaction conflicts and unprocessed batch items by this adapter.
 *
 * Audit `seq` is unique and increases in append order within one store instance; entries of two instances at the
 * same instant are ordered by their instance's seq block, not by wall-clock append order.
 */
import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants } from 'node:zlib'
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb'
import {
  checkShard,
  claimArgsOf,
  commandArgsOf,
  fleetHostOf,
  tokenMinuteOf,
} from '../../shared/adapters/fleet/memory-fleet-store.ts'
import {
  auditRecordOf,
  checkDecisionHosts,
  checkExpectedVersion,
  checkHostId,
  checkStateHost,
  emptyBySeverity,
  FixTally,
  isOpenIncident,
  isVerifiedAttempt,
  resolvedByFix,
  summaryOf,
  toDuration,
  toJson,
  toLimit,
  toMs,
} from '../../shared/adapters/store/common.ts'
import type { Decision, Incident, NotificationV1, RemediationResultV1 } from '../../shared/contracts/index.ts'
import type { HostState } from '../../shared/engine/state.ts'
import type { FleetHost, FleetStore } from '../../shared/ports/fleet.ts'
import {
  type ActionRecord,
  type AuditEntry,
  type AuditRecord,
  ConflictError,
  type ListAuditQuery,
  type ListIncidentsQuery,
  type OutboxEntry,
  type OutboxStatus,
  type PruneOptions,
  type PruneResult,
  StoreError,
  type StoreSummary,
  type SummaryQuery,
  type VersionedHostState,
} from '../../shared/ports/store.ts'
import { TABLE } from '../platform/names.ts'
import { AWS_CLIENT_DEFAULTS } from './aws-clients.ts'
import {
  cancellationCodes,
  DynamoDbStoreError,
  isConditionalCheckFailed,
  isRetryableCancellation,
  translateDynamoDbError,
} from './dynamodb-errors.ts'
import {
  BUCKET_SHARDS,
  checkItemSize,
  DAY_MS,
  dayOf,
  encodeSeq,
  encodeTime,
  type Family,
  index,
  type Key,
  keys,
  shardOfId,
  timeSortKey,
  timeSortKeyEnd,
} from './dynamodb-keys.ts'
import { decodeState, encodeState } from './state-codec.ts'

export { DynamoDbStoreError } from './dynamodb-errors.ts'

/** How long items live before DynamoDB's TTL deletes them (ms after their time); absent: kept until `prune`. */
export interface DynamoDbRetention {
  /** Audit entries and their idempotency ids. Default 90 days. */
  auditMs?: number
  /** Remembered (sent) message ids. Default 14 days (longer than SQS keeps a message). */
  dedupMs?: number
  /** Dispatch claims and command → decision maps. Default 14 days. */
  claimsMs?: number
  /** Decisions and results (the idempotency record of actions). Default: kept. */
  actionsMs?: number
  /** Sent and dead outbox messages. Default: kept. */
  notificationsMs?: number
}

export const DEFAULT_RETENTION: Readonly<DynamoDbRetention> = {
  auditMs: 90 * DAY_MS,
  dedupMs: 14 * DAY_MS,
  claimsMs: 14 * DAY_MS,
}

export interface DynamoDbFleetStoreOptions {
  /** Injectable: a plain client is wrapped in a document client; see {@link createDynamoDbClient}. */
  client: DynamoDBDocumentClient | DynamoDBClient
  tableName: string
  retention?: DynamoDbRetention
}

/** Attempts of one SDK call (the first and the retries) before a throttled call fails as retryable. */
export const DEFAULT_MAX_ATTEMPTS = 6

/**
 * The DynamoDB client of the functions, with the settings of every fleet client (`AWS_CLIENT_DEFAULTS`: adaptive
 * retries, so the SDK backs off and slows this client down when DynamoDB throttles; connection timeouts) and
 * {@link DEFAULT_MAX_ATTEMPTS} attempts: a throttled write is retried inside the SDK, with the same request (and the
 * same idempotency token for a transaction), before the adapter sees an error. Anything in `config` wins.
 */
export const createDynamoDbClient = (config: DynamoDBClientConfig = {}): DynamoDBClient =>
  new DynamoDBClient({ ...AWS_CLIENT_DEFAULTS, maxAttempts: DEFAULT_MAX_ATTEMPTS, ...config })

type Item = Record<string, unknown>

const str = (item: Item, name: string): string | undefined => {
  const v = item[name]
  return typeof v === 'string' ? v : undefined
}
const num = (item: Item, name: string): number | undefined => {
  const v = item[name]
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined
}
const parse = <T>(item: Item): T => JSON.parse(String(item.data)) as T

/**
 * Host states are the fleet's most written items (a write costs one WRU per KB), so they are stored small: the state
 * in its slim form (state-codec.ts: no repeated keys, trend samples as deltas) compressed with Brotli, in the binary
 * attribute `st`. A typical host's 7 KB of state JSON takes 0.5 to 1.5 KB there. States written before (`dataZ`: Brotli
 * of the plain JSON; `data`: the JSON) still read.
 */
const packState = (state: HostState): { st: Uint8Array } => ({
  st: new Uint8Array(
    brotliCompressSync(encodeState(state), {
      params: {
        [zlibConstants.BROTLI_PARAM_MODE]: zlibConstants.BROTLI_MODE_TEXT,
        [zlibConstants.BROTLI_PARAM_QUALITY]: 6,
      },
    }),
  ),
})
const parseState = (item: Item): HostState =>
  item.st instanceof Uint8Array
    ? decodeState(brotliDecompressSync(item.st).toString('utf8'))
    : item.dataZ instanceof Uint8Array
      ? (JSON.parse(brotliDecompressSync(item.dataZ).toString('utf8')) as HostState)
      : parse<HostState>(item)

const TRANSACTION_ITEMS = 100
const TRANSACTION_BYTES = 4_000_000
const BATCH_GET_KEYS = 100
const BATCH_WRITE_ITEMS = 25
const SEQ_BLOCK = 1_000
const SMALL_RETRIES = 8
const PARALLEL = 8

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
/** Exponential backoff with full jitter, for the retries the SDK cannot do (transaction conflicts, unprocessed items). */
const backoff = (attempt: number): number => Math.random() * Math.min(1_000, 20 * 2 ** attempt)

const mapLimit = async <T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> => {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

const keyOf = (item: Item): Key => ({ pk: String(item.pk), sk: String(item.sk) })
const idOf = (k: Key): string => `${k.pk}\u0000${k.sk}`

/** Consecutive sequence numbers from a shared counter item, reserved in blocks so the counter is written rarely. */
class SeqBlocks {
  private next = 0
  private end = 0
  private chain: Promise<unknown> = Promise.resolve()
  private readonly reserve: (size: number) => Promise<number>

  /** `reserve(size)` adds `size` to the counter and returns its new value (the last number of the block). */
  constructor(reserve: (size: number) => Promise<number>) {
    this.reserve = reserve
  }

  /** The first of `n` consecutive numbers, each higher than any this instance handed out before. */
  take(n: number): Promise<number> {
    const run = async (): Promise<number> => {
      if (this.end - this.next < n) {
        const size = Math.max(n, SEQ_BLOCK)
        const top = await this.reserve(size)
        this.next = top - size + 1
        this.end = top + 1
      }
      const first = this.next
      this.next += n
      return first
    }
    const p = this.chain.then(run)
    this.chain = p.catch(() => undefined)
    return p
  }
}

interface Put {
  item: Item
  /** Condition of the put; absent: unconditional. */
  condition?: string
  names?: Record<string, string>
  values?: Record<string, unknown>
}

const NOT_EXISTS: Pick<Put, 'condition'> = { condition: 'attribute_not_exists(pk)' }

/** Incidents first by newest `openedAt`, then by id. */
const byOpenedDesc = (a: Item, b: Item): number => {
  const d = num(b, 'openedMs')! - num(a, 'openedMs')!
  if (d !== 0) return d
  const x = String(a.id)
  const y = String(b.id)
  return x < y ? -1 : x > y ? 1 : 0
}

/** Audit entries newest first: by time, then by append order. */
const byAuditDesc = (a: Item, b: Item): number => num(b, 'atMs')! - num(a, 'atMs')! || num(b, 'seq')! - num(a, 'seq')!

/** The FleetStore port on the one DynamoDB table (see the module comment for the layout). */
export class DynamoDbFleetStore implements FleetStore {
  readonly tableName: string
  private readonly doc: DynamoDBDocumentClient
  private readonly retention: DynamoDbRetention
  private readonly indexName: string = TABLE.indexes[0].name
  /** Days this instance added to each family's calendar (so it adds each day once). */
  private readonly knownDays = new Map<Family, Set<number>>()
  private readonly auditSeq: SeqBlocks
  private readonly outboxSeq: SeqBlocks

  constructor(options: DynamoDbFleetStoreOptions) {
    if (typeof options.tableName !== 'string' || options.tableName.length === 0) {
      throw new StoreError('DynamoDbFleetStore: a table name is required', { code: 'invalid' })
    }
    this.tableName = options.tableName
    this.doc =
      options.client instanceof DynamoDBDocumentClient
        ? options.client
        : DynamoDBDocumentClient.from(options.client, { marshallOptions: { removeUndefinedValues: true } })
    this.retention = { ...DEFAULT_RETENTION, ...options.retention }
    for (const [name, ms] of Object.entries(this.retention)) toDuration(ms, `retention.${name}`)
    this.auditSeq = new SeqBlocks((n) => this.reserveSeq('audit-seq', n))
    this.outboxSeq = new SeqBlocks((n) => this.reserveSeq('outbox-seq', n))
  }

  // ---------- host state ----------

  async getHostState(hostId: string, options: { consistent?: boolean } = {}): Promise<VersionedHostState | undefined> {
    return this.call('getHostState', async () => {
      const item = await this.get(keys.hostState(hostId), options.consistent ?? true)
      return item && { state: parseState(item), version: num(item, 'version')! }
    })
  }

  async getHostStates(hostIds: readonly string[]): Promise<Map<string, VersionedHostState>> {
    return this.call('getHostStates', async () => {
      const items = await this.batchGet(
        hostIds.map((id) => keys.hostState(checkHostId(id, 'getHostStates'))),
        false,
      )
      return new Map(
        items.map((item) => [String(item.host), { state: parseState(item), version: num(item, 'version')! }]),
      )
    })
  }

  async putHostState(hostId: string, state: HostState, expectedVersion: number | undefined): Promise<number> {
    return this.call('putHostState', async () => {
      checkStateHost(hostId, state)
      checkExpectedVersion(expectedVersion)
      const version = (expectedVersion ?? 0) + 1
      const item: Item = {
        ...keys.hostState(hostId),
        type: 'host-state',
        host: hostId,
        version,
        ...packState(JSON.parse(toJson(state, `host state of ${hostId}`)) as HostState),
      }
      checkItemSize(item, `host state of ${hostId}`)
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.tableName,
            Item: item,
            ...(expectedVersion === undefined
              ? { ConditionExpression: 'attribute_not_exists(pk)' }
              : {
                  ConditionExpression: '#version = :expected',
                  ExpressionAttributeNames: { '#version': 'version' },
                  ExpressionAttributeValues: { ':expected': expectedVersion },
                }),
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        )
        return version
      } catch (err) {
        if (!isConditionalCheckFailed(err)) throw err
        const actual = await this.versionAfterConflict(hostId, err)
        throw new ConflictError(hostId, expectedVersion, actual, { location: this.tableName, cause: err })
      }
    })
  }

  /** The version a lost conditional write found: from the error's old item, else read again. */
  private async versionAfterConflict(hostId: string, err: unknown): Promise<number | undefined> {
    const old = (err as { Item?: Record<string, unknown> }).Item
    if (old && typeof old === 'object') {
      const v = old.version as unknown
      if (typeof v === 'number') return v
      if (v && typeof v === 'object' && 'N' in v) return Number((v as { N: string }).N)
    }
    const item = await this.get(keys.hostState(hostId))
    return item ? num(item, 'version') : undefined
  }

  // ---------- actions ----------

  async recordDecisions(hostId: string, decisions: readonly Decision[], at: string): Promise<string[]> {
    return this.call('recordDecisions', async () => {
      checkHostId(hostId, 'decisions')
      checkDecisionHosts(hostId, decisions)
      const atMs = toMs(at, 'decisions: at')
      const ttl = this.expiresAt(atMs, this.retention.actionsMs)
      // Every item is built (serialized, size-checked) before anything is written: a bad one stores nothing.
      const groups: { id: string; puts: Put[] }[] = []
      const seen = new Set<string>()
      for (const d of decisions) {
        const item: Item = {
          ...keys.decision(d.key),
          type: 'decision',
          key: d.key,
          hostId,
          ...(d.incidentId ? { incidentId: d.incidentId } : {}),
          recordedAt: at,
          recordedMs: atMs,
          data: toJson(d, `decision ${d.key}`),
          gsi1pk: index.bucket('decisions', dayOf(atMs), shardOfId(d.key)),
          gsi1sk: timeSortKey(atMs, d.key),
          ...ttl,
        }
        checkItemSize(item, `decision ${d.key}`)
        if (seen.has(d.key)) continue // the first of the batch wins, as a second delivery would
        seen.add(d.key)
        groups.push({ id: d.key, puts: [{ item, ...NOT_EXISTS }] })
      }
      if (groups.length === 0) return []
      await this.addDays('decisions', [dayOf(atMs)])
      return this.transactGroups(groups)
    })
  }

  async recordResult(result: RemediationResultV1): Promise<boolean> {
    return this.call('recordResult', async () => {
      const data = toJson(result, `result ${result.key}`)
      const finishedMs = toMs(result.finishedAt, `result ${result.key}: finishedAt`)
      const item: Item = {
        ...keys.result(result.key),
        type: 'result',
        key: result.key,
        ...(result.host ? { hostId: result.host } : {}),
        finishedMs,
        data,
        gsi1pk: index.bucket('results', dayOf(finishedMs), shardOfId(result.key)),
        gsi1sk: timeSortKey(finishedMs, result.key),
        ...this.expiresAt(finishedMs, this.retention.actionsMs),
      }
      checkItemSize(item, `result ${result.key}`)
      await this.addDays('results', [dayOf(finishedMs)])
      return this.put({ item, ...NOT_EXISTS })
    })
  }

  async getAction(key: string): Promise<ActionRecord | undefined> {
    return this.call('getAction', async () => {
      const items = await this.queryAll({
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.decision(key).pk },
        ConsistentRead: true,
      })
      const d = items.find((i) => i.sk === 'DECISION')
      const r = items.find((i) => i.sk === 'RESULT')
      if (!d && !r) return undefined
      const decision = d ? parse<Decision>(d) : undefined
      const hostId = (d && str(d, 'hostId')) ?? (r && str(r, 'hostId'))
      return {
        key,
        ...(hostId ? { hostId } : {}),
        ...(decision?.incidentId ? { incidentId: decision.incidentId } : {}),
        ...(d ? { decision, recordedAt: str(d, 'recordedAt')! } : {}),
        ...(r ? { result: parse<RemediationResultV1>(r) } : {}),
      }
    })
  }

  // ---------- incidents ----------

  async upsertIncident(incident: Incident): Promise<boolean> {
    return this.call('upsertIncident', async () => {
      const what = `incident ${incident.id}`
      const data = toJson(incident, what)
      const updatedMs = toMs(incident.updatedAt, `${what}: updatedAt`)
      const openedMs = toMs(incident.openedAt, `${what}: openedAt`)
      const resolvedAt =
        incident.resolvedAt === undefined ? undefined : toMs(incident.resolvedAt, `${what}: resolvedAt`)
      checkHostId(incident.host, what)
      const shard = shardOfId(incident.id)
      const base: Item = {
        ...keys.incident(incident.id),
        type: 'incident',
        id: incident.id,
        host: incident.host,
        status: incident.status,
        severity: incident.severity,
        openedMs,
        updatedMs,
        data,
      }
      let item: Item
      if (isOpenIncident(incident)) {
        item = { ...base, gsi1pk: index.openIncidents(shard), gsi1sk: timeSortKey(openedMs, incident.id) }
      } else {
        const resolvedMs = resolvedAt ?? updatedMs
        // The index time: no later than it, nothing the walks look for (opened, resolved, fix started) happened.
        const starts = incident.attempts.map((a) => Date.parse(a.startedAt)).filter((ms) => !Number.isNaN(ms))
        const indexMs = Math.max(openedMs, resolvedMs, ...starts)
        item = {
          ...base,
          resolvedMs,
          indexMs,
          gsi1pk: index.bucket('incidents-resolved', dayOf(indexMs), shard),
          gsi1sk: timeSortKey(indexMs, incident.id),
        }
        await this.addDays('incidents-resolved', [dayOf(indexMs)])
      }
      checkItemSize(item, what)
      // The host's reference first (idempotent): an incident is never stored without it.
      await this.put({
        item: { ...keys.hostIncident(incident.host, incident.id), type: 'host-incident', id: incident.id },
      })
      return this.put({
        item,
        condition: 'attribute_not_exists(pk) OR #updatedMs <= :updatedMs',
        names: { '#updatedMs': 'updatedMs' },
        values: { ':updatedMs': updatedMs },
      })
    })
  }

  async getIncident(id: string): Promise<Incident | undefined> {
    return this.call('getIncident', async () => {
      const item = await this.get(keys.incident(id))
      return item && parse<Incident>(item)
    })
  }

  async listIncidents(query: ListIncidentsQuery): Promise<Incident[]> {
    return this.call('listIncidents', async () => {
      const limit = toLimit(query.limit)
      const beforeMs = query.before === undefined ? undefined : toMs(query.before, 'listIncidents: before')
      const openOnly = (query.status ?? 'open') === 'open'
      const wanted = (i: Item): boolean =>
        (!openOnly || i.status !== 'resolved') && (beforeMs === undefined || num(i, 'openedMs')! < beforeMs)
      let items: Item[]
      if (query.hostId !== undefined) {
        items = await this.hostIncidentItems(query.hostId)
      } else {
        items = await this.openIncidentItems({ beforeMs, limit })
        if (!openOnly) items = await this.addResolvedIncidents(items, limit, beforeMs)
      }
      return items
        .filter(wanted)
        .sort(byOpenedDesc)
        .slice(0, limit)
        .map((i) => parse<Incident>(i))
    })
  }

  /** Every incident stored under a host (through its references), strongly consistent. */
  private async hostIncidentItems(hostId: string): Promise<Item[]> {
    const refs = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': keys.hostState(hostId).pk, ':prefix': 'INCIDENT#' },
      ConsistentRead: true,
    })
    const items = await this.batchGet(refs.map((r) => keys.incident(String(r.id))))
    return items.filter((i) => i.host === hostId)
  }

  /**
   * Open incidents from every shard of the open index, newest opened first; with a limit, each shard's newest
   * `limit` (and the rest of the boundary's same-time group, which the id order may need).
   */
  private async openIncidentItems(options: { beforeMs?: number | undefined; limit?: number }): Promise<Item[]> {
    const { beforeMs, limit } = options
    const shards = await mapLimit(range(BUCKET_SHARDS), PARALLEL, (s) =>
      this.collectDesc(
        {
          IndexName: this.indexName,
          KeyConditionExpression: beforeMs === undefined ? 'gsi1pk = :p' : 'gsi1pk = :p AND gsi1sk < :before',
          ExpressionAttributeValues: {
            ':p': index.openIncidents(s),
            ...(beforeMs === undefined ? {} : { ':before': encodeTime(beforeMs, 'listIncidents: before') }),
          },
          ScanIndexForward: false,
        },
        limit,
        (i) => num(i, 'openedMs')!,
      ),
    )
    // The index is eventually consistent: an item may still show a status it left.
    return shards.flat().filter((i) => i.status !== 'resolved')
  }

  /**
   * `candidates` (open incidents) plus enough resolved ones that the newest `limit` of all are among them. Resolved
   * incidents are bucketed by their index time (≥ openedAt), so once the limit-th candidate opened at or after a
   * day's end, nothing on that day or before can come before it.
   */
  private async addResolvedIncidents(candidates: Item[], limit: number, beforeMs: number | undefined): Promise<Item[]> {
    const out = [...candidates]
    const threshold = (): number => {
      if (out.length < limit) return Number.NEGATIVE_INFINITY
      out.sort(byOpenedDesc)
      return num(out[limit - 1]!, 'openedMs')!
    }
    const days = (await this.readDays('incidents-resolved')).reverse()
    for (const day of days) {
      if (threshold() >= (day + 1) * DAY_MS) break
      await mapLimit(range(BUCKET_SHARDS), PARALLEL, async (s) => {
        for await (const page of this.pages({
          IndexName: this.indexName,
          KeyConditionExpression: 'gsi1pk = :p',
          ExpressionAttributeValues: { ':p': index.bucket('incidents-resolved', day, s) },
          ScanIndexForward: false,
          Limit: Math.min(limit + 1, 1_000),
        })) {
          const bound = threshold()
          for (const i of page) {
            if (i.status === 'resolved' && (beforeMs === undefined || num(i, 'openedMs')! < beforeMs)) out.push(i)
          }
          const last = page[page.length - 1]
          if (last && num(last, 'indexMs')! < bound) return
        }
      })
    }
    return out
  }

  // ---------- audit ----------

  async appendAudit(entries: readonly AuditRecord[]): Promise<AuditEntry[]> {
    return this.call('appendAudit', async () => {
      const prepared = entries.map(auditRecordOf)
      // Replays: ids seen in this batch or stored already are skipped.
      const batchIds = new Set<string>()
      const fresh = prepared.filter(({ record }) => {
        if (record.id === undefined) return true
        if (batchIds.has(record.id)) return false
        batchIds.add(record.id)
        return true
      })
      const stored = new Set(
        (await this.batchGet([...batchIds].map((id) => keys.auditId(id)))).map((i) => String(i.id)),
      )
      const todo = fresh.filter(({ record }) => record.id === undefined || !stored.has(record.id))
      if (todo.length === 0) return []
      const first = await this.auditSeq.take(todo.length)
      const groups = todo.map(({ record, atMs }, n) => {
        const seq = first + n
        const key = keys.audit(record.hostId, atMs, seq)
        const ttl = this.expiresAt(atMs, this.retention.auditMs)
        const item: Item = {
          ...key,
          type: 'audit',
          hostId: record.hostId,
          ...(record.incidentId !== undefined ? { incidentId: record.incidentId } : {}),
          ...(record.id !== undefined ? { auditId: record.id } : {}),
          atMs,
          seq,
          data: toJson(record, `audit entry ${record.kind}`),
          gsi1pk: index.bucket('audit', dayOf(atMs), shardOfId(record.hostId)),
          gsi1sk: key.sk,
          ...ttl,
        }
        checkItemSize(item, `audit entry ${record.kind}`)
        const puts: Put[] = [{ item, ...NOT_EXISTS }]
        if (record.id !== undefined) {
          puts.push({
            item: {
              ...keys.auditId(record.id),
              type: 'audit-id',
              id: record.id,
              entryPk: key.pk,
              entrySk: key.sk,
              ...ttl,
            },
            ...NOT_EXISTS,
          })
        }
        return { id: String(n), puts, entry: { ...record, seq } as AuditEntry }
      })
      await this.addDays(
        'audit',
        todo.map(({ atMs }) => dayOf(atMs)),
      )
      const written = new Set(await this.transactGroups(groups))
      return groups.filter((g) => written.has(g.id)).map((g) => g.entry)
    })
  }

  async listAudit(query: ListAuditQuery): Promise<AuditEntry[]> {
    return this.call('listAudit', async () => {
      const limit = toLimit(query.limit)
      const sinceMs = query.since === undefined ? undefined : toMs(query.since, 'listAudit: since')
      let days = (await this.readDays('audit')).reverse()
      if (sinceMs !== undefined) days = days.filter((d) => d >= dayOf(sinceMs))
      const filter =
        query.incidentId === undefined
          ? {}
          : {
              FilterExpression: '#incidentId = :incidentId',
              ExpressionAttributeNames: { '#incidentId': 'incidentId' },
            }
      const filterValues = query.incidentId === undefined ? {} : { ':incidentId': query.incidentId }
      const sinceKey = sinceMs === undefined ? undefined : encodeTime(sinceMs, 'listAudit: since')

      let host = query.hostId
      if (host === undefined && query.incidentId !== undefined) {
        // An incident's entries are its host's: walk that host's days from the day before it opened.
        const incident = await this.get(keys.incident(query.incidentId))
        if (incident) {
          host = String(incident.host)
          const from = dayOf(num(incident, 'openedMs')!) - 1
          days = days.filter((d) => d >= from)
        }
      }
      const out: Item[] = []
      for (const day of days) {
        if (out.length >= limit) break
        if (host !== undefined) {
          out.push(
            ...(await this.collect(
              {
                KeyConditionExpression: sinceKey === undefined ? 'pk = :pk' : 'pk = :pk AND sk >= :since',
                ExpressionAttributeValues: {
                  ':pk': keys.auditPartition(host, day),
                  ...(sinceKey === undefined ? {} : { ':since': sinceKey }),
                  ...filterValues,
                },
                ...filter,
                ScanIndexForward: false,
                ConsistentRead: true,
              },
              limit - out.length,
            )),
          )
        } else {
          const shards = await mapLimit(range(BUCKET_SHARDS), PARALLEL, (s) =>
            this.collect(
              {
                IndexName: this.indexName,
                KeyConditionExpression: sinceKey === undefined ? 'gsi1pk = :p' : 'gsi1pk = :p AND gsi1sk >= :since',
                ExpressionAttributeValues: {
                  ':p': index.bucket('audit', day, s),
                  ...(sinceKey === undefined ? {} : { ':since': sinceKey }),
                  ...filterValues,
                },
                ...filter,
                ScanIndexForward: false,
              },
              limit - out.length,
            ),
          )
          out.push(
            ...shards
              .flat()
              .sort(byAuditDesc)
              .slice(0, limit - out.length),
          )
        }
      }
      return out.slice(0, limit).map((i) => ({ ...parse<AuditRecord>(i), seq: num(i, 'seq')! }))
    })
  }

  // ---------- retention ----------

  async prune(options: PruneOptions): Promise<PruneResult> {
    return this.call('prune', async () => {
      const nowMs = toMs(options.now, 'prune: now')
      const cutoff = (ms: number | undefined, what: string): number | undefined => {
        const d = toDuration(ms, `prune: ${what}`)
        return d === undefined ? undefined : nowMs - d
      }
      const auditCut = cutoff(options.auditOlderThan, 'auditOlderThan')
      const incidentCut = cutoff(options.resolvedIncidentsOlderThan, 'resolvedIncidentsOlderThan')
      const actionCut = cutoff(options.actionsOlderThan, 'actionsOlderThan')
      const notificationCut = cutoff(options.notificationsOlderThan, 'notificationsOlderThan')
      if (auditCut === undefined || incidentCut === undefined) {
        throw new StoreError('prune: auditOlderThan and resolvedIncidentsOlderThan are required', { code: 'invalid' })
      }
      return {
        audit: await this.pruneAudit(auditCut),
        incidents: await this.pruneIncidents(incidentCut),
        actions: actionCut === undefined ? 0 : await this.pruneActions(actionCut),
        notifications: notificationCut === undefined ? 0 : await this.pruneOutbox(notificationCut),
        dedup: notificationCut === undefined ? 0 : await this.pruneDedup(notificationCut),
      }
    })
  }

  /**
   * Items of a bucketed family with a time before `cutMs`, a page (up to 1 MB) at a time, shard by shard, day by day
   * (only days up to the cut's): memory stays bounded however much there is to remove.
   */
  private async *olderThan(family: Family, cutMs: number): AsyncGenerator<{ day: number; items: Item[] }> {
    const cutKey = encodeTime(cutMs, 'prune: cutoff')
    for (const day of await this.readDays(family)) {
      if (day > dayOf(cutMs)) break
      for (let s = 0; s < BUCKET_SHARDS; s++) {
        for await (const items of this.pages({
          IndexName: this.indexName,
          KeyConditionExpression: 'gsi1pk = :p AND gsi1sk < :cut',
          ExpressionAttributeValues: { ':p': index.bucket(family, day, s), ':cut': cutKey },
        })) {
          yield { day, items }
        }
      }
    }
  }

  private async pruneAudit(cutMs: number): Promise<number> {
    let count = 0
    for await (const { items } of this.olderThan('audit', cutMs)) {
      const doomed: Key[] = []
      for (const i of items) {
        doomed.push(keyOf(i))
        // Its idempotency id goes with it: the same id may be appended again afterwards.
        if (typeof i.auditId === 'string') doomed.push(keys.auditId(i.auditId))
      }
      await this.batchDelete(doomed)
      count += items.length
    }
    await this.forgetDaysBefore('audit', dayOf(cutMs))
    return count
  }

  private async pruneIncidents(cutMs: number): Promise<number> {
    let count = 0
    for await (const { items } of this.olderThan('incidents-resolved', cutMs)) {
      const due = items.filter((i) => i.status === 'resolved' && num(i, 'resolvedMs')! < cutMs)
      const done = await mapLimit(due, PARALLEL, async (i) => {
        // Conditional: an incident reopened or updated meanwhile stays.
        const deleted = await this.deleteIf(keyOf(i), '#status = :resolved AND #resolvedMs < :cut', {
          names: { '#status': 'status', '#resolvedMs': 'resolvedMs' },
          values: { ':resolved': 'resolved', ':cut': cutMs },
        })
        if (deleted) await this.batchDelete([keys.hostIncident(String(i.host), String(i.id))])
        return deleted
      })
      count += done.filter(Boolean).length
    }
    // Every item on a day before the cut's has an index time, so a resolved time, before the cut: gone now.
    await this.forgetDaysBefore('incidents-resolved', dayOf(cutMs))
    return count
  }

  /** An action's age is its decision's time, else its result's (a result that never got its decision). */
  private async pruneActions(cutMs: number): Promise<number> {
    const removed = new Set<string>()
    for await (const { items } of this.olderThan('decisions', cutMs)) {
      const actionKeys = items.map((i) => String(i.key))
      await this.batchDelete(actionKeys.flatMap((k) => [keys.decision(k), keys.result(k)]))
      for (const k of actionKeys) removed.add(k)
    }
    await this.forgetDaysBefore('decisions', dayOf(cutMs))
    // A day of results before the cut's day is empty once none of its results waits for a newer decision.
    const keptOn = new Set<number>()
    const seenDays = new Set<number>()
    for await (const { day, items } of this.olderThan('results', cutMs)) {
      seenDays.add(day)
      const open = items.filter((i) => !removed.has(String(i.key)))
      const decided = new Set(
        (await this.batchGet(open.map((i) => keys.decision(String(i.key))))).map((d) => String(d.key)),
      )
      const orphans = open.filter((i) => !decided.has(String(i.key)))
      await this.batchDelete(orphans.map(keyOf))
      for (const i of orphans) removed.add(String(i.key))
      if (decided.size > 0) keptOn.add(day)
    }
    const emptied = [...seenDays].filter((d) => d < dayOf(cutMs) && !keptOn.has(d))
    await this.removeDays('results', emptied)
    return removed.size
  }

  private async pruneOutbox(cutMs: number): Promise<number> {
    let count = 0
    for await (const { items } of this.olderThan('outbox-done', cutMs)) {
      const done = await mapLimit(items, PARALLEL, (i) =>
        this.deleteIf(keyOf(i), '#status <> :pending AND #doneMs < :cut', {
          names: { '#status': 'status', '#doneMs': 'doneMs' },
          values: { ':pending': 'pending', ':cut': cutMs },
        }),
      )
      count += done.filter(Boolean).length
    }
    await this.forgetDaysBefore('outbox-done', dayOf(cutMs))
    return count
  }

  private async pruneDedup(cutMs: number): Promise<number> {
    let count = 0
    for await (const { items } of this.olderThan('dedup', cutMs)) {
      await this.batchDelete(items.map(keyOf))
      count += items.length
    }
    await this.forgetDaysBefore('dedup', dayOf(cutMs))
    return count
  }

  // ---------- stats ----------

  async summarize(query: SummaryQuery): Promise<StoreSummary> {
    return this.call('summarize', async () => {
      const sinceMs = toMs(query.since, 'summarize: since')
      const nowMs = toMs(query.now, 'summarize: now')
      const inWindow = (ms: number): boolean => ms >= sinceMs && ms <= nowMs

      // Incidents: every open one, and the resolved ones whose index time is in or after the window (a resolution
      // or a fix start in the window implies it).
      let incidents: Item[]
      if (query.hostId !== undefined) {
        incidents = await this.hostIncidentItems(query.hostId)
      } else {
        const open = await this.openIncidentItems({})
        const resolved: Item[] = []
        for (const day of await this.readDays('incidents-resolved')) {
          if (day < dayOf(sinceMs)) continue
          const shards = await mapLimit(range(BUCKET_SHARDS), PARALLEL, (s) =>
            this.queryAll({
              IndexName: this.indexName,
              KeyConditionExpression: 'gsi1pk = :p AND gsi1sk >= :since',
              ExpressionAttributeValues: {
                ':p': index.bucket('incidents-resolved', day, s),
                ':since': encodeTime(sinceMs, 'summarize: since'),
              },
            }),
          )
          resolved.push(...shards.flat().filter((i) => i.status === 'resolved'))
        }
        incidents = dedupeById([...open, ...resolved])
      }
      const bySeverity = emptyBySeverity()
      let openTotal = 0
      let resolvedIncidents = 0
      let autoResolved = 0
      const verified = new Map<string, number>()
      for (const item of incidents) {
        const i = parse<Incident>(item)
        if (isOpenIncident(i)) {
          openTotal += 1
          bySeverity[i.severity] += 1
        } else if (inWindow(Date.parse(i.resolvedAt ?? i.updatedAt))) {
          resolvedIncidents += 1
          if (resolvedByFix(i)) autoResolved += 1
        }
        for (const a of i.attempts) {
          if (isVerifiedAttempt(a) && inWindow(Date.parse(a.startedAt))) {
            verified.set(a.remediation, (verified.get(a.remediation) ?? 0) + 1)
          }
        }
      }

      // Results that finished in the window.
      let results: Item[] = []
      if (sinceMs <= nowMs) {
        for (const day of await this.readDays('results')) {
          if (day < dayOf(sinceMs) || day > dayOf(nowMs)) continue
          const shards = await mapLimit(range(BUCKET_SHARDS), PARALLEL, (s) =>
            this.queryAll({
              IndexName: this.indexName,
              KeyConditionExpression: 'gsi1pk = :p AND gsi1sk BETWEEN :since AND :now',
              ExpressionAttributeValues: {
                ':p': index.bucket('results', day, s),
                ':since': encodeTime(sinceMs, 'summarize: since'),
                ':now': timeSortKeyEnd(nowMs),
              },
            }),
          )
          results.push(...shards.flat())
        }
      }
      if (query.hostId !== undefined) {
        // A result without a host belongs to its decision's host.
        const hostless = results.filter((r) => str(r, 'hostId') === undefined)
        const owners = new Map(
          (await this.batchGet(hostless.map((r) => keys.decision(String(r.key))))).map((d) => [
            String(d.key),
            str(d, 'hostId'),
          ]),
        )
        results = results.filter((r) => (str(r, 'hostId') ?? owners.get(String(r.key))) === query.hostId)
      }
      const tally = new FixTally()
      for (const item of results) tally.add(parse<RemediationResultV1>(item))
      return summaryOf(query, {
        openTotal,
        bySeverity,
        fixes: tally.fixes,
        bytesRecovered: tally.bytesRecovered,
        verified,
        resolvedIncidents,
        autoResolved,
      })
    })
  }

  // ---------- dedup ----------

  async seen(id: string): Promise<boolean> {
    return this.call('seen', async () => (await this.get(keys.dedup(id))) !== undefined)
  }

  async remember(id: string, at: string): Promise<void> {
    await this.call('remember', async () => {
      const atMs = toMs(at, `remember ${id}: at`)
      await this.addDays('dedup', [dayOf(atMs)])
      await this.put({
        item: {
          ...keys.dedup(id),
          type: 'dedup',
          id,
          at,
          atMs,
          gsi1pk: index.bucket('dedup', dayOf(atMs), shardOfId(id)),
          gsi1sk: timeSortKey(atMs, id),
          ...this.expiresAt(atMs, this.retention.dedupMs),
        },
        ...NOT_EXISTS,
      })
    })
  }

  // ---------- outbox ----------

  async enqueueNotifications(messages: readonly NotificationV1[]): Promise<string[]> {
    return this.call('enqueueNotifications', async () => {
      const data = messages.map((m) => ({ m, json: toJson(m, `notification ${m.id}`) }))
      const seen = new Set<string>()
      const fresh = data.filter(({ m }) => !seen.has(m.id) && seen.add(m.id))
      if (fresh.length === 0) return []
      const first = await this.outboxSeq.take(fresh.length)
      const groups = fresh.map(({ m, json }, n) => {
        const seqKey = encodeSeq(first + n)
        const item: Item = {
          ...keys.outbox(m.id),
          type: 'outbox',
          id: m.id,
          seq: first + n,
          seqKey,
          status: 'pending',
          attempts: 0,
          data: json,
          gsi1pk: index.pendingOutbox(shardOfId(m.id)),
          gsi1sk: seqKey,
        }
        checkItemSize(item, `notification ${m.id}`)
        return { id: m.id, puts: [{ item, ...NOT_EXISTS }] }
      })
      return this.transactGroups(groups)
    })
  }

  async pendingNotifications(limit: number, now: string): Promise<OutboxEntry[]> {
    return this.call('pendingNotifications', async () => {
      const n = toLimit(limit)
      const nowMs = toMs(now, 'pendingNotifications: now')
      const shards = await mapLimit(range(BUCKET_SHARDS), PARALLEL, (s) =>
        this.collect(
          {
            IndexName: this.indexName,
            KeyConditionExpression: 'gsi1pk = :p',
            FilterExpression: '#status = :pending AND (attribute_not_exists(#retryMs) OR #retryMs <= :now)',
            ExpressionAttributeNames: { '#status': 'status', '#retryMs': 'retryMs' },
            ExpressionAttributeValues: { ':p': index.pendingOutbox(s), ':pending': 'pending', ':now': nowMs },
          },
          n,
        ),
      )
      const candidates = shards
        .flat()
        .sort((a, b) => num(a, 'seq')! - num(b, 'seq')!)
        .slice(0, n)
      // gsi1 lags behind the table: read the candidates again, strongly, so a message just sent is not handed out.
      const current = new Map((await this.batchGet(candidates.map(keyOf))).map((i) => [String(i.id), i]))
      return candidates
        .map((c) => current.get(String(c.id)))
        .filter((i): i is Item => i !== undefined && i.status === 'pending' && (num(i, 'retryMs') ?? nowMs) <= nowMs)
        .map(outboxEntryOf)
    })
  }

  async markNotificationSent(id: string, at: string): Promise<void> {
    await this.call('markNotificationSent', async () => {
      const atMs = toMs(at, `notification ${id}: sent at`)
      await this.addDays('outbox-done', [dayOf(atMs)])
      const ttl = this.expiresAt(atMs, this.retention.notificationsMs)
      const updated = await this.update(keys.outbox(id), {
        expression: `SET #status = :sent, sentAt = :at, doneMs = :ms, gsi1pk = :p, gsi1sk = :s${
          ttl.expiresAt === undefined ? '' : ', expiresAt = :ttl'
        } REMOVE retryAt, retryMs`,
        condition: 'attribute_exists(pk) AND #status <> :sent',
        names: { '#status': 'status' },
        values: {
          ':sent': 'sent',
          ':at': at,
          ':ms': atMs,
          ':p': index.bucket('outbox-done', dayOf(atMs), shardOfId(id)),
          ':s': timeSortKey(atMs, id),
          ...(ttl.expiresAt === undefined ? {} : { ':ttl': ttl.expiresAt }),
        },
      })
      if (!updated) await this.requireMessage(id) // sent already: marking twice is harmless
    })
  }

  async markNotificationFailed(id: string, at: string, error: string, retryAt: string | null): Promise<void> {
    await this.call('markNotificationFailed', async () => {
      const atMs = toMs(at, `notification ${id}: failed at`)
      const retryMs = retryAt === null ? undefined : toMs(retryAt, `notification ${id}: retryAt`)
      const common = 'ADD attempts :one SET lastError = :error, lastAttemptAt = :at, doneMs = :ms, #status = :status'
      let expression: string
      let values: Record<string, unknown>
      if (retryAt === null) {
        await this.addDays('outbox-done', [dayOf(atMs)])
        const ttl = this.expiresAt(atMs, this.retention.notificationsMs)
        expression = `${common}, gsi1pk = :p, gsi1sk = :s${ttl.expiresAt === undefined ? '' : ', expiresAt = :ttl'} REMOVE retryAt, retryMs`
        values = {
          ':status': 'dead',
          ':p': index.bucket('outbox-done', dayOf(atMs), shardOfId(id)),
          ':s': timeSortKey(atMs, id),
          ...(ttl.expiresAt === undefined ? {} : { ':ttl': ttl.expiresAt }),
        }
      } else {
        // Pending again (also after a give-up): back in the queue at its place, without a TTL.
        expression = `${common}, retryAt = :retryAt, retryMs = :retryMs, gsi1pk = :p, gsi1sk = seqKey REMOVE expiresAt`
        values = {
          ':status': 'pending',
          ':retryAt': retryAt,
          ':retryMs': retryMs,
          ':p': index.pendingOutbox(shardOfId(id)),
        }
      }
      const updated = await this.update(keys.outbox(id), {
        expression,
        condition: 'attribute_exists(pk) AND #status <> :sent',
        names: { '#status': 'status' },
        values: { ...values, ':one': 1, ':error': String(error), ':at': at, ':ms': atMs, ':sent': 'sent' },
      })
      if (!updated) await this.requireMessage(id) // sent is final: a late failure changes nothing
    })
  }

  async getNotification(id: string): Promise<OutboxEntry | undefined> {
    return this.call('getNotification', async () => {
      const item = await this.get(keys.outbox(id))
      return item && outboxEntryOf(item)
    })
  }

  private async requireMessage(id: string): Promise<void> {
    if (!(await this.get(keys.outbox(id)))) {
      throw new StoreError(`notification ${id} is not in the outbox`, { code: 'not-found', location: this.tableName })
    }
  }

  // ---------- fleet: host index ----------

  async touchHost(host: FleetHost): Promise<void> {
    await this.call('touchHost', async () => {
      const { host: h, seenMs } = fleetHostOf(host)
      const item: Item = {
        ...keys.hostIndex(h.id),
        type: 'host',
        id: h.id,
        shard: h.shard,
        lastSeenMs: seenMs,
        data: toJson(h, `fleet host ${h.id}`),
        gsi1pk: index.shard(h.shard),
        gsi1sk: `HOST#${h.id}`,
      }
      checkItemSize(item, `fleet host ${h.id}`)
      // Only forward; an equal time is a replay and overwrites (idempotent).
      await this.put({
        item,
        condition: 'attribute_not_exists(pk) OR #lastSeenMs <= :lastSeenMs',
        names: { '#lastSeenMs': 'lastSeenMs' },
        values: { ':lastSeenMs': seenMs },
      })
    })
  }

  async listHosts(
    shard: number,
    options: { limit: number; cursor?: string },
  ): Promise<{ hosts: FleetHost[]; cursor?: string }> {
    return this.call('listHosts', async () => {
      checkShard(shard, 'listHosts')
      const limit = toLimit(options.limit, 'listHosts: limit')
      const start = options.cursor === undefined ? undefined : decodeCursor(options.cursor, index.shard(shard))
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: this.indexName,
          KeyConditionExpression: 'gsi1pk = :p',
          ExpressionAttributeValues: { ':p': index.shard(shard) },
          Limit: limit,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      )
      const hosts = (out.Items ?? []).map((i) => parse<FleetHost>(i))
      return out.LastEvaluatedKey ? { hosts, cursor: encodeCursor(out.LastEvaluatedKey) } : { hosts }
    })
  }

  // ---------- fleet: dispatch claims and commands ----------

  async claimDispatch(key: string, at: string, leaseMs: number): Promise<boolean> {
    return this.call('claimDispatch', async () => {
      const args = claimArgsOf(key, at, leaseMs)
      const ttl = this.expiresAt(args.atMs + args.leaseMs, this.retention.claimsMs)
      return this.update(keys.claim(key), {
        expression: `SET #type = :type, #key = :key, claimedAt = :at, claimedMs = :ms, leaseUntilMs = :until${
          ttl.expiresAt === undefined ? '' : ', expiresAt = :ttl'
        }`,
        // Free, or the lease ran out without a command (the claimant died before SendCommand).
        condition: 'attribute_not_exists(pk) OR (attribute_not_exists(commandId) AND leaseUntilMs <= :ms)',
        names: { '#type': 'type', '#key': 'key' },
        values: {
          ':type': 'claim',
          ':key': key,
          ':at': at,
          ':ms': args.atMs,
          ':until': args.atMs + args.leaseMs,
          ...(ttl.expiresAt === undefined ? {} : { ':ttl': ttl.expiresAt }),
        },
      })
    })
  }

  async recordCommand(key: string, commandId: string, host: string, at: string): Promise<void> {
    await this.call('recordCommand', async () => {
      const { atMs } = commandArgsOf(key, commandId, host, at)
      const ttl = this.expiresAt(atMs, this.retention.claimsMs)
      // The map first: a claim that shows a command always has its command findable.
      await this.put({
        item: { ...keys.command(commandId), type: 'command', commandId, key, host, at, ...ttl },
        ...NOT_EXISTS,
      })
      await this.update(keys.claim(key), {
        expression: `SET #type = :type, #key = :key, commandId = if_not_exists(commandId, :commandId), commandAt = if_not_exists(commandAt, :at)${
          ttl.expiresAt === undefined ? '' : ', expiresAt = if_not_exists(expiresAt, :ttl)'
        }`,
        names: { '#type': 'type', '#key': 'key' },
        values: {
          ':type': 'claim',
          ':key': key,
          ':commandId': commandId,
          ':at': at,
          ...(ttl.expiresAt === undefined ? {} : { ':ttl': ttl.expiresAt }),
        },
      })
    })
  }

  async findCommand(commandId: string): Promise<{ key: string; host: string } | undefined> {
    return this.call('findCommand', async () => {
      const item = await this.get(keys.command(commandId))
      return item && { key: String(item.key), host: String(item.host) }
    })
  }

  async takeCommandToken(at: string, limit: number): Promise<boolean> {
    return this.call('takeCommandToken', async () => {
      const minute = tokenMinuteOf(at, limit)
      // One small item per minute, counted up to the limit with a conditional ADD; gone by TTL a day later.
      return this.update(
        { pk: `RATE#commands#${minute}`, sk: 'RATE' },
        {
          expression: 'ADD #used :one SET expiresAt = :ttl',
          condition: 'attribute_not_exists(#used) OR #used < :limit',
          names: { '#used': 'used' },
          values: { ':one': 1, ':limit': limit, ':ttl': Math.floor(Date.parse(at) / 1000) + 86_400 },
        },
      )
    })
  }

  // ---------- plumbing ----------

  /** Every public method goes through here: errors leave as StoreError with the table as location. */
  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw translateDynamoDbError(err, op, this.tableName)
    }
  }

  private expiresAt(atMs: number, retentionMs: number | undefined): { expiresAt?: number } {
    return retentionMs === undefined ? {} : { expiresAt: Math.ceil((atMs + retentionMs) / 1000) }
  }

  private async get(key: Key, consistent = true): Promise<Item | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: consistent }))
    return out.Item
  }

  /** A put; with a condition, false when it did not hold (nothing written). */
  private async put(p: Put): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: p.item,
          ...(p.condition ? { ConditionExpression: p.condition } : {}),
          ...(p.names ? { ExpressionAttributeNames: p.names } : {}),
          ...(p.values ? { ExpressionAttributeValues: p.values } : {}),
        }),
      )
      return true
    } catch (err) {
      if (p.condition && isConditionalCheckFailed(err)) return false
      throw err
    }
  }

  /** An update; false when its condition did not hold. */
  private async update(
    key: Key,
    u: { expression: string; condition?: string; names?: Record<string, string>; values?: Record<string, unknown> },
  ): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: u.expression,
          ...(u.condition ? { ConditionExpression: u.condition } : {}),
          ...(u.names ? { ExpressionAttributeNames: u.names } : {}),
          ...(u.values ? { ExpressionAttributeValues: u.values } : {}),
        }),
      )
      return true
    } catch (err) {
      if (u.condition && isConditionalCheckFailed(err)) return false
      throw err
    }
  }

  private async deleteIf(
    key: Key,
    condition: string,
    e: { names: Record<string, string>; values: Record<string, unknown> },
  ): Promise<boolean> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: key,
          ConditionExpression: condition,
          ExpressionAttributeNames: e.names,
          ExpressionAttributeValues: e.values,
        }),
      )
      return true
    } catch (err) {
      if (isConditionalCheckFailed(err)) return false
      throw err
    }
  }

  /** The pages of a query of the table (or of gsi1 with `IndexName`). */
  private async *pages(input: Omit<QueryCommandInput, 'TableName'>): AsyncGenerator<Item[]> {
    let start: Record<string, unknown> | undefined
    do {
      const out = await this.doc.send(
        new QueryCommand({ TableName: this.tableName, ...input, ...(start ? { ExclusiveStartKey: start } : {}) }),
      )
      yield out.Items ?? []
      start = out.LastEvaluatedKey
    } while (start)
  }

  private async queryAll(input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    const out: Item[] = []
    for await (const page of this.pages(input)) out.push(...page)
    return out
  }

  /** The first `limit` items a query gives (after its filter), in its order. */
  private async collect(input: Omit<QueryCommandInput, 'TableName'>, limit: number): Promise<Item[]> {
    const out: Item[] = []
    const pageSize = input.FilterExpression ? undefined : Math.min(limit, 1_000)
    for await (const page of this.pages({ ...input, ...(pageSize ? { Limit: pageSize } : {}) })) {
      out.push(...page)
      if (out.length >= limit) break
    }
    return out.slice(0, limit)
  }

  /**
   * The first `limit` items of a descending query, plus the items after them that share the last one's time (the
   * caller orders a same-time group by something the key cannot).
   */
  private async collectDesc(
    input: Omit<QueryCommandInput, 'TableName'>,
    limit: number | undefined,
    timeOf: (i: Item) => number,
  ): Promise<Item[]> {
    const out: Item[] = []
    const pageSize = limit === undefined ? undefined : Math.min(limit + 1, 1_000)
    for await (const page of this.pages({ ...input, ...(pageSize ? { Limit: pageSize } : {}) })) {
      for (const i of page) {
        if (limit !== undefined && out.length >= limit && timeOf(i) !== timeOf(out[out.length - 1]!)) return out
        out.push(i)
      }
    }
    return out
  }

  /** Items by key (missing ones left out), strongly consistent unless told, retrying what DynamoDB left unprocessed. */
  private async batchGet(wanted: readonly Key[], consistent = true): Promise<Item[]> {
    const unique = [...new Map(wanted.map((k) => [idOf(k), k])).values()]
    const out: Item[] = []
    for (let i = 0; i < unique.length; i += BATCH_GET_KEYS) {
      let todo: Record<string, unknown>[] = unique.slice(i, i + BATCH_GET_KEYS)
      for (let attempt = 0; todo.length > 0; attempt++) {
        if (attempt > 0) {
          if (attempt > SMALL_RETRIES) throw this.unprocessed('BatchGetItem', todo.length)
          await sleep(backoff(attempt))
        }
        const res = await this.doc.send(
          new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: todo, ConsistentRead: consistent } } }),
        )
        out.push(...(res.Responses?.[this.tableName] ?? []))
        todo = res.UnprocessedKeys?.[this.tableName]?.Keys ?? []
      }
    }
    return out
  }

  private async batchDelete(doomed: readonly Key[]): Promise<void> {
    const unique = [...new Map(doomed.map((k) => [idOf(k), k])).values()]
    for (let i = 0; i < unique.length; i += BATCH_WRITE_ITEMS) {
      let todo: { DeleteRequest?: { Key: Record<string, unknown> | undefined } }[] = unique
        .slice(i, i + BATCH_WRITE_ITEMS)
        .map((k) => ({ DeleteRequest: { Key: { pk: k.pk, sk: k.sk } } }))
      for (let attempt = 0; todo.length > 0; attempt++) {
        if (attempt > 0) {
          if (attempt > SMALL_RETRIES) throw this.unprocessed('BatchWriteItem', todo.length)
          await sleep(backoff(attempt))
        }
        const res = await this.doc.send(
          new BatchWriteCommand({ RequestItems: { [this.tableName]: todo as { DeleteRequest: { Key: Key } }[] } }),
        )
        todo = (res.UnprocessedItems?.[this.tableName] ?? []) as typeof todo
      }
    }
  }

  private unprocessed(op: string, n: number): DynamoDbStoreError {
    return new DynamoDbStoreError(
      `${op} on DynamoDB table ${this.tableName}: ${n} items still unprocessed (throttled)`,
      {
        code: 'unavailable',
        location: this.tableName,
        retryable: true,
        awsCode: 'ProvisionedThroughputExceededException',
      },
    )
  }

  /**
   * Write groups of puts (a group: an item and what must be written with it), first write wins: each group's puts
   * carry `attribute_not_exists` conditions. Groups go in transactions of up to 100 items / 4 MB, each all or
   * nothing; a group whose condition failed (its key exists) is dropped and the rest of its transaction written
   * again. Returns the ids of the groups written, in order.
   */
  private async transactGroups(groups: readonly { id: string; puts: Put[] }[]): Promise<string[]> {
    const written: string[] = []
    for (const chunk of chunkGroups(groups)) {
      let todo = chunk
      for (let attempt = 0; todo.length > 0; attempt++) {
        const items = todo.flatMap((g) => g.puts)
        const failed = await this.transact(items)
        if (failed === undefined) {
          written.push(...todo.map((g) => g.id))
          break
        }
        if (attempt >= SMALL_RETRIES) {
          throw new StoreError(`transaction on ${this.tableName} kept losing its conditions`, {
            code: 'conflict',
            location: this.tableName,
          })
        }
        // Map the failed items back to their groups.
        const lost = new Set<string>()
        let n = 0
        for (const g of todo) {
          for (let k = 0; k < g.puts.length; k++, n++) if (failed[n] === 'ConditionalCheckFailed') lost.add(g.id)
        }
        if (lost.size === 0) {
          // No reasons to map: find the groups whose first item exists now.
          const existing = new Set(
            (await this.batchGet(todo.map((g) => keyOf(g.puts[0]!.item)))).map((i) => idOf(keyOf(i))),
          )
          for (const g of todo) if (existing.has(idOf(keyOf(g.puts[0]!.item)))) lost.add(g.id)
          if (lost.size === 0) continue
        }
        todo = todo.filter((g) => !lost.has(g.id))
      }
    }
    const order = new Map(groups.map((g, i) => [g.id, i]))
    return written.sort((a, b) => order.get(a)! - order.get(b)!)
  }

  /**
   * One TransactWriteItems of puts. Undefined when it went through; the cancellation reason codes (one per item) when
   * a condition failed. Conflicts with other transactions and throttling are retried here (the SDK does not).
   */
  private async transact(puts: readonly Put[]): Promise<(string | undefined)[] | undefined> {
    const input: TransactWriteCommandInput = {
      TransactItems: puts.map((p) => ({
        Put: {
          TableName: this.tableName,
          Item: p.item,
          ...(p.condition ? { ConditionExpression: p.condition } : {}),
          ...(p.names ? { ExpressionAttributeNames: p.names } : {}),
          ...(p.values ? { ExpressionAttributeValues: p.values } : {}),
        },
      })),
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await this.doc.send(new TransactWriteCommand(input))
        return undefined
      } catch (err) {
        if (isRetryableCancellation(err) && attempt < SMALL_RETRIES) {
          await sleep(backoff(attempt))
          continue
        }
        const codes = cancellationCodes(err)
        if (codes?.includes('ConditionalCheckFailed')) return codes
        if (codes !== undefined && codes.length === 0) return []
        throw err
      }
    }
  }

  // ---------- calendar and counters ----------

  /** Make sure the family's calendar lists these days before items on them are written. */
  private async addDays(family: Family, days: readonly number[]): Promise<void> {
    const known = this.knownDays.get(family) ?? new Set<number>()
    this.knownDays.set(family, known)
    const missing = [...new Set(days)].filter((d) => !known.has(d))
    if (missing.length === 0) return
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: keys.calendar(family),
        UpdateExpression: 'SET #type = :type ADD #days :days',
        ExpressionAttributeNames: { '#type': 'type', '#days': 'days' },
        ExpressionAttributeValues: { ':type': 'calendar', ':days': new Set(missing) },
      }),
    )
    for (const d of missing) known.add(d)
  }

  /** The days a family has items on, oldest first. */
  private async readDays(family: Family): Promise<number[]> {
    const item = await this.get(keys.calendar(family))
    const days = item?.days
    const list = days instanceof Set ? [...days] : Array.isArray(days) ? days : []
    return list.map(Number).sort((a, b) => a - b)
  }

  private async removeDays(family: Family, days: readonly number[]): Promise<void> {
    if (days.length === 0) return
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: keys.calendar(family),
        UpdateExpression: 'DELETE #days :days',
        ExpressionAttributeNames: { '#days': 'days' },
        ExpressionAttributeValues: { ':days': new Set(days) },
      }),
    )
    const known = this.knownDays.get(family)
    for (const d of days) known?.delete(d)
  }

  private async forgetDaysBefore(family: Family, day: number): Promise<void> {
    await this.removeDays(
      family,
      (await this.readDays(family)).filter((d) => d < day),
    )
  }

  /** Adds `size` to a counter and returns its new value. */
  private async reserveSeq(name: string, size: number): Promise<number> {
    const out = await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: keys.counter(name),
        UpdateExpression: 'SET #type = :type ADD #value :size',
        ExpressionAttributeNames: { '#type': 'type', '#value': 'value' },
        ExpressionAttributeValues: { ':type': 'counter', ':size': size },
        ReturnValues: 'UPDATED_NEW',
      }),
    )
    return Number(out.Attributes?.value)
  }
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

const dedupeById = (items: readonly Item[]): Item[] => [...new Map(items.map((i) => [String(i.id), i])).values()]

/** Groups in order, packed into transactions of at most 100 items and about 4 MB. */
const chunkGroups = <G extends { puts: Put[] }>(groups: readonly G[]): G[][] => {
  const chunks: G[][] = []
  let current: G[] = []
  let items = 0
  let bytes = 0
  for (const g of groups) {
    const size = g.puts.reduce((n, p) => n + JSON.stringify(p.item).length, 0)
    if (current.length > 0 && (items + g.puts.length > TRANSACTION_ITEMS || bytes + size > TRANSACTION_BYTES)) {
      chunks.push(current)
      current = []
      items = 0
      bytes = 0
    }
    current.push(g)
    items += g.puts.length
    bytes += size
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}

const outboxEntryOf = (item: Item): OutboxEntry => ({
  message: parse<NotificationV1>(item),
  status: String(item.status) as OutboxStatus,
  attempts: num(item, 'attempts') ?? 0,
  ...(str(item, 'lastError') !== undefined ? { lastError: str(item, 'lastError')! } : {}),
  ...(str(item, 'lastAttemptAt') !== undefined ? { lastAttemptAt: str(item, 'lastAttemptAt')! } : {}),
  ...(str(item, 'retryAt') !== undefined ? { retryAt: str(item, 'retryAt')! } : {}),
  ...(str(item, 'sentAt') !== undefined ? { sentAt: str(item, 'sentAt')! } : {}),
})

const encodeCursor = (key: Record<string, unknown>): string => Buffer.from(JSON.stringify(key)).toString('base64url')

const decodeCursor = (cursor: string, partition: string): Record<string, string> => {
  let key: unknown
  try {
    key = JSON.parse(Buffer.from(String(cursor), 'base64url').toString('utf8'))
  } catch (err) {
    throw new StoreError('listHosts: not a cursor of listHosts', { code: 'invalid', cause: err })
  }
  const k = key as Record<string, unknown>
  const fields = ['pk', 'sk', 'gsi1pk', 'gsi1sk']
  if (
    typeof key !== 'object' ||
    key === null ||
    Object.keys(k).length !== fields.length ||
    !fields.every((f) => typeof k[f] === 'string')
  ) {
    throw new StoreError('listHosts: not a cursor of listHosts', { code: 'invalid' })
  }
  if (k.gsi1pk !== partition) {
    throw new StoreError(`listHosts: the cursor belongs to another shard (${String(k.gsi1pk)})`, { code: 'invalid' })
  }
  return k as Record<string, string>
}
