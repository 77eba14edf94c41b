import type { RemediationExecutor } from './types.ts'

/**
 * Every remediation executor on this host, listed explicitly and loaded lazily (a run loads only what it uses).
 * A registry remediation is `available` once it has an entry here (test/unit/agent/executors.test.ts checks both
 * ways).
 */
export const EXECUTORS: Readonly<Record<string, () => Promise<RemediationExecutor<never>>>> = {
  'service-restart': async () =>
    (await import('./service-restart.ts')).serviceRestartExecutor as RemediationExecutor<never>,
  'disk-cleanup': async () => (await import('./disk-cleanup.ts')).diskCleanupExecutor as RemediationExecutor<never>,
  'memory-relief': async () => (await import('./memory-relief.ts')).memoryReliefExecutor as RemediationExecutor<never>,
  'certificate-renew': async () =>
    (await import('./certificate-renew.ts')).certificateRenewExecutor as RemediationExecutor<never>,
  'db-maintenance': async () =>
    (await import('./db-maintenance.ts')).dbMaintenanceExecutor as RemediationExecutor<never>,
  'backup-retry': async () => (await import('./backup-retry.ts')).backupRetryExecutor as RemediationExecutor<never>,
  'notify-only': async () => (await import('./notify-only.ts')).notifyOnlyExecutor as RemediationExecutor<never>,
}
