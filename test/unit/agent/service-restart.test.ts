/**
 * service-restart with a scripted ctx.run: every command is asserted as the exact argv it would be (no shell
 * strings), the clock is fake (sleeps advance it), and the unit's states come from a script of `systemctl show`
 * answers. The real systemd runs in test/integration/service-healing.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { ExecError, type RunOptions, type RunResult, type runCommand } from '../../../agent/os/exec.ts'
import {
  checkSignalName,
  checkUnitName,
  journalTail,
  killUnit,
  parseShowProperties,
  SystemdArgumentError,
} from '../../../agent/os/systemd.ts'
import {
  createServiceRestartExecutor,
  isUp,
  systemdIsRestarting,
  toUnitState,
  UNIT_STATE_PROPERTIES,
} from '../../../agent/remediations/service-restart.ts'
import type { ExecutorContext } from '../../../agent/remediations/types.ts'
import { RemediationResultV1Schema } from '../../../shared/contracts/index.ts'
import {
  type ServiceRestartParams,
  ServiceRestartParamsSchema,
} from '../../../shared/registry/remediations/service-restart.ts'

type Props = Record<string, string>

/** A `systemctl show` answer: a loaded, running Type=simple unit unless told otherwise. */
function showText(unit: string, p: Props = {}): string {
  const props: Props = {
    Id: unit,
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
    ...p,
  }
  return `${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`
}

const FAILED_KILLED: Props = {
  ActiveState: 'failed',
  SubState: 'failed',
  Result: 'signal',
  MainPID: '0',
  ExecMainPID: '100',
  ExecMainCode: '2',
  ExecMainStatus: '9',
}

interface Call {
  argv: string[]
  timeoutMs: number
  at: number
}

type Answer = Partial<RunResult> | 'missing'

