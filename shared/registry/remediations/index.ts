import type { RemediationDefinition } from '../types.ts'
import { backupRetryRemediation } from './backup-retry.ts'
import { certificateRenewRemediation } from './certificate-renew.ts'
import { customScriptRemediation } from './custom-script.ts'
import { dbMaintenanceRemediation } from './db-maintenance.ts'
import { diskCleanupRemediation } from './disk-cleanup.ts'
import { memoryReliefRemediation } from './memory-relief.ts'
import { notifyOnlyRemediation } from './notify-only.ts'
import { serviceRestartRemediation } from './service-restart.ts'

/** Every remediation, listed explicitly. */
export const REMEDIATIONS: readonly RemediationDefinition[] = [
  serviceRestartRemediation,
  diskCleanupRemediation,
  memoryReliefRemediation,
  certificateRenewRemediation,
  dbMaintenanceRemediation,
  backupRetryRemediation,
  notifyOnlyRemediation,
  customScriptRemediation,
]

const byId = new Map<string, RemediationDefinition>(REMEDIATIONS.map((r) => [r.id, r]))

export const findRemediation = (id: string): RemediationDefinition | undefined => byId.get(id)
