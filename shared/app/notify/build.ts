import {
  type Decision,
  type EventType,
  type Level,
  levelRank,
  type NotificationV1,
  type NotifyDecision,
  type RemediateDecision,
  type RemediationResultV1,
} from '../../contracts/index.ts'
import { stableHash } from '../../engine/hash.ts'
import { formatBytes, formatValue, truncate } from './format.ts'
import { renderText } from './text.ts'

/** A fix result tied to its incident (the runner knows which incident each fix it ran belongs to). */
export interface FixOutcome {
  incidentId: string
  result: RemediationResultV1
}

export interface BuildNotificationsInput {
  /**
   * The decisions of one evaluation cycle. Notify decisions become messages; remediate decisions only link fix
   * results (by key) to their incidents.
   */
  decisions: readonly Decision[]
  /**
   * Fix results to report with the incidents they belong to: plain results are linked through the remediate
   * decisions above, results of earlier cycles come as `{ incidentId, result }`.
   */
  results?: readonly (RemediationResultV1 | FixOutcome)[]
  /** Host names for subjects and bodies (decisions carry host ids); a host not listed is shown by its id. */
  hosts?: readonly { id: string; hostname: string }[]
  /** Channels for decisions that name none (e.g. `['console']`); none by default: such decisions stay silent. */
  defaultChannels?: readonly string[]
  /** Configured channel names: an escalation whose target (`escalate: page`) names one is sent there too. */
  channels?: readonly string[]
}

/** Which event of a group names the message: the first found in this order. */
const HEADLINE_ORDER: readonly EventType[] = [
  'ansai.incident.escalated.v1',
  'ansai.incident.resolved.v1',
  'ansai.incident.failed.v1',
  'ansai.fix.failed.v1',
  'ansai.fix.verified.v1',
  'ansai.fix.started.v1',
  'ansai.fix.skipped.v1',
  'ansai.incident.worsened.v1',
  'ansai.incident.opened.v1',
  'ansai.milestone.reached.v1',
]

export const MAX_SUBJECT = 300
export const MAX_TEXT = 20_000
export const SUBJECT_PREFIX = '[ANSAI]'

/** What a message says, before it is addressed to a channel. */
export interface MessageGroup {
  incidentId: string
  /** The decisions in it, in the engine's order (causal order). */
  decisions: NotifyDecision[]
  headline: NotifyDecision
  escalateTo?: string
  severity: Level
  hostname: string
  results: RemediationResultV1[]
  /** Remediate decisions of this cycle for the incident (their `verifyBy` says when the fix is checked). */
  remediations: RemediateDecision[]
}

const isOutcome = (r: RemediationResultV1 | FixOutcome): r is FixOutcome => 'incidentId' in r && 'result' in r

const maxLevel = (levels: readonly Level[]): Level =>
  levels.reduce<Level>((top, l) => (levelRank(l) > levelRank(top) ? l : top), 'ok')

const headlineOf = (decisions: readonly NotifyDecision[]): NotifyDecision => {
  for (const event of HEADLINE_ORDER) {
    const found = decisions.findLast((d) => d.event === event)
    if (found) return found
  }
  return decisions[decisions.length - 1]!
}

/** Fix results per incident, one per result key (the last one given wins). */
const linkResults = (
  decisions: readonly Decision[],
  results: readonly (RemediationResultV1 | FixOutcome)[],
): Map<string, RemediationResultV1[]> => {
  const incidentOfKey = new Map<string, string>()
  for (const d of decisions) if (d.type === 'remediate') incidentOfKey.set(d.key, d.incidentId)
  const byIncident = new Map<string, Map<string, RemediationResultV1>>()
  for (const r of results) {
    const incidentId = isOutcome(r) ? r.incidentId : incidentOfKey.get(r.key)
    const result = isOutcome(r) ? r.result : r
    if (!incidentId) continue
    const m = byIncident.get(incidentId) ?? new Map<string, RemediationResultV1>()
    m.set(result.key, result)
    byIncident.set(incidentId, m)
  }
  return new Map([...byIncident].map(([k, m]) => [k, [...m.values()]]))
}

/**
 * Group the notify decisions of one cycle: one group per incident, and each escalation in a group of its own.
 * Groups come most severe first; equal severities keep the engine's order.
 */
