/** Hand-made decisions and results for the notification tests: one disk incident on web-1, cycle by cycle. */
import type { NotifyDecision, RemediateDecision, RemediationResultV1 } from '../../../shared/contracts/index.ts'

export const HOST_ID = 'i-0123456789abcdef0'
export const HOSTS = [{ id: HOST_ID, hostname: 'web-1' }]
export const T1 = '2026-11-23T10:00:00.000Z'
export const T2 = '2026-11-23T10:05:00.000Z'

type Event = NotifyDecision['event']

export const notify = (
  key: string,
  event: Event,
  summary: string,
  evidence: Record<string, unknown>,
  over: Partial<NotifyDecision> = {},
): NotifyDecision => ({
  type: 'notify',
  key,
  host: HOST_ID,
  policy: 'disk-pressure',
  resource: '/var',
  incidentId: 'inc-disk',
  severity: 'critical',
  at: T1,
  event,
  channels: ['ops-email', 'slack'],
  summary,
  evidence: { incident: over.incidentId ?? 'inc-disk', ...evidence },
  ...over,
})

export const opened = notify(
  'n-opened',
  'ansai.incident.opened.v1',
  'disk-pressure: /var on web-1 is critical (usedPercent=92.5, hoursToFull=3.2)',
  { status: 'open', values: { usedPercent: 92.5, hoursToFull: 3.2 }, flapping: false },
)

export const fix: RemediateDecision = {
  type: 'remediate',
  key: 'r-cleanup-1',
  host: HOST_ID,
  policy: 'disk-pressure',
  resource: '/var',
  incidentId: 'inc-disk',
  severity: 'critical',
  at: T1,
  step: 0,
  attempt: 1,
  remediation: 'disk-cleanup',
  params: { roots: ['/var/log', '/var/tmp'], logsOlderThan: '30d' },
  risk: 'destructive',
  dryRun: false,
  verifyBy: '2026-11-23T10:10:00.000Z',
  reason: 'disk-pressure: /var is critical (usedPercent=92.5, hoursToFull=3.2)',
}

export const started = notify(
  'n-started',
  'ansai.fix.started.v1',
  'disk-pressure: running disk-cleanup on /var on web-1',
  {
    status: 'remediating',
    remediation: 'disk-cleanup',
    params: { roots: ['/var/log', '/var/tmp'], logsOlderThan: '30d' },
    dryRun: false,
    values: { usedPercent: 92.5, hoursToFull: 3.2 },
  },
)

export const result: RemediationResultV1 = {
  schema: 'ansai.remediation-result.v1',
  key: 'r-cleanup-1',
  remediation: 'disk-cleanup',
  host: HOST_ID,
  status: 'succeeded',
  dryRun: false,
  startedAt: T1,
  finishedAt: '2026-11-23T10:00:12.000Z',
  durationMs: 12_034,
  summary: 'recovered 1.2 GiB on /var: old logs 1 GiB, temp files 205 MiB',
  bytesRecovered: { logs: 1_073_741_824, temp: 214_748_365, journal: 0 },
  items: ['/var/log/app/app.log.3.gz', '/var/log/app/app.log.4.gz', '/var/tmp/build-1234'],
  itemsTotal: 212,
  evidence: { usedPercentBefore: 92.5, usedPercentAfter: 61.2 },
}

export const verified = notify(
  'n-verified',
  'ansai.fix.verified.v1',
  'disk-pressure: disk-cleanup fixed /var on web-1',
  {
    status: 'verifying',
    remediation: 'disk-cleanup',
    values: { usedPercent: 61.2, hoursToFull: 'Infinity' },
    summary: result.summary,
  },
  { at: T2 },
)

export const resolved = notify(
  'n-resolved',
  'ansai.incident.resolved.v1',
  'disk-pressure: /var on web-1 is healthy again after disk-cleanup',
  {
    status: 'resolved',
    values: { usedPercent: 61.2, hoursToFull: 'Infinity' },
    durationMs: 300_000,
    fixes: [{ remediation: 'disk-cleanup', status: 'verified', summary: result.summary }],
  },
  { at: T2 },
)

export const fixFailed = notify(
  'n-fix-failed',
  'ansai.fix.failed.v1',
  'disk-pressure: disk-cleanup ran but /var is still critical',
  { status: 'open', remediation: 'disk-cleanup', values: { usedPercent: 93.1 }, summary: 'recovered 12 MiB' },
  { at: T2 },
)

export const escalated = notify(
  'n-escalated',
  'ansai.incident.escalated.v1',
  'disk-pressure: /var on web-1 needs a human: the fixes did not clear it',
  {
    status: 'escalated',
    reason: 'the fixes did not clear it',
    attempts: [{ remediation: 'disk-cleanup', status: 'unverified', summary: 'recovered 12 MiB' }],
  },
  { at: T2, escalateTo: 'page' },
)
