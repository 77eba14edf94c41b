/** Hand-made records for the StateStore contract: decisions, results, incidents, messages, host states. */
import type {
  Attempt,
  Incident,
  NotificationV1,
  NotifyDecision,
  RemediateDecision,
  RemediationResultV1,
} from '../../shared/contracts/index.ts'
import type { HostState } from '../../shared/engine/state.ts'

export const HOST_A = 'i-0aaaaaaaaaaaaaaa1'
export const HOST_B = 'i-0bbbbbbbbbbbbbbb2'

/** ISO time `minutes` after 2026-11-23T10:00:00Z. */
export const at = (minutes: number): string =>
  new Date(Date.parse('2026-11-23T10:00:00Z') + minutes * 60_000).toISOString()

export const hostState = (host: string, lastSeq = 0, usedPercent = 91.5): HostState => ({
  v: 1,
  host,
  lastSeq,
  lastSeenAt: Date.parse(at(lastSeq)),
  resources: {
    'disk-pressure': {
      '/var': {
        policy: 'disk-pressure',
        resource: '/var',
        hist: [3, 1],
        level: 'critical',
        samples: [1795428000, usedPercent],
        fixes: [Date.parse(at(1))],
      },
    },
  },
})

export const remediate = (key: string, over: Partial<RemediateDecision> = {}): RemediateDecision => ({
  type: 'remediate',
  key,
  host: HOST_A,
  policy: 'disk-pressure',
  resource: '/var',
  incidentId: 'inc-disk',
  severity: 'critical',
  at: at(0),
  step: 0,
  attempt: 1,
  remediation: 'disk-cleanup',
  params: { roots: ['/var/log'], logsOlderThan: '30d' },
  risk: 'destructive',
  dryRun: false,
  verifyBy: at(10),
  reason: 'disk-pressure: /var is critical (usedPercent=92.5)',
  ...over,
})

export const notifyDecision = (key: string, over: Partial<NotifyDecision> = {}): NotifyDecision => ({
  type: 'notify',
  key,
  host: HOST_A,
  policy: 'disk-pressure',
  resource: '/var',
  incidentId: 'inc-disk',
  severity: 'critical',
  at: at(0),
  event: 'ansai.incident.opened.v1',
  channels: ['ops-email'],
  summary: 'disk-pressure: /var on web-1 is critical',
  evidence: { values: { usedPercent: 92.5 } },
  ...over,
})

export const result = (key: string, over: Partial<RemediationResultV1> = {}): RemediationResultV1 => ({
  schema: 'ansai.remediation-result.v1',
  key,
  remediation: 'disk-cleanup',
  host: HOST_A,
  status: 'succeeded',
  dryRun: false,
  startedAt: at(1),
  finishedAt: at(2),
  durationMs: 60_000,
  summary: 'recovered 1 KiB',
  bytesRecovered: { logs: 1000, temp: 24 },
  evidence: {},
  ...over,
})

export const attempt = (key: string, over: Partial<Attempt> = {}): Attempt => ({
  key,
  step: 0,
  remediation: 'disk-cleanup',
  startedAt: at(1),
  finishedAt: at(2),
  verifyBy: at(11),
  status: 'verified',
  summary: 'recovered 1 KiB',
  ...over,
})

export const incident = (id: string, over: Partial<Incident> = {}): Incident => ({
  id,
  host: HOST_A,
  policy: 'disk-pressure',
  resource: '/var',
  kind: 'filesystem',
  status: 'open',
  severity: 'critical',
  peakSeverity: 'critical',
  openedAt: at(0),
  updatedAt: at(0),
  stepsDone: [],
  attempts: [],
  milestones: [],
  flapping: false,
  lastValues: { usedPercent: 92.5 },
  ...over,
})

export const message = (id: string, over: Partial<NotificationV1> = {}): NotificationV1 => ({
  schema: 'ansai.notification.v1',
  id,
  channel: 'ops-email',
  event: 'ansai.incident.opened.v1',
  host: HOST_A,
  policy: 'disk-pressure',
  resource: '/var',
  incidentId: 'inc-disk',
  severity: 'critical',
  subject: '[critical] disk-pressure: /var on web-1',
  text: 'disk-pressure: /var on web-1 is critical',
  evidence: { usedPercent: 92.5 },
  at: at(0),
  ...over,
})
