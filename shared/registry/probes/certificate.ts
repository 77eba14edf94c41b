import { CertificateObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

const DAY_MS = 86_400_000

export const certificateProbe: ProbeDefinition<'certificate'> = {
  kind: 'certificate',
  title: 'Certificates',
  description: 'PEM files under configured globs and TLS endpoints (with SNI): subject, SANs, issuer, expiry.',
  schema: CertificateObservationSchema,
  identity: ['source'],
  resource: (o) => o.source,
  derived: {
    daysLeft: { type: 'double', description: 'days until notAfter (negative once expired)' },
    expired: { type: 'bool', description: 'notAfter is in the past' },
  },
  derive: (o, { now }) => {
    const left = (Date.parse(o.notAfter) - now) / DAY_MS
    return { daysLeft: left, expired: left <= 0 }
  },
  timeBased: true,
  clockFields: ['notAfter'],
  schedule: 'every-cycle',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: tls-expiry }
spec:
  observe: certificate
  milestones: { field: daysLeft, at: [30, 14, 7, 3, 1] }
  severity:
    warning: { when: "daysLeft <= 30.0" }
    critical: { when: "daysLeft <= 7.0" }
    emergency: { when: "expired" }
`,
}
