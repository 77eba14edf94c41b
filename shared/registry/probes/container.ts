import { ContainerObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

export const containerProbe: ProbeDefinition<'container'> = {
  kind: 'container',
  title: 'Containers',
  description: 'Docker or Podman containers, when present: state, health, restarts.',
  schema: ContainerObservationSchema,
  identity: ['runtime', 'name'],
  resource: (o) => `${o.runtime}:${o.name}`,
  derived: {
    unhealthy: { type: 'bool', description: 'health is unhealthy, or the container is exited or dead' },
  },
  derive: (o) => ({ unhealthy: o.health === 'unhealthy' || o.state === 'exited' || o.state === 'dead' }),
  schedule: 'every-cycle',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: web-container-unhealthy }
spec:
  observe: container
  match: { name: web }
  severity:
    critical: { when: "unhealthy", for: 3 cycles }
`,
}
