import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { collectContainers } from '../../../agent/collect/containers.ts'
import { collectPackages, PACKAGES_CACHE_FILE } from '../../../agent/collect/packages.ts'
import { ContainerObservationSchema, PackagesObservationSchema } from '../../../shared/contracts/index.ts'
import { fakeContext, fakeRun, NOW, osFixture, tempDir, timedOut } from '../../fixtures/collect/fakes.ts'

const APT = osFixture('apt-get-s-dist-upgrade-security.txt')
const HOUR = 3_600_000
const packages = { enabled: true, every: '6h', timeoutSeconds: 300 }
const at = (ms: number) => () => new Date(NOW.getTime() + ms)

describe('collectPackages (slow, cached)', () => {
  it('runs apt-get -s dist-upgrade (LC_ALL=C, no lock) once, then reports the cache until `every` has passed', async () => {
    const cacheDir = join(tempDir(), 'cache')
    const run = fakeRun({ 'apt-get': { stdout: APT } })
    const first = await collectPackages(
      packages,
      fakeContext({ run, cacheDir, tree: { files: { '/var/run/reboot-required': '' } } }),
    )
    expect(run.calls.map((c) => [c.file, ...c.args])).toEqual([
      ['apt-get', '-s', '-o', 'Debug::NoLocking=1', 'dist-upgrade'],
    ])
    expect(run.calls[0]!.opts).toMatchObject({ timeoutMs: 300_000, env: expect.objectContaining({ LC_ALL: 'C' }) })
    expect(first.errors).toEqual([])
    expect(first.observations).toHaveLength(1)
    const obs = PackagesObservationSchema.parse(first.observations[0])
    expect(obs).toMatchObject({ manager: 'apt', rebootRequired: true })
    expect(obs.security).toBeGreaterThan(0)
    expect(JSON.parse(readFileSync(join(cacheDir, PACKAGES_CACHE_FILE), 'utf8'))).toEqual({
      version: 1,
      checkedAt: NOW.toISOString(),
      observation: obs,
    })

    // 5 h 59 min later: the cached observation, nothing run
    const later = await collectPackages(packages, fakeContext({ run, cacheDir, now: at(6 * HOUR - 60_000) }))
    expect(later.observations).toEqual([obs])
    expect(run.calls).toHaveLength(1)
    // 6 h later: checked again
    await collectPackages(packages, fakeContext({ run, cacheDir, now: at(6 * HOUR) }))
    expect(run.calls).toHaveLength(2)
    // the clock went back before the last check: stale, checked again
    await collectPackages(packages, fakeContext({ run, cacheDir, now: at(-HOUR) }))
    expect(run.calls).toHaveLength(3)
  })

  it('dnf when there is no apt-get: check-update (exit 100) and updateinfo --security, from the cache (-C)', async () => {
    const run = fakeRun({
      dnf: (args) =>
        args.includes('check-update')
          ? { exitCode: 100, stdout: osFixture('dnf-check-update.txt') }
          : { stdout: osFixture('dnf-updateinfo-security.txt') },
    })
    const out = await collectPackages(packages, fakeContext({ run }))
    expect(run.calls.map((c) => [c.file, ...c.args])).toEqual([
      ['apt-get', '-s', '-o', 'Debug::NoLocking=1', 'dist-upgrade'],
      ['dnf', '-q', '-C', 'check-update'],
      ['dnf', '-q', '-C', 'updateinfo', 'list', '--security'],
    ])
    expect(out.errors).toEqual([])
    expect(out.observations[0]).toMatchObject({ kind: 'packages', manager: 'dnf' })
  })

  it('no package manager, a failing or hanging apt-get: a ProbeError, cached and retried within the hour', async () => {
    for (const [run, reason] of [
      [fakeRun({}), /^no supported package manager found \(apt-get, dnf, yum\)/],
      [
        fakeRun({ 'apt-get': { exitCode: 100, stderr: 'E: The package lists or status file could not be parsed\n' } }),
        /^apt-get -s dist-upgrade exited 100: E: The package lists/,
      ],
      [fakeRun({ 'apt-get': timedOut(300_000) }), /^apt-get -s dist-upgrade timed out/],
      [fakeRun({ 'apt-get': { errno: 'EACCES' } }), /^apt-get: permission denied/],
    ] as const) {
      const cacheDir = join(tempDir(), 'cache')
      const out = await collectPackages(packages, fakeContext({ run, cacheDir }))
      expect(out).toEqual({ observations: [], errors: [{ probe: 'packages', reason: expect.stringMatching(reason) }] })
      const calls = run.calls.length
      const soon = await collectPackages(packages, fakeContext({ run, cacheDir, now: at(30 * 60_000) }))
      expect(soon.errors[0]!.reason).toMatch(/\(checked at 2026-11-23T10:00:00.000Z\)$/)
      expect(run.calls).toHaveLength(calls)
      await collectPackages(packages, fakeContext({ run, cacheDir, now: at(HOUR) }))
      expect(run.calls.length).toBeGreaterThan(calls)
    }
  })

  it('disabled: nothing', async () => {
    const ctx = fakeContext()
    expect(await collectPackages({ ...packages, enabled: false }, ctx)).toEqual({ observations: [], errors: [] })
    expect(ctx.run.calls).toEqual([])
  })
})

