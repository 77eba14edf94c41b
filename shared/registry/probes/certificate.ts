import { CertificateObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

const DAY_MS = 86_400_000

/** notAfter parsed once per distinct value: the same certificates come back every cycle. A bounded, pure memo. */
const parsed = new Map<string, number>()
const notAfterMs = (iso: string): number => {
  let ms = parsed.get(iso)
  if (ms === undefined) {
    if (parsed.size >= 4096) parsed.clear()
    ms = Date.parse(iso)
    parsed.set(iso, ms)
  }
  return ms
}

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
    const left = (notAfterMs(o.notAfter) - now) / DAY_MS
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
