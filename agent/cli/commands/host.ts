import { mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { Finding } from '../../../shared/contracts/index.ts'
import { parseDuration } from '../../../shared/engine/duration.ts'
import { evaluate } from '../../../shared/engine/evaluate.ts'
import type { HostState } from '../../../shared/engine/state.ts'
import { type AgentConfig, loadAgentConfig } from '../../config/config.ts'
import { loadHostPolicies } from '../../policy/load-config.ts'
import { formatTable, printJson } from '../output.ts'
import { collectReport } from './collect.ts'

// ansai run's runtime takes it from here
export { collectReport } from './collect.ts'

export const CHECK_HELP = `Usage: ansai check [--config <file>] [--json]

Look at this host now: collect every observation, evaluate the policies (the baseline pack and yours), and print
what is wrong and which fixes ANSAI would make. Changes nothing (a dry run) and keeps no state: each condition is
judged as if the current readings persisted (debounces such as 'for: 2 cycles' are played out).

Options:
  --config <file>  The configuration (default /etc/ansai/config.yaml when it exists; defaults otherwise).
  --all            Also list every healthy resource.
  --json           Print {host, findings, wouldFix, notifications, probeErrors, skippedPolicies} as JSON.
  --exit-code      Exit 1 when something is critical or worse (for scripts and monitoring).
  -h, --help       Show this help.

Exit codes: 0 done (with --exit-code: nothing critical), 1 something critical (--exit-code), 2 bad usage or
configuration.`

const stateDirFor = (config: AgentConfig, purpose: string): string => {
  // A check keeps nothing: its collection caches go to a private temp dir when the state dir is not writable.
  try {
    mkdirSync(config.state.dir, { recursive: true, mode: 0o700 })
    return config.state.dir
  } catch {
    const dir = join(tmpdir(), `ansai-${purpose}-${process.getuid?.() ?? 'user'}`)
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    return dir
  }
}

const RANK = { ok: 0, warning: 1, critical: 2, emergency: 3 } as const

export const runCheck = async (argv: string[]): Promise<number> => {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      'exit-code': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(CHECK_HELP)
    return 0
  }
  const { config } = loadAgentConfig(values.config)
  const { set, skipped } = loadHostPolicies(config, { forExecution: false })
  const { report, probes } = await collectReport(config, stateDirFor(config, 'check'))

  // Play the same readings forward until every debounce has had its cycles (at most 32), as a dry run.
  const cycles = Math.min(32, Math.max(1, ...set.policies.flatMap((p) => p.tiers.map((t) => t.debounce.within))))
  const step = parseDuration(config.interval)
  let state: HostState | undefined
  let findings: Finding[] = []
  const decisions = []
  const start = Date.parse(report.time)
  for (let i = 0; i < cycles; i++) {
    const out = evaluate({
      policies: set,
      host: report.host,
      observations: report.observations,
      seq: report.seq + i,
      state,
      now: start + i * step,
      dryRun: true,
    })
    state = out.nextState
    findings = out.findings
    decisions.push(...out.decisions)
  }
  const wouldFix = decisions.filter((d) => d.type === 'remediate')
  const notifications = decisions.filter((d) => d.type === 'notify')
  const worst = findings.reduce((m, f) => Math.max(m, RANK[f.level]), 0)

  if (values.json) {
    printJson({
      host: report.host,
      time: report.time,
      findings,
      wouldFix,
      notifications,
      probeErrors: report.probeErrors,
      probes,
      skippedPolicies: skipped,
    })
    return values['exit-code'] && worst >= RANK.critical ? 1 : 0
  }
  const problems = findings.filter((f) => f.level !== 'ok').sort((a, b) => RANK[b.level] - RANK[a.level])
  console.log(`ANSAI check of ${report.host.hostname} (${report.host.id}) at ${report.time}`)
  console.log(
    `${report.observations.length} observations from ${probes.length} probes, ${set.policies.length} policies\n`,
  )
  const valueText = (f: Finding) =>
    Object.entries(f.values)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')
  if (problems.length === 0) console.log('Everything the policies look at is healthy.')
  else {
    console.log(
      formatTable(
        ['level', 'policy', 'resource', 'values'],
        problems.map((f) => [f.level.toUpperCase(), f.policy, f.resource, valueText(f)]),
        90,
      ),
    )
  }
  if (values.all) {
    const healthy = findings.filter((f) => f.level === 'ok')
    console.log(`\nHealthy (${healthy.length}):`)
    console.log(
      formatTable(
        ['policy', 'resource', 'values'],
        healthy.map((f) => [f.policy, f.resource, valueText(f)]),
        90,
      ),
    )
  } else {
    const counts = new Map<string, number>()
    for (const f of findings.filter((x) => x.level === 'ok')) counts.set(f.policy, (counts.get(f.policy) ?? 0) + 1)
    if (counts.size) console.log(`\nHealthy: ${[...counts].map(([p, n]) => `${p} ${n}`).join(', ')} (--all lists them)`)
  }
  console.log(wouldFix.length ? '\nANSAI would fix:' : '\nNo fix needed.')
  for (const d of wouldFix) {
    if (d.type !== 'remediate') continue
    console.log(`  ${d.remediation} on ${d.resource} (${d.policy}, ${d.risk}): ${JSON.stringify(d.params)}`)
  }
  if (report.probeErrors.length) {
    console.log('\nNot observed:')
    for (const e of report.probeErrors) console.log(`  ${e.probe}: ${e.reason}`)
  }
  if (skipped.length) {
    console.log('\nPolicies left out:')
    for (const s of skipped) console.log(`  ${s.name}: ${s.reason}`)
  }
  return values['exit-code'] && worst >= RANK.critical ? 1 : 0
}

