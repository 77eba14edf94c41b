/**
 * Service crash → restarted and verified active, on a REAL systemd (test/support/systemd), ANSAI against Monit.
 *
 * One machine, one unit, `demo.service` (`ExecStart=/bin/sleep infinity`, Restart=no). Each crash is a SIGKILL of
 * its main process sent from the host at t0; a poller then runs `systemctl show -p ActiveState,MainPID` inside the
 * machine every 20 ms until the unit is active with a new MainPID (t1). Figures: p50, p99 and max of t1 − t0.
 *
 * - ANSAI, built (agent/build) and installed inside the machine by its own install.sh (test/support/ansai-machine.ts):
 *   `OnFailure=ansai-report@%n.service`, the shipped hook, a oneshot running `ansai run --once` (the single-host
 *   shape: collect → evaluate → service-restart → collect again to verify → notify, state in SQLite). The hook's
 *   own start limit (3 reports per unit and minute) is lifted by a drop-in for the bench, which crashes demo every
 *   second or two; ANSAI's limit is the guard against restarting forever. Also measured:
 *   crash → the hook's run finished (the fix verified by a fresh observation and the incident resolved). The policy
 *   is the baseline's service-failed with a limit high enough for the bench (max 100 within 1h), no cooldown and
 *   flapping detection out of the way (each crash is its own incident, fixed and resolved). The next crash waits
 *   until the hook is idle, and 500 ms more: a failure while the hook's oneshot is still running joins that start
 *   job and is not reported by the hook again (the timer would catch it).
 * - Monit (Debian's 5.33, in the same machine, on the same unit, with the OnFailure hook removed):
 *   `check process demo matching "^/bin/sleep infinity$"`, `start program = "/bin/systemctl start demo.service"`,
 *   with its default 30 s cycle and with a 5 s cycle. Monit restarts at its ticks, so the next crash comes at an
 *   offset from the last restart; the offsets spread the crashes evenly over the cycle (in random order), so its
 *   figures include the wait for the next tick that a real crash meets (half a cycle on average).
 *
 * `npm run bench` calls {@link runCrashRestartBench}; `node test/bench/crash-restart.ts` runs it alone (needs root).
 * Environment: ANSAI_BENCH_CRASHES (default 25), ANSAI_BENCH_MONIT30_CRASHES (default 10: about 30 s each),
 * ANSAI_BENCH_MONIT5_CRASHES (default 20); 0 leaves a part out.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import {
  ANSAI_BIN,
  ANSAI_CONFIG,
  type AnsaiRelease,
  buildAnsaiForMachine,
  installAnsai,
  machineConfig,
} from '../support/ansai-machine.ts'
import { SystemdMachine } from '../support/systemd/machine.ts'

export interface LatencyStats {
  samples: number
  p50: number
  p99: number
  max: number
  mean: number
}

export interface CrashRestartBench {
  /** Why nothing was measured (no root, no namespaces, ...). */
  skipped?: string
  /** Crash → active with a new MainPID, restarted by ANSAI's OnFailure hook, ms. */
  ansai?: LatencyStats
  /** Crash → the hook's `ansai run --once` finished: restart confirmed, verified by a fresh observation, resolved. */
  ansaiVerified?: LatencyStats
  /** Crash → active with a new MainPID, restarted by Monit, per Monit cycle length. */
  monit: { cycleSeconds: number; stats: LatencyStats }[]
  notes: string[]
}

export interface CrashRestartOptions {
  crashes?: number
  monit30Crashes?: number
  monit5Crashes?: number
  log?: (line: string) => void
}

const REPORT_UNIT = 'ansai-report@demo.service.service'
const POLL_MS = 20

const CONFIG_YAML = machineConfig({ hostId: 'bench-crash-restart', services: ['demo.service'], failedAny: false })

const POLICY_YAML = `apiVersion: ansai/v1
kind: Policy
metadata: { name: demo-failed }
spec:
  observe: service
  match: { unit: demo.service }
  severity:
    critical: { when: "activeState == 'failed' && !selfHealing" }
  remediate:
    - run: service-restart
    - escalate: page
  guards:
    limit: { max: 100, within: 1h, then: escalate }
    cooldown: 0s
    flapping: { changes: 100, within: 1h, stableFor: 1 }
  verify: { within: 2m }
`

const demoUnit = (onFailure: boolean) => `[Unit]
Description=the crash-restart bench's service
${onFailure ? 'OnFailure=ansai-report@%n.service' : ''}

[Service]
ExecStart=/bin/sleep infinity
Restart=no
`

/** A drop-in for the shipped hook: no start limit of its own for the bench (see the header). */
const HOOK_DROP_IN = `[Unit]
StartLimitIntervalSec=0
`

/** How long after a restart by Monit the bench waits at least before the next crash (see the offsets). */
const MONIT_SETTLE_MS = 2000

