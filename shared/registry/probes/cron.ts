import { CronObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

const HOUR_MS = 3_600_000

export const cronProbe: ProbeDefinition<'cron'> = {
  kind: 'cron',
  title: 'Cron heartbeats',
  description: 'Marker files written by wrapped cron jobs: last run, exit status, duration.',
  schema: CronObservationSchema,
  identity: ['job'],
  resource: (o) => o.job,
  derived: {
    hoursSinceRun: { type: 'double', description: 'hours since the last run (+∞ when it never ran)' },
    failed: { type: 'bool', description: 'the last run exited non-zero' },
  },
  derive: (o, { now }) => ({
    hoursSinceRun: o.lastRunAt ? (now - Date.parse(o.lastRunAt)) / HOUR_MS : Number.POSITIVE_INFINITY,
    failed: o.lastExitStatus !== undefined && o.lastExitStatus !== 0,
  }),
  timeBased: true,
  clockFields: ['lastRunAt', 'lastExitStatus'],
  schedule: 'every-cycle',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: logrotate-heartbeat }
spec:
  observe: cron
  match: { job: logrotate }
  severity:
    warning: { when: "failed" }
    critical: { when: "hoursSinceRun > 25.0" }
`,
}
