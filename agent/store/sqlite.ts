/**
 * The StateStore of the single-host shape (`ansai run`): one SQLite file through `node:sqlite` (`DatabaseSync`).
 *
 * - Schema by numbered migrations (`MIGRATIONS`, recorded in `schema_version`), each applied in one transaction;
 *   a database written by a newer ANSAI is refused, never misread.
 * - WAL mode (readers never block the writer: `ansai status` while `ansai run` works), a busy timeout, foreign keys.
 * - Every write that touches more than one row runs in one `BEGIN IMMEDIATE` transaction: it takes the write lock
 *   up front, so two processes wait for each other (busy timeout) instead of failing to upgrade a read lock.
 * - Host state moves only through a conditional write: `UPDATE … WHERE host_id = ? AND version = ?`, or an INSERT
 *   that the primary key refuses when the host exists; either loss is a ConflictError.
 * - The file is created 0600 in a directory created 0700 (SQLite gives the -wal and -shm files the same mode).
 * - Errors come out as StoreError (ConflictError for a lost conditional write) with the database path and the
 *   SQLite error as `cause`.
 *
 * `DatabaseSync` is synchronous: each method does all its work before it returns its promise, so the writes of one
 * connection never interleave. Node 24 prints no ExperimentalWarning for `node:sqlite` (checked on v24.21.0).
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite'
import {
  auditRecordOf,
  bytesOf,
  checkDecisionHosts,
  checkExpectedVersion,
  checkHostId,
  checkStateHost,
  emptyBySeverity,
  summaryOf,
  toDuration,
  toJson,
  toLimit,
  toMs,
} from '../../shared/adapters/store/common.ts'
import type { Decision, Incident, Level, NotificationV1, RemediationResultV1 } from '../../shared/contracts/index.ts'
import type { HostState } from '../../shared/engine/state.ts'
import {
  type ActionRecord,
  type AuditEntry,
  type AuditKind,
  type AuditRecord,
  ConflictError,
  type FixCount,
  type ListAuditQuery,
  type ListIncidentsQuery,
  type OutboxEntry,
  type OutboxStatus,
  type PruneOptions,
  type PruneResult,
  type RemediationStatus,
  type StateStore,
  StoreError,
  type StoreErrorCode,
  type StoreSummary,
  type SummaryQuery,
  type VersionedHostState,
} from '../../shared/ports/store.ts'

/**
 * The schema, one entry per version: migration N (1-based) is `MIGRATIONS[N - 1]`, a list of SQL statements run
 * in one transaction together with recording N in `schema_version`. Never edit a released migration: add one.
 * Times are INTEGER epoch ms (ordering, windows, retention) beside the ISO text the caller gave (`*_iso`, given
 * back as it came); JSON is TEXT.
 */
