import { describe, expect, it } from 'vitest'
import { collectServices } from '../../../agent/collect/services.ts'
import { parseListUnits, parseShowBlocks } from '../../../agent/collect/systemd.ts'
import { ServiceObservationSchema } from '../../../shared/contracts/index.ts'
import { collectFixture, fakeContext, fakeRun, SYSTEMD_BOOTED, timedOut } from '../../fixtures/collect/fakes.ts'

const SHOW = collectFixture('systemctl-show-services.txt')
const FAILED = collectFixture('systemctl-list-units-failed.txt')

/** systemctl that answers list-units with the failed fixture and show with the show fixture. */
const systemctl = (show = SHOW, failed = FAILED) =>
  fakeRun({ systemctl: (args) => ({ stdout: args[0] === 'list-units' ? failed : show }) })

describe('parseListUnits', () => {
  it('takes the unit names, with or without the failed mark', () => {
    expect(parseListUnits(FAILED)).toEqual(['backup.service'])
    expect(
      parseListUnits(
        '● nginx.service loaded failed failed A\n* db.mount loaded failed failed B\n\ngarbage line here\n',
      ),
    ).toEqual(['nginx.service', 'db.mount'])
  })

  it('parseShowBlocks splits blocks on blank lines', () => {
    const blocks = parseShowBlocks(collectFixture('systemctl-show-process-memory.txt'))
    expect(blocks.map((b) => b.get('Id'))).toEqual(['app-worker.service', 'app-web.service'])
    expect(blocks[1]!.get('MemoryMax')).toBe('209715200')
  })
})

describe('collectServices', () => {
  it('one list-units --failed and ONE systemctl show for the configured units plus the failed ones', async () => {
    const ctx = fakeContext({ tree: { dirs: SYSTEMD_BOOTED }, run: systemctl() })
    const out = await collectServices({ units: ['app-*.service', 'nginx.service'], failedAny: true }, ctx)
    expect(ctx.run.calls.map((c) => [c.file, ...c.args])).toEqual([
      ['systemctl', 'list-units', '--failed', '--plain', '--no-legend', '--full', '--no-pager'],
      [
        'systemctl',
        'show',
        '--no-pager',
        '--property=Id,LoadState,ActiveState,SubState,NRestarts,MainPID,MemoryCurrent,Restart,Result',
        '--',
        'app-*.service',
        'nginx.service',
        'backup.service',
      ],
    ])
    expect(ctx.run.calls[1]!.opts.env).toMatchObject({ LC_ALL: 'C', SYSTEMD_PAGER: '' })
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      {
        kind: 'service',
        unit: 'nginx.service',
        loadState: 'not-found',
        activeState: 'inactive',
        subState: 'dead',
        restarts: 0,
        mainPid: 0,
        restartPolicy: 'no',
        result: 'success',
        startLimitHit: false,
      },
      expect.objectContaining({ unit: 'backup.service', activeState: 'failed', result: 'exit-code' }),
      expect.objectContaining({ unit: 'app-worker.service', activeState: 'active', mainPid: 101 }),
      expect.objectContaining({ unit: 'app-web.service', activeState: 'active', restartPolicy: 'on-failure' }),
    ])
    for (const o of out.observations) ServiceObservationSchema.parse(o)
  })

  it('a failed unit that a glob also names is reported once', async () => {
    const twice = `${SHOW}\n${SHOW.split('\n\n')[1]}\n`
    const ctx = fakeContext({ tree: { dirs: SYSTEMD_BOOTED }, run: systemctl(twice) })
    const out = await collectServices({ units: ['backup.service'], failedAny: true }, ctx)
    expect(out.observations.filter((o) => o.kind === 'service' && o.unit === 'backup.service')).toHaveLength(1)
  })

  it('nothing configured and no failed unit: no show at all', async () => {
    const ctx = fakeContext({ tree: { dirs: SYSTEMD_BOOTED }, run: systemctl(SHOW, '') })
    expect(await collectServices({ units: [], failedAny: true }, ctx)).toEqual({ observations: [], errors: [] })
    expect(ctx.run.calls).toHaveLength(1)
    const off = fakeContext({ tree: { dirs: SYSTEMD_BOOTED } })
    expect(await collectServices({ units: [], failedAny: false }, off)).toEqual({ observations: [], errors: [] })
    expect(off.run.calls).toHaveLength(0)
  })

  it('globs that match no loaded unit: systemctl prints nothing, no observation, no error', async () => {
    const ctx = fakeContext({ tree: { dirs: SYSTEMD_BOOTED }, run: systemctl('') })
    expect(await collectServices({ units: ['zzz-*.service'], failedAny: false }, ctx)).toEqual({
      observations: [],
      errors: [],
    })
  })

  it('systemd not PID 1 (no /run/systemd/system): one ProbeError, no process started', async () => {
    const ctx = fakeContext({ run: systemctl() })
    const out = await collectServices({ units: ['nginx.service'], failedAny: true }, ctx)
    expect(out.observations).toEqual([])
    expect(out.errors).toEqual([{ probe: 'service', reason: expect.stringMatching(/systemd is not the init system/) }])
    expect(ctx.run.calls).toEqual([])
  })

  it('systemctl not installed, not executable, failing, or hanging: a ProbeError each time, never a throw', async () => {
    const cases = [
      [fakeRun({}), /systemctl not found/],
      [fakeRun({ systemctl: { errno: 'EACCES' } }), /systemctl: permission denied/],
      [
        fakeRun({ systemctl: { exitCode: 1, stderr: 'Failed to connect to bus: No such file or directory\n' } }),
        /systemctl show exited 1: Failed to connect to bus/,
      ],
      [fakeRun({ systemctl: timedOut(10_000) }), /systemctl show timed out/],
    ] as const
    for (const [run, reason] of cases) {
      const ctx = fakeContext({ tree: { dirs: SYSTEMD_BOOTED }, run })
      const out = await collectServices({ units: ['nginx.service'], failedAny: false }, ctx)
      expect(out).toEqual({ observations: [], errors: [{ probe: 'service', reason: expect.stringMatching(reason) }] })
    }
  })

  it('a failing list-units still shows the configured units', async () => {
    const run = fakeRun({
      systemctl: (args) => (args[0] === 'list-units' ? { exitCode: 1, stderr: 'boom' } : { stdout: SHOW }),
    })
    const ctx = fakeContext({ tree: { dirs: SYSTEMD_BOOTED }, run })
    const out = await collectServices({ units: ['app-*.service'], failedAny: true }, ctx)
    expect(out.observations).toHaveLength(4)
    expect(out.errors).toEqual([
      { probe: 'service', reason: 'failed units unknown: systemctl list-units exited 1: boom' },
    ])
  })

  it('a block the parser cannot use is a problem; the other units are kept', async () => {
    const odd = SHOW.replace('ActiveState=failed', 'ActiveState=exploded')
    const ctx = fakeContext({ tree: { dirs: SYSTEMD_BOOTED }, run: systemctl(odd) })
    const out = await collectServices({ units: ['app-*.service'], failedAny: false }, ctx)
    expect(out.observations.map((o) => (o.kind === 'service' ? o.unit : ''))).toEqual([
      'nginx.service',
      'app-worker.service',
      'app-web.service',
    ])
    expect(out.errors).toEqual([
      { probe: 'service', reason: expect.stringMatching(/backup\.service: unknown ActiveState/) },
    ])
  })
})
