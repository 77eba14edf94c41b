import { statfsSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeMountinfoEscapes, parseMountinfo, statfsToObservation } from '../../../agent/probes/mountinfo.ts'
import { FilesystemObservationSchema } from '../../../shared/contracts/index.ts'
import { assertNeverThrows, expectFailure, expectOk, readOsFixture } from './os-fixtures.ts'

describe('parseMountinfo', () => {
  it('keeps the real filesystems of /proc/self/mountinfo captured on a test machine', () => {
    expect(expectOk(parseMountinfo(readOsFixture('proc-self-mountinfo.txt')))).toEqual([
      { mount: '/', fsType: 'ext4', device: '/dev/vda' },
    ])
  })

  it('keeps tmpfs only when asked, with the last mount of a mount point', () => {
    const mounts = expectOk(parseMountinfo(readOsFixture('proc-self-mountinfo.txt'), { includeTmpfs: true }))
    expect(mounts).toEqual([
      { mount: '/', fsType: 'ext4', device: '/dev/vda' },
      { mount: '/dev/shm', fsType: 'tmpfs', device: 'tmpfs' },
      { mount: '/sys/fs/cgroup', fsType: 'tmpfs', device: 'tmpfs' },
    ])
  })

  it('skips pseudo filesystems, snaps and container overlays on a typical host, and decodes escapes', () => {
    const mounts = expectOk(parseMountinfo(readOsFixture('mountinfo-host.txt')))
    expect(mounts).toEqual([
      { mount: '/', fsType: 'ext4', device: '/dev/mapper/vg0-root' },
      { mount: '/var', fsType: 'xfs', device: '/dev/mapper/vg0-var' },
      { mount: '/boot', fsType: 'ext4', device: '/dev/nvme0n1p2' },
      { mount: '/boot/efi', fsType: 'vfat', device: '/dev/nvme0n1p1' },
      { mount: '/srv/backups', fsType: 'nfs4', device: 'nas.example.internal:/export/backups' },
      { mount: '/srv/My Data', fsType: 'ext4', device: '/dev/mapper/vg0-data' },
      { mount: '/mnt/sshfs', fsType: 'fuse.sshfs', device: 'backup@nas.example.internal:/data' },
    ])
    const withTmpfs = expectOk(parseMountinfo(readOsFixture('mountinfo-host.txt'), { includeTmpfs: true }))
    expect(withTmpfs.filter((m) => m.fsType === 'tmpfs').map((m) => m.mount)).toEqual([
      '/run',
      '/dev/shm',
      '/run/user/1000',
      '/var/lib/ansai/tmp',
    ])
  })

  it('keeps the overlay root inside a container', () => {
    expect(expectOk(parseMountinfo(readOsFixture('mountinfo-container.txt')))).toEqual([
      { mount: '/', fsType: 'overlay', device: 'overlay' },
      { mount: '/var/lib/postgresql/data', fsType: 'xfs', device: '/dev/mapper/vg0-var' },
    ])
  })

  it('decodes octal escapes', () => {
    expect(decodeMountinfoEscapes('/a\\040b\\011c\\134d\\012e')).toBe('/a b\tc\\d\ne')
    expect(decodeMountinfoEscapes('/plain')).toBe('/plain')
  })

  it('skips a malformed line with a problem, fails on text with no valid line', () => {
    const text = `${readOsFixture('proc-self-mountinfo.txt')}garbage line\n`
    const result = parseMountinfo(text)
    expect(expectOk(result)).toHaveLength(1)
    expect(result.ok && result.problems[0]?.reason).toMatch(/mountinfo line \d+ skipped: "garbage line"/)
    expectFailure(parseMountinfo(''), /no valid line/)
    expectFailure(parseMountinfo('22 27 0:21 / /proc rw,relatime proc proc rw'), /no valid line/)
  })

  it('never throws on arbitrary text', () => {
    assertNeverThrows((t) => parseMountinfo(t, { includeTmpfs: true }), ['22 27 0:21 / /', ' - ', 'ext4', 'tmpfs'])
  })
})

describe('statfsToObservation', () => {
  it('computes bytes and inodes as df does', () => {
    const obs = expectOk(
      statfsToObservation('/var', 'xfs', '/dev/mapper/vg0-var', {
        bsize: 4096,
        blocks: 2_621_440,
        bfree: 655_360,
        bavail: 524_288,
        files: 1_310_720,
        ffree: 1_000_000,
      }),
    )
    expect(obs).toEqual({
      kind: 'filesystem',
      mount: '/var',
      fsType: 'xfs',
      device: '/dev/mapper/vg0-var',
      bytesTotal: 2_621_440 * 4096,
      bytesUsed: (2_621_440 - 655_360) * 4096,
      bytesAvailable: 524_288 * 4096,
      inodesTotal: 1_310_720,
      inodesUsed: 310_720,
    })
    expect(FilesystemObservationSchema.parse(obs)).toEqual(obs)
  })

  it("accepts node's real statfs of / (numbers and bigints)", () => {
    for (const s of [statfsSync('/'), statfsSync('/', { bigint: true })]) {
      const obs = expectOk(statfsToObservation('/', 'ext4', undefined, s))
      FilesystemObservationSchema.parse(obs)
      expect(obs.bytesTotal).toBeGreaterThan(0)
      expect(obs).not.toHaveProperty('device')
    }
  })

  it('fails on impossible numbers', () => {
    const good = { bsize: 4096, blocks: 10, bfree: 5, bavail: 4, files: 10, ffree: 5 }
    expectFailure(statfsToObservation('/x', 'ext4', undefined, { ...good, bfree: 11 }), /bfree 11 > blocks 10/)
    expectFailure(statfsToObservation('/x', 'ext4', undefined, { ...good, ffree: 11 }), /ffree 11 > files 10/)
    expectFailure(statfsToObservation('/x', 'ext4', undefined, { ...good, bsize: -1 }), /bsize is not a non-negative/)
    expectFailure(statfsToObservation('/x', 'ext4', undefined, { ...good, blocks: Number.NaN }), /blocks/)
    expectFailure(statfsToObservation('', 'ext4', undefined, good), /mount point is empty/)
    expectFailure(
      statfsToObservation('/x', 'ext4', undefined, { ...good, bsize: 2 ** 40, blocks: 2 ** 40 }),
      /overflows/,
    )
  })

  it('gives a contract-valid observation or a failure for any numbers', () => {
    const n = fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.bigInt({ min: 0n, max: 2n ** 64n }))
    fc.assert(
      fc.property(fc.record({ bsize: n, blocks: n, bfree: n, bavail: n, files: n, ffree: n }), (s) => {
        const result = statfsToObservation('/m', 'ext4', 'dev', s)
        if (result.ok) FilesystemObservationSchema.parse(result.value)
      }),
    )
  })
})
