import type { Decision, Incident, Level, NotificationV1, RemediationResultV1 } from '../contracts/index.ts'
import type { HostState } from '../engine/state.ts'
import type { DedupStore } from './notifier.ts'

/**
 * The state store: everything the engine's shells keep between cycles. One port, two shapes: SQLite on a single
 * host (`agent/store/sqlite.ts`), DynamoDB in the fleet; `shared/adapters/store/memory.ts` is the in-memory twin
 * and `test/contract/store-contract.ts` the one suite all of them pass.
 *
 * Rules every implementation keeps:
 * - No clock: every time comes in as an argument, an ISO-8601 timestamp with an offset (`TimestampSchema`).
 *   Stores order and compare by the instant (`Date.parse`), never by the text.
 * - At-least-once callers: every write is idempotent by its natural key (decision key, message id, incident id and
 *   `updatedAt`, audit `id` when given). The same write twice changes nothing the second time.
 * - Values go in and come out as copies (JSON round trip): a caller can never change stored state by mutating an
 *   object it passed in or got back, and what comes back is exactly what JSON can carry.
 * - A write that fails stores nothing of its batch.
 * - Failures are thrown as {@link StoreError} (with the technology's error as `cause`); a lost conditional write is
 *   a {@link ConflictError}.
 */
export interface StateStore extends DedupStore {
  // ---------- engine state, one item per host, optimistic concurrency ----------

  /**
   * The host's engine state and its version, or undefined when nothing was stored for the host yet. A read is strongly
   * consistent unless `consistent: false` allows a store to answer with a state at most a moment old (DynamoDB's
   * eventually consistent read, at half the price); a caller that then writes conditionally learns of a newer state
   * through the {@link ConflictError}. Stores that are always consistent ignore it.
   */
  getHostState(hostId: string, options?: { consistent?: boolean }): Promise<VersionedHostState | undefined>
  /**
   * Conditional write: stores `state` only if the stored version is still `expectedVersion` (`undefined`: only if
   * the host has no state yet). Returns the new version (1 for the first write, then +1 per write). Throws
   * {@link ConflictError} when someone else wrote first; the caller reads again, re-applies and retries.
   */
  putHostState(hostId: string, state: HostState, expectedVersion: number | undefined): Promise<number>

  // ---------- actions: decisions and their results, by decision key ----------

  /**
   * Record the engine's decisions for a host. Idempotent by decision key: a key already recorded is left as it
   * is (first write wins). Returns the keys that were new, in input order, so a caller acts on each one once.
   * Every decision must belong to `hostId` (else StoreError `invalid`, nothing stored).
   */
  recordDecisions(hostId: string, decisions: readonly Decision[], at: string): Promise<string[]>
  /**
   * Record what a remediation did. Idempotent by `result.key` (first result wins); it may arrive before its
   * decision. Returns true when it was new.
   */
  recordResult(result: RemediationResultV1): Promise<boolean>
  /** The decision and result stored under a key, or undefined when neither is. */
  getAction(key: string): Promise<ActionRecord | undefined>

  // ---------- incidents ----------

  /**
   * Store the incident unless a version with a newer `updatedAt` is stored already (equal times overwrite, so a
   * replay is harmless). Returns true when it was stored.
   */
  upsertIncident(incident: Incident): Promise<boolean>
  getIncident(id: string): Promise<Incident | undefined>
  /** Newest opened first (then by id); `before` pages back: only incidents opened strictly before it. */
  listIncidents(query: ListIncidentsQuery): Promise<Incident[]>

  // ---------- audit trail ----------

  /**
   * Append entries (observation → decision → action → result, and notifications and errors). Append-only:
   * entries are never changed, and removed only by {@link StateStore.prune}. An entry with an `id` that is stored
   * already is skipped (replays); entries without `id` are always appended. Returns the stored entries.
   */
  appendAudit(entries: readonly AuditRecord[]): Promise<AuditEntry[]>
  /** Newest first (by `at`, then by append order). */
  listAudit(query: ListAuditQuery): Promise<AuditEntry[]>

  // ---------- retention, stats ----------

  /** Remove what is older than the retention bounds (durations in ms before `now`). Returns what was removed. */
  prune(options: PruneOptions): Promise<PruneResult>
  /** The figures behind `ansai status` and the fleet's daily digest. */
  summarize(query: SummaryQuery): Promise<StoreSummary>

  // ---------- notification outbox ----------

  /** Queue messages for delivery. Idempotent by message id; returns the ids that were new, in input order. */
  enqueueNotifications(messages: readonly NotificationV1[]): Promise<string[]>
  /** Pending messages that are due at `now` (never tried, or their `retryAt` has come), in the order queued. */
  pendingNotifications(limit: number, now: string): Promise<OutboxEntry[]>
  /** Delivered: never returned by `pendingNotifications` again. Marking twice is harmless. */
  markNotificationSent(id: string, at: string): Promise<void>
  /**
   * A delivery failed: count the attempt and keep the message pending until `retryAt`; `null` gives up (a refusal
   * that will never go through), which keeps the message as `dead` for the record. Ignored once sent.
   */
  markNotificationFailed(id: string, at: string, error: string, retryAt: string | null): Promise<void>
  getNotification(id: string): Promise<OutboxEntry | undefined>
}

export interface VersionedHostState {
  state: HostState
  /** The optimistic-concurrency token to pass back to `putHostState`. */
  version: number
}

