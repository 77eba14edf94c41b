/**
 * service-restart and memory-relief on a REAL systemd (test/support/systemd: Debian's systemd 252 as PID 1 of a PID
 * namespace), run INSIDE the machine the way the agent runs on a host.
 *
 * How the executors get in: the test bundles a small driver (the executors, the real exec.ts and the registry's
 * params schemas) with esbuild into one .mjs file, the way the agent itself ships (one bundled file), and binds it
 * with the host's Node (`process.execPath` as /usr/local/bin/node) into the machine. Each remediation is then
 * `node /opt/ansai/driver.mjs <id> <params> <options>` inside, printing one JSON line `{result, audit}`. Chosen
 * over wrapping every argv of an in-process ctx.run in nsenter because the executors also read files themselves
 * (memory-relief reads the unit's cgroup.procs and /proc/<pid>/status): from the host those are the host's files
 * and host pids, inside they are the machine's, as on a real host. (The sources cannot be run by Node directly:
 * type stripping refuses exec.ts's constructor parameter property, so bundling is needed anyway.)
 *
 * Cases: (a) a Restart=no unit whose main process is SIGKILLed from the host comes back with a new MainPID, several
 * times, restart durations measured by the executor; (b) a Restart=on-failure unit is left to systemd while it
 * restarts itself, and restarted by ANSAI once systemd gives up (StartLimitBurst=2); (c) a unit that cannot start
 * fails with its journal lines as evidence, and one stuck activating fails within waitActiveSeconds; (d) a leaking
 * shell service measured through the RSS path (the nested cgroup2 has no memory controller): a signal that
 * relieves it needs no restart, a signal that does not is followed by a restart that brings memory down.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditEntry } from '../../agent/remediations/types.ts'
import { type RemediationResultV1, RemediationResultV1Schema } from '../../shared/contracts/index.ts'
import { requireOrSkip } from '../support/require.ts'
import { SystemdMachine } from '../support/systemd/machine.ts'

const repo = fileURLToPath(new URL('../../', import.meta.url))
const MiB = 1024 * 1024

const status = await SystemdMachine.available()
const canBoot = requireOrSkip(
  'a real systemd (PID 1 of a new PID namespace, needs root)',
  status.ok,
  status.reason ?? 'unknown',
)

const note = (message: string): void => {
  process.stderr.write(`[service-healing.test] ${message}\n`)
}

const DRIVER = `
import { runCommand } from './agent/os/exec.ts'
import { createMemoryReliefExecutor } from './agent/remediations/memory-relief.ts'
import { createServiceRestartExecutor } from './agent/remediations/service-restart.ts'
import { MemoryReliefParamsSchema } from './shared/registry/remediations/memory-relief.ts'
import { ServiceRestartParamsSchema } from './shared/registry/remediations/service-restart.ts'

const [id, paramsJson, optionsJson] = process.argv.slice(2)
const options = JSON.parse(optionsJson ?? '{}')
const ctx = {
  key: 'service-healing-test',
  dryRun: options.dryRun === true,
  now: () => new Date(),
  run: runCommand,
  log: (line) => process.stderr.write(line + '\\n'),
}
const params = JSON.parse(paramsJson)
const out =
  id === 'service-restart'
    ? await createServiceRestartExecutor(options).execute(ServiceRestartParamsSchema.parse(params), ctx)
    : id === 'memory-relief'
      ? await createMemoryReliefExecutor(options).execute(MemoryReliefParamsSchema.parse(params), ctx)
      : undefined
if (!out) throw new Error('unknown remediation ' + id)
process.stdout.write(JSON.stringify(out) + '\\n')
`

/**
 * A shell service whose memory grows steadily by 256 KiB every 50 ms (about 5 MiB/s) (each chunk kept in a variable of its own, so
 * nothing is ever freed or copied again). SIGUSR1: a marker only (no relief). SIGUSR2: a marker and a fresh start in
 * the same process (exec), so its memory falls and its pid stays.
 */
const LEAK_SH = `chunk=$(head -c 262144 /dev/zero | tr '\\0' x)
trap 'echo usr1 >> /run/leak.usr1' USR1
trap 'echo usr2 >> /run/leak.usr2; exec /bin/sh /opt/leak.sh' USR2
i=0
while :; do i=$((i + 1)); eval "v$i=\\$chunk"; sleep 0.05; done
`

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number
}