export const groupDecisions = (input: BuildNotificationsInput): MessageGroup[] => {
  const hostnames = new Map((input.hosts ?? []).map((h) => [h.id, h.hostname]))
  const results = linkResults(input.decisions, input.results ?? [])
  const seenKeys = new Set<string>()
  const buckets = new Map<string, NotifyDecision[]>()
  for (const d of input.decisions) {
    if (d.type !== 'notify' || seenKeys.has(d.key)) continue
    seenKeys.add(d.key)
    const bucket =
      d.event === 'ansai.incident.escalated.v1' ? `escalation\u0000${d.key}` : `incident\u0000${d.incidentId}`
    const list = buckets.get(bucket) ?? []
    list.push(d)
    buckets.set(bucket, list)
  }
  const groups = [...buckets.values()].map((decisions): MessageGroup => {
    const headline = headlineOf(decisions)
    return {
      incidentId: headline.incidentId,
      decisions,
      headline,
      ...(headline.escalateTo ? { escalateTo: headline.escalateTo } : {}),
      severity: maxLevel(decisions.map((d) => d.severity)),
      hostname: hostnames.get(headline.host) ?? headline.host,
      results: results.get(headline.incidentId) ?? [],
      remediations: input.decisions.filter(
        (d): d is RemediateDecision => d.type === 'remediate' && d.incidentId === headline.incidentId,
      ),
    }
  })
  return groups
    .map((g, i) => ({ g, i }))
    .sort((a, b) => levelRank(b.g.severity) - levelRank(a.g.severity) || a.i - b.i)
    .map(({ g }) => g)
}

const totalBytes = (r: RemediationResultV1): number =>
  Object.values(r.bytesRecovered ?? {}).reduce((sum, n) => sum + n, 0)

/** Bytes recovered by the successful (or dry-run) fixes of a group, and which remediations did it. */
export const recoveredBy = (
  results: readonly RemediationResultV1[],
): { bytes: number; by: string[]; dryRun: boolean } | undefined => {
  const real = results.filter((r) => r.status === 'succeeded' && r.bytesRecovered)
  const picked = real.length > 0 ? real : results.filter((r) => r.status === 'dry-run' && r.bytesRecovered)
  if (picked.length === 0) return undefined
  return {
    bytes: picked.reduce((sum, r) => sum + totalBytes(r), 0),
    by: [...new Set(picked.map((r) => r.remediation))],
    dryRun: real.length === 0,
  }
}

const remediationOf = (d: NotifyDecision): string | undefined =>
  typeof d.evidence.remediation === 'string' ? d.evidence.remediation : undefined

const valuesOf = (d: NotifyDecision): string | undefined => {
  const v = d.evidence.values
  if (!v || typeof v !== 'object') return undefined
  const entries = Object.entries(v as Record<string, unknown>)
  if (entries.length === 0) return undefined
  return entries
    .slice(0, 3)
    .map(([k, x]) => `${k}=${formatValue(x, 30)}`)
    .join(', ')
}

const recoveredPhrase = (g: MessageGroup): string | undefined => {
  const rec = recoveredBy(g.results)
  if (!rec) return undefined
  return rec.dryRun
    ? `would recover ${formatBytes(rec.bytes)} by ${rec.by.join(', ')} (dry-run)`
    : `recovered ${formatBytes(rec.bytes)} by ${rec.by.join(', ')}`
}

/** The subject without its `[ANSAI]` prefix: `RESOLVED disk-pressure /var on web-1 — recovered 1.2 GiB by disk-cleanup`. */
export const titleOf = (g: MessageGroup): string => {
  const h = g.headline
  const where = `${h.policy} ${h.resource} on ${g.hostname}`.replace(/\s+/g, ' ')
  const level = g.severity.toUpperCase()
  const fixNames = (): string => {
    const names = g.decisions.map(remediationOf).filter((x): x is string => x !== undefined)
    return [...new Set(names)].join(', ')
  }
  const values = valuesOf(h)
  let label: string
  let tail: string | undefined
  switch (h.event) {
    case 'ansai.incident.escalated.v1':
      label = 'ESCALATED'
      tail = `needs a human (${h.escalateTo ?? 'default'})`
      break
    case 'ansai.incident.resolved.v1': {
      label = 'RESOLVED'
      const fixes = Array.isArray(h.evidence.fixes)
        ? (h.evidence.fixes as { remediation?: unknown; status?: unknown }[])
        : []
      const worked = [
        ...new Set(
          fixes.filter((f) => f.status === 'verified' || f.status === 'succeeded').map((f) => String(f.remediation)),
        ),
      ]
      tail = recoveredPhrase(g) ?? (worked.length ? `fixed by ${worked.join(', ')}` : 'healthy again')
      break
    }
    case 'ansai.incident.failed.v1':
      label = 'FAILED'
      tail = `every fix was tried, still ${h.severity}`
      break
    case 'ansai.fix.failed.v1':
      label = 'FIX FAILED'
      tail = `${remediationOf(h) ?? 'the fix'} did not fix it`
      break
    case 'ansai.fix.verified.v1':
      label = 'FIXED'
      tail = recoveredPhrase(g) ?? `by ${remediationOf(h) ?? 'the fix'}`
      break
    case 'ansai.fix.started.v1': {
      label = level
      const failed = g.results.find((r) => r.status === 'failed' || r.status === 'skipped')
      const name = fixNames() || 'a fix'
      if (failed) tail = `${failed.remediation} ${failed.status}`
      else tail = recoveredPhrase(g) ?? (h.evidence.dryRun === true ? `would run ${name} (dry-run)` : `running ${name}`)
      break
    }
    case 'ansai.fix.skipped.v1':
      label = level
      tail = `fix held back: ${formatValue(h.evidence.reason, 120)}`
      break
    case 'ansai.incident.worsened.v1':
      label = level
      tail = `worse, was ${formatValue(h.evidence.from, 20)}${values ? ` (${values})` : ''}`
      break
    case 'ansai.milestone.reached.v1':
      label = level
      tail = `${formatValue(h.evidence.field, 40)} ${formatValue(h.evidence.value, 20)} reached ${formatValue(h.evidence.point, 20)}`
      break
    default:
      label = level
      tail = values
  }
  return truncate(tail ? `${label} ${where} — ${tail}` : `${label} ${where}`, MAX_SUBJECT - SUBJECT_PREFIX.length - 1)
}

