import { DnsObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

export const dnsProbe: ProbeDefinition<'dns'> = {
  kind: 'dns',
  title: 'DNS resolution',
  description: 'Resolves configured names through the system resolver: addresses, latency, errors.',
  schema: DnsObservationSchema,
  identity: ['name'],
  resource: (o) => o.name,
  derived: {},
  derive: () => ({}),
  schedule: 'every-cycle',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: dns-broken }
spec:
  observe: dns
  severity:
    critical: { when: "!resolved", for: 3 cycles }
`,
}