describe.skipIf(!canBoot)('service healing on a real systemd (executors run inside the machine)', () => {
  let machine: SystemdMachine
  let bundleDir: string

  beforeAll(async () => {
    bundleDir = mkdtempSync(join(tmpdir(), 'ansai-healing-bundle-'))
    const t0 = performance.now()
    await build({
      stdin: { contents: DRIVER, resolveDir: repo, loader: 'ts', sourcefile: 'driver.ts' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      outfile: join(bundleDir, 'driver.mjs'),
      logLevel: 'error',
    })
    note(`driver bundled in ${Math.round(performance.now() - t0)} ms`)
    machine = await SystemdMachine.boot({
      name: 'healing',
      binds: [
        { host: bundleDir, inside: '/opt/ansai', readOnly: true },
        { host: process.execPath, inside: '/usr/local/bin/node', readOnly: true },
      ],
    })
    note(`machine booted in ${machine.bootMs} ms (${machine.bootState})`)
  }, 1_800_000) // the first run on a machine builds the rootfs

  afterAll(async () => {
    if (machine) await machine.shutdown()
    if (bundleDir) rmSync(bundleDir, { recursive: true, force: true })
  })

  /** Runs one remediation inside the machine; the one JSON line it prints, checked against the contract. */
  const remediate = async (
    id: 'service-restart' | 'memory-relief',
    params: Record<string, unknown>,
    options: Record<string, unknown> = {},
  ): Promise<{ result: RemediationResultV1; audit: AuditEntry[]; wallMs: number }> => {
    const t0 = performance.now()
    const r = await machine.exec(
      ['node', '/opt/ansai/driver.mjs', id, JSON.stringify(params), JSON.stringify(options)],
      {
        timeoutMs: 120_000,
      },
    )
    const wallMs = Math.round(performance.now() - t0)
    if (r.exitCode !== 0) throw new Error(`driver exited ${r.exitCode}: ${r.stderr}`)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    const out = JSON.parse(lines[0] as string) as { result: RemediationResultV1; audit: AuditEntry[] }
    expect(RemediationResultV1Schema.parse(out.result)).toEqual(out.result)
    expect(JSON.stringify(out.result).length).toBeLessThan(16_000)
    return { ...out, wallMs }
  }

  const state = (unit: string) => machine.show(unit, ['ActiveState', 'SubState', 'Result', 'MainPID', 'NRestarts'])

  const waitState = (unit: string, ok: (s: Awaited<ReturnType<typeof state>>) => boolean, what: string, ms = 15_000) =>
    machine.waitFor(
      async () => {
        const s = await state(unit)
        return ok(s) ? s : undefined
      },
      ms,
      `${unit}: ${what}`,
    )

  /** VmRSS of a unit's main process, read inside the machine (pids there are the machine's). */
  const mainRss = async (unit: string): Promise<number> => {
    const pid = await machine.mainPid(unit)
    const status = await machine.exec(['cat', `/proc/${pid}/status`])
    const m = /VmRSS:\s+(\d+) kB/.exec(status.stdout)
    return m ? Number(m[1]) * 1024 : 0
  }

  it('(a) a killed Restart=no unit is restarted, verified active with a new MainPID, duration measured', async () => {
    await machine.installUnit(
      'crash.service',
      ['[Unit]', 'Description=crashes when killed', '[Service]', 'ExecStart=/bin/sleep infinity', 'Restart=no'].join(
        '\n',
      ),
    )
    await machine.run(['systemctl', 'start', 'crash.service'])
    const durations: number[] = []
    const verified: number[] = []
    for (let i = 0; i < 5; i++) {
      const pid = await machine.mainPid('crash.service')
      expect(pid).toBeGreaterThan(0)
      process.kill(machine.hostPid(pid) as number, 'SIGKILL')
      const dead = await waitState('crash.service', (s) => s.ActiveState === 'failed', 'failed')
      expect(dead?.Result).toBe('signal')

      const { result, audit, wallMs } = await remediate('service-restart', { unit: 'crash.service' })
      expect(result.status).toBe('succeeded')
      expect(result.evidence).toMatchObject({
        before: { activeState: 'failed', result: 'signal', execMain: 'killed by signal 9', mainPid: 0 },
        after: { activeState: 'active', subState: 'running' },
        oldMainPid: pid,
        resetFailed: true,
        commands: ['systemctl reset-failed crash.service', 'systemctl restart crash.service'],
      })
      const now = await state('crash.service')
      expect(now.ActiveState).toBe('active')
      expect(Number(now.MainPID)).toBe(result.evidence.newMainPid)
      expect(Number(now.MainPID)).not.toBe(pid)
      expect(audit.map((a) => a.action)).toEqual(['reset-failed', 'restart'])
      const ms = result.evidence.restartMs as number
      expect(ms).toBeGreaterThanOrEqual(0)
      expect(ms).toBeLessThan(5000)
      durations.push(ms)
      verified.push(result.evidence.verifiedMs as number)
      if (i === 0) note(`first restart: ${result.summary} (driver wall time ${wallMs} ms)`)
    }
    note(
      `restart durations (restart issued -> active), ms: [${durations.join(', ')}], p50 ${percentile(durations, 50)}; verified (+ 500 ms confirmation): p50 ${percentile(verified, 50)}`,
    )
    await machine.run(['systemctl', 'stop', 'crash.service'])
  }, 60_000)

  it('(b) a Restart=on-failure unit is left to systemd while it restarts itself, restarted once systemd gives up', async () => {
    await machine.installUnit(
      'flap.service',
      [
        '[Unit]',
        'Description=fails until /run/flap-ok exists',
        'StartLimitBurst=2',
        'StartLimitIntervalSec=60',
        '[Service]',
        `ExecStart=/bin/sh -c 'test -e /run/flap-ok || exit 1; exec sleep infinity'`,
        'Restart=on-failure',
        'RestartSec=2', // the skipped run below happens well inside systemd's 2 × 2 s of retries
      ].join('\n'),
    )
    await machine.systemctl('start', 'flap.service')
    await waitState('flap.service', (s) => s.SubState === 'auto-restart', 'auto-restart')

    const skipped = await remediate('service-restart', { unit: 'flap.service' })
    expect(skipped.result.status).toBe('skipped')
    expect(skipped.result.summary).toMatch(
      /^left flap.service to systemd: Restart=on-failure and systemd is restarting it/,
    )
    expect(skipped.result.evidence).toMatchObject({
      plan: 'leave-to-systemd',
      before: { activeState: 'activating', restart: 'on-failure' },
    })
    expect(skipped.audit.map((a) => a.action)).toEqual(['skip'])

    // systemd tries once more, then its start limit stops it
    const gaveUp = await waitState('flap.service', (s) => s.ActiveState === 'failed', 'failed (start limit)', 20_000)
    note(`flap.service after systemd gave up: ${JSON.stringify(gaveUp)}`)
    await machine.writeFile('/run/flap-ok', '')
    const fixed = await remediate('service-restart', { unit: 'flap.service' })
    expect(fixed.result.status).toBe('succeeded')
    expect(fixed.result.evidence).toMatchObject({
      systemdGaveUp: true,
      resetFailed: true,
      before: { activeState: 'failed', restart: 'on-failure' },
      after: { activeState: 'active', subState: 'running' },
    })
    expect((await state('flap.service')).ActiveState).toBe('active')
    note(`flap.service: ${fixed.result.summary}`)
    await machine.run(['systemctl', 'stop', 'flap.service'])
  }, 60_000)

  it('(c) a unit that cannot start fails with its journal lines; one stuck activating fails within waitActiveSeconds', async () => {
    await machine.installUnit('broken.service', '[Service]\nExecStart=/bin/false\n')
    await machine.systemctl('start', 'broken.service')
    await waitState('broken.service', (s) => s.ActiveState === 'failed', 'failed')
    const t0 = performance.now()
    const { result, audit } = await remediate('service-restart', { unit: 'broken.service', waitActiveSeconds: 5 })
    expect(performance.now() - t0).toBeLessThan(5000)
    expect(result.status).toBe('failed')
    expect(result.error).toMatch(/^broken.service is failed\/failed, Result=exit-code, main process exited 1/)
    const journal = result.evidence.journal as string[]
    expect(journal.length).toBeGreaterThan(0)
    expect(journal.length).toBeLessThanOrEqual(20)
    expect(journal.join('\n')).toMatch(/Main process exited, code=exited, status=1\/FAILURE/)
    expect(audit.map((a) => a.action)).toEqual(['reset-failed', 'restart-failed'])

    await machine.installUnit(
      'stuck.service',
      '[Service]\nExecStartPre=/bin/sleep 60\nExecStart=/bin/sleep infinity\nTimeoutStartSec=120\n',
    )
    const t1 = performance.now()
    const stuck = await remediate('service-restart', { unit: 'stuck.service', waitActiveSeconds: 2 })
    const took = performance.now() - t1
    note(`stuck.service: failed after ${Math.round(took)} ms (waitActiveSeconds 2): ${stuck.result.error}`)
    expect(stuck.result.status).toBe('failed')
    expect(stuck.result.error).toBe('stuck.service is not up after 2 s: activating/start-pre')
    expect(stuck.result.durationMs).toBeLessThan(2000 + 1500)
    expect(took).toBeLessThan(2000 + 3000) // + node's start inside the machine
    await machine.systemctl('stop', 'stuck.service')
  }, 60_000)

  it('(d) memory-relief on a leaking service, measured through the RSS path: relief by signal, else a restart', async () => {
    await machine.writeFile('/opt/leak.sh', LEAK_SH)
    await machine.installUnit(
      'leak.service',
      '[Unit]\nDescription=grows its memory\n[Service]\nExecStart=/bin/sh /opt/leak.sh\nMemoryMax=64M\n',
    )
    await machine.run(['systemctl', 'start', 'leak.service'])
    const hasMemoryCurrent = existsSync(machine.path('/sys/fs/cgroup/system.slice/leak.service/memory.current'))
    const threshold = 20 // % of 64 MiB: 12.8 MiB
    const grown = async () =>
      machine.waitFor(
        async () => ((await mainRss('leak.service')) > 16 * MiB ? true : undefined),
        20_000,
        'RSS > 16 MiB',
      )

    // 1. SIGUSR2 relieves it (the script starts afresh in the same process): no restart
    await grown()
    const pid1 = await machine.mainPid('leak.service')
    const relieved = await remediate(
      'memory-relief',
      { unit: 'leak.service', signal: 'SIGUSR2', restartIfStillAbovePercent: threshold },
      { settleMs: 3000 },
    )
    note(`relieved by SIGUSR2: ${relieved.result.summary}`)
    expect(relieved.result.status).toBe('succeeded')
    const m1 = relieved.result.evidence.memory as Record<string, Record<string, number> | number | string>
    expect(m1).toMatchObject({
      source: hasMemoryCurrent ? 'cgroup-v2' : 'rss',
      limitBytes: 64 * MiB,
      limitSource: hasMemoryCurrent ? 'cgroup' : 'MemoryMax',
    })
    expect((m1.before as Record<string, number>).percentOfLimit).toBeGreaterThan(threshold)
    expect((m1.afterRelief as Record<string, number>).percentOfLimit).toBeLessThanOrEqual(threshold)
    expect(m1.afterRestart).toBeUndefined()
    expect(relieved.result.evidence.actions).toEqual(['sent SIGUSR2'])
    expect(await machine.readFile('/run/leak.usr2')).toBe('usr2\n')
    expect(await machine.mainPid('leak.service')).toBe(pid1)

    // 2. SIGUSR1 is received (the marker) but frees nothing: still above the threshold, so a restart
    await grown()
    const restarted = await remediate(
      'memory-relief',
      { unit: 'leak.service', signal: 'SIGUSR1', restartIfStillAbovePercent: threshold },
      { settleMs: 1000 },
    )
    note(`not relieved by SIGUSR1: ${restarted.result.summary}`)
    expect(restarted.result.status).toBe('succeeded')
    expect(await machine.readFile('/run/leak.usr1')).toBe('usr1\n')
    const m2 = restarted.result.evidence.memory as Record<string, Record<string, number>>
    expect(m2.before?.percentOfLimit).toBeGreaterThan(threshold)
    expect(m2.afterRelief?.percentOfLimit).toBeGreaterThan(threshold)
    expect(m2.afterRelief?.settledMs).toBeGreaterThanOrEqual(1000)
    // the new process has grown for the confirmation window only
    expect(m2.afterRestart?.percentOfLimit).toBeLessThan(threshold)
    expect(m2.afterRestart?.bytes).toBeLessThan((m2.afterRelief?.bytes as number) / 2)
    expect(restarted.result.evidence).toMatchObject({
      actions: ['sent SIGUSR1', 'restarted'],
      restart: { ok: true, oldMainPid: pid1 },
    })
    const pid2 = await machine.mainPid('leak.service')
    expect(pid2).not.toBe(pid1)
    expect((restarted.result.evidence.restart as { newMainPid: number }).newMainPid).toBe(pid2)

    // 3. dry-run: measured, nothing sent
    const dry = await remediate('memory-relief', { unit: 'leak.service' }, { dryRun: true })
    expect(dry.result.status).toBe('dry-run')
    expect(await machine.mainPid('leak.service')).toBe(pid2)
    await machine.run(['systemctl', 'stop', 'leak.service'])
  }, 90_000)
})
