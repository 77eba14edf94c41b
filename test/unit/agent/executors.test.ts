import { describe, expect, it } from 'vitest'
import { createBackupRetryExecutor } from '../../../agent/remediations/backup-retry.ts'
import { EXECUTORS } from '../../../agent/remediations/index.ts'
import { notifyOnlyExecutor } from '../../../agent/remediations/notify-only.ts'
import { runRemediation } from '../../../agent/remediations/runner.ts'
import type { ExecutorContext } from '../../../agent/remediations/types.ts'
import { REMEDIATIONS } from '../../../shared/registry/remediations/index.ts'

const NOW = new Date('2026-11-23T00:00:00Z')
const ctxWith = (run: ExecutorContext['run'], dryRun = false): ExecutorContext => ({
  key: 'r-1',
  dryRun,
  now: () => NOW,
  run,
  log: () => {},
})
const ok = (stdout = '') => ({
  exitCode: 0,
  signal: null,
  stdout,
  stderr: '',
  timedOut: false,
  durationMs: 1200,
  truncated: false,
})

describe('executor registry', () => {
  it('a remediation is available exactly when this host has its executor', () => {
    for (const r of REMEDIATIONS) {
      expect(r.status === 'available', `${r.id}: status ${r.status}`).toBe(r.id in EXECUTORS)
    }
    for (const id of Object.keys(EXECUTORS)) expect(REMEDIATIONS.map((r) => r.id)).toContain(id)
  })

  it('every executor loads and has the id it is listed under', async () => {
    for (const [id, load] of Object.entries(EXECUTORS)) expect((await load()).id).toBe(id)
  })

  it('runRemediation refuses params the registry refuses, before anything runs', async () => {
    let ran = 0
    const { result } = await runRemediation(
      { key: 'r-9', remediation: 'service-restart', params: { unit: 'x.service; rm -rf /' }, dryRun: false },
      {
        run: async () => {
          ran++
          return ok()
        },
        now: () => NOW,
      },
    )
    expect(ran).toBe(0)
    expect(result.status).toBe('failed')
    expect(result.summary).toBe('refused: invalid params for service-restart')
    expect(result.error).toMatch(/^unit: /)
  })

  it('runRemediation turns an unknown remediation into a failed result', async () => {
    const { result } = await runRemediation({ key: 'r-8', remediation: 'format-disk', params: {}, dryRun: false })
    expect(result).toMatchObject({ status: 'failed', summary: "unknown remediation 'format-disk'", key: 'r-8' })
  })
})

describe('backup-retry', () => {
  it('starts the unit and waits for it, argv only', async () => {
    const calls: string[][] = []
    const exec = createBackupRetryExecutor()
    const { result } = await exec.execute(
      { job: 'nightly', unit: 'backup-nightly.service', timeoutSeconds: 60 },
      ctxWith(async (f, a, o) => {
        calls.push([f, ...a, `timeout=${o.timeoutMs}`])
        return ok()
      }),
    )
    expect(calls).toEqual([['systemctl', 'start', '--wait', '--', 'backup-nightly.service', 'timeout=60000']])
    expect(result).toMatchObject({
      status: 'succeeded',
      remediation: 'backup-retry',
      key: 'r-1',
      summary: "backup job 'nightly' ran again (1.2 s)",
    })
  })

  it('runs the configured command of a job without a unit, and reports a failure with its output', async () => {
    const exec = createBackupRetryExecutor({ commands: { db: ['/usr/local/bin/backup-db', '--full'] } })
    const { result } = await exec.execute(
      { job: 'db', timeoutSeconds: 5 },
      ctxWith(async () => ({ ...ok(), exitCode: 3, stderr: 'disk full\n' })),
    )
    expect(result.status).toBe('failed')
    expect(result.summary).toBe("backup job 'db' exited 3")
    expect(result.error).toBe('disk full')
    expect(result.evidence.argv).toEqual(['/usr/local/bin/backup-db', '--full'])
  })

  it('fails clearly when the job has neither unit nor command; dry-run runs nothing', async () => {
    let ran = 0
    const run = async () => {
      ran++
      return ok()
    }
    const none = await createBackupRetryExecutor().execute({ job: 'x', timeoutSeconds: 5 }, ctxWith(run))
    expect(none.result.summary).toBe("backup job 'x' has no unit and no configured command")
    const dry = await createBackupRetryExecutor().execute(
      { job: 'x', unit: 'b.service', timeoutSeconds: 5 },
      ctxWith(run, true),
    )
    expect(dry.result).toMatchObject({ status: 'dry-run', summary: 'would run: systemctl start --wait -- b.service' })
    expect(ran).toBe(0)
  })
})

describe('notify-only', () => {
  it('changes nothing and carries its message', async () => {
    const { result } = await notifyOnlyExecutor.execute(
      { message: 'call the DBA' },
      ctxWith(async () => {
        throw new Error('must not run')
      }),
    )
    expect(result).toMatchObject({ status: 'succeeded', summary: 'call the DBA', durationMs: 0 })
  })
})