export const RUN_HELP = `Usage: ansai run [--once] [--dry-run] [--config <file>] [--json]

Heal this host: collect → evaluate → fix → verify → notify, with state in SQLite (<state.dir>/state.db). After a
fix, the host is collected again so the fix is verified in the same cycle. Each fix runs once per decision (a
rerun never repeats one); policies whose remediation is not built yet are left out with a warning.

Options:
  --once           One cycle, then exit (what the systemd timer runs every minute).
  --dry-run        Decide and tell, change nothing.
  --config <file>  The configuration (default /etc/ansai/config.yaml when it exists).
  --json           Print each cycle's outcome as one JSON line.
  --exit-code      With --once: exit 3 when a critical incident is still open after the cycle (for monitoring).
  -h, --help       Show this help.

Without --once it runs a cycle every 'interval' (default 60s) until SIGINT or SIGTERM. Exit codes: 0 the cycle
ran, 1 it failed, 2 bad usage or configuration, 3 (--exit-code) something critical is open.`

export const runRun = async (argv: string[]): Promise<number> => {
  const { values } = parseArgs({
    args: argv,
    options: {
      once: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
      'exit-code': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(RUN_HELP)
    return 0
  }
  const { config } = loadAgentConfig(values.config)
  const { set, skipped } = loadHostPolicies(config, { forExecution: true })
  for (const s of skipped) console.error(`ansai: policy ${s.name} left out: ${s.reason}`)
  const { openHostRuntime } = await import('../runtime.ts')
  const rt = await openHostRuntime(config, set, {
    dryRun: values['dry-run'] || config.remediation.dryRun,
    log: (l) => console.error(l),
  })
  let stop = false
  const onSignal = () => {
    stop = true
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    let worst = 0
    let rounds = 0
    do {
      const outcome = await rt.cycle()
      if (values.json) console.log(JSON.stringify(outcome))
      else rt.print(outcome)
      worst = values['exit-code'] && outcome.openCritical ? 3 : 0
      if (values.once && (await failedAgain(process.env.ANSAI_TRIGGER, ++rounds))) continue
      if (values.once || stop) break
      await rt.sleep(parseDuration(config.interval), () => stop)
    } while (!stop)
    return worst
  } finally {
    rt.close()
  }
}

/**
 * Run from a unit's OnFailure= hook (`ANSAI_TRIGGER` is the failed unit): systemd folds a failure that comes while
 * the hook still runs into the running start, so before exiting look at the unit once more and run another cycle
 * when it failed again (at most 3 in all).
 */
const failedAgain = async (unit: string | undefined, rounds: number): Promise<boolean> => {
  if (!unit || rounds >= 3 || !/^[A-Za-z0-9_][A-Za-z0-9@._:-]*$/.test(unit)) return false
  const { runCommand } = await import('../../os/exec.ts')
  const r = await runCommand('systemctl', ['is-failed', '--quiet', '--', unit], { timeoutMs: 5_000 }).catch(
    () => undefined,
  )
  return r?.exitCode === 0
}
