/**
 * Rules every StateStore adapter applies the same way (the in-memory twin, SQLite, DynamoDB): input checks, JSON
 * copies, what counts as open, verified or recovered. Keeping them here keeps the adapters in step.
 */
import type { Decision, Incident, Level, RemediationResultV1 } from '../../contracts/index.ts'
import {
  AUDIT_KINDS,
  type AuditRecord,
  type FixCount,
  StoreError,
  type StoreSummary,
  type SummaryQuery,
} from '../../ports/store.ts'
import { estimateMinutesSaved } from './time-saved.ts'

/** Epoch ms of an ISO timestamp; a StoreError `invalid` when it is not one. */
export const toMs = (at: string, what: string): number => {
  const ms = typeof at === 'string' ? Date.parse(at) : Number.NaN
  if (Number.isNaN(ms)) throw new StoreError(`${what}: not a timestamp: ${JSON.stringify(at)}`, { code: 'invalid' })
  return ms
}

/** A duration in ms (retention bounds): finite and not negative. */
export const toDuration = (ms: number | undefined, what: string): number | undefined => {
  if (ms === undefined) return undefined
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new StoreError(`${what}: not a duration in ms: ${String(ms)}`, { code: 'invalid' })
  }
  return ms
}

/** A page size: a positive integer. */
export const toLimit = (limit: number, what = 'limit'): number => {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new StoreError(`${what}: must be a positive integer, got ${String(limit)}`, { code: 'invalid' })
  }
  return limit
}

/** JSON text of a value; a StoreError `invalid` when JSON cannot carry it (BigInt, cycles). */
export const toJson = (value: unknown, what: string): string => {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (err) {
    throw new StoreError(`${what}: not JSON-serializable: ${err instanceof Error ? err.message : String(err)}`, {
      code: 'invalid',
      cause: err,
    })
  }
  if (text === undefined) throw new StoreError(`${what}: not JSON-serializable`, { code: 'invalid' })
  return text
}

/** A deep copy through JSON: exactly what a JSON column or a DynamoDB item gives back. */
export const jsonCopy = <T>(value: T, what: string): T => JSON.parse(toJson(value, what)) as T

/**
 * An audit record checked and normalized (only the known fields, as a JSON copy), with its time in epoch ms.
 * Both adapters store exactly this, so they give back the same entries.
 */
export const auditRecordOf = (e: AuditRecord): { record: AuditRecord; atMs: number } => {
  if (!(AUDIT_KINDS as readonly string[]).includes(e?.kind)) {
    throw new StoreError(`audit entry: unknown kind ${JSON.stringify(e?.kind)}`, { code: 'invalid' })
  }
  checkHostId(e.hostId, 'audit entry')
  if (typeof e.data !== 'object' || e.data === null || Array.isArray(e.data)) {
    throw new StoreError(`audit entry ${e.kind}: data must be an object`, { code: 'invalid' })
  }
  const atMs = toMs(e.at, `audit entry ${e.kind}: at`)
  const record: AuditRecord = {
    kind: e.kind,
    at: e.at,
    hostId: e.hostId,
    ...(e.incidentId !== undefined ? { incidentId: e.incidentId } : {}),
    ...(e.key !== undefined ? { key: e.key } : {}),
    ...(e.id !== undefined ? { id: e.id } : {}),
    data: e.data,
  }
  return { record: jsonCopy(record, `audit entry ${e.kind}`), atMs }
}

export const checkHostId = (hostId: string, what: string): string => {
  if (typeof hostId !== 'string' || hostId.length === 0) {
    throw new StoreError(`${what}: a host id is required`, { code: 'invalid' })
  }
  return hostId
}

/** The state stored under a host must be that host's. */
export const checkStateHost = (hostId: string, state: { host: string }): void => {
  checkHostId(hostId, 'host state')
  if (state?.host !== hostId) {
    throw new StoreError(`host state of ${String(state?.host)} cannot be stored under host ${hostId}`, {
      code: 'invalid',
    })
  }
}

