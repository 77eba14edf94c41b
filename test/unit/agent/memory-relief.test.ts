/**
 * memory-relief with a scripted ctx.run (exact argv, a fake clock) and real files: the unit's cgroup, /proc/<pid>/
 * status and /proc/meminfo live in a temporary directory, and the scripted "systemd" rewrites them when it signals
 * or restarts the unit, so the memory figures are real measurements by agent/os/unit-memory.ts. The real systemd
 * runs in test/integration/service-healing.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { ExecError, type RunOptions, type RunResult, type runCommand } from '../../../agent/os/exec.ts'
import { measureUnitMemory, parseMemoryMaxProperty } from '../../../agent/os/unit-memory.ts'
import { createMemoryReliefExecutor } from '../../../agent/remediations/memory-relief.ts'
import { UNIT_STATE_PROPERTIES } from '../../../agent/remediations/service-restart.ts'
import type { ExecutorContext } from '../../../agent/remediations/types.ts'
import { ProcessMemoryObservationSchema, RemediationResultV1Schema } from '../../../shared/contracts/index.ts'
import {
  type MemoryReliefParams,
  MemoryReliefParamsSchema,
} from '../../../shared/registry/remediations/memory-relief.ts'

const MiB = 1024 * 1024
const UNIT = 'app.service'
const CG = '/system.slice/app.service'

const dir = mkdtempSync(join(tmpdir(), 'ansai-memory-relief-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const root = join(dir, 'cgroup')
const proc = join(dir, 'proc')
const meminfo = join(dir, 'meminfo')
const memoryPaths = { cgroupRoot: root, procDir: proc, meminfoPath: meminfo }

/** Puts processes (pid → RSS bytes) in a cgroup (relative to the unit's) and writes their /proc status files. */
function setProcesses(procs: Record<number, number>, sub = ''): void {
  const cg = join(root, CG, sub)
  mkdirSync(cg, { recursive: true })
  writeFileSync(
    join(cg, 'cgroup.procs'),
    Object.keys(procs)
      .map((p) => `${p}\n`)
      .join(''),
  )
  for (const [pid, rss] of Object.entries(procs)) {
    mkdirSync(join(proc, pid), { recursive: true })
    writeFileSync(join(proc, pid, 'status'), `Name:\tapp\nUmask:\t0022\nPid:\t${pid}\nVmRSS:\t ${rss / 1024} kB\n`)
  }
}

beforeEach(() => {
  for (const d of [root, proc]) rmSync(d, { recursive: true, force: true })
  writeFileSync(meminfo, 'MemTotal:        1048576 kB\nMemFree:          524288 kB\n')
})

type Props = Record<string, string>

function showText(p: Props): string {
  const props: Props = {
    Id: UNIT,
    LoadState: 'loaded',
    ActiveState: 'active',
    SubState: 'running',
    Result: 'success',
    NRestarts: '0',
    Restart: 'no',
    MainPID: '100',
    ExecMainPID: '100',
    ExecMainCode: '0',
    ExecMainStatus: '0',
    Type: 'simple',
    RemainAfterExit: 'no',
    ControlGroup: CG,
    MemoryMax: String(100 * MiB),
    ...p,
  }
  return Object.entries(props)
    .map(([k, v]) => `${k}=${v}\n`)
    .join('')
}

interface Unit {
  props: Props
}

