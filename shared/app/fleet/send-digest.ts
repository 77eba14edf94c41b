import type { Incident, NotificationV1 } from '../../contracts/index.ts'
import type { NotificationQueue } from '../../ports/fleet.ts'
import type { StateStore, StoreSummary } from '../../ports/store.ts'
import { formatBytes, truncate } from '../notify/format.ts'

export interface DigestDeps {
  store: StateStore
  notifications: NotificationQueue
  /** Channels of the daily digest. */
  channels: readonly string[]
  clock: () => Date
}

const DAY_MS = 86_400_000
const MAX_LISTED = 20

const pct = (share: number | null): string => (share === null ? 'n/a' : `${Math.round(share * 100)} %`)

/** The digest's text: plain, readable in any mail client, the figures first. */
export const renderDigest = (s: StoreSummary, open: readonly Incident[], certificates: readonly Incident[]): string => {
  const fixes = s.fixes.reduce((n, f) => n + f.count, 0)
  const lines = [
    `ANSAI fleet digest, ${s.since} to ${s.now}`,
    '',
    `Open incidents: ${s.openIncidents.total} (emergency ${s.openIncidents.bySeverity.emergency}, critical ${s.openIncidents.bySeverity.critical}, warning ${s.openIncidents.bySeverity.warning})`,
    `Resolved: ${s.resolvedIncidents}, of them by ANSAI alone: ${s.autoResolved} (${pct(s.autoResolvedShare)})`,
    `Fixes run: ${fixes}${s.fixes.length ? ` (${s.fixes.map((f) => `${f.remediation} ${f.status} ${f.count}`).join(', ')})` : ''}`,
    `Space recovered: ${formatBytes(s.bytesRecovered)}`,
    `Estimated time saved: ${Math.round(s.timeSavedMinutes)} min`,
  ]
  if (certificates.length > 0) {
    lines.push('', 'Certificates expiring:')
    for (const c of certificates.slice(0, MAX_LISTED)) {
      const days = c.lastValues.daysLeft
      lines.push(
        `- ${c.host} ${c.resource}: ${typeof days === 'number' ? `${Math.floor(days)} days left` : c.severity}`,
      )
    }
  }
  if (open.length > 0) {
    lines.push('', 'Open incidents (newest first):')
    for (const i of open.slice(0, MAX_LISTED)) {
      lines.push(`- [${i.severity}] ${i.host} ${i.policy} ${i.resource}: ${i.status} since ${i.openedAt}`)
    }
    if (open.length > MAX_LISTED) lines.push(`- … and ${open.length - MAX_LISTED} more`)
  }
  return truncate(lines.join('\n'), 20_000)
}

/**
 * `send-digest`, daily: the fleet's summary of the last 24 hours (incidents, the share ANSAI resolved alone, fixes,
 * bytes recovered, certificates expiring, estimated time saved), one message per digest channel, queued for
 * `send-notifications`. Its id is per channel and day, so a second run on the same day sends nothing new.
 */
export const sendDigest = async (deps: DigestDeps): Promise<NotificationV1[]> => {
  if (deps.channels.length === 0) return []
  const now = deps.clock()
  const since = new Date(now.getTime() - DAY_MS).toISOString()
  const summary = await deps.store.summarize({ since, now: now.toISOString() })
  const open = await deps.store.listIncidents({ status: 'open', limit: 500 })
  const certificates = open.filter((i) => i.kind === 'certificate')
  const day = now.toISOString().slice(0, 10)
  const text = renderDigest(summary, open, certificates)
  const messages: NotificationV1[] = deps.channels.map((channel) => ({
    schema: 'ansai.notification.v1',
    id: `digest-${day}-${channel}`.slice(0, 128),
    channel,
    event: 'ansai.digest.sent.v1',
    host: 'fleet',
    policy: 'digest',
    resource: day,
    incidentId: `digest-${day}`,
    severity: summary.openIncidents.total > 0 ? 'warning' : 'ok',
    subject: `[ANSAI] Fleet digest ${day}: ${summary.openIncidents.total} open, ${summary.autoResolved} resolved by ANSAI`,
    text,
    evidence: {
      openIncidents: summary.openIncidents,
      resolvedIncidents: summary.resolvedIncidents,
      autoResolvedShare: summary.autoResolvedShare,
      fixes: summary.fixes,
      bytesRecovered: summary.bytesRecovered,
      timeSavedMinutes: summary.timeSavedMinutes,
      certificatesExpiring: certificates.length,
    },
    at: now.toISOString(),
  }))
  await deps.notifications.send(messages)
  return messages
}
