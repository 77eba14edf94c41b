import type { Decision, Incident, NotificationV1, RemediationResultV1 } from '../../contracts/index.ts'
import type { HostState } from '../../engine/state.ts'
import {
  type ActionRecord,
  type AuditEntry,
  type AuditRecord,
  ConflictError,
  type ListAuditQuery,
  type ListIncidentsQuery,
  type OutboxEntry,
  type PruneOptions,
  type PruneResult,
  type StateStore,
  StoreError,
  type StoreSummary,
  type SummaryQuery,
  type VersionedHostState,
} from '../../ports/store.ts'
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
  jsonCopy,
  resolvedByFix,
  summaryOf,
  toDuration,
  toLimit,
  toMs,
} from './common.ts'

interface StoredAction {
  key: string
  hostId?: string
  decision?: Decision
  recordedAt?: string
  recordedMs?: number
  result?: RemediationResultV1
  finishedMs?: number
}

interface StoredAudit {
  entry: AuditEntry
  atMs: number
}

interface StoredMessage {
  seq: number
  entry: OutboxEntry
  retryMs?: number
  /** When it was sent or last tried, for retention. */
  doneMs?: number
}

/**
 * The in-memory twin of the StateStore port: plain Maps, for tests, `ansai simulate` and dry runs. Everything goes
 * in and comes out as a JSON copy, as it would through SQLite or DynamoDB, so callers cannot change what is stored.
 * It passes the same contract suite as the SQLite store (test/contract/store-contract.ts).
 */
export class InMemoryStateStore implements StateStore {
  private readonly hosts = new Map<string, { version: number; state: HostState }>()
  private readonly actions = new Map<string, StoredAction>()
  private readonly incidents = new Map<string, Incident>()
  private audit: StoredAudit[] = []
  private readonly auditIds = new Set<string>()
  private auditSeq = 0
  private readonly dedup = new Map<string, number>()
  private readonly outbox = new Map<string, StoredMessage>()
  private outboxSeq = 0

  // ---------- host state ----------

  async getHostState(hostId: string): Promise<VersionedHostState | undefined> {
    const row = this.hosts.get(hostId)
    return row && { state: jsonCopy(row.state, 'host state'), version: row.version }
  }

  async putHostState(hostId: string, state: HostState, expectedVersion: number | undefined): Promise<number> {
    checkStateHost(hostId, state)
    checkExpectedVersion(expectedVersion)
    const copy = jsonCopy(state, `host state of ${hostId}`)
    const current = this.hosts.get(hostId)?.version
    if (current !== expectedVersion) throw new ConflictError(hostId, expectedVersion, current)
    const version = (current ?? 0) + 1
    this.hosts.set(hostId, { version, state: copy })
    return version
  }

  // ---------- actions ----------

  async recordDecisions(hostId: string, decisions: readonly Decision[], at: string): Promise<string[]> {
    checkHostId(hostId, 'decisions')
    checkDecisionHosts(hostId, decisions)
    const atMs = toMs(at, 'decisions: at')
    const copies = decisions.map((d) => jsonCopy(d, `decision ${d.key}`))
    const added: string[] = []
    for (const decision of copies) {
      const action = this.actions.get(decision.key)
      if (action?.decision) continue
      this.actions.set(decision.key, {
        ...action,
        key: decision.key,
        hostId,
        decision,
        recordedAt: at,
        recordedMs: atMs,
      })
      added.push(decision.key)
    }
    return added
  }

  async recordResult(result: RemediationResultV1): Promise<boolean> {
    const copy = jsonCopy(result, `result ${result.key}`)
    const finishedMs = toMs(result.finishedAt, `result ${result.key}: finishedAt`)
    const action = this.actions.get(result.key)
    if (action?.result) return false
    this.actions.set(result.key, {
      ...action,
      key: result.key,
      ...(action?.hostId ? {} : result.host ? { hostId: result.host } : {}),
      result: copy,
      finishedMs,
    })
    return true
  }

  async getAction(key: string): Promise<ActionRecord | undefined> {
    const a = this.actions.get(key)
    if (!a) return undefined
    const incidentId = a.decision?.incidentId
    return jsonCopy(
      {
        key: a.key,
        ...(a.hostId ? { hostId: a.hostId } : {}),
        ...(incidentId ? { incidentId } : {}),
        ...(a.decision ? { decision: a.decision, recordedAt: a.recordedAt } : {}),
        ...(a.result ? { result: a.result } : {}),
      },
      'action',
    )
  }

  // ---------- incidents ----------

