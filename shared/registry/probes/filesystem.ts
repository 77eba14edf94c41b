import { FilesystemObservationSchema } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'

const percent = (part: number, whole: number): number => (whole > 0 ? (part / whole) * 100 : 0)

export const filesystemProbe: ProbeDefinition<'filesystem'> = {
  kind: 'filesystem',
  title: 'Filesystems',
  description: 'Bytes and inodes of each real mount (statfs); pseudo filesystems are skipped.',
  schema: FilesystemObservationSchema,
  identity: ['mount'],
  resource: (o) => o.mount,
  derived: {
    usedPercent: { type: 'double', description: "used / (used + available) × 100, as df's Use%" },
    inodesUsedPercent: { type: 'double', description: 'inodes used / inodes total × 100' },
    hoursToFull: { type: 'double', description: 'hours until full at the current growth (trend; +∞ if not growing)' },
    growthBytesPerHour: { type: 'double', description: 'growth of bytes used per hour (trend, least squares)' },
  },
  derive: (o) => ({
    usedPercent: percent(o.bytesUsed, o.bytesUsed + o.bytesAvailable),
    inodesUsedPercent: percent(o.inodesUsed, o.inodesTotal),
  }),
  trend: {
    value: (o) => o.bytesUsed,
    capacity: (o) => o.bytesUsed + o.bytesAvailable,
    eta: { name: 'hoursToFull', unit: 'hours', description: 'hours until the filesystem is full' },
    rate: { name: 'growthBytesPerHour', description: 'bytes per hour' },
  },
  schedule: 'every-cycle',
  status: 'planned',
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: var-disk-pressure, description: Keep /var below 90 % }
spec:
  observe: filesystem
  match: { mount: /var }
  severity:
    warning: { when: "usedPercent >= 80" }
    critical: { when: "usedPercent >= 90 || hoursToFull < 6", for: 2 cycles }
  remediate:
    - at: critical
      run: disk-cleanup
      params: { roots: [/var/log], logsOlderThan: 30d }
  allowDestructive: true
`,
}