export const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE host_state (
      host_id TEXT PRIMARY KEY,
      version INTEGER NOT NULL CHECK (version >= 1),
      state TEXT NOT NULL
    ) STRICT`,
    // One row per decision key: the decision (from recordDecisions) and its result (from recordResult), either
    // first. host_id is null only while a result without `host` waits for its decision.
    `CREATE TABLE actions (
      key TEXT PRIMARY KEY,
      host_id TEXT,
      incident_id TEXT,
      type TEXT CHECK (type IN ('remediate', 'notify')),
      decision TEXT,
      decided_at INTEGER,
      decided_at_iso TEXT,
      result TEXT,
      result_remediation TEXT,
      result_status TEXT,
      dry_run INTEGER,
      finished_at INTEGER,
      bytes_recovered INTEGER,
      CHECK (decision IS NOT NULL OR result IS NOT NULL)
    ) STRICT`,
    'CREATE INDEX actions_host_decided ON actions (host_id, decided_at)',
    'CREATE INDEX actions_incident ON actions (incident_id)',
    'CREATE INDEX actions_finished ON actions (finished_at) WHERE result IS NOT NULL',
    'CREATE INDEX actions_age ON actions (coalesce(decided_at, finished_at))',
    `CREATE TABLE incidents (
      id TEXT PRIMARY KEY,
      host_id TEXT NOT NULL,
      status TEXT NOT NULL,
      severity TEXT NOT NULL,
      opened_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      resolved_at INTEGER,
      data TEXT NOT NULL,
      CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
    ) STRICT`,
    'CREATE INDEX incidents_opened ON incidents (opened_at DESC, id)',
    'CREATE INDEX incidents_host_opened ON incidents (host_id, opened_at DESC, id)',
    "CREATE INDEX incidents_open ON incidents (host_id, severity) WHERE status <> 'resolved'",
    'CREATE INDEX incidents_resolved ON incidents (resolved_at) WHERE resolved_at IS NOT NULL',
    // The fix attempts of the stored version of each incident, for the stats (time saved, auto-resolved share).
    `CREATE TABLE incident_attempts (
      incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
      idx INTEGER NOT NULL,
      key TEXT NOT NULL,
      remediation TEXT NOT NULL,
      status TEXT NOT NULL,
      started_at INTEGER NOT NULL,
      PRIMARY KEY (incident_id, idx)
    ) STRICT, WITHOUT ROWID`,
    'CREATE INDEX incident_attempts_status ON incident_attempts (status, started_at)',
    `CREATE TABLE audit (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT UNIQUE,
      kind TEXT NOT NULL
        CHECK (kind IN ('observation', 'decision', 'action', 'result', 'notification', 'error')),
      at INTEGER NOT NULL,
      at_iso TEXT NOT NULL,
      host_id TEXT NOT NULL,
      incident_id TEXT,
      key TEXT,
      data TEXT NOT NULL
    ) STRICT`,
    'CREATE INDEX audit_at ON audit (at DESC, seq DESC)',
    'CREATE INDEX audit_host_at ON audit (host_id, at DESC, seq DESC)',
    'CREATE INDEX audit_incident_at ON audit (incident_id, at DESC, seq DESC) WHERE incident_id IS NOT NULL',
    // Append-only: entries are never changed (retention deletes them, nothing else does).
    `CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
     BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END`,
    `CREATE TABLE notification_dedup (
      id TEXT PRIMARY KEY,
      at INTEGER NOT NULL,
      at_iso TEXT NOT NULL
    ) STRICT`,
    'CREATE INDEX notification_dedup_at ON notification_dedup (at)',
    `CREATE TABLE outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      message TEXT NOT NULL,
      status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
      attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      last_attempt_at_iso TEXT,
      retry_at INTEGER,
      retry_at_iso TEXT,
      sent_at_iso TEXT,
      done_at INTEGER
    ) STRICT`,
    "CREATE INDEX outbox_pending ON outbox (seq) WHERE status = 'pending'",
    "CREATE INDEX outbox_done ON outbox (done_at) WHERE status <> 'pending'",
  ],
]

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length

export interface SqliteStoreOptions {
  /** How long a write waits for another process's lock before failing with StoreError `busy`. Default 5 s. */
  busyTimeoutMs?: number
  /** The migrations to apply; only tests pass their own. */
  migrations?: readonly (readonly string[])[]
}

const DEFAULT_BUSY_TIMEOUT_MS = 5_000

/** SQLite primary result codes (the low byte of the extended code). */
const SQLITE = { BUSY: 5, LOCKED: 6, READONLY: 8, CORRUPT: 11, FULL: 13, CANTOPEN: 14, CONSTRAINT: 19, NOTADB: 26 }

interface SqliteError extends Error {
  code?: string
  errcode?: number
  errstr?: string
}

const sqliteCode = (err: unknown): number | undefined => {
  const e = err as SqliteError
  return e?.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number' ? e.errcode & 0xff : undefined
}

const codeOf = (err: unknown): StoreErrorCode => {
  switch (sqliteCode(err)) {
    case SQLITE.BUSY:
    case SQLITE.LOCKED:
      return 'busy'
    case SQLITE.CORRUPT:
    case SQLITE.NOTADB:
      return 'corrupt'
    case SQLITE.CONSTRAINT:
      return 'invalid'
    default:
      return (err as SqliteError)?.code === 'ERR_INVALID_STATE' ? 'closed' : 'unavailable'
  }
}

type Row = Record<string, SQLInputValue>

const str = (v: SQLInputValue | undefined): string | undefined => (typeof v === 'string' ? v : undefined)
const num = (v: SQLInputValue | undefined): number => Number(v ?? 0)
/** Optional fields the way the in-memory twin leaves them: absent, never `undefined` or null. */
const opt = <K extends string>(key: K, v: string | undefined): { [P in K]?: string } =>
  (v === undefined ? {} : { [key]: v }) as { [P in K]?: string }

/** Creates the parent directory (0700) and the file (0600) before SQLite opens it, and tightens a loose file. */
const prepareFile = (path: string): void => {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  try {
    closeSync(openSync(path, 'wx', 0o600))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600)
  }
}

/** The StateStore port on one SQLite file (see the module comment). Open with `SqliteStore.open(path)`. */
export class SqliteStore implements StateStore {
  /** The database file (absolute), or `:memory:`. */
  readonly path: string
  /** The journal mode SQLite accepted: `wal` for a file, `memory` for `:memory:`. */
  readonly journalMode: string
  private readonly db: DatabaseSync
  private readonly statements = new Map<string, StatementSync>()
  private closed = false

  private constructor(path: string, db: DatabaseSync, journalMode: string) {
    this.path = path
    this.db = db
    this.journalMode = journalMode
  }

  /** Open (creating and migrating as needed) the store at `path`; `:memory:` for a throwaway one. */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    const file = path === ':memory:' ? path : resolve(path)
    const busy = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS
    let db: DatabaseSync | undefined
    try {
      if (file !== ':memory:') prepareFile(file)
      // `timeout` is SQLite's busy timeout, `enableForeignKeyConstraints` its foreign_keys pragma.
      db = new DatabaseSync(file, { timeout: Math.max(0, Math.trunc(busy)), enableForeignKeyConstraints: true })
      const mode = String((db.prepare('PRAGMA journal_mode = WAL').get() as Row | undefined)?.journal_mode)
      const store = new SqliteStore(file, db, mode)
      store.migrate(options.migrations ?? MIGRATIONS)
      return store
    } catch (err) {
      try {
        db?.close()
      } catch {
        // already failing: the first error is the one to report
      }
      if (err instanceof StoreError) throw err
      throw new StoreError(`cannot open the state store ${file}: ${(err as Error)?.message ?? String(err)}`, {
        code: codeOf(err),
        location: file,
        cause: err,
      })
    }
  }

  /** The schema version recorded in the file (0 for a new file). */
  schemaVersion(): number {
    return this.guard('schemaVersion', () => this.readSchemaVersion())
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.statements.clear()
    this.db.close()
  }

  // ---------- host state ----------

  async getHostState(hostId: string): Promise<VersionedHostState | undefined> {
    return this.guard('getHostState', () => {
      const row = this.stmt('SELECT version, state FROM host_state WHERE host_id = ?').get(hostId) as Row | undefined
      return row && { version: num(row.version), state: JSON.parse(String(row.state)) as HostState }
    })
  }

  async putHostState(hostId: string, state: HostState, expectedVersion: number | undefined): Promise<number> {
    return this.guard('putHostState', () => {
      checkStateHost(hostId, state)
      checkExpectedVersion(expectedVersion)
      const text = toJson(state, `host state of ${hostId}`)
      if (expectedVersion === undefined) {
        try {
          this.stmt('INSERT INTO host_state (host_id, version, state) VALUES (?, 1, ?)').run(hostId, text)
          return 1
        } catch (err) {
          if (sqliteCode(err) !== SQLITE.CONSTRAINT) throw err
          throw new ConflictError(hostId, undefined, this.versionOf(hostId), { location: this.path, cause: err })
        }
      }
      const done = this.stmt(
        'UPDATE host_state SET version = version + 1, state = ? WHERE host_id = ? AND version = ?',
      ).run(text, hostId, expectedVersion)
      if (done.changes === 0) {
        throw new ConflictError(hostId, expectedVersion, this.versionOf(hostId), { location: this.path })
      }
      return expectedVersion + 1
    })
  }

  // ---------- actions ----------

  async recordDecisions(hostId: string, decisions: readonly Decision[], at: string): Promise<string[]> {
    return this.guard('recordDecisions', () => {
      checkHostId(hostId, 'decisions')
      checkDecisionHosts(hostId, decisions)
      const atMs = toMs(at, 'decisions: at')
      const insert = this.stmt(
        `INSERT INTO actions (key, host_id, incident_id, type, decision, decided_at, decided_at_iso)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET
           host_id = excluded.host_id, incident_id = excluded.incident_id, type = excluded.type,
           decision = excluded.decision, decided_at = excluded.decided_at, decided_at_iso = excluded.decided_at_iso
         WHERE actions.decision IS NULL`,
      )
      return this.write(() => {
        const added: string[] = []
        for (const d of decisions) {
          // Serialized inside the transaction on purpose: a failure part-way stores nothing of the batch.
          const text = toJson(d, `decision ${d.key}`)
          if (insert.run(d.key, hostId, d.incidentId, d.type, text, atMs, at).changes > 0) added.push(d.key)
        }
        return added
      })
    })
  }

  async recordResult(result: RemediationResultV1): Promise<boolean> {
    return this.guard('recordResult', () => {
      const text = toJson(result, `result ${result.key}`)
      const finishedMs = toMs(result.finishedAt, `result ${result.key}: finishedAt`)
      const done = this.stmt(
        `INSERT INTO actions (key, host_id, result, result_remediation, result_status, dry_run, finished_at,
           bytes_recovered)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET
           host_id = coalesce(actions.host_id, excluded.host_id), result = excluded.result,
           result_remediation = excluded.result_remediation, result_status = excluded.result_status,
           dry_run = excluded.dry_run, finished_at = excluded.finished_at, bytes_recovered = excluded.bytes_recovered
         WHERE actions.result IS NULL`,
      ).run(
        result.key,
        result.host ?? null,
        text,
        result.remediation,
        result.status,
        result.dryRun ? 1 : 0,
        finishedMs,
        bytesOf(result),
      )
      return done.changes > 0
    })
  }

  async getAction(key: string): Promise<ActionRecord | undefined> {
    return this.guard('getAction', () => {
      const row = this.stmt(
        'SELECT key, host_id, incident_id, decision, decided_at_iso, result FROM actions WHERE key = ?',
      ).get(key) as Row | undefined
      if (!row) return undefined
      const decision = str(row.decision)
      const result = str(row.result)
      return {
        key: String(row.key),
        ...opt('hostId', str(row.host_id)),
        ...opt('incidentId', str(row.incident_id)),
        ...(decision ? { decision: JSON.parse(decision) as Decision, recordedAt: String(row.decided_at_iso) } : {}),
        ...(result ? { result: JSON.parse(result) as RemediationResultV1 } : {}),
      }
    })
  }

  // ---------- incidents ----------

  async upsertIncident(incident: Incident): Promise<boolean> {
    return this.guard('upsertIncident', () => {
      const text = toJson(incident, `incident ${incident.id}`)
      const what = `incident ${incident.id}`
      const openedMs = toMs(incident.openedAt, `${what}: openedAt`)
      const updatedMs = toMs(incident.updatedAt, `${what}: updatedAt`)
      const resolvedMs =
        incident.resolvedAt === undefined ? undefined : toMs(incident.resolvedAt, `${what}: resolvedAt`)
      const attempts = incident.attempts.map((a, idx) => ({
        idx,
        key: a.key,
        remediation: a.remediation,
        status: a.status,
        startedMs: toMs(a.startedAt, `${what}: attempt ${a.key}: startedAt`),
      }))
      const upsert = this.stmt(
        `INSERT INTO incidents (id, host_id, status, severity, opened_at, updated_at, resolved_at, data)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET
           host_id = excluded.host_id, status = excluded.status, severity = excluded.severity,
           opened_at = excluded.opened_at, updated_at = excluded.updated_at, resolved_at = excluded.resolved_at,
           data = excluded.data
         WHERE excluded.updated_at >= incidents.updated_at`,
      )
      const clear = this.stmt('DELETE FROM incident_attempts WHERE incident_id = ?')
      const add = this.stmt(
        `INSERT INTO incident_attempts (incident_id, idx, key, remediation, status, started_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      )
      return this.write(() => {
        const resolvedAt = incident.status === 'resolved' ? (resolvedMs ?? updatedMs) : null
        const done = upsert.run(
          incident.id,
          incident.host,
          incident.status,
          incident.severity,
          openedMs,
          updatedMs,
          resolvedAt,
          text,
        )
        if (done.changes === 0) return false
        clear.run(incident.id)
        for (const a of attempts) add.run(incident.id, a.idx, a.key, a.remediation, a.status, a.startedMs)
        return true
      })
    })
  }

  async getIncident(id: string): Promise<Incident | undefined> {
    return this.guard('getIncident', () => {
      const row = this.stmt('SELECT data FROM incidents WHERE id = ?').get(id) as Row | undefined
      return row && (JSON.parse(String(row.data)) as Incident)
    })
  }

  async listIncidents(query: ListIncidentsQuery): Promise<Incident[]> {
    return this.guard('listIncidents', () => {
      const where: string[] = []
      const args: SQLInputValue[] = []
      if (query.hostId !== undefined) {
        where.push('host_id = ?')
        args.push(query.hostId)
      }
      if ((query.status ?? 'open') === 'open') where.push("status <> 'resolved'")
      if (query.before !== undefined) {
        where.push('opened_at < ?')
        args.push(toMs(query.before, 'listIncidents: before'))
      }
      args.push(toLimit(query.limit))
      const rows = this.stmt(
        `SELECT data FROM incidents ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY opened_at DESC, id ASC LIMIT ?`,
      ).all(...args) as Row[]
      return rows.map((r) => JSON.parse(String(r.data)) as Incident)
    })
  }

  // ---------- audit ----------

  async appendAudit(entries: readonly AuditRecord[]): Promise<AuditEntry[]> {
    return this.guard('appendAudit', () => {
      const insert = this.stmt(
        `INSERT INTO audit (id, kind, at, at_iso, host_id, incident_id, key, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING`,
      )
      return this.write(() => {
        const out: AuditEntry[] = []
        for (const e of entries) {
          // Checked and serialized inside the transaction: a bad entry part-way stores nothing of the batch.
          const { record, atMs } = auditRecordOf(e)
          const done = insert.run(
            record.id ?? null,
            record.kind,
            atMs,
            record.at,
            record.hostId,
            record.incidentId ?? null,
            record.key ?? null,
            toJson(record.data, `audit entry ${record.kind}: data`),
          )
          if (done.changes > 0) out.push({ ...record, seq: Number(done.lastInsertRowid) })
        }
        return out
      })
    })
  }

  async listAudit(query: ListAuditQuery): Promise<AuditEntry[]> {
    return this.guard('listAudit', () => {
      const where: string[] = []
      const args: SQLInputValue[] = []
      if (query.hostId !== undefined) {
        where.push('host_id = ?')
        args.push(query.hostId)
      }
      if (query.incidentId !== undefined) {
        where.push('incident_id = ?')
        args.push(query.incidentId)
      }
      if (query.since !== undefined) {
        where.push('at >= ?')
        args.push(toMs(query.since, 'listAudit: since'))
      }
      args.push(toLimit(query.limit))
      const rows = this.stmt(
        `SELECT seq, id, kind, at_iso, host_id, incident_id, key, data FROM audit
         ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, seq DESC LIMIT ?`,
      ).all(...args) as Row[]
      return rows.map((r) => ({
        kind: String(r.kind) as AuditKind,
        at: String(r.at_iso),
        hostId: String(r.host_id),
        ...opt('incidentId', str(r.incident_id)),
        ...opt('key', str(r.key)),
        ...opt('id', str(r.id)),
        data: JSON.parse(String(r.data)) as Record<string, unknown>,
        seq: num(r.seq),
      }))
    })
  }

  // ---------- retention ----------

  async prune(options: PruneOptions): Promise<PruneResult> {
    return this.guard('prune', () => {
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
      return this.write(() => {
        const changes = (sql: string, ...args: SQLInputValue[]): number => Number(this.stmt(sql).run(...args).changes)
        return {
          audit: changes('DELETE FROM audit WHERE at < ?', auditCut),
          incidents: changes('DELETE FROM incidents WHERE resolved_at < ?', incidentCut),
          actions:
            actionCut === undefined
              ? 0
              : changes('DELETE FROM actions WHERE coalesce(decided_at, finished_at) < ?', actionCut),
          notifications:
            notificationCut === undefined
              ? 0
              : changes("DELETE FROM outbox WHERE status <> 'pending' AND done_at < ?", notificationCut),
          dedup:
            notificationCut === undefined ? 0 : changes('DELETE FROM notification_dedup WHERE at < ?', notificationCut),
        }
      })
    })
  }

  // ---------- stats ----------

  async summarize(query: SummaryQuery): Promise<StoreSummary> {
    return this.guard('summarize', () => {
      const sinceMs = toMs(query.since, 'summarize: since')
      const nowMs = toMs(query.now, 'summarize: now')
      const host = query.hostId ?? null
      // `? IS NULL OR host_id = ?`: one statement for one host and for all of them.
      const bySeverity = emptyBySeverity()
      let openTotal = 0
      const open = this.stmt(
        `SELECT severity, count(*) AS n FROM incidents
         WHERE status <> 'resolved' AND (? IS NULL OR host_id = ?) GROUP BY severity`,
      ).all(host, host) as Row[]
      for (const r of open) {
        const level = String(r.severity) as Level
        if (Object.hasOwn(bySeverity, level)) bySeverity[level] += num(r.n)
        openTotal += num(r.n)
      }
      const resolved = this.stmt(
        `SELECT count(*) AS n,
           coalesce(sum(EXISTS (SELECT 1 FROM incident_attempts a WHERE a.incident_id = i.id AND a.status = 'verified')), 0)
             AS auto
         FROM incidents i WHERE resolved_at BETWEEN ? AND ? AND (? IS NULL OR host_id = ?)`,
      ).get(sinceMs, nowMs, host, host) as Row
      const verifiedFixes = (
        this.stmt(
          `SELECT a.remediation, count(*) AS n FROM incident_attempts a JOIN incidents i ON i.id = a.incident_id
           WHERE a.status = 'verified' AND a.started_at BETWEEN ? AND ? AND (? IS NULL OR i.host_id = ?)
           GROUP BY a.remediation ORDER BY a.remediation`,
        ).all(sinceMs, nowMs, host, host) as Row[]
      ).map((r) => ({ remediation: String(r.remediation), count: num(r.n) }))
      let bytesRecovered = 0
      const fixes: FixCount[] = (
        this.stmt(
          `SELECT result_remediation, result_status, count(*) AS n, coalesce(sum(bytes_recovered), 0) AS bytes
           FROM actions WHERE result IS NOT NULL AND finished_at BETWEEN ? AND ? AND (? IS NULL OR host_id = ?)
           GROUP BY result_remediation, result_status ORDER BY result_remediation, result_status`,
        ).all(sinceMs, nowMs, host, host) as Row[]
      ).map((r) => {
        bytesRecovered += num(r.bytes)
        return {
          remediation: String(r.result_remediation),
          status: String(r.result_status) as RemediationStatus,
          count: num(r.n),
        }
      })
      return summaryOf(query, {
        openTotal,
        bySeverity,
        fixes,
        bytesRecovered,
        verified: verifiedFixes,
        resolvedIncidents: num(resolved.n),
        autoResolved: num(resolved.auto),
      })
    })
  }

  // ---------- dedup ----------

  async seen(id: string): Promise<boolean> {
    return this.guard(
      'seen',
      () => this.stmt('SELECT 1 AS x FROM notification_dedup WHERE id = ?').get(id) !== undefined,
    )
  }

  async remember(id: string, at: string): Promise<void> {
    this.guard('remember', () => {
      const atMs = toMs(at, `remember ${id}: at`)
      this.stmt('INSERT INTO notification_dedup (id, at, at_iso) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING').run(
        id,
        atMs,
        at,
      )
    })
  }

  // ---------- outbox ----------

  async enqueueNotifications(messages: readonly NotificationV1[]): Promise<string[]> {
    return this.guard('enqueueNotifications', () => {
      const insert = this.stmt('INSERT INTO outbox (id, message) VALUES (?, ?) ON CONFLICT (id) DO NOTHING')
      return this.write(() => {
        const added: string[] = []
        for (const m of messages) {
          if (insert.run(m.id, toJson(m, `notification ${m.id}`)).changes > 0) added.push(m.id)
        }
        return added
      })
    })
  }

  async pendingNotifications(limit: number, now: string): Promise<OutboxEntry[]> {
    return this.guard('pendingNotifications', () => {
      const rows = this.stmt(
        `SELECT * FROM outbox WHERE status = 'pending' AND (retry_at IS NULL OR retry_at <= ?) ORDER BY seq LIMIT ?`,
      ).all(toMs(now, 'pendingNotifications: now'), toLimit(limit)) as Row[]
      return rows.map(outboxEntryOf)
    })
  }

  async markNotificationSent(id: string, at: string): Promise<void> {
    this.guard('markNotificationSent', () => {
      const atMs = toMs(at, `notification ${id}: sent at`)
      const done = this.stmt(
        `UPDATE outbox SET status = 'sent', sent_at_iso = ?, done_at = ?, retry_at = NULL, retry_at_iso = NULL
         WHERE id = ? AND status <> 'sent'`,
      ).run(at, atMs, id)
      if (done.changes === 0) this.requireMessage(id)
    })
  }

  async markNotificationFailed(id: string, at: string, error: string, retryAt: string | null): Promise<void> {
    this.guard('markNotificationFailed', () => {
      const atMs = toMs(at, `notification ${id}: failed at`)
      const retryMs = retryAt === null ? null : toMs(retryAt, `notification ${id}: retryAt`)
      const done = this.stmt(
        `UPDATE outbox SET attempts = attempts + 1, last_error = ?, last_attempt_at_iso = ?, done_at = ?,
           status = ?, retry_at = ?, retry_at_iso = ?
         WHERE id = ? AND status <> 'sent'`,
      ).run(String(error), at, atMs, retryAt === null ? 'dead' : 'pending', retryMs, retryAt, id)
      if (done.changes === 0) this.requireMessage(id)
    })
  }

  async getNotification(id: string): Promise<OutboxEntry | undefined> {
    return this.guard('getNotification', () => {
      const row = this.stmt('SELECT * FROM outbox WHERE id = ?').get(id) as Row | undefined
      return row && outboxEntryOf(row)
    })
  }

  // ---------- plumbing ----------

  private requireMessage(id: string): void {
    if (this.stmt('SELECT 1 AS x FROM outbox WHERE id = ?').get(id) === undefined) {
      throw new StoreError(`notification ${id} is not in the outbox`, { code: 'not-found', location: this.path })
    }
  }

  private versionOf(hostId: string): number | undefined {
    const row = this.stmt('SELECT version FROM host_state WHERE host_id = ?').get(hostId) as Row | undefined
    return row ? num(row.version) : undefined
  }

  private stmt(sql: string): StatementSync {
    let s = this.statements.get(sql)
    if (!s) {
      s = this.db.prepare(sql)
      this.statements.set(sql, s)
    }
    return s
  }

  /** Run `fn` in one write transaction (`BEGIN IMMEDIATE`): all of it or, when it throws, none of it. */
  private write<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE')
    try {
      const out = fn()
      this.db.exec('COMMIT')
      return out
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK')
      throw err
    }
  }

  /** Every public method goes through here: a closed store, and SQLite errors translated to StoreError. */
  private guard<T>(op: string, fn: () => T): T {
    if (this.closed)
      throw new StoreError(`${op}: the state store ${this.path} is closed`, { code: 'closed', location: this.path })
    try {
      return fn()
    } catch (err) {
      if (err instanceof StoreError) {
        if (err.location !== undefined || err instanceof ConflictError) throw err
        throw new StoreError(err.message, { code: err.code, location: this.path, cause: err.cause ?? err })
      }
      throw new StoreError(`${op} on ${this.path}: ${(err as Error)?.message ?? String(err)}`, {
        code: codeOf(err),
        location: this.path,
        cause: err,
      })
    }
  }

  private readSchemaVersion(): number {
    const table = this.db
      .prepare("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
      .get()
    if (!table) return 0
    const row = this.db.prepare('SELECT max(version) AS v FROM schema_version').get() as Row | undefined
    return num(row?.v)
  }

  /** Apply the migrations the file lacks, each in its own transaction; refuse a file from a newer version. */
  private migrate(migrations: readonly (readonly string[])[]): void {
    const refuseNewer = (found: number): void => {
      if (found > migrations.length) {
        throw new StoreError(
          `the state store ${this.path} has schema version ${found}, newer than this ANSAI understands (${migrations.length}): upgrade ANSAI, or move the file away to start afresh`,
          { code: 'newer-schema', location: this.path },
        )
      }
    }
    refuseNewer(this.readSchemaVersion())
    for (let n = this.readSchemaVersion() + 1; n <= migrations.length; n++) {
      this.write(() => {
        this.db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY) STRICT')
        // Read again under the write lock: another process may have migrated meanwhile.
        const found = this.readSchemaVersion()
        refuseNewer(found)
        if (found >= n) return
        for (const sql of migrations[n - 1]!) this.db.exec(sql)
        this.db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(n)
      })
    }
  }
}

const outboxEntryOf = (r: Row): OutboxEntry => ({
  message: JSON.parse(String(r.message)) as NotificationV1,
  status: String(r.status) as OutboxStatus,
  attempts: num(r.attempts),
  ...opt('lastError', str(r.last_error)),
  ...opt('lastAttemptAt', str(r.last_attempt_at_iso)),
  ...opt('retryAt', str(r.retry_at_iso)),
  ...opt('sentAt', str(r.sent_at_iso)),
})