/** A fake host: a clock advanced by sleeps and by each command's `durationMs`, and a scripted run. */
function fakeHost(answer: (argv: string[], at: number) => Answer, dryRun = false) {
  let t = 0
  const calls: Call[] = []
  const run = (async (file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> => {
    const argv = [file, ...args]
    calls.push({ argv, timeoutMs: opts.timeoutMs, at: t })
    const a = answer(argv, t)
    if (a === 'missing') throw new ExecError('spawn-failed', file, `cannot start ${file}: ENOENT`, { errno: 'ENOENT' })
    const r: RunResult = {
      exitCode: 0,
      signal: null,
      stdout: '',
      stderr: '',
      timedOut: false,
      truncated: false,
      durationMs: 5,
      ...a,
    }
    t += r.durationMs
    return r
  }) as typeof runCommand
  const logs: string[] = []
  const ctx: ExecutorContext = {
    key: 'decision-key-1',
    dryRun,
    now: () => new Date(Date.UTC(2025, 0, 1) + t),
    run,
    log: (line) => logs.push(line),
  }
  const sleep = async (ms: number) => {
    t += ms
  }
  return { ctx, calls, sleep, logs, elapsed: () => t }
}

const UNIT = 'app.service'
const SHOW = ['systemctl', 'show', `--property=${UNIT_STATE_PROPERTIES.join(',')}`, UNIT]
const RESET = ['systemctl', 'reset-failed', UNIT]
const RESTART = ['systemctl', 'restart', UNIT]
const JOURNAL = ['journalctl', '-u', UNIT, '-n', '20', '--no-pager', '-o', 'cat']

const params = (p: Partial<ServiceRestartParams> = {}): ServiceRestartParams =>
  ServiceRestartParamsSchema.parse({ unit: UNIT, ...p })

/**
 * Answers `show` from `before` until the restart is issued, then from `after(nth show since the restart)`; the
 * restart itself succeeds unless `restart` says otherwise.
 */
function script(
  before: Props,
  after: (n: number) => Props,
  opts: { restart?: Partial<RunResult>; journal?: string; unit?: string } = {},
) {
  const unit = opts.unit ?? UNIT
  let restarted = false
  let n = 0
  return (argv: string[]): Answer => {
    if (argv[1] === 'show') return { stdout: showText(unit, restarted ? after(n++) : before) }
    if (argv[1] === 'restart') {
      restarted = true
      return { durationMs: 40, ...opts.restart }
    }
    if (argv[0] === 'journalctl') return { stdout: opts.journal ?? '' }
    return {}
  }
}

const argvs = (calls: Call[]) => calls.map((c) => c.argv)
const shows = (n: number) => Array.from({ length: n }, () => SHOW)

describe('service-restart executor', () => {
  it('brings back a killed Restart=no unit: reset-failed, restart, confirmed up with a new MainPID', async () => {
    const up: Props = { MainPID: '245', ExecMainPID: '245' }
    const h = fakeHost(script(FAILED_KILLED, () => up))
    const ex = createServiceRestartExecutor({ sleep: h.sleep })
    const { result, audit } = await ex.execute(params(), h.ctx)

    expect(RemediationResultV1Schema.parse(result)).toEqual(result)
    // first up read right after the restart, then 5 more reads 100 ms apart: up for 500 ms with the same MainPID
    expect(argvs(h.calls)).toEqual([SHOW, RESET, RESTART, ...shows(6)])
    expect(h.calls.find((c) => c.argv[1] === 'restart')?.timeoutMs).toBe(30_000 - 5)
    expect(result).toMatchObject({
      schema: 'ansai.remediation-result.v1',
      key: 'decision-key-1',
      remediation: 'service-restart',
      status: 'succeeded',
      dryRun: false,
      items: [UNIT],
      itemsTotal: 1,
    })
    expect(result.summary).toBe(
      'restarted app.service: active (running) in 45 ms, MainPID 100 -> 245 (was failed/failed, Result=signal, main process killed by signal 9)',
    )
    expect(result.evidence).toMatchObject({
      unit: UNIT,
      before: {
        activeState: 'failed',
        subState: 'failed',
        result: 'signal',
        mainPid: 0,
        execMain: 'killed by signal 9',
      },
      after: { activeState: 'active', subState: 'running', mainPid: 245 },
      oldMainPid: 100,
      newMainPid: 245,
      restartMs: 45,
      verifiedMs: 550, // up at 45 ms, confirmed once up for ≥ 500 ms
      resetFailed: true,
      commands: ['systemctl reset-failed app.service', 'systemctl restart app.service'],
    })
    expect(result.evidence.journal).toBeUndefined()
    expect(audit).toEqual([
      { action: 'reset-failed', target: UNIT },
      { action: 'restart', target: UNIT, detail: 'up in 45 ms, MainPID 100 -> 245' },
    ])
  })

  it('restarts an active unit without reset-failed', async () => {
    const h = fakeHost(script({}, () => ({ MainPID: '300' })))
    const { result } = await createServiceRestartExecutor({ sleep: h.sleep, confirmMs: 0 }).execute(params(), h.ctx)
    expect(argvs(h.calls)).toEqual([SHOW, RESTART, SHOW])
    expect(result.status).toBe('succeeded')
    expect(result.evidence).toMatchObject({ oldMainPid: 100, newMainPid: 300, resetFailed: false })
  })

  it('leaves a unit that systemd is restarting (Restart=on-failure, auto-restart) to systemd', async () => {
    const autoRestart: Props = {
      ActiveState: 'activating',
      SubState: 'auto-restart',
      Result: 'exit-code',
      Restart: 'on-failure',
      NRestarts: '1',
      MainPID: '0',
      ExecMainCode: '1',
      ExecMainStatus: '1',
    }
    const h = fakeHost(script(autoRestart, () => ({})))
    const { result, audit } = await createServiceRestartExecutor({ sleep: h.sleep }).execute(params(), h.ctx)
    expect(argvs(h.calls)).toEqual([SHOW])
    expect(result.status).toBe('skipped')
    expect(result.summary).toBe(
      'left app.service to systemd: Restart=on-failure and systemd is restarting it (activating/auto-restart, Result=exit-code, main process exited 1, NRestarts=1); ANSAI restarts it only once systemd gives up (start limit)',
    )
    expect(result.evidence).toMatchObject({ plan: 'leave-to-systemd' })
    expect(audit).toEqual([{ action: 'skip', target: UNIT, detail: expect.stringContaining('Restart=on-failure') }])

    // without respectRestartPolicy it is restarted at once
    const h2 = fakeHost(script(autoRestart, () => ({ MainPID: '401' })))
    const forced = await createServiceRestartExecutor({ sleep: h2.sleep, confirmMs: 0 }).execute(
      params({ respectRestartPolicy: false }),
      h2.ctx,
    )
    expect(argvs(h2.calls)).toEqual([SHOW, RESTART, SHOW])
    expect(forced.result.status).toBe('succeeded')
  })

  it('restarts a Restart= unit once systemd gave up on it (start limit), resetting the counter first', async () => {
    for (const result of ['start-limit-hit', 'exit-code']) {
      // systemd 252 keeps Result=exit-code when the limit runs out during its own auto-restarts
      const gaveUp: Props = {
        ...FAILED_KILLED,
        Result: result,
        Restart: 'on-failure',
        NRestarts: '2',
        ExecMainCode: '1',
        ExecMainStatus: '1',
      }
      const h = fakeHost(script(gaveUp, () => ({ MainPID: '500', NRestarts: '0' })))
      const out = await createServiceRestartExecutor({ sleep: h.sleep, confirmMs: 200 }).execute(params(), h.ctx)
      expect(argvs(h.calls)).toEqual([SHOW, RESET, RESTART, ...shows(3)])
      expect(out.result.status).toBe('succeeded')
      expect(out.result.evidence).toMatchObject({ systemdGaveUp: true, resetFailed: true, newMainPid: 500 })
    }
  })

  it('a unit that cannot start fails at once with its last journal lines, bounded', async () => {
    const long = 'x'.repeat(1000)
    const journal = `${Array.from({ length: 19 }, (_, i) => `line ${i}`).join('\n')}\n${long}\n`
    const dead: Props = {
      ...FAILED_KILLED,
      Result: 'exit-code',
      ExecMainPID: '600',
      ExecMainCode: '1',
      ExecMainStatus: '1',
    }
    const h = fakeHost(script(dead, () => dead, { journal }))
    const { result, audit } = await createServiceRestartExecutor({ sleep: h.sleep }).execute(params(), h.ctx)
    expect(argvs(h.calls)).toEqual([SHOW, RESET, RESTART, SHOW, JOURNAL])
    expect(result.status).toBe('failed')
    expect(result.error).toBe('app.service is failed/failed, Result=exit-code, main process exited 1 after the restart')
    const lines = result.evidence.journal as string[]
    expect(lines).toHaveLength(20)
    expect(lines[0]).toBe('line 0')
    expect(lines[19]).toHaveLength(300)
    expect(audit.at(-1)).toMatchObject({ action: 'restart-failed', target: UNIT })
    expect(RemediationResultV1Schema.parse(result)).toEqual(result)
  })

  it('catches a process that dies right after its start (Type=simple, active for a moment)', async () => {
    const h = fakeHost(
      script(
        FAILED_KILLED,
        (n): Props => (n === 0 ? { MainPID: '700' } : { ...FAILED_KILLED, Result: 'exit-code', ExecMainPID: '700' }),
      ),
    )
    const { result } = await createServiceRestartExecutor({ sleep: h.sleep }).execute(params(), h.ctx)
    expect(argvs(h.calls)).toEqual([SHOW, RESET, RESTART, SHOW, SHOW, JOURNAL])
    expect(result.status).toBe('failed')
    expect(result.evidence).toMatchObject({ newMainPid: 0, after: { activeState: 'failed' } })
  })

  it('never waits longer than waitActiveSeconds for a unit that stays activating', async () => {
    const starting: Props = { ActiveState: 'activating', SubState: 'start-pre', MainPID: '0' }
    const h = fakeHost(
      script({}, () => starting, { restart: { exitCode: null, signal: 'SIGTERM', timedOut: true, durationMs: 3000 } }),
    )
    const { result } = await createServiceRestartExecutor({ sleep: h.sleep }).execute(
      params({ waitActiveSeconds: 3 }),
      h.ctx,
    )
    expect(result.status).toBe('failed')
    expect(result.error).toBe('app.service is not up after 3 s: activating/start-pre')
    expect(h.calls.find((c) => c.argv[1] === 'restart')?.timeoutMs).toBe(3000)
    expect(h.elapsed()).toBeLessThanOrEqual(3000 + 200)
    expect(result.evidence.problems).toEqual([expect.stringMatching(/^systemctl restart app.service: timed out/)])
  })

  it('fails a crash loop that systemd keeps restarting (never the same MainPID for the confirmation window)', async () => {
    const h = fakeHost(script({}, (n) => ({ MainPID: String(1000 + n), NRestarts: String(n) })))
    const { result } = await createServiceRestartExecutor({ sleep: h.sleep }).execute(
      params({ waitActiveSeconds: 2 }),
      h.ctx,
    )
    expect(result.status).toBe('failed')
    expect(result.error).toMatch(/^app.service does not stay up: MainPID \d+, NRestarts=\d+ after 2 s$/)
    expect(h.elapsed()).toBeLessThanOrEqual(2000 + 500 + 200)
  })

  it('accepts active/exited for a oneshot with RemainAfterExit, and a oneshot that ran to completion', async () => {
    const exited: Props = { Type: 'oneshot', RemainAfterExit: 'yes', SubState: 'exited', MainPID: '0' }
    const h = fakeHost(script(exited, () => exited))
    const a = await createServiceRestartExecutor({ sleep: h.sleep, confirmMs: 0 }).execute(params(), h.ctx)
    expect(a.result.status).toBe('succeeded')

    const done: Props = { Type: 'oneshot', ActiveState: 'inactive', SubState: 'dead', MainPID: '0' }
    const h2 = fakeHost(script(done, () => done))
    const b = await createServiceRestartExecutor({ sleep: h2.sleep }).execute(params(), h2.ctx)
    expect(argvs(h2.calls)).toEqual([SHOW, RESTART, SHOW])
    expect(b.result.status).toBe('succeeded')
    expect(b.result.summary).toMatch(/^restarted app.service: ran to completion in \d+ ms/)

    // a Type=simple unit whose process exited 0 right away is not up
    const quit: Props = { ActiveState: 'inactive', SubState: 'dead', MainPID: '0' }
    const h3 = fakeHost(script(quit, () => quit))
    const c = await createServiceRestartExecutor({ sleep: h3.sleep }).execute(params(), h3.ctx)
    expect(c.result.status).toBe('failed')
  })

  it('accepts any active state for other unit types (a timer waits, a socket listens)', async () => {
    const timerShow = ['systemctl', 'show', `--property=${UNIT_STATE_PROPERTIES.join(',')}`, 'backup.timer']
    const h = fakeHost(
      script({ SubState: 'waiting', Type: '' }, () => ({ SubState: 'waiting', Type: '' }), { unit: 'backup.timer' }),
    )
    const { result } = await createServiceRestartExecutor({ sleep: h.sleep, confirmMs: 0 }).execute(
      params({ unit: 'backup.timer' }),
      h.ctx,
    )
    expect(argvs(h.calls)).toEqual([timerShow, ['systemctl', 'restart', 'backup.timer'], timerShow])
    expect(result.status).toBe('succeeded')
  })

  it('fails without a restart for a unit that is not loaded', async () => {
    for (const [load, text] of [
      ['not-found', 'app.service not found'],
      ['masked', 'app.service is masked'],
    ]) {
      const h = fakeHost(script({ LoadState: load as string, ActiveState: 'inactive' }, () => ({})))
      const { result } = await createServiceRestartExecutor({ sleep: h.sleep }).execute(params(), h.ctx)
      expect(argvs(h.calls)).toEqual([SHOW])
      expect(result).toMatchObject({ status: 'failed', error: text })
    }
  })

  it('dry-run reads the state and says what it would do, changing nothing', async () => {
    const h = fakeHost(
      script(FAILED_KILLED, () => ({})),
      true,
    )
    const { result, audit } = await createServiceRestartExecutor({ sleep: h.sleep }).execute(params(), h.ctx)
    expect(argvs(h.calls)).toEqual([SHOW])
    expect(result).toMatchObject({ status: 'dry-run', dryRun: true })
    expect(result.summary).toBe(
      'dry-run: would run systemctl reset-failed app.service, systemctl restart app.service and wait up to 30 s for it to be up (now failed/failed, Result=signal, main process killed by signal 9)',
    )
    expect(audit).toEqual([
      {
        action: 'would-restart',
        target: UNIT,
        detail: 'systemctl reset-failed app.service; systemctl restart app.service',
      },
    ])

    const autoRestart: Props = { ActiveState: 'activating', SubState: 'auto-restart', Restart: 'always' }
    const h2 = fakeHost(
      script(autoRestart, () => ({})),
      true,
    )
    const skip = await createServiceRestartExecutor({ sleep: h2.sleep }).execute(params(), h2.ctx)
    expect(argvs(h2.calls)).toEqual([SHOW])
    expect(skip.result.status).toBe('dry-run')
    expect(skip.result.summary).toMatch(/^dry-run: would have left app.service to systemd/)
  })

  it('returns one failed result, never a throw, when systemctl is missing or the state cannot be read', async () => {
    const h = fakeHost(() => 'missing')
    const { result } = await createServiceRestartExecutor({ sleep: h.sleep }).execute(params(), h.ctx)
    expect(result).toMatchObject({ status: 'failed', error: 'cannot start systemctl: ENOENT' })
    expect(RemediationResultV1Schema.parse(result)).toEqual(result)

    const h2 = fakeHost(() => ({ exitCode: 1, stderr: 'Failed to connect to bus: No such file or directory' }))
    const r2 = await createServiceRestartExecutor({ sleep: h2.sleep }).execute(params(), h2.ctx)
    expect(r2.result.status).toBe('failed')
    expect(r2.result.error).toBe(`${SHOW.join(' ')}: exit 1: Failed to connect to bus: No such file or directory`)
  })

  it('refuses a unit name that would be an option even when the schema was bypassed: nothing spawned', async () => {
    const h = fakeHost(() => ({}))
    const bad = { unit: '--now.service', waitActiveSeconds: 5, respectRestartPolicy: true }
    const { result } = await createServiceRestartExecutor({ sleep: h.sleep }).execute(bad, h.ctx)
    expect(h.calls).toEqual([])
    expect(result.status).toBe('failed')
    expect(result.error).toMatch(/may not start with "-"/)
  })
})

describe('systemd adapter (agent/os/systemd.ts)', () => {
  it('checks unit and signal names before they become argv elements', () => {
    expect(checkUnitName('getty@tty1.service')).toBe('getty@tty1.service')
    expect(checkUnitName('dev-disk-by\\x2duuid.mount')).toBe('dev-disk-by\\x2duuid.mount')
    for (const bad of ['-x.service', '--all', '', 'a b.service', 'a/b.service', 'app', 'x.service\n', '$(x).service']) {
      expect(() => checkUnitName(bad)).toThrow(SystemdArgumentError)
    }
    expect(checkSignalName('SIGUSR1')).toBe('SIGUSR1')
    expect(checkSignalName('SIGRTMIN+3')).toBe('SIGRTMIN+3')
    for (const bad of ['-9', 'USR1', 'SIGUSR1 ', '--signal=9', 'sigusr1']) {
      expect(() => checkSignalName(bad)).toThrow(SystemdArgumentError)
    }
  })

  it('kill and journalctl: exact argv, a timeout on each', async () => {
    const h = fakeHost((argv) => (argv[0] === 'journalctl' ? { stdout: '-- No entries --\n' } : {}))
    const k = await killUnit(h.ctx.run, 'app.service', 'SIGHUP')
    expect(k.ok).toBe(true)
    const j = await journalTail(h.ctx.run, 'app.service', 500)
    expect(j.lines).toEqual([])
    expect(h.calls.map((c) => [c.argv, c.timeoutMs > 0])).toEqual([
      [['systemctl', 'kill', '--kill-whom=main', '--signal=SIGHUP', 'app.service'], true],
      [['journalctl', '-u', 'app.service', '-n', '50', '--no-pager', '-o', 'cat'], true],
    ])
    await expect(killUnit(h.ctx.run, 'app.service', '-9')).rejects.toThrow(SystemdArgumentError)
  })

  it('parses one unit block of show output, tolerating unknown and missing keys', () => {
    expect(parseShowProperties('A=1\nB=x=y\nC=\nNoise\n', ['A', 'B', 'C', 'D'])).toEqual({
      A: '1',
      B: 'x=y',
      C: '',
      D: '',
    })
  })

  it('decides on the state: up, and systemd restarting', () => {
    const s = (p: Props) => toUnitState(parseShowProperties(showText('a.service', p), [...UNIT_STATE_PROPERTIES]))
    expect(isUp('a.service', s({}))).toBe(true)
    expect(isUp('a.service', s({ SubState: 'exited' }))).toBe(false)
    expect(isUp('a.service', s({ SubState: 'exited', RemainAfterExit: 'yes' }))).toBe(true)
    expect(isUp('a.service', s({ ActiveState: 'reloading' }))).toBe(false)
    const auto = { ActiveState: 'activating', SubState: 'auto-restart', Restart: 'always' }
    expect(systemdIsRestarting(s(auto))).toBe(true)
    expect(systemdIsRestarting(s({ ...auto, Restart: 'no' }))).toBe(false)
    expect(systemdIsRestarting(s({ ...auto, Result: 'start-limit-hit' }))).toBe(false)
    expect(systemdIsRestarting(s({ ...FAILED_KILLED, Restart: 'always' }))).toBe(false)
  })
})
