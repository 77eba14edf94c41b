import type { RemediationResultV1 } from '../../shared/contracts/index.ts'
import type { runCommand } from '../os/exec.ts'

/** What an executor gets besides its params: everything that touches the host comes through here. */
export interface ExecutorContext {
  /** Decision key (idempotency): the result carries it back. */
  key: string
  dryRun: boolean
  /** Wall clock, injectable for tests. */
  now: () => Date
  /** The one process-spawning function (argv arrays, timeouts). */
  run: typeof runCommand
  /** Progress lines for long work (stderr in the CLI, the audit trail in `ansai run`). */
  log: (line: string) => void
}

/**
 * A remediation executor: runs one remediation on this host and returns exactly one bounded result. Never throws for
 * an expected failure (the result says `failed` with an error); params arrive already validated by the registry's
 * schema. `audit` holds the full list of what was touched (files, units) for the audit trail.
 */
export interface RemediationExecutor<P = Record<string, unknown>> {
  id: string
  execute: (params: P, ctx: ExecutorContext) => Promise<{ result: RemediationResultV1; audit: AuditEntry[] }>
}

export interface AuditEntry {
  action: string
  target: string
  bytes?: number
  category?: string
  detail?: string
}
