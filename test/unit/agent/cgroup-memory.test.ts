import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  cgroupMemoryToObservation,
  parseCgroupV1Memory,
  parseCgroupV2Memory,
  parseProcCgroup,
  parseProcStatus,
  rssToObservation,
  unitFromCgroupPath,
} from '../../../agent/probes/cgroup-memory.ts'
import { ProcessMemoryObservationSchema } from '../../../shared/contracts/index.ts'
import { assertNeverThrows, expectFailure, expectOk, readOsFixture } from './os-fixtures.ts'

describe('cgroup v2 memory', () => {
  it('reads memory.current and a memory.max limit', () => {
    expect(expectOk(parseCgroupV2Memory('52428800\n', '268435456\n'))).toEqual({
      memoryBytes: 52_428_800,
      limitBytes: 268_435_456,
    })
  })

  it('reads "max" as no limit', () => {
    expect(expectOk(parseCgroupV2Memory('4096\n', 'max\n'))).toEqual({ memoryBytes: 4096, limitBytes: undefined })
  })

  it('fails on text that is not a byte count', () => {
    expectFailure(parseCgroupV2Memory('', 'max'), /memory.current is not a byte count/)
    expectFailure(parseCgroupV2Memory('12', 'lots'), /memory.max is not a byte count: "lots"/)
    expectFailure(parseCgroupV2Memory('-5', 'max'), /memory.current/)
  })

  it('builds a contract-valid observation', () => {
    const memory = expectOk(parseCgroupV2Memory('52428800', '268435456'))
    const obs = cgroupMemoryToObservation('app.service', memory, 'cgroup-v2', [4242, 4243])
    expect(obs).toEqual({
      kind: 'process-memory',
      unit: 'app.service',
      memoryBytes: 52_428_800,
      limitBytes: 268_435_456,
      pids: [4242, 4243],
      source: 'cgroup-v2',
    })
    expect(ProcessMemoryObservationSchema.parse(obs)).toEqual(obs)
    const unlimited = cgroupMemoryToObservation('x.service', { memoryBytes: 1, limitBytes: undefined }, 'cgroup-v2')
    expect(unlimited).toEqual({ kind: 'process-memory', unit: 'x.service', memoryBytes: 1, source: 'cgroup-v2' })
  })
})

describe('cgroup v1 memory', () => {
  it('reads the files captured on a test machine, whose huge limit means none', () => {
    const usage = readOsFixture('cgroup-v1-memory.usage_in_bytes.txt')
    const limit = readOsFixture('cgroup-v1-memory.limit_in_bytes.txt')
    expect(limit.trim()).toBe('9223372036854771712')
    const memory = expectOk(parseCgroupV1Memory(usage, limit))
    expect(memory).toEqual({ memoryBytes: Number(usage.trim()), limitBytes: undefined })
    ProcessMemoryObservationSchema.parse(cgroupMemoryToObservation('a.service', memory, 'cgroup-v1'))
  })

  it('reads a real limit, and the page-rounded "unlimited" of 64 KiB pages', () => {
    expect(expectOk(parseCgroupV1Memory('1048576', '536870912'))).toEqual({
      memoryBytes: 1_048_576,
      limitBytes: 536_870_912,
    })
    expect(expectOk(parseCgroupV1Memory('1', '9223372036854710272')).limitBytes).toBeUndefined()
    expect(expectOk(parseCgroupV1Memory('1', '-1')).limitBytes).toBeUndefined()
  })

  it('fails on odd text', () => {
    expectFailure(parseCgroupV1Memory('x', '1'), /memory.usage_in_bytes is not a byte count/)
    expectFailure(parseCgroupV1Memory('1', '1.5'), /memory.limit_in_bytes/)
  })
})