const monitrc = (cycleSeconds: number) => `set daemon ${cycleSeconds}
set log /var/log/monit-bench.log
set pidfile /run/monit-bench.pid
set idfile /var/lib/monit/bench.id
set statefile /var/lib/monit/bench.state

check process demo matching "^/bin/sleep infinity$"
  start program = "/bin/systemctl start demo.service"
  stop program = "/bin/systemctl stop demo.service"
`

export const percentile = (values: readonly number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
}

const statsOf = (values: readonly number[]): LatencyStats => ({
  samples: values.length,
  p50: percentile(values, 50),
  p99: percentile(values, 99),
  max: Math.max(...values),
  mean: values.reduce((a, b) => a + b, 0) / values.length,
})

const envInt = (name: string): number | undefined => {
  const v = process.env[name]
  return v === undefined || v === '' ? undefined : Number.parseInt(v, 10)
}

export async function runCrashRestartBench(opts: CrashRestartOptions = {}): Promise<CrashRestartBench> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`[crash-restart] ${line}\n`))
  const crashes = opts.crashes ?? envInt('ANSAI_BENCH_CRASHES') ?? 25
  const monitRuns = [
    { cycleSeconds: 30, crashes: opts.monit30Crashes ?? envInt('ANSAI_BENCH_MONIT30_CRASHES') ?? 10 },
    { cycleSeconds: 5, crashes: opts.monit5Crashes ?? envInt('ANSAI_BENCH_MONIT5_CRASHES') ?? 20 },
  ].filter((r) => r.crashes > 0)
  const available = await SystemdMachine.available()
  if (!available.ok) return { skipped: available.reason ?? 'no real systemd here', monit: [], notes: [] }

  let release: AnsaiRelease | undefined
  let machine: SystemdMachine | undefined
  try {
    release = await buildAnsaiForMachine()
    machine = await SystemdMachine.boot({ name: 'bench-crash', binds: release.binds })
    const m = machine
    const notes = [
      `systemd 252 as PID 1 of a PID namespace (test/support/systemd), ${process.version}; poll every ${POLL_MS} ms (one \`systemctl show\` through nsenter each)`,
    ]

    const demo = () => m.show('demo.service', ['ActiveState', 'MainPID'])
    const hook = () => m.show(REPORT_UNIT, ['ActiveState', 'ExecMainExitTimestampMonotonic'])

    /** SIGKILL from the host; resolves at t1 (active, new MainPID) with t1 − t0 in ms. */
    const crashAndTime = async (limitMs: number): Promise<{ ms: number; t0: number; old: number }> => {
      const old = await m.mainPid('demo.service')
      const host = old > 0 ? m.hostPid(old) : undefined
      if (!host) throw new Error(`demo.service has no main process to kill (MainPID ${old})`)
      const t0 = performance.now()
      process.kill(host, 'SIGKILL')
      for (;;) {
        const s = await demo()
        const now = performance.now()
        if (s.ActiveState === 'active' && Number(s.MainPID) > 0 && Number(s.MainPID) !== old)
          return { ms: now - t0, t0, old }
        if (now - t0 > limitMs) {
          const journal = await m.exec(['journalctl', '--no-pager', '-n', '40'])
          throw new Error(`demo.service not back within ${limitMs} ms (${JSON.stringify(s)})\n${journal.stdout}`)
        }
        await sleep(POLL_MS)
      }
    }

    await m.installUnit('demo.service', demoUnit(true))
    await m.run(['systemctl', 'start', 'demo.service'])

    const result: CrashRestartBench = { monit: [], notes }
    if (crashes > 0) {
      await installAnsai(m, { config: CONFIG_YAML, policies: { 'demo.yaml': POLICY_YAML } })
      await m.writeFile('/etc/systemd/system/ansai-report@.service.d/bench.conf', HOOK_DROP_IN)
      await m.run(['systemctl', 'daemon-reload'])
      const restarted: number[] = []
      const verified: number[] = []
      let lastExit = (await hook()).ExecMainExitTimestampMonotonic
      for (let i = 1; i <= crashes; i++) {
        const { ms, t0 } = await crashAndTime(30_000)
        restarted.push(ms)
        // the hook's run ends after the restart is confirmed and verified by a fresh observation
        for (;;) {
          const h = await hook()
          if (
            (h.ActiveState === 'inactive' || h.ActiveState === 'failed') &&
            h.ExecMainExitTimestampMonotonic !== lastExit
          ) {
            verified.push(performance.now() - t0)
            lastExit = h.ExecMainExitTimestampMonotonic
            if (h.ActiveState === 'failed') throw new Error(`${REPORT_UNIT} failed on crash ${i}`)
            break
          }
          if (performance.now() - t0 > 60_000) throw new Error(`${REPORT_UNIT} did not finish on crash ${i}`)
          await sleep(POLL_MS)
        }
        log(
          `ANSAI crash ${i}/${crashes}: active again in ${ms.toFixed(0)} ms, verified in ${verified.at(-1)?.toFixed(0)} ms`,
        )
        await sleep(500)
      }
      result.ansai = statsOf(restarted)
      result.ansaiVerified = statsOf(verified)
      const st = await m.exec([ANSAI_BIN, 'status', '--json', '--config', ANSAI_CONFIG])
      const summary = JSON.parse(st.stdout).summary as { verifiedFixes: { count: number }[]; autoResolved: number }
      notes.push(
        `ANSAI: ${summary.verifiedFixes[0]?.count ?? 0} verified service-restart fixes, ${summary.autoResolved} incidents resolved by a verified fix (of ${crashes} crashes)`,
      )
    }

    if (monitRuns.length > 0) {
      // the same unit, without ANSAI's hook
      await m.installUnit('demo.service', demoUnit(false))
      for (const run of monitRuns) {
        await m.writeFile('/etc/monit/bench.monitrc', monitrc(run.cycleSeconds), 0o600)
        await m.run(['systemctl', 'reset-failed', 'demo.service'])
        await m.run(['systemctl', 'start', 'demo.service'])
        await m.run(['systemd-run', '--unit=monit-bench', '/usr/bin/monit', '-I', '-c', '/etc/monit/bench.monitrc'])
        await sleep(1000) // monit's first cycle: demo is running
        // Monit checks (and restarts) at its ticks; the next crash comes at an offset from the last restart that
        // spreads the crashes evenly over its cycle, in random order: few samples still show the whole range. Never
        // within MONIT_SETTLE_MS of the restart: Monit checks that a process it started is up, and one killed before
        // that check counts as a failed start, retried only after its 30 s start timeout (the bench would measure
        // its own interference, not Monit's cycle).
        const offsets = Array.from(
          { length: run.crashes },
          (_, i) => MONIT_SETTLE_MS + ((i + 0.5) / run.crashes) * run.cycleSeconds * 1000,
        )
        for (let i = offsets.length - 1; i > 0; i--) {
          const j = Math.floor(Math.random() * (i + 1))
          ;[offsets[i], offsets[j]] = [offsets[j] as number, offsets[i] as number]
        }
        const samples: number[] = []
        for (let i = 1; i <= run.crashes; i++) {
          await sleep(offsets[i - 1] as number)
          const { ms } = await crashAndTime(run.cycleSeconds * 1000 + 30_000)
          samples.push(ms)
          log(`Monit (${run.cycleSeconds} s cycle) crash ${i}/${run.crashes}: active again in ${ms.toFixed(0)} ms`)
        }
        await m.run(['systemctl', 'stop', 'monit-bench.service'])
        result.monit.push({ cycleSeconds: run.cycleSeconds, stats: statsOf(samples) })
      }
      const version = ((await m.exec(['/usr/bin/monit', '-V'])).stdout.split('\n')[0] ?? 'Monit').replace(
        /^This is /,
        '',
      )
      notes.push(
        `${version.trim()}: check process … matching, start program = systemctl start; crashes spread evenly over its cycle`,
      )
    }
    return result
  } finally {
    if (machine) await machine.shutdown()
    release?.cleanup()
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`

/** The figures as a table (for `npm run bench` and the README). */
export const formatCrashRestartBench = (b: CrashRestartBench): string => {
  if (b.skipped) return `service crash → restarted: skipped (${b.skipped})`
  const rows: string[][] = [['service crash → active again', 'samples', 'p50', 'p99', 'max', 'mean']]
  const row = (name: string, s: LatencyStats) => [
    name,
    String(s.samples),
    seconds(s.p50),
    seconds(s.p99),
    seconds(s.max),
    seconds(s.mean),
  ]
  if (b.ansai) rows.push(row('ANSAI (OnFailure hook → ansai-agent report)', b.ansai))
  if (b.ansaiVerified) rows.push(row('ANSAI, until its run ends (fix verified, resolved)', b.ansaiVerified))
  for (const mo of b.monit)
    rows.push(row(`Monit, ${mo.cycleSeconds} s cycle${mo.cycleSeconds === 30 ? ' (default)' : ''}`, mo.stats))
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => r[c]?.length ?? 0))) ?? []
  const lines = rows.map((r) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  '),
  )
  const out = [...lines]
  if (b.ansai) {
    out.push('', 'goal (ANSAI): p50 ≤ 2 s, p99 ≤ 5 s')
    for (const mo of b.monit) {
      out.push(
        `Monit ${mo.cycleSeconds} s / ANSAI: p50 ×${(mo.stats.p50 / b.ansai.p50).toFixed(1)}, p99 ×${(mo.stats.p99 / b.ansai.p99).toFixed(1)}`,
      )
    }
  }
  out.push('', ...b.notes)
  return out.join('\n')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bench = await runCrashRestartBench()
  console.log(formatCrashRestartBench(bench))
}
