import { MemoryObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

const percent = (part: number, whole: number): number => (whole > 0 ? (part / whole) * 100 : 0)

export const memoryProbe: ProbeDefinition<'memory'> = {
  kind: 'memory',
  title: 'Host memory',
  description: 'Total, available and swap from /proc/meminfo; pressure stall information when the kernel has it.',
  schema: MemoryObservationSchema,
  identity: [],
  resource: () => 'host',
  derived: {
    usedPercent: { type: 'double', description: '(total - available) / total × 100' },
    availablePercent: { type: 'double', description: 'available / total × 100' },
    swapUsedPercent: { type: 'double', description: 'swap used / swap total × 100 (0 without swap)' },
    minutesToOom: { type: 'double', description: 'minutes until memory is exhausted at the current growth (trend)' },
    growthBytesPerHour: { type: 'double', description: 'growth of used memory per hour (trend)' },
  },
  derive: (o) => ({
    usedPercent: percent(o.totalBytes - o.availableBytes, o.totalBytes),
    availablePercent: percent(o.availableBytes, o.totalBytes),
    swapUsedPercent: percent(o.swapTotalBytes - o.swapFreeBytes, o.swapTotalBytes),
  }),
  trend: {
    value: (o) => o.totalBytes - o.availableBytes,
    capacity: (o) => o.totalBytes,
    eta: { name: 'minutesToOom', unit: 'minutes', description: 'minutes until memory runs out' },
    rate: { name: 'growthBytesPerHour', description: 'bytes per hour' },
  },
  schedule: 'every-cycle',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: host-memory-pressure }
spec:
  observe: memory
  severity:
    warning: { when: "availablePercent < 10.0" }
    critical: { when: "availablePercent < 5.0 || minutesToOom < 30", for: 2 cycles }
`,
}