/** An expected version: undefined (no state yet) or a positive integer. */
export const checkExpectedVersion = (v: number | undefined): void => {
  if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
    throw new StoreError(`expected version must be a positive integer or undefined, got ${String(v)}`, {
      code: 'invalid',
    })
  }
}

/** Every decision must be the host's own: the host id comes from an authenticated sender, not from the payload. */
export const checkDecisionHosts = (hostId: string, decisions: readonly Decision[]): void => {
  for (const d of decisions) {
    if (d.host !== hostId) {
      throw new StoreError(`decision ${d.key} belongs to host ${d.host}, not ${hostId}`, { code: 'invalid' })
    }
  }
}

/** Not resolved yet: open, remediating, verifying, escalated or failed (failed still needs a human). */
export const isOpenIncident = (incident: Pick<Incident, 'status'>): boolean => incident.status !== 'resolved'

/** A fix that made the problem go away (the engine verified it). */
export const isVerifiedAttempt = (attempt: Incident['attempts'][number]): boolean => attempt.status === 'verified'

/** Resolved by ANSAI: at least one of its fixes was verified. */
export const resolvedByFix = (incident: Incident): boolean => incident.attempts.some(isVerifiedAttempt)

/** Bytes a result recovered, summed over its categories; 0 for a dry run (it recovered nothing). */
export const bytesOf = (result: RemediationResultV1): number =>
  result.dryRun ? 0 : Object.values(result.bytesRecovered ?? {}).reduce((a, b) => a + b, 0)

export const emptyBySeverity = (): Record<Level, number> => ({ ok: 0, warning: 0, critical: 0, emergency: 0 })

export const byRemediationThenStatus = (
  a: { remediation: string; status?: string },
  b: { remediation: string; status?: string },
): number =>
  a.remediation < b.remediation
    ? -1
    : a.remediation > b.remediation
      ? 1
      : (a.status ?? '') < (b.status ?? '')
        ? -1
        : (a.status ?? '') > (b.status ?? '')
          ? 1
          : 0

/** A tally of fix results by remediation and status, with the bytes they recovered. */
export class FixTally {
  private readonly counts = new Map<string, FixCount>()
  bytesRecovered = 0

  add(result: Pick<RemediationResultV1, 'remediation' | 'status' | 'dryRun' | 'bytesRecovered'>): void {
    const id = `${result.remediation}\u0000${result.status}`
    const f = this.counts.get(id) ?? { remediation: result.remediation, status: result.status, count: 0 }
    f.count += 1
    this.counts.set(id, f)
    this.bytesRecovered += bytesOf(result as RemediationResultV1)
  }

  get fixes(): FixCount[] {
    return [...this.counts.values()].sort(byRemediationThenStatus)
  }
}

/** The figures every store counts its own way, made into a {@link StoreSummary} the one same way. */
export const summaryOf = (
  query: Pick<SummaryQuery, 'since' | 'now'>,
  c: {
    openTotal: number
    bySeverity: Record<Level, number>
    fixes: FixCount[]
    bytesRecovered: number
    verified: ReadonlyMap<string, number> | readonly { remediation: string; count: number }[]
    resolvedIncidents: number
    autoResolved: number
  },
): StoreSummary => {
  const verifiedFixes = (
    c.verified instanceof Map
      ? [...c.verified].map(([remediation, count]) => ({ remediation, count }))
      : [...(c.verified as readonly { remediation: string; count: number }[])]
  ).sort(byRemediationThenStatus)
  return {
    since: query.since,
    now: query.now,
    openIncidents: { total: c.openTotal, bySeverity: c.bySeverity },
    fixes: c.fixes,
    verifiedFixes,
    bytesRecovered: c.bytesRecovered,
    resolvedIncidents: c.resolvedIncidents,
    autoResolved: c.autoResolved,
    autoResolvedShare: c.resolvedIncidents === 0 ? null : c.autoResolved / c.resolvedIncidents,
    timeSavedMinutes: estimateMinutesSaved(verifiedFixes),
  }
}
