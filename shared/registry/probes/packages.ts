import { PackagesObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

export const packagesProbe: ProbeDefinition<'packages'> = {
  kind: 'packages',
  title: 'Package updates',
  description: 'Pending and security updates (apt, dnf); expensive, so it runs on a slower schedule and is cached.',
  schema: PackagesObservationSchema,
  identity: ['manager'],
  resource: (o) => o.manager,
  derived: {},
  derive: () => ({}),
  schedule: 'slow',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: security-updates-pending }
spec:
  observe: packages
  mode: passive
  severity:
    warning: { when: "security > 0" }
    critical: { when: "security > 10 || rebootRequired" }
`,
}
