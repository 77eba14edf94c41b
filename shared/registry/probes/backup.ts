import { BackupObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

const HOUR_MS = 3_600_000

export const backupProbe: ProbeDefinition<'backup'> = {
  kind: 'backup',
  title: 'Backups',
  description: 'The newest artifact of a backup job: age, size, optional integrity test (gzip -t, tar -t).',
  schema: BackupObservationSchema,
  identity: ['job'],
  resource: (o) => o.job,
  derived: {
    ageHours: { type: 'double', description: 'hours since the newest artifact (+∞ when there is none)' },
    integrityFailed: { type: 'bool', description: 'the integrity test of the newest artifact failed' },
  },
  derive: (o, { now }) => ({
    ageHours: o.newestArtifactAt ? (now - Date.parse(o.newestArtifactAt)) / HOUR_MS : Number.POSITIVE_INFINITY,
    integrityFailed: o.integrity === 'failed',
  }),
  timeBased: true,
  clockFields: ['newestArtifactAt', 'integrity'],
  schedule: 'every-cycle',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: nightly-backup-stale }
spec:
  observe: backup
  match: { job: nightly }
  severity:
    critical: { when: "ageHours > 26.0 || integrityFailed" }
  remediate:
    - run: backup-retry
      params: { job: nightly }
    - escalate: page
`,
}
