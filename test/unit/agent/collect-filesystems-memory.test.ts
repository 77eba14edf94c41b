import { afterEach, describe, expect, it, vi } from 'vitest'
import { collectFilesystems, STATFS_TIMEOUT_MS } from '../../../agent/collect/filesystems.ts'
import { collectMemory } from '../../../agent/collect/memory.ts'
import type { StatfsLike } from '../../../agent/probes/mountinfo.ts'
import { FilesystemObservationSchema, MemoryObservationSchema } from '../../../shared/contracts/index.ts'
import { fakeContext, osFixture } from '../../fixtures/collect/fakes.ts'

const MOUNTINFO = osFixture('mountinfo-host.txt')
const statfs = (blocks: number, bfree: number, bavail: number, files = 1000, ffree = 900): StatfsLike => ({
  bsize: 4096n,
  blocks: BigInt(blocks),
  bfree: BigInt(bfree),
  bavail: BigInt(bavail),
  files: BigInt(files),
  ffree: BigInt(ffree),
})
const defaults = { enabled: true, exclude: [], includeTmpfs: false }

/** The real mounts of the host fixture (mountinfo-host.txt), in mount order, escapes decoded. */
const realMounts = (): string[] => ['/', '/var', '/boot', '/boot/efi', '/srv/backups', '/srv/My Data', '/mnt/sshfs']

describe('collectFilesystems', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('measures every real mount of /proc/self/mountinfo with statfs (pseudo filesystems and tmpfs skipped)', async () => {
    const mounts = realMounts()
    expect(mounts).toContain('/')
    const ctx = fakeContext({
      tree: {
        files: { '/proc/self/mountinfo': MOUNTINFO },
        statfs: Object.fromEntries(mounts.map((m) => [m, statfs(1000, 400, 300)])),
      },
    })
    const out = await collectFilesystems(defaults, ctx)
    expect(out.errors).toEqual([])
    expect(out.observations.map((o) => (o.kind === 'filesystem' ? o.mount : ''))).toEqual(mounts)
    const root = out.observations.find((o) => o.kind === 'filesystem' && o.mount === '/')
    expect(root).toMatchObject({
      bytesTotal: 1000 * 4096,
      bytesUsed: 600 * 4096,
      bytesAvailable: 300 * 4096,
      inodesTotal: 1000,
      inodesUsed: 100,
    })
    for (const o of out.observations) FilesystemObservationSchema.parse(o)
  })

  it('include / exclude globs and includeTmpfs', async () => {
    const all = new Proxy({} as Record<string, StatfsLike>, { get: () => statfs(10, 5, 5) })
    const ctx = fakeContext({ tree: { files: { '/proc/self/mountinfo': MOUNTINFO }, statfs: all } })
    const only = await collectFilesystems({ ...defaults, include: ['/'] }, ctx)
    expect(only.observations.map((o) => (o.kind === 'filesystem' ? o.mount : ''))).toEqual(['/'])
    const withTmpfs = await collectFilesystems({ ...defaults, includeTmpfs: true, include: ['/run/**'] }, ctx)
    expect(withTmpfs.observations.length).toBeGreaterThan(0)
    for (const o of withTmpfs.observations) expect(o.kind === 'filesystem' && o.mount.startsWith('/run')).toBe(true)
    const excluded = await collectFilesystems({ ...defaults, exclude: ['/', '/boot/**'] }, ctx)
    for (const o of excluded.observations) {
      expect(o.kind === 'filesystem' && (o.mount === '/' || o.mount.startsWith('/boot'))).toBe(false)
    }
  })

  it('a mount that cannot be measured is its own ProbeError (permission, gone, hung); the rest is kept', async () => {
    const mounts = realMounts()
    const [first, second, third, ...rest] = mounts
    expect(third).toBeDefined()
    const ctx = fakeContext({
      tree: {
        files: { '/proc/self/mountinfo': MOUNTINFO },
        statfs: {
          [first!]: { error: 'EACCES' },
          [second!]: 'hang',
          // third: unmounted meanwhile (ENOENT)
          ...Object.fromEntries(rest.map((m) => [m, statfs(10, 5, 5)])),
        },
      },
    })
    vi.useFakeTimers()
    const pending = collectFilesystems(defaults, ctx)
    await vi.advanceTimersByTimeAsync(STATFS_TIMEOUT_MS)
    const out = await pending
    expect(out.observations).toHaveLength(rest.length)
    expect(out.errors).toEqual([
      { probe: 'filesystem', reason: `${first}: permission denied (EACCES)` },
      {
        probe: 'filesystem',
        reason: `${second}: statfs timed out after ${STATFS_TIMEOUT_MS} ms (a hung network filesystem?)`,
      },
      { probe: 'filesystem', reason: `${third}: unmounted while being measured` },
    ])
  })

  it('no /proc (or no permission) is a ProbeError; disabled does nothing', async () => {
    const none = await collectFilesystems(defaults, fakeContext())
    expect(none).toEqual({
      observations: [],
      errors: [{ probe: 'filesystem', reason: '/proc/self/mountinfo: does not exist (ENOENT)' }],
    })
    const off = fakeContext()
    expect(await collectFilesystems({ ...defaults, enabled: false }, off)).toEqual({ observations: [], errors: [] })
    expect(off.fs.reads).toEqual([])
  })
})

describe('collectMemory', () => {
  it('/proc/meminfo with PSI', async () => {
    const ctx = fakeContext({
      tree: {
        files: {
          '/proc/meminfo': osFixture('proc-meminfo.txt'),
          '/proc/pressure/memory': osFixture('proc-pressure-memory.txt'),
        },
      },
    })
    const out = await collectMemory({ enabled: true }, ctx)
    expect(out.errors).toEqual([])
    expect(out.observations).toHaveLength(1)
    const obs = MemoryObservationSchema.parse(out.observations[0])
    expect(obs.totalBytes).toBe(24684084 * 1024)
    expect(obs.psi).toBeDefined()
  })

  it('no PSI in the kernel (ENOENT) or switched off (EOPNOTSUPP): no psi, no error; EACCES is noted', async () => {
    for (const [pressure, errors] of [
      [undefined, 0],
      [{ error: 'EOPNOTSUPP' }, 0],
      [{ error: 'EACCES' }, 1],
    ] as const) {
      const files: Record<string, string | { error: string }> = { '/proc/meminfo': osFixture('proc-meminfo.txt') }
      if (pressure) files['/proc/pressure/memory'] = pressure
      const out = await collectMemory({ enabled: true }, fakeContext({ tree: { files } }))
      expect(out.observations).toHaveLength(1)
      expect(out.observations[0]).not.toHaveProperty('psi')
      expect(out.errors).toHaveLength(errors)
    }
  })

  it('no /proc/meminfo or a broken one: a ProbeError', async () => {
    expect((await collectMemory({ enabled: true }, fakeContext())).errors).toEqual([
      { probe: 'memory', reason: '/proc/meminfo: does not exist (ENOENT)' },
    ])
    const broken = fakeContext({ tree: { files: { '/proc/meminfo': 'nothing useful\n' } } })
    expect((await collectMemory({ enabled: true }, broken)).errors).toEqual([
      { probe: 'memory', reason: 'meminfo has no MemTotal line' },
    ])
  })
})