/** One action: a decision and, once it ran, its result. Either may be missing (a result may come first). */
export interface ActionRecord {
  key: string
  /** From the decision, else from the result's `host`. */
  hostId?: string
  incidentId?: string
  decision?: Decision
  /** The `at` given to `recordDecisions`. */
  recordedAt?: string
  result?: RemediationResultV1
}

export const AUDIT_KINDS = ['observation', 'decision', 'action', 'result', 'notification', 'error'] as const
export type AuditKind = (typeof AUDIT_KINDS)[number]

export interface AuditRecord {
  kind: AuditKind
  at: string
  hostId: string
  incidentId?: string
  /** The decision or message key the entry is about. */
  key?: string
  /** Optional idempotency id: an entry whose id is stored already is not appended again. */
  id?: string
  /** JSON-serializable details. */
  data: Record<string, unknown>
}

export interface AuditEntry extends AuditRecord {
  /** Append order, assigned by the store, increasing. */
  seq: number
}

export interface ListIncidentsQuery {
  hostId?: string
  /** `open` (the default): every incident not resolved yet, `failed` and `escalated` included. */
  status?: 'open' | 'all'
  limit: number
  before?: string
}

export interface ListAuditQuery {
  hostId?: string
  incidentId?: string
  /** Only entries at or after this time. */
  since?: string
  limit: number
}

export interface PruneOptions {
  /** Audit entries older than this (ms before `now`) are removed. */
  auditOlderThan: number
  /** Resolved incidents that resolved longer ago than this (ms) are removed; open ones never are. */
  resolvedIncidentsOlderThan: number
  /** Actions recorded longer ago than this (ms) are removed; absent: kept (they are the idempotency record). */
  actionsOlderThan?: number
  /** Sent or dead outbox messages and remembered dedup ids older than this (ms); absent: kept. Pending: never. */
  notificationsOlderThan?: number
  now: string
}

export interface PruneResult {
  audit: number
  incidents: number
  actions: number
  notifications: number
  dedup: number
}

export interface SummaryQuery {
  hostId?: string
  /** The window for fixes, bytes, resolutions and time saved; open incidents are counted as of now. */
  since: string
  now: string
}

export type RemediationStatus = RemediationResultV1['status']

export interface FixCount {
  remediation: string
  status: RemediationStatus
  count: number
}

export interface StoreSummary {
  since: string
  now: string
  /** Incidents not resolved yet, by current severity (every level present, 0 when none). */
  openIncidents: { total: number; bySeverity: Record<Level, number> }
  /** Remediation results that finished in the window, by remediation and status; sorted by both. */
  fixes: FixCount[]
  /** Fix attempts that started in the window and were verified (the problem went away), by remediation. */
  verifiedFixes: { remediation: string; count: number }[]
  /** Sum of `bytesRecovered` of the real (not dry-run) results that finished in the window. */
  bytesRecovered: number
  /** Incidents that resolved in the window, and those of them resolved with at least one verified fix. */
  resolvedIncidents: number
  autoResolved: number
  /** autoResolved / resolvedIncidents; null when nothing resolved. */
  autoResolvedShare: number | null
  /** Verified fixes × the typical manual minutes of their remediation (`MANUAL_MINUTES`). */
  timeSavedMinutes: number
}

export type OutboxStatus = 'pending' | 'sent' | 'dead'

export interface OutboxEntry {
  message: NotificationV1
  status: OutboxStatus
  /** Failed delivery attempts so far. */
  attempts: number
  lastError?: string
  lastAttemptAt?: string
  retryAt?: string
  sentAt?: string
}

export type StoreErrorCode =
  /** A conditional write lost: see {@link ConflictError}. */
  | 'conflict'
  /** The input cannot be stored (not JSON-serializable, a bad timestamp, another host's decision). */
  | 'invalid'
  /** The thing to change does not exist. */
  | 'not-found'
  /** Locked by another writer for longer than the busy timeout. */
  | 'busy'
  /** The store's data is damaged or is not a store at all. */
  | 'corrupt'
  /** Written by a newer ANSAI: refused rather than misread. */
  | 'newer-schema'
  /** Used after `close()`. */
  | 'closed'
  /** Anything else from below: disk full, permissions, I/O, throttling. */
  | 'unavailable'

export interface StoreErrorOptions {
  code: StoreErrorCode
  /** Where the store lives: a database path, a table name. */
  location?: string
  cause?: unknown
}

/** An error of the store, translated by its adapter: typed, with the technology's own error as `cause`. */
export class StoreError extends Error {
  override readonly name: string = 'StoreError'
  readonly code: StoreErrorCode
  readonly location: string | undefined

  constructor(message: string, options: StoreErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = options.code
    this.location = options.location
  }
}

/** A conditional write of host state lost: someone else wrote first. Read again, re-apply, retry. */
export class ConflictError extends StoreError {
  override readonly name: string = 'ConflictError'
  readonly hostId: string
  readonly expectedVersion: number | undefined
  /** The version found, when the store could tell (undefined: no state stored). */
  readonly actualVersion: number | undefined

  constructor(
    hostId: string,
    expectedVersion: number | undefined,
    actualVersion: number | undefined,
    options: { location?: string; cause?: unknown } = {},
  ) {
    super(
      `host state of ${hostId} changed underneath: expected ${
        expectedVersion === undefined ? 'no state' : `version ${expectedVersion}`
      }, found ${actualVersion === undefined ? 'no state' : `version ${actualVersion}`}`,
      { code: 'conflict', ...options },
    )
    this.hostId = hostId
    this.expectedVersion = expectedVersion
    this.actualVersion = actualVersion
  }
}
