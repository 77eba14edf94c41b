import type { RemediationResultV1 } from '../../shared/contracts/index.ts'
import type { BackupRetryParams } from '../../shared/registry/remediations/backup-retry.ts'
import { journalTail } from '../os/systemd.ts'
import { boundResult, shortenMiddle } from './disk-cleanup/report.ts'
import type { ExecutorContext, RemediationExecutor } from './types.ts'

/**
 * backup-retry: runs a backup job once more and waits for it to finish.
 * - With `unit`: `systemctl start --wait <unit>` (a job already running is waited for, not started twice; the
 *   unit's own exit status decides).
 * - Without: the job's command from the agent configuration (`backups[].command`, an argv array), run directly
 *   with the job's timeout; a job with neither fails with a clear reason.
 * The next collection confirms the fix: a fresh artifact, its size and integrity.
 */
export interface BackupRetryOptions {
  /** The configured command (argv) of each job, from the agent configuration. */
  commands?: Readonly<Record<string, readonly string[]>>
}

const tail = (text: string, lines = 10): string[] =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .slice(-lines)
    .map((l) => shortenMiddle(l, 300))

export const createBackupRetryExecutor = (
  options: BackupRetryOptions = {},
): RemediationExecutor<BackupRetryParams> => ({
  id: 'backup-retry',
  execute: async (params: BackupRetryParams, ctx: ExecutorContext) => {
    const startedAt = ctx.now()
    const argv = params.unit
      ? ['systemctl', 'start', '--wait', '--', params.unit]
      : (options.commands?.[params.job] ?? undefined)
    const base = {
      schema: 'ansai.remediation-result.v1' as const,
      key: ctx.key,
      remediation: 'backup-retry',
      dryRun: ctx.dryRun,
      startedAt: startedAt.toISOString(),
    }
    const finish = (r: Omit<RemediationResultV1, keyof typeof base | 'finishedAt' | 'durationMs'>) => {
      const finishedAt = ctx.now()
      return {
        result: boundResult({
          ...base,
          ...r,
          finishedAt: finishedAt.toISOString(),
          durationMs: finishedAt.getTime() - startedAt.getTime(),
        }),
        audit: argv ? [{ action: 'run', target: argv.join(' ') }] : [],
      }
    }
    if (!argv || argv.length === 0) {
      return finish({
        status: 'failed',
        summary: `backup job '${params.job}' has no unit and no configured command`,
        error: `set params.unit, or backups[].command for job '${params.job}' in the agent configuration`,
        evidence: {},
      })
    }
    const [file, ...args] = argv as [string, ...string[]]
    if (ctx.dryRun) {
      return finish({ status: 'dry-run', summary: `would run: ${argv.join(' ')}`, evidence: { argv } })
    }
    ctx.log(`backup-retry: ${argv.join(' ')}`)
    const r = await ctx.run(file, args, { timeoutMs: params.timeoutSeconds * 1000 })
    const ok = r.exitCode === 0 && !r.timedOut
    const evidence: Record<string, unknown> = {
      argv,
      exitCode: r.exitCode,
      timedOut: r.timedOut,
      stdout: tail(r.stdout),
      stderr: tail(r.stderr),
    }
    if (!ok && params.unit) {
      const journal = await journalTail(ctx.run, params.unit, 20).catch(() => undefined)
      if (journal) evidence.journal = journal.lines
    }
    return finish({
      status: ok ? 'succeeded' : 'failed',
      summary: ok
        ? `backup job '${params.job}' ran again (${Math.round(r.durationMs / 100) / 10} s)`
        : `backup job '${params.job}' ${r.timedOut ? `did not finish in ${params.timeoutSeconds} s` : `exited ${r.exitCode ?? r.signal}`}`,
      ...(ok ? {} : { error: tail(r.stderr, 3).join(' | ') || `exit ${r.exitCode ?? r.signal}` }),
      evidence,
    })
  },
})

export const backupRetryExecutor = createBackupRetryExecutor()
