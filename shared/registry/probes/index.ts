import type { ObservationKind } from '../../contracts/index.ts'
import type { ProbeDefinition } from '../types.ts'
import { backupProbe } from './backup.ts'
import { certificateProbe } from './certificate.ts'
import { containerProbe } from './container.ts'
import { cronProbe } from './cron.ts'
import { customProbe } from './custom.ts'
import { databaseProbe } from './database.ts'
import { dnsProbe } from './dns.ts'
import { filesystemProbe } from './filesystem.ts'
import { memoryProbe } from './memory.ts'
import { packagesProbe } from './packages.ts'
import { processMemoryProbe } from './process-memory.ts'
import { serviceProbe } from './service.ts'

/** Every observation kind, listed explicitly. */
export const PROBES: readonly ProbeDefinition[] = [
  serviceProbe,
  filesystemProbe,
  memoryProbe,
  processMemoryProbe,
  certificateProbe,
  databaseProbe,
  backupProbe,
  cronProbe,
  dnsProbe,
  packagesProbe,
  containerProbe,
  customProbe,
] as unknown as readonly ProbeDefinition[]

const byKind = new Map<string, ProbeDefinition>(PROBES.map((p) => [p.kind, p]))

export const findProbe = (kind: string): ProbeDefinition | undefined => byKind.get(kind)
export const probeFor = <K extends ObservationKind>(kind: K): ProbeDefinition<K> =>
  byKind.get(kind) as unknown as ProbeDefinition<K>