describe('collectContainers', () => {
  const dockerSocket = { files: { '/var/run/docker.sock': '' } }

  it('docker ps -a then docker inspect of the listed containers', async () => {
    const run = fakeRun({
      docker: (args) =>
        args[0] === 'ps' ? { stdout: osFixture('docker-ps.jsonl') } : { stdout: osFixture('docker-inspect.json') },
    })
    const out = await collectContainers({ enabled: 'auto' }, fakeContext({ run, tree: dockerSocket }))
    expect(run.calls.map((c) => c.args.slice(0, 2))).toEqual([
      ['ps', '-a'],
      ['inspect', '--'],
    ])
    expect(out.errors).toEqual([])
    expect(out.observations.length).toBeGreaterThan(0)
    for (const o of out.observations) ContainerObservationSchema.parse(o)
    expect(out.observations.find((o) => o.kind === 'container' && o.name === 'worker')).toMatchObject({
      runtime: 'docker',
      health: 'unhealthy',
    })
  })

  it('auto: no binary, no daemon socket, or a daemon that does not answer is silence; true makes each an error', async () => {
    const noDaemon = fakeRun({
      docker: {
        exitCode: 1,
        stderr: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n',
      },
    })
    // nothing installed
    expect(await collectContainers({ enabled: 'auto' }, fakeContext({ tree: dockerSocket }))).toEqual({
      observations: [],
      errors: [],
    })
    // a client but no socket: not even started
    const noSocket = fakeContext({ run: noDaemon })
    expect(await collectContainers({ enabled: 'auto' }, noSocket)).toEqual({ observations: [], errors: [] })
    expect(noSocket.run.calls).toEqual([])
    // a socket nobody answers on
    expect(await collectContainers({ enabled: 'auto' }, fakeContext({ run: noDaemon, tree: dockerSocket }))).toEqual({
      observations: [],
      errors: [],
    })

    const strict = await collectContainers({ enabled: true }, fakeContext({ run: noDaemon }))
    expect(strict.errors).toEqual([
      { probe: 'container', reason: expect.stringMatching(/^docker ps exited 1: Cannot connect to the Docker daemon/) },
    ])
    expect((await collectContainers({ enabled: true }, fakeContext())).errors).toEqual([
      { probe: 'container', reason: 'no container runtime found (docker, podman)' },
    ])
  })

  it('podman (JSON array) where its storage exists; other failures are errors even in auto', async () => {
    const run = fakeRun({
      podman: (args) => (args[0] === 'ps' ? { stdout: osFixture('podman-ps.json') } : { stdout: '[]' }),
      docker: timedOut(10_000),
    })
    const ctx = fakeContext({ run, tree: { ...dockerSocket, dirs: { '/var/lib/containers/storage': [] } } })
    const out = await collectContainers({ enabled: 'auto' }, ctx)
    expect(out.observations.length).toBeGreaterThan(0)
    for (const o of out.observations) expect(o).toMatchObject({ kind: 'container', runtime: 'podman' })
    expect(out.errors).toEqual([{ probe: 'container', reason: 'docker ps timed out after 10000 ms' }])
  })

  it('disabled: nothing is started', async () => {
    const ctx = fakeContext({ tree: dockerSocket })
    expect(await collectContainers({ enabled: false }, ctx)).toEqual({ observations: [], errors: [] })
    expect(ctx.run.calls).toEqual([])
  })
})
