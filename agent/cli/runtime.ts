import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createNotifiers } from '../../shared/adapters/notify/create.ts'
import { resolveChannelSecrets } from '../../shared/app/notify/config.ts'
import { type CycleOutcome, runCycle } from '../../shared/app/run-cycle.ts'
import type { CompiledPolicySet } from '../../shared/engine/compile.ts'
import { parseDuration } from '../../shared/engine/duration.ts'
import type { AgentConfig } from '../config/config.ts'
import { createBackupRetryExecutor } from '../remediations/backup-retry.ts'
import { createDbMaintenanceExecutor } from '../remediations/db-maintenance.ts'
import { localRunner } from '../remediations/runner.ts'
import type { RemediationExecutor } from '../remediations/types.ts'
import { SqliteStore } from '../store/sqlite.ts'
import { collectReport } from './commands/host.ts'
import { UsageError } from './output.ts'

export interface CycleSummary {
  at: string
  rounds: number
  problems: { policy: string; resource: string; level: string }[]
  fixes: { remediation: string; resource: string; status: string; summary: string }[]
  incidents: { id: string; policy: string; resource: string; status: string; severity: string }[]
  notifications: { sent: number; failed: number }
  openCritical: boolean
}

/** Everything `ansai run` needs, opened once: the state store, the notifiers, the runner. */
export const openHostRuntime = async (
  config: AgentConfig,
  policies: CompiledPolicySet,
  opts: { dryRun: boolean; log: (line: string) => void },
) => {
  const secrets = resolveChannelSecrets(config.notifications.channels, process.env)
  if (!secrets.ok) throw new UsageError(`notification channels:\n  ${secrets.errors.join('\n  ')}`)
  const channels = { console: { type: 'console' as const, stream: 'stdout' as const }, ...secrets.channels }
  const notifiers = Object.fromEntries(createNotifiers(channels, { stdout: process.stdout, stderr: process.stderr }))
  const store = SqliteStore.open(join(config.state.dir, 'state.db'))
  const overrides = {
    'backup-retry': createBackupRetryExecutor({
      commands: config.remediation.backupCommands,
    }) as RemediationExecutor<never>,
    // The connection settings of the databases this config names (not only the default config file's).
    'db-maintenance': createDbMaintenanceExecutor({ databases: config.probes.databases }) as RemediationExecutor<never>,
  }
  const runner = localRunner({ log: opts.log, overrides })
  const collector = { collect: async () => (await collectReport(config, config.state.dir)).report }
  const clock = { now: () => new Date() }

  const cycle = async (): Promise<CycleSummary> => {
    const out: CycleOutcome = await runCycle(
      { policies, collector, runner, store, notifiers, clock, log: opts.log },
      { dryRun: opts.dryRun, defaultChannels: config.notifications.default },
    )
    const last = out.rounds[out.rounds.length - 1]
    await store.prune({
      auditOlderThan: parseDuration(config.state.keepAudit),
      resolvedIncidentsOlderThan: parseDuration(config.state.keepAudit),
      now: clock.now().toISOString(),
    })
    const open = await store.listIncidents({ status: 'open', limit: 1000 })
    return {
      at: clock.now().toISOString(),
      rounds: out.rounds.length,
      problems: (last?.findings ?? [])
        .filter((f) => f.level !== 'ok')
        .map((f) => ({ policy: f.policy, resource: f.resource, level: f.level })),
      fixes: out.rounds.flatMap((r) =>
        r.results.map((x) => ({
          remediation: x.remediation,
          resource: r.decisions.find((d) => d.key === x.key)?.resource ?? '',
          status: x.status,
          summary: x.summary,
        })),
      ),
      incidents: out.incidents.map((i) => ({
        id: i.id,
        policy: i.policy,
        resource: i.resource,
        status: i.status,
        severity: i.severity,
      })),
      notifications: {
        sent: out.deliveries.filter((d) => d.outcome === 'sent').length,
        failed: out.deliveries.filter((d) => d.outcome !== 'sent' && d.outcome !== 'duplicate').length,
      },
      openCritical: open.some((i) => i.severity === 'critical' || i.severity === 'emergency'),
    }
  }

  const print = (s: CycleSummary) => {
    const fixed = s.fixes.map((f) => `${f.remediation} on ${f.resource}: ${f.status} — ${f.summary}`)
    console.error(
      `ansai run ${s.at}: ${s.problems.length} problem(s), ${s.fixes.length} fix(es), ${s.incidents.length} incident change(s), ${s.notifications.sent} notification(s) sent${s.notifications.failed ? `, ${s.notifications.failed} failed (will retry)` : ''}`,
    )
    for (const f of fixed) console.error(`  ${f}`)
  }

  return {
    cycle,
    print,
    store,
    sleep: async (ms: number, stopped: () => boolean) => {
      for (let left = ms; left > 0 && !stopped(); left -= 250) await sleep(Math.min(250, left))
    },
    close: () => store.close(),
  }
}