/** A scripted systemd for one unit: `on` hooks change the unit (and its files) when a command runs. */
function fakeHost(
  unit: Unit,
  on: { kill?: () => Partial<RunResult> | undefined; reload?: () => Partial<RunResult> | undefined } = {},
  dryRun = false,
) {
  let t = 0
  const calls: string[][] = []
  const run = (async (file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> => {
    const argv = [file, ...args]
    calls.push(argv)
    expect(opts.timeoutMs).toBeGreaterThan(0)
    let extra: Partial<RunResult> | undefined
    if (file === 'missing') throw new ExecError('spawn-failed', file, 'ENOENT', { errno: 'ENOENT' })
    if (args[0] === 'show') extra = { stdout: showText(unit.props) }
    if (args[0] === 'kill') extra = on.kill?.()
    if (args[0] === 'reload') extra = on.reload?.()
    if (args[0] === 'reset-failed') unit.props = { ...unit.props, ActiveState: 'inactive', SubState: 'dead' }
    if (args[0] === 'restart') {
      // a fresh process, small again
      rmSync(join(root, CG), { recursive: true, force: true })
      setProcesses({ 200: 2 * MiB })
      unit.props = { ...unit.props, ActiveState: 'active', SubState: 'running', MainPID: '200', ExecMainPID: '200' }
    }
    const r: RunResult = {
      exitCode: 0,
      signal: null,
      stdout: '',
      stderr: '',
      timedOut: false,
      truncated: false,
      durationMs: 5,
      ...extra,
    }
    t += r.durationMs
    return r
  }) as typeof runCommand
  const ctx: ExecutorContext = {
    key: 'k1',
    dryRun,
    now: () => new Date(Date.UTC(2025, 0, 1) + t),
    run,
    log: () => {},
  }
  const sleep = async (ms: number) => {
    t += ms
  }
  const executor = createMemoryReliefExecutor({
    sleep,
    confirmMs: 0,
    settleMs: 2000,
    measureEveryMs: 250,
    memory: memoryPaths,
  })
  return { ctx, calls, executor, elapsed: () => t }
}

const SHOW_MEMORY = [
  'systemctl',
  'show',
  `--property=${[...UNIT_STATE_PROPERTIES, 'ControlGroup', 'MemoryMax', 'MemoryLimit'].join(',')}`,
  UNIT,
]
const SHOW = ['systemctl', 'show', `--property=${UNIT_STATE_PROPERTIES.join(',')}`, UNIT]
const RESTART = ['systemctl', 'restart', UNIT]
const KILL_USR1 = ['systemctl', 'kill', '--kill-whom=main', '--signal=SIGUSR1', UNIT]
const RELOAD = ['systemctl', 'reload', UNIT]

const params = (p: Record<string, unknown> = {}): MemoryReliefParams =>
  MemoryReliefParamsSchema.parse({ unit: UNIT, ...p })

describe('memory-relief executor', () => {
  it('restarts at once when neither a signal nor a reload is configured; memory measured before and after', async () => {
    setProcesses({ 100: 90 * MiB, 101: 5 * MiB })
    const unit = { props: {} }
    const h = fakeHost(unit)
    const { result, audit } = await h.executor.execute(params(), h.ctx)
    expect(RemediationResultV1Schema.parse(result)).toEqual(result)
    expect(h.calls).toEqual([SHOW_MEMORY, RESTART, SHOW])
    expect(result.status).toBe('succeeded')
    expect(result.evidence.memory).toEqual({
      source: 'rss',
      limitBytes: 100 * MiB,
      limitSource: 'MemoryMax',
      before: { bytes: 95 * MiB, percentOfLimit: 95, source: 'rss', processes: 2 },
      afterRestart: { bytes: 2 * MiB, percentOfLimit: 2, source: 'rss', processes: 1 },
    })
    expect(result.evidence).toMatchObject({
      restartReason: 'no signal or reload configured: restart at once',
      restart: { ok: true, oldMainPid: 100, newMainPid: 200, resetFailed: false },
      actions: ['restarted'],
    })
    expect(result.summary).toBe(
      'app.service used 95.0 MiB (95 % of 100.0 MiB); restarted (no signal or reload configured: restart at once) in 10 ms, MainPID 100 -> 200, memory now 2.0 MiB (2 % of 100.0 MiB)',
    )
    expect(audit).toEqual([{ action: 'restart', target: UNIT, detail: 'up in 10 ms, MainPID 100 -> 200' }])
  })

  it('signal first; memory falls below the threshold: no restart, and the settle stops early', async () => {
    setProcesses({ 100: 95 * MiB })
    const unit = { props: {} }
    let signalled = 0
    const h = fakeHost(unit, {
      kill: () => {
        signalled++
        setProcesses({ 100: 40 * MiB }) // the service trims its caches on SIGUSR1
        return undefined
      },
    })
    const { result, audit } = await h.executor.execute(
      params({ signal: 'SIGUSR1', restartIfStillAbovePercent: 90 }),
      h.ctx,
    )
    expect(signalled).toBe(1)
    expect(h.calls).toEqual([SHOW_MEMORY, KILL_USR1, SHOW])
    expect(result.status).toBe('succeeded')
    expect(result.evidence.memory).toMatchObject({
      before: { bytes: 95 * MiB, percentOfLimit: 95 },
      afterRelief: { bytes: 40 * MiB, percentOfLimit: 40, settledMs: 0 },
    })
    expect(result.evidence.memory).not.toHaveProperty('afterRestart')
    expect(result.evidence).toMatchObject({
      actions: ['sent SIGUSR1'],
      signal: { command: KILL_USR1.join(' '), ok: true },
    })
    expect(result.summary).toBe(
      'app.service used 95.0 MiB (95 % of 100.0 MiB); sent SIGUSR1; 40.0 MiB (40 % of 100.0 MiB) after 0 ms; at or below 90 % of the limit: no restart',
    )
    expect(audit).toEqual([{ action: 'signal', target: UNIT, detail: KILL_USR1.join(' ') }])
  })

  it('signal, then restart when the memory is still above the threshold after the settle period', async () => {
    setProcesses({ 100: 95 * MiB })
    const unit = { props: {} }
    const h = fakeHost(unit)
    const { result } = await h.executor.execute(params({ signal: 'SIGUSR1', restartIfStillAbovePercent: 90 }), h.ctx)
    expect(h.calls).toEqual([SHOW_MEMORY, KILL_USR1, SHOW, RESTART, SHOW])
    expect(result.status).toBe('succeeded')
    expect(result.evidence.memory).toMatchObject({
      afterRelief: { bytes: 95 * MiB, settledMs: 2000 },
      afterRestart: { bytes: 2 * MiB },
    })
    expect(result.evidence.restartReason).toBe('still at 95 % of the limit, above 90 %')
    expect(result.evidence.actions).toEqual(['sent SIGUSR1', 'restarted'])
    expect(h.elapsed()).toBeGreaterThanOrEqual(2000)
  })

  it('signal then reload when both are set; a signal without a threshold never restarts', async () => {
    setProcesses({ 100: 95 * MiB })
    const h = fakeHost({ props: {} })
    const { result } = await h.executor.execute(params({ signal: 'SIGUSR1', reload: true }), h.ctx)
    expect(h.calls).toEqual([SHOW_MEMORY, KILL_USR1, RELOAD, SHOW])
    expect(result.status).toBe('succeeded')
    expect(result.evidence.actions).toEqual(['sent SIGUSR1', 'reloaded'])
    expect(result.evidence.memory).toMatchObject({ afterRelief: { settledMs: 2000 } })
  })

  it('a failed reload is a failed result when nothing else was done; with a threshold the restart still relieves', async () => {
    setProcesses({ 100: 95 * MiB })
    const noReload = {
      exitCode: 1,
      stderr: 'Failed to reload app.service: Job type reload is not applicable for unit app.service.',
    }
    const h = fakeHost({ props: {} }, { reload: () => noReload })
    const { result } = await h.executor.execute(params({ reload: true }), h.ctx)
    expect(result.status).toBe('failed')
    expect(result.error).toBe(
      'systemctl reload app.service: exit 1: Failed to reload app.service: Job type reload is not applicable for unit app.service.',
    )

    const h2 = fakeHost({ props: {} }, { reload: () => noReload })
    const r2 = await h2.executor.execute(params({ reload: true, restartIfStillAbovePercent: 80 }), h2.ctx)
    expect(h2.calls).toEqual([SHOW_MEMORY, RELOAD, SHOW, RESTART, SHOW])
    expect(r2.result.status).toBe('succeeded')
    expect(r2.result.evidence.problems).toEqual([expect.stringMatching(/^systemctl reload app.service: exit 1/)])
  })

  it('restarts a service the signal took down (no handler for SIGHUP), resetting it first', async () => {
    setProcesses({ 100: 95 * MiB })
    const unit: Unit = { props: {} }
    const h = fakeHost(unit, {
      kill: () => {
        rmSync(join(root, CG), { recursive: true, force: true })
        unit.props = { ActiveState: 'failed', SubState: 'failed', Result: 'signal', MainPID: '0', ControlGroup: '' }
        return undefined
      },
    })
    const { result } = await h.executor.execute(params({ signal: 'SIGHUP', restartIfStillAbovePercent: 90 }), h.ctx)
    expect(h.calls).toEqual([
      SHOW_MEMORY,
      ['systemctl', 'kill', '--kill-whom=main', '--signal=SIGHUP', UNIT],
      SHOW,
      ['systemctl', 'reset-failed', UNIT],
      RESTART,
      SHOW,
    ])
    expect(result.status).toBe('succeeded')
    expect(result.evidence.restartReason).toBe(
      'app.service is failed/failed, Result=signal after sent SIGHUP: restarting it',
    )
  })

  it('skips a unit that is not running, fails one that is not loaded', async () => {
    const h = fakeHost({ props: { ActiveState: 'inactive', SubState: 'dead', MainPID: '0' } })
    const { result } = await h.executor.execute(params(), h.ctx)
    expect(h.calls).toEqual([SHOW_MEMORY])
    expect(result).toMatchObject({ status: 'skipped' })
    expect(result.summary).toBe('app.service is inactive/dead: no running service whose memory to relieve')

    const h2 = fakeHost({ props: { LoadState: 'not-found', ActiveState: 'inactive' } })
    expect((await h2.executor.execute(params(), h2.ctx)).result).toMatchObject({
      status: 'failed',
      error: 'app.service not found',
    })
  })

  it('dry-run measures and says what it would do, sending nothing', async () => {
    setProcesses({ 100: 95 * MiB })
    const h = fakeHost({ props: {} }, {}, true)
    const { result } = await h.executor.execute(params({ signal: 'SIGUSR1', restartIfStillAbovePercent: 90 }), h.ctx)
    expect(h.calls).toEqual([SHOW_MEMORY])
    expect(result).toMatchObject({ status: 'dry-run', dryRun: true })
    expect(result.summary).toBe(
      'dry-run: app.service uses 95.0 MiB (95 % of 100.0 MiB); would run systemctl kill --kill-whom=main --signal=SIGUSR1 app.service, then a restart if still above 90 % of the limit after up to 2000 ms',
    )
  })

  it('fails with the reason when the restart does not bring the unit up', async () => {
    setProcesses({ 100: 95 * MiB })
    const unit: Unit = { props: {} }
    const h = fakeHost(unit)
    const run = h.ctx.run
    h.ctx.run = (async (file: string, args: readonly string[], opts: RunOptions) => {
      const r = await run(file, args, opts)
      if (args[0] === 'restart') unit.props = { ...unit.props, ActiveState: 'failed', SubState: 'failed', MainPID: '0' }
      return r
    }) as typeof runCommand
    const { result } = await h.executor.execute(params(), h.ctx)
    expect(result.status).toBe('failed')
    expect(result.error).toBe('restart failed: app.service is failed/failed after the restart')
    expect(h.calls.at(-1)).toEqual(['journalctl', '-u', UNIT, '-n', '20', '--no-pager', '-o', 'cat'])
  })
})

describe('unit memory (agent/os/unit-memory.ts)', () => {
  it('RSS path: sums VmRSS over cgroup.procs of the unit and the cgroups below it; a vanished pid is skipped', () => {
    setProcesses({ 100: 10 * MiB, 101: 3 * MiB })
    setProcesses({ 300: 1 * MiB }, 'child')
    writeFileSync(join(root, CG, 'cgroup.procs'), '100\n101\n999\n') // 999 exited since
    const m = measureUnitMemory({ unit: UNIT, controlGroup: CG, memoryMax: 'infinity' }, memoryPaths)
    expect(ProcessMemoryObservationSchema.parse(m.observation)).toEqual(m.observation)
    expect(m.observation).toEqual({
      kind: 'process-memory',
      unit: UNIT,
      memoryBytes: 14 * MiB,
      source: 'rss',
      pids: [100, 101, 300],
      limitBytes: 1024 * MiB, // the host's MemTotal: no MemoryMax
    })
    expect(m.limitSource).toBe('host')
    expect(m.usedPercentOfLimit).toBe(1.37)
    expect(m.processes).toBe(3)
  })

  it('cgroup v2: memory.current and memory.max when the memory controller is there', () => {
    setProcesses({ 100: 10 * MiB })
    writeFileSync(join(root, CG, 'memory.current'), `${12 * MiB}\n`)
    writeFileSync(join(root, CG, 'memory.max'), `${48 * MiB}\n`)
    const m = measureUnitMemory({ unit: UNIT, controlGroup: CG, memoryMax: String(64 * MiB) }, memoryPaths)
    expect(m.observation).toEqual({
      kind: 'process-memory',
      unit: UNIT,
      memoryBytes: 12 * MiB,
      limitBytes: 48 * MiB,
      source: 'cgroup-v2',
      pids: [100],
    })
    expect(m.limitSource).toBe('cgroup')
    expect(m.usedPercentOfLimit).toBe(25)

    writeFileSync(join(root, CG, 'memory.max'), 'max\n')
    const m2 = measureUnitMemory({ unit: UNIT, controlGroup: CG, memoryMax: String(64 * MiB) }, memoryPaths)
    expect(m2.observation.limitBytes).toBe(64 * MiB)
    expect(m2.limitSource).toBe('MemoryMax')
  })

  it('cgroup v1: memory.usage_in_bytes under the memory hierarchy', () => {
    const v1 = join(root, 'memory', CG)
    mkdirSync(v1, { recursive: true })
    writeFileSync(join(v1, 'cgroup.procs'), '100\n')
    writeFileSync(join(v1, 'memory.usage_in_bytes'), `${7 * MiB}\n`)
    writeFileSync(join(v1, 'memory.limit_in_bytes'), '9223372036854771712\n')
    const m = measureUnitMemory({ unit: UNIT, controlGroup: CG }, memoryPaths)
    expect(m.observation).toMatchObject({ memoryBytes: 7 * MiB, source: 'cgroup-v1', limitBytes: 1024 * MiB })
    expect(m.limitSource).toBe('host')
  })

  it('a unit without a cgroup uses no memory; an odd ControlGroup is not followed', () => {
    expect(measureUnitMemory({ unit: UNIT, controlGroup: '' }, memoryPaths).observation.memoryBytes).toBe(0)
    const odd = measureUnitMemory({ unit: UNIT, controlGroup: '/system.slice/../../etc' }, memoryPaths)
    expect(odd.observation.memoryBytes).toBe(0)
    expect(odd.problems).toEqual(['odd ControlGroup "/system.slice/../../etc"'])
    rmSync(meminfo)
    const none = measureUnitMemory({ unit: UNIT, controlGroup: '' }, memoryPaths)
    expect(none.limitSource).toBe('none')
    expect(none.usedPercentOfLimit).toBeUndefined()
  })

  it('reads MemoryMax= as systemd prints it', () => {
    expect(parseMemoryMaxProperty('infinity')).toBeUndefined()
    expect(parseMemoryMaxProperty('18446744073709551615')).toBeUndefined()
    expect(parseMemoryMaxProperty('')).toBeUndefined()
    expect(parseMemoryMaxProperty('67108864')).toBe(64 * MiB)
    setProcesses({ 100: 8 * MiB })
    const v1Limit = measureUnitMemory(
      { unit: UNIT, controlGroup: CG, memoryMax: 'infinity', memoryLimit: String(32 * MiB) },
      memoryPaths,
    )
    expect(v1Limit).toMatchObject({ limitSource: 'MemoryMax', usedPercentOfLimit: 25 })
  })
})
