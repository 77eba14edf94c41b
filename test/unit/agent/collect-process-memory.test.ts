import { describe, expect, it } from 'vitest'
import {
  collectProcessMemory,
  detectCgroupLayout,
  limitFromProperty,
  parseProcStatPpid,
} from '../../../agent/collect/process-memory.ts'
import { ProcessMemoryObservationSchema } from '../../../shared/contracts/index.ts'
import {
  collectFixture,
  type FakeTree,
  fakeContext,
  fakeRun,
  osFixture,
  SYSTEMD_BOOTED,
} from '../../fixtures/collect/fakes.ts'

const KiB = 1024
const SHOW = collectFixture('systemctl-show-process-memory.txt') // app-web (MemoryMax=200M, pids 99+100), app-worker
const WEB = '/system.slice/app-web.service'
const WORKER = '/system.slice/app-worker.service'
const MEMINFO = osFixture('proc-meminfo.txt') // MemTotal: 24684084 kB
const MEM_TOTAL = 24684084 * KiB
const STATUS_99 = collectFixture('proc-app-web-99-status.txt') // VmRSS 1728 kB
const STATUS_100 = collectFixture('proc-app-web-100-status.txt') // VmRSS 1716 kB
const WORKER_STATUS = STATUS_99.replace(/^Pid:\t99$/m, 'Pid:\t101').replace(/VmRSS:\s+\d+ kB/, 'VmRSS:\t  4096 kB')

const systemctl = (show = SHOW) => fakeRun({ systemctl: { stdout: show } })

/** A host on pure cgroup v2, with or without the memory controller in the units' cgroups. */
const v2Host = (withMemory: boolean): FakeTree => ({
  dirs: SYSTEMD_BOOTED,
  files: {
    '/sys/fs/cgroup/cgroup.controllers': withMemory ? 'cpu io memory pids\n' : '\n',
    [`/sys/fs/cgroup${WEB}/cgroup.procs`]: collectFixture('app-web-cgroup.procs.txt'),
    [`/sys/fs/cgroup${WORKER}/cgroup.procs`]: '101\n',
    ...(withMemory
      ? {
          [`/sys/fs/cgroup${WEB}/memory.current`]: '7340032\n',
          [`/sys/fs/cgroup${WEB}/memory.max`]: '209715200\n',
          [`/sys/fs/cgroup${WORKER}/memory.current`]: '4194304\n',
          [`/sys/fs/cgroup${WORKER}/memory.max`]: 'max\n',
        }
      : {}),
    '/proc/meminfo': MEMINFO,
    '/proc/99/status': STATUS_99,
    '/proc/100/status': STATUS_100,
    '/proc/101/status': WORKER_STATUS,
  },
})

