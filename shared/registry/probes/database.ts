import { DatabaseObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

export const databaseProbe: ProbeDefinition<'database'> = {
  kind: 'database',
  title: 'Databases',
  description:
    'PostgreSQL, MariaDB/MySQL and SQLite: reachability, connections, idle in transaction, lock waits, bloat, lag, integrity.',
  schema: DatabaseObservationSchema,
  identity: ['engine', 'name'],
  resource: (o) => `${o.engine}:${o.name}`,
  derived: {
    connectionsPercent: { type: 'double', description: 'connections / maxConnections × 100 (0 when unknown)' },
  },
  derive: (o) => ({
    connectionsPercent: o.connections !== undefined && o.maxConnections ? (o.connections / o.maxConnections) * 100 : 0,
  }),
  schedule: 'every-cycle',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: postgres-bloat }
spec:
  observe: database
  match: { engine: postgresql }
  severity:
    warning: { when: "!reachable", for: 2 cycles }
    critical: { when: "bloatRatio > 0.5" }
  remediate:
    - at: critical
      run: db-maintenance
      params: { engine: postgresql, database: app, operation: vacuum-analyze }
`,
}