/** The message id: deterministic from the channel and the decision keys, so a redelivery is recognised. */
export const messageIdOf = (channel: string, keys: readonly string[]): string =>
  `m-${stableHash('ansai.notification.v1', channel, ...[...keys].sort())}`

const latestAt = (decisions: readonly NotifyDecision[]): string =>
  decisions.reduce((best, d) => (Date.parse(d.at) > Date.parse(best) ? d.at : best), decisions[0]!.at)

/** The evidence a message carries for machines (webhook receivers): the decisions' evidence and the fix results. */
const evidenceOf = (g: MessageGroup): Record<string, unknown> => {
  const merged: Record<string, unknown> = {}
  for (const d of g.decisions) Object.assign(merged, d.evidence)
  const rec = recoveredBy(g.results)
  return {
    ...merged,
    hostname: g.hostname,
    events: g.decisions.map((d) => d.event),
    decisions: g.decisions.map((d) => d.key),
    ...(g.results.length
      ? {
          results: g.results.map((r) => ({
            key: r.key,
            remediation: r.remediation,
            status: r.status,
            dryRun: r.dryRun,
            durationMs: r.durationMs,
            summary: r.summary,
            ...(r.bytesRecovered ? { bytesRecovered: r.bytesRecovered, bytesRecoveredTotal: totalBytes(r) } : {}),
            ...(r.items ? { items: r.items.slice(0, 10) } : {}),
            ...(r.itemsTotal !== undefined ? { itemsTotal: r.itemsTotal } : {}),
            ...(r.error ? { error: r.error } : {}),
          })),
        }
      : {}),
    ...(rec ? { bytesRecovered: rec.bytes } : {}),
  }
}

/** The channels a group goes to, each with the decisions that name it. */
const routesOf = (g: MessageGroup, input: BuildNotificationsInput): Map<string, NotifyDecision[]> => {
  const routes = new Map<string, NotifyDecision[]>()
  const add = (channel: string, d: NotifyDecision): void => {
    const list = routes.get(channel) ?? []
    if (!list.includes(d)) list.push(d)
    routes.set(channel, list)
  }
  for (const d of g.decisions) {
    const named = d.channels.length > 0 ? d.channels : (input.defaultChannels ?? [])
    for (const c of named) add(c, d)
    if (d.escalateTo && input.channels?.includes(d.escalateTo)) add(d.escalateTo, d)
  }
  return routes
}

/**
 * Build the messages of one evaluation cycle, one per group and channel. Pure: no I/O, no clock; the same input
 * always gives the same messages (and so the same ids).
 */
export const buildNotifications = (input: BuildNotificationsInput): NotificationV1[] => {
  const out: NotificationV1[] = []
  for (const g of groupDecisions(input)) {
    const title = titleOf(g)
    for (const [channel, decisions] of routesOf(g, input)) {
      const sub: MessageGroup = decisions.length === g.decisions.length ? g : { ...g, decisions }
      const id = messageIdOf(
        channel,
        decisions.map((d) => d.key),
      )
      const h = g.headline
      out.push({
        schema: 'ansai.notification.v1',
        id,
        channel,
        event: h.event,
        host: h.host,
        policy: h.policy,
        resource: h.resource,
        incidentId: h.incidentId,
        severity: sub.severity,
        subject: `${SUBJECT_PREFIX} ${title}`,
        text: renderText(sub, { id, title, maxChars: MAX_TEXT }),
        evidence: evidenceOf(sub),
        ...(g.escalateTo ? { escalateTo: g.escalateTo } : {}),
        at: latestAt(decisions),
      })
    }
  }
  return out
}