  async upsertIncident(incident: Incident): Promise<boolean> {
    const copy = jsonCopy(incident, `incident ${incident.id}`)
    const updatedMs = toMs(incident.updatedAt, `incident ${incident.id}: updatedAt`)
    toMs(incident.openedAt, `incident ${incident.id}: openedAt`)
    if (incident.resolvedAt !== undefined) toMs(incident.resolvedAt, `incident ${incident.id}: resolvedAt`)
    const stored = this.incidents.get(incident.id)
    if (stored && Date.parse(stored.updatedAt) > updatedMs) return false
    this.incidents.set(incident.id, copy)
    return true
  }

  async getIncident(id: string): Promise<Incident | undefined> {
    const i = this.incidents.get(id)
    return i && jsonCopy(i, 'incident')
  }

  async listIncidents(query: ListIncidentsQuery): Promise<Incident[]> {
    const limit = toLimit(query.limit)
    const beforeMs = query.before === undefined ? undefined : toMs(query.before, 'listIncidents: before')
    const openOnly = (query.status ?? 'open') === 'open'
    return [...this.incidents.values()]
      .filter(
        (i) =>
          (query.hostId === undefined || i.host === query.hostId) &&
          (!openOnly || isOpenIncident(i)) &&
          (beforeMs === undefined || Date.parse(i.openedAt) < beforeMs),
      )
      .sort((a, b) => Date.parse(b.openedAt) - Date.parse(a.openedAt) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, limit)
      .map((i) => jsonCopy(i, 'incident'))
  }

  // ---------- audit ----------

  async appendAudit(entries: readonly AuditRecord[]): Promise<AuditEntry[]> {
    const prepared = entries.map(auditRecordOf)
    const out: AuditEntry[] = []
    const batchIds = new Set<string>()
    for (const { atMs, record } of prepared) {
      if (record.id !== undefined && (this.auditIds.has(record.id) || batchIds.has(record.id))) continue
      if (record.id !== undefined) batchIds.add(record.id)
      this.auditSeq += 1
      const entry: AuditEntry = { ...record, seq: this.auditSeq }
      this.audit.push({ entry, atMs })
      out.push(jsonCopy(entry, 'audit entry'))
    }
    for (const id of batchIds) this.auditIds.add(id)
    return out
  }

  async listAudit(query: ListAuditQuery): Promise<AuditEntry[]> {
    const limit = toLimit(query.limit)
    const sinceMs = query.since === undefined ? undefined : toMs(query.since, 'listAudit: since')
    return this.audit
      .filter(
        ({ entry, atMs }) =>
          (query.hostId === undefined || entry.hostId === query.hostId) &&
          (query.incidentId === undefined || entry.incidentId === query.incidentId) &&
          (sinceMs === undefined || atMs >= sinceMs),
      )
      .sort((a, b) => b.atMs - a.atMs || b.entry.seq - a.entry.seq)
      .slice(0, limit)
      .map(({ entry }) => jsonCopy(entry, 'audit entry'))
  }

  // ---------- retention ----------

  async prune(options: PruneOptions): Promise<PruneResult> {
    const nowMs = toMs(options.now, 'prune: now')
    const cutoff = (ms: number | undefined, what: string): number | undefined => {
      const d = toDuration(ms, `prune: ${what}`)
      return d === undefined ? undefined : nowMs - d
    }
    const auditCut = cutoff(options.auditOlderThan, 'auditOlderThan')!
    const incidentCut = cutoff(options.resolvedIncidentsOlderThan, 'resolvedIncidentsOlderThan')!
    const actionCut = cutoff(options.actionsOlderThan, 'actionsOlderThan')
    const notificationCut = cutoff(options.notificationsOlderThan, 'notificationsOlderThan')
    const result: PruneResult = { audit: 0, incidents: 0, actions: 0, notifications: 0, dedup: 0 }

    const keep = this.audit.filter((a) => a.atMs >= auditCut)
    result.audit = this.audit.length - keep.length
    for (const a of this.audit) if (a.atMs < auditCut && a.entry.id !== undefined) this.auditIds.delete(a.entry.id)
    this.audit = keep

    for (const [id, i] of this.incidents) {
      if (i.status === 'resolved' && Date.parse(i.resolvedAt ?? i.updatedAt) < incidentCut) {
        this.incidents.delete(id)
        result.incidents += 1
      }
    }
    if (actionCut !== undefined) {
      for (const [key, a] of this.actions) {
        if ((a.recordedMs ?? a.finishedMs!) < actionCut) {
          this.actions.delete(key)
          result.actions += 1
        }
      }
    }
    if (notificationCut !== undefined) {
      for (const [id, m] of this.outbox) {
        if (m.entry.status !== 'pending' && m.doneMs !== undefined && m.doneMs < notificationCut) {
          this.outbox.delete(id)
          result.notifications += 1
        }
      }
      for (const [id, atMs] of this.dedup) {
        if (atMs < notificationCut) {
          this.dedup.delete(id)
          result.dedup += 1
        }
      }
    }
    return result
  }

