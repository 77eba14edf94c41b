import { ProcessMemoryObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

export const processMemoryProbe: ProbeDefinition<'process-memory'> = {
  kind: 'process-memory',
  title: 'Per-service memory',
  description:
    "A unit's memory from its cgroup (v2 memory.current, v1 fallback) or the RSS of its processes, with its limit.",
  schema: ProcessMemoryObservationSchema,
  identity: ['unit'],
  resource: (o) => o.unit,
  derived: {
    usedPercentOfLimit: { type: 'double', description: 'memory / limit × 100 (0 without a known limit)' },
    minutesToOom: { type: 'double', description: 'minutes until the unit reaches its limit at the current growth' },
    growthBytesPerHour: { type: 'double', description: 'memory growth per hour (trend, least squares)' },
  },
  derive: (o) => ({
    usedPercentOfLimit: o.limitBytes ? (o.memoryBytes / o.limitBytes) * 100 : 0,
  }),
  trend: {
    value: (o) => o.memoryBytes,
    capacity: (o) => o.limitBytes,
    eta: { name: 'minutesToOom', unit: 'minutes', description: 'minutes until the unit reaches its memory limit' },
    rate: { name: 'growthBytesPerHour', description: 'bytes per hour' },
  },
  schedule: 'every-cycle',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: app-memory-leak }
spec:
  observe: process-memory
  match: { unit: app.service }
  trend: { window: 30m, minSamples: 5 }
  severity:
    warning: { when: "usedPercentOfLimit >= 80.0" }
    critical: { when: "minutesToOom < 60 || usedPercentOfLimit >= 95.0" }
  remediate:
    - at: critical
      run: memory-relief
      params: { unit: app.service }
`,
}
