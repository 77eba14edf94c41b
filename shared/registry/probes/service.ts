import { ServiceObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

export const serviceProbe: ProbeDefinition<'service'> = {
  kind: 'service',
  title: 'systemd services',
  description: 'Unit state from `systemctl show`: active and sub state, restarts, main pid, memory, Restart= policy.',
  schema: ServiceObservationSchema,
  identity: ['unit'],
  resource: (o) => o.unit,
  derived: {
    down: { type: 'bool', description: 'activeState is failed or inactive' },
    selfHealing: {
      type: 'bool',
      description: 'systemd restarts the unit itself (Restart= is set) and has not yet hit its start limit',
    },
  },
  derive: (o) => ({
    down: o.activeState === 'failed' || o.activeState === 'inactive',
    selfHealing:
      o.restartPolicy !== undefined && o.restartPolicy !== 'no' && o.restartPolicy !== '' && o.startLimitHit !== true,
  }),
  schedule: 'every-cycle',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: nginx-down }
spec:
  observe: service
  match: { unit: nginx.service }
  severity:
    critical: { when: "down && !selfHealing", for: 2 cycles }
  remediate:
    - run: service-restart
      params: { unit: nginx.service }
    - escalate: page
  guards:
    limit: { max: 3, within: 1h, then: escalate }
`,
}
