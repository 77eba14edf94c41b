import { CustomObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

export const customProbe: ProbeDefinition<'custom'> = {
  kind: 'custom',
  title: 'Custom metrics',
  description: 'A free-form numeric metric, written by the operator to the agent (one name, one value).',
  schema: CustomObservationSchema,
  identity: ['name'],
  resource: (o) => o.name,
  derived: {},
  derive: () => ({}),
  schedule: 'every-cycle',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: queue-depth }
spec:
  observe: custom
  match: { name: queue_depth }
  severity:
    warning: { when: "value > 1000.0", for: 3 cycles }
`,
}