  // ---------- stats ----------

  async summarize(query: SummaryQuery): Promise<StoreSummary> {
    const sinceMs = toMs(query.since, 'summarize: since')
    const nowMs = toMs(query.now, 'summarize: now')
    const inWindow = (ms: number): boolean => ms >= sinceMs && ms <= nowMs
    const ofHost = (host: string | undefined): boolean => query.hostId === undefined || host === query.hostId

    const bySeverity = emptyBySeverity()
    let openTotal = 0
    let resolvedIncidents = 0
    let autoResolved = 0
    const verified = new Map<string, number>()
    for (const i of this.incidents.values()) {
      if (!ofHost(i.host)) continue
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

    const tally = new FixTally()
    for (const a of this.actions.values()) {
      if (a.result && ofHost(a.hostId) && inWindow(a.finishedMs!)) tally.add(a.result)
    }
    return summaryOf(query, {
      openTotal,
      bySeverity,
      fixes: tally.fixes,
      bytesRecovered: tally.bytesRecovered,
      verified,
      resolvedIncidents,
      autoResolved,
    })
  }

  // ---------- dedup ----------

  async seen(id: string): Promise<boolean> {
    return this.dedup.has(id)
  }

  async remember(id: string, at: string): Promise<void> {
    const atMs = toMs(at, `remember ${id}: at`)
    if (!this.dedup.has(id)) this.dedup.set(id, atMs)
  }

  // ---------- outbox ----------

  async enqueueNotifications(messages: readonly NotificationV1[]): Promise<string[]> {
    const copies = messages.map((m) => jsonCopy(m, `notification ${m.id}`))
    const added: string[] = []
    for (const message of copies) {
      if (this.outbox.has(message.id)) continue
      this.outboxSeq += 1
      this.outbox.set(message.id, { seq: this.outboxSeq, entry: { message, status: 'pending', attempts: 0 } })
      added.push(message.id)
    }
    return added
  }

  async pendingNotifications(limit: number, now: string): Promise<OutboxEntry[]> {
    const n = toLimit(limit)
    const nowMs = toMs(now, 'pendingNotifications: now')
    return [...this.outbox.values()]
      .filter((m) => m.entry.status === 'pending' && (m.retryMs === undefined || m.retryMs <= nowMs))
      .sort((a, b) => a.seq - b.seq)
      .slice(0, n)
      .map((m) => jsonCopy(m.entry, 'notification'))
  }

  async markNotificationSent(id: string, at: string): Promise<void> {
    const atMs = toMs(at, `notification ${id}: sent at`)
    const m = this.outboxEntry(id)
    if (m.entry.status === 'sent') return
    m.entry.status = 'sent'
    m.entry.sentAt = at
    delete m.entry.retryAt
    m.retryMs = undefined
    m.doneMs = atMs
  }

  async markNotificationFailed(id: string, at: string, error: string, retryAt: string | null): Promise<void> {
    const atMs = toMs(at, `notification ${id}: failed at`)
    const retryMs = retryAt === null ? undefined : toMs(retryAt, `notification ${id}: retryAt`)
    const m = this.outboxEntry(id)
    if (m.entry.status === 'sent') return
    m.entry.attempts += 1
    m.entry.lastError = String(error)
    m.entry.lastAttemptAt = at
    m.doneMs = atMs
    if (retryAt === null) {
      m.entry.status = 'dead'
      delete m.entry.retryAt
      m.retryMs = undefined
    } else {
      m.entry.status = 'pending'
      m.entry.retryAt = retryAt
      m.retryMs = retryMs
    }
  }

  async getNotification(id: string): Promise<OutboxEntry | undefined> {
    const m = this.outbox.get(id)
    return m && jsonCopy(m.entry, 'notification')
  }

  private outboxEntry(id: string): StoredMessage {
    const m = this.outbox.get(id)
    if (!m) throw new StoreError(`notification ${id} is not in the outbox`, { code: 'not-found' })
    return m
  }
}