describe('collectProcessMemory', () => {
  it('cgroup v2 with the memory controller: memory.current, memory.max, else the host total', async () => {
    const ctx = fakeContext({ tree: v2Host(true), run: systemctl() })
    const out = await collectProcessMemory({ units: ['app-*.service'] }, ctx)
    expect(ctx.run.calls.map((c) => c.args)).toEqual([
      [
        'show',
        '--no-pager',
        '--property=Id,LoadState,ActiveState,MainPID,ControlGroup,MemoryMax,MemoryLimit',
        '--',
        'app-*.service',
      ],
    ])
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      {
        kind: 'process-memory',
        unit: 'app-worker.service',
        memoryBytes: 4194304,
        limitBytes: MEM_TOTAL,
        pids: [101],
        source: 'cgroup-v2',
      },
      {
        kind: 'process-memory',
        unit: 'app-web.service',
        memoryBytes: 7340032,
        limitBytes: 209715200,
        pids: [99, 100],
        source: 'cgroup-v2',
      },
    ])
    for (const o of out.observations) ProcessMemoryObservationSchema.parse(o)
  })

  it('nested cgroup2 WITHOUT a memory controller (the systemd test machines): the summed VmRSS of cgroup.procs', async () => {
    const ctx = fakeContext({ tree: v2Host(false), run: systemctl() })
    const out = await collectProcessMemory({ units: ['app-*.service'] }, ctx)
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      {
        kind: 'process-memory',
        unit: 'app-worker.service',
        memoryBytes: 4096 * KiB,
        limitBytes: MEM_TOTAL,
        pids: [101],
        source: 'rss',
      },
      {
        kind: 'process-memory',
        unit: 'app-web.service',
        memoryBytes: (1728 + 1716) * KiB,
        limitBytes: 209715200, // MemoryMax=
        pids: [99, 100],
        source: 'rss',
      },
    ])
  })

  it('counts the processes of child cgroups too (Delegate=, scopes), and skips ones that exited meanwhile', async () => {
    const tree = v2Host(false)
    tree.files![`/sys/fs/cgroup${WEB}/cgroup.procs`] = '99\n'
    tree.files![`/sys/fs/cgroup${WEB}/payload/cgroup.procs`] = '100\n555\n' // 555 is gone
    tree.files![`/sys/fs/cgroup${WEB}/memory.pressure`] = 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n'
    const ctx = fakeContext({ tree, run: systemctl() })
    const out = await collectProcessMemory({ units: ['app-web.service'] }, ctx)
    const web = out.observations.find((o) => o.kind === 'process-memory' && o.unit === 'app-web.service')
    expect(web).toMatchObject({ memoryBytes: (1728 + 1716) * KiB, pids: [99, 100], source: 'rss' })
  })

  it('cgroup v1 (hybrid): the memory controller path from /proc/<MainPID>/cgroup, when it is the unit', async () => {
    const unit = 'postgresql@16-main.service'
    const cg = '/system.slice/postgresql@16-main.service'
    const show = `MainPID=4242\nControlGroup=${cg}\nMemoryMax=infinity\nMemoryLimit=infinity\nId=${unit}\nLoadState=loaded\nActiveState=active\n`
    const tree: FakeTree = {
      dirs: SYSTEMD_BOOTED,
      files: {
        '/sys/fs/cgroup/unified/cgroup.controllers': '',
        '/sys/fs/cgroup/memory/memory.usage_in_bytes': '999999999\n',
        '/sys/fs/cgroup/systemd/cgroup.procs': '1\n',
        '/proc/4242/cgroup': osFixture('proc-pid-cgroup-v1-service.txt'),
        [`/sys/fs/cgroup/memory${cg}/memory.usage_in_bytes`]: osFixture('cgroup-v1-memory.usage_in_bytes.txt'),
        [`/sys/fs/cgroup/memory${cg}/memory.limit_in_bytes`]: osFixture('cgroup-v1-memory.limit_in_bytes.txt'),
        [`/sys/fs/cgroup/memory${cg}/cgroup.procs`]: '4242\n',
        '/proc/meminfo': MEMINFO,
      },
    }
    const ctx = fakeContext({ tree, run: systemctl(show) })
    expect(await detectCgroupLayout(ctx)).toEqual({
      unified: '/sys/fs/cgroup/unified',
      v1Memory: '/sys/fs/cgroup/memory',
      v1Systemd: '/sys/fs/cgroup/systemd',
    })
    const out = await collectProcessMemory({ units: [unit] }, ctx)
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      {
        kind: 'process-memory',
        unit,
        memoryBytes: Number(osFixture('cgroup-v1-memory.usage_in_bytes.txt').trim()),
        limitBytes: MEM_TOTAL, // the v1 fixture's limit is "unlimited"
        pids: [4242],
        source: 'cgroup-v1',
      },
    ])
  })

  it('no readable cgroup: MainPID and its descendants from /proc/*/stat', async () => {
    const stat = (pid: number, ppid: number, comm = 'sleep') => `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1 4194560`
    const tree: FakeTree = {
      dirs: SYSTEMD_BOOTED,
      files: {
        '/proc/meminfo': MEMINFO,
        '/proc/1/stat': stat(1, 0, 'init'),
        '/proc/99/stat': collectFixture('proc-99-stat.txt'), // ppid 1
        '/proc/100/stat': stat(100, 99, 'odd (name) x'),
        '/proc/300/stat': stat(300, 1),
        '/proc/99/status': STATUS_99,
        '/proc/100/status': STATUS_100,
      },
    }
    const show = 'MainPID=99\nControlGroup=\nMemoryMax=infinity\nMemoryLimit=infinity\nId=app-web.service\n'
    const ctx = fakeContext({ tree, run: systemctl(show) })
    const out = await collectProcessMemory({ units: ['app-web.service'] }, ctx)
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      {
        kind: 'process-memory',
        unit: 'app-web.service',
        memoryBytes: (1728 + 1716) * KiB,
        limitBytes: MEM_TOTAL,
        pids: [99, 100],
        source: 'rss',
      },
    ])
  })

  it('a unit that is not running gives no observation; systemd not booted is a ProbeError', async () => {
    const stopped = 'MainPID=0\nControlGroup=\nMemoryMax=infinity\nId=app-web.service\nActiveState=inactive\n'
    const ctx = fakeContext({ tree: v2Host(false), run: systemctl(stopped) })
    expect(await collectProcessMemory({ units: ['app-web.service'] }, ctx)).toEqual({ observations: [], errors: [] })

    const noSystemd = fakeContext({ run: systemctl() })
    const out = await collectProcessMemory({ units: ['app-web.service'] }, noSystemd)
    expect(out.errors).toEqual([{ probe: 'process-memory', reason: expect.stringMatching(/not the init system/) }])
    expect(noSystemd.run.calls).toEqual([])
  })

  it('systemctl missing is a ProbeError; a bad memory.current names the unit', async () => {
    const missing = fakeContext({ tree: v2Host(true), run: fakeRun({}) })
    expect((await collectProcessMemory({ units: ['app-web.service'] }, missing)).errors).toEqual([
      { probe: 'process-memory', reason: 'systemctl not found (not installed, or not on PATH)' },
    ])
    const tree = v2Host(true)
    tree.files![`/sys/fs/cgroup${WEB}/memory.current`] = 'lots\n'
    const bad = fakeContext({ tree, run: systemctl() })
    const out = await collectProcessMemory({ units: ['app-*.service'] }, bad)
    expect(out.observations).toHaveLength(1)
    expect(out.errors).toEqual([
      { probe: 'process-memory', reason: expect.stringMatching(/^app-web\.service: memory\.current is not a byte/) },
    ])
  })
})

describe('helpers', () => {
  it('parseProcStatPpid survives spaces and parentheses in the command name', () => {
    expect(parseProcStatPpid(collectFixture('proc-99-stat.txt'))).toBe(1)
    expect(parseProcStatPpid('7 (a) b) (c) S 42 7 7 0')).toBe(42)
    expect(parseProcStatPpid('garbage')).toBeUndefined()
  })

  it('limitFromProperty: bytes, or nothing for infinity and empty', () => {
    expect(limitFromProperty('209715200')).toBe(209715200)
    expect(limitFromProperty('infinity')).toBeUndefined()
    expect(limitFromProperty('')).toBeUndefined()
    expect(limitFromProperty(undefined)).toBeUndefined()
  })
})
