import { describe, expect, it } from 'vitest'
import {
  nevraToNameArch,
  parseAptSimulation,
  parseAptUpgradable,
  parseDnfCheckUpdate,
  parseDnfSecurityList,
  parseDnfUpdates,
} from '../../../agent/probes/apt-upgradable.ts'
import { PackagesObservationSchema } from '../../../shared/contracts/index.ts'
import { assertNeverThrows, expectFailure, expectOk, readOsFixture } from './os-fixtures.ts'

describe('apt-get -s dist-upgrade', () => {
  it('counts the pending upgrades of the test machine (no security archive configured)', () => {
    const obs = expectOk(parseAptUpgradable(readOsFixture('apt-get-s-dist-upgrade.txt')))
    expect(obs).toEqual({ kind: 'packages', manager: 'apt', pending: 106, security: 0 })
    expect(PackagesObservationSchema.parse(obs)).toEqual(obs)
  })

  it('reads each Inst line: old and new version, origins, arch', () => {
    const pkgs = expectOk(parseAptSimulation(readOsFixture('apt-get-s-dist-upgrade.txt')))
    expect(pkgs.find((p) => p.name === 'libpam-modules-bin')).toEqual({
      name: 'libpam-modules-bin',
      from: '1.5.2-6+deb12u1',
      to: '1.5.2-6+deb12u2',
      origins: ['Debian:12.15/oldstable'],
      arch: 'amd64',
      security: false,
    })
  })

  it('counts Debian security updates, new packages included', () => {
    const text = readOsFixture('apt-get-s-dist-upgrade-security.txt')
    const obs = expectOk(parseAptUpgradable(text, { rebootRequired: true }))
    expect(obs).toEqual({ kind: 'packages', manager: 'apt', pending: 5, security: 4, rebootRequired: true })
    PackagesObservationSchema.parse(obs)
    const pkgs = expectOk(parseAptSimulation(text))
    expect(pkgs.find((p) => p.name === 'linux-image-6.1.0-28-amd64')).toMatchObject({
      from: undefined,
      to: '6.1.119-1',
      security: true,
    })
    expect(pkgs.find((p) => p.name === 'linux-image-amd64')?.origins).toEqual([
      'Debian:12.8/stable',
      'Debian-Security:12/stable-security',
    ])
  })

  it('counts Ubuntu security updates listed in several pockets', () => {
    const obs = expectOk(parseAptUpgradable(readOsFixture('apt-get-s-dist-upgrade-ubuntu.txt')))
    expect(obs).toEqual({ kind: 'packages', manager: 'apt', pending: 4, security: 3 })
  })

  it('reads an up-to-date host', () => {
    const text =
      'Reading package lists...\nBuilding dependency tree...\nReading state information...\nCalculating upgrade...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n'
    expect(expectOk(parseAptUpgradable(text))).toEqual({ kind: 'packages', manager: 'apt', pending: 0, security: 0 })
  })

  it('fails on apt errors and on text that is not apt output', () => {
    expectFailure(
      parseAptUpgradable(
        'Reading package lists...\nE: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1234 (apt)\n',
      ),
      /apt-get failed: Could not get lock/,
    )
    expectFailure(parseAptUpgradable(''), /no "N upgraded/)
    expectFailure(parseAptUpgradable('Paketlisten werden gelesen…\n'), /LC_ALL=C/)
  })

  it('names an Inst line it cannot read', () => {
    const result = parseAptUpgradable('Inst broken\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n')
    expect(expectOk(result).pending).toBe(0)
    expect(result.ok && result.problems[0]?.reason).toMatch(/Inst line not understood: "Inst broken"/)
  })
})

describe('dnf', () => {
  it('reads check-update, with a wrapped long name, ignoring obsoletes', () => {
    expect(expectOk(parseDnfCheckUpdate(readOsFixture('dnf-check-update.txt')))).toEqual([
      'kernel.x86_64',
      'kernel-core.x86_64',
      'openssl.x86_64',
      'openssl-libs.x86_64',
      'python3-setuptools-wheel.noarch',
      'selinux-policy-targeted-with-a-very-long-package-name.noarch',
      'tzdata.noarch',
    ])
  })

  it('reads the security list of dnf 4 and dnf 5', () => {
    expect(expectOk(parseDnfSecurityList(readOsFixture('dnf-updateinfo-security.txt')))).toEqual([
      'kernel.x86_64',
      'kernel-core.x86_64',
      'openssl.x86_64',
      'openssl-libs.x86_64',
    ])
    expect(expectOk(parseDnfSecurityList(readOsFixture('dnf5-updateinfo-security.txt')))).toEqual([
      'curl.x86_64',
      'libcurl.x86_64',
      'vim-minimal.x86_64',
    ])
  })

  it('turns both into an observation', () => {
    const obs = expectOk(
      parseDnfUpdates(readOsFixture('dnf-check-update.txt'), readOsFixture('dnf-updateinfo-security.txt'), {
        rebootRequired: false,
      }),
    )
    expect(obs).toEqual({ kind: 'packages', manager: 'dnf', pending: 7, security: 4, rebootRequired: false })
    PackagesObservationSchema.parse(obs)
  })

  it('counts only security packages that are pending, and yum works the same', () => {
    const obs = expectOk(
      parseDnfUpdates(readOsFixture('dnf-check-update.txt'), readOsFixture('dnf5-updateinfo-security.txt'), {
        manager: 'yum',
      }),
    )
    expect(obs).toEqual({ kind: 'packages', manager: 'yum', pending: 7, security: 0 })
  })

  it('reads an up-to-date host, and fails on dnf errors', () => {
    expect(expectOk(parseDnfUpdates('Last metadata expiration check: 0:00:01 ago on Mon 23 Nov 2026.\n'))).toEqual({
      kind: 'packages',
      manager: 'dnf',
      pending: 0,
      security: 0,
    })
    expectFailure(
      parseDnfUpdates("Error: Failed to download metadata for repo 'baseos'\n"),
      /dnf failed: Failed to download/,
    )
    const result = parseDnfUpdates(readOsFixture('dnf-check-update.txt'), 'Error: no cache\n')
    expect(expectOk(result).security).toBe(0)
    expect(result.ok && result.problems[0]?.reason).toMatch(/security count unknown/)
  })

  it('splits NEVRAs', () => {
    expect(nevraToNameArch('openssl-libs-1:3.0.7-25.el9_3.x86_64')).toBe('openssl-libs.x86_64')
    expect(nevraToNameArch('python3.11-3.11.5-1.el9.noarch')).toBe('python3.11.noarch')
    expect(nevraToNameArch('garbage')).toBeUndefined()
  })
})

describe('never throws', () => {
  it('on arbitrary text', () => {
    const words = [
      'Inst ',
      '[1.0]',
      '(2.0 Debian-Security:12/stable-security [amd64])',
      '0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.',
      'E: ',
      'x.x86_64',
      '1.0-1',
      'Error:',
      '/Sec.',
      'security',
    ]
    const check = (o: unknown): void => void PackagesObservationSchema.parse(o)
    assertNeverThrows((t) => parseAptUpgradable(t), words, check)
    assertNeverThrows((t) => parseDnfUpdates(t, t), words, check)
  })
})