describe('/proc/<pid>/status', () => {
  it('reads VmRSS of the status captured on a test machine', () => {
    expect(expectOk(parseProcStatus(readOsFixture('proc-self-status.txt')))).toEqual({
      name: 'cat',
      pid: 4507,
      rssBytes: 1692 * 1024,
    })
  })

  it('reads the live status of this process', () => {
    const status = expectOk(parseProcStatus(readFileSync('/proc/self/status', 'utf8')))
    expect(status.pid).toBe(process.pid)
    expect(status.rssBytes).toBeGreaterThan(1024 * 1024)
  })

  it('fails on a kernel thread (no VmRSS) and on junk', () => {
    expectFailure(parseProcStatus('Name:\tkworker/0:1\nState:\tI (idle)\nPid:\t12\n'), /"kworker\/0:1" has no VmRSS/)
    expectFailure(parseProcStatus(''), /no Name line/)
    expectFailure(parseProcStatus('Name:\tx\nVmRSS:\tlots\n'), /bad VmRSS "lots"/)
  })

  it('sums the RSS of a unit’s processes into an observation', () => {
    const obs = rssToObservation(
      'legacy-app',
      [
        { name: 'app', pid: 10, rssBytes: 1000 * 1024 },
        { name: 'app', pid: 11, rssBytes: 500 * 1024 },
      ],
      8 * 1024 * 1024 * 1024,
    )
    expect(obs).toEqual({
      kind: 'process-memory',
      unit: 'legacy-app',
      pids: [10, 11],
      memoryBytes: 1500 * 1024,
      limitBytes: 8 * 1024 * 1024 * 1024,
      source: 'rss',
    })
    expect(ProcessMemoryObservationSchema.parse(obs)).toEqual(obs)
  })
})

describe('/proc/<pid>/cgroup', () => {
  it('finds the unit on cgroup v2', () => {
    const cg = expectOk(parseProcCgroup(readOsFixture('proc-pid-cgroup-v2-service.txt')))
    expect(cg.unified).toBe('/system.slice/nginx.service')
    expect(cg.unit).toBe('nginx.service')
  })

  it('finds the unit on a hybrid v1 host', () => {
    const cg = expectOk(parseProcCgroup(readOsFixture('proc-pid-cgroup-v1-service.txt')))
    expect(cg.unit).toBe('postgresql@16-main.service')
    expect(cg.v1.get('memory')).toBe('/system.slice/postgresql@16-main.service')
    expect(cg.v1.get('cpuacct')).toBe('/system.slice/postgresql@16-main.service')
  })

  it('takes the deepest unit of a user session', () => {
    const cg = expectOk(parseProcCgroup(readOsFixture('proc-pid-cgroup-user.txt')))
    expect(cg.unit).toBe('app-gnome-firefox-4242.scope')
  })

  it('has no unit for a process outside systemd (the test machine)', () => {
    const cg = expectOk(parseProcCgroup(readOsFixture('proc-self-cgroup.txt')))
    expect(cg.unified).toBe('/')
    expect(cg.v1.get('name=systemd')).toBe('/')
    expect(cg.v1.get('memory')).toMatch(/^\//)
    expect(cg.unit).toBeUndefined()
  })

  it('reads the slice-only and unit paths', () => {
    expect(unitFromCgroupPath('/system.slice')).toBeUndefined()
    expect(unitFromCgroupPath('/system.slice/docker-3f4e5d.scope')).toBe('docker-3f4e5d.scope')
    expect(unitFromCgroupPath('/system.slice/app.service/worker')).toBe('app.service')
  })

  it('fails on junk', () => {
    expectFailure(parseProcCgroup(''), /empty/)
    expectFailure(parseProcCgroup('memory:/x'), /unexpected cgroup line/)
  })
})

describe('never throws', () => {
  it('on arbitrary text', () => {
    const words = ['max', '0::/', 'VmRSS:', 'Name:', ' kB', '.service', '9223372036854771712']
    assertNeverThrows((t) => parseCgroupV2Memory(t, t), words)
    assertNeverThrows((t) => parseCgroupV2Memory('1', t), words)
    assertNeverThrows((t) => parseCgroupV1Memory(t, t), words)
    assertNeverThrows(parseProcStatus, words)
    assertNeverThrows(parseProcCgroup, words)
  })
})
