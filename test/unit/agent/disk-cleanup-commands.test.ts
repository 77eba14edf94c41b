/**
 * The tool categories (package-cache, journal, container-images) through the executor, with a scripted ctx.run:
 * the host's apt cache, journal and docker images are not ours to clean in a test. The "tools" change real files in
 * temporary directories, so the measured bytes are real measurements.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { ExecError, type RunOptions, type RunResult, type runCommand } from '../../../agent/os/exec.ts'
import { createDiskCleanupExecutor } from '../../../agent/remediations/disk-cleanup.ts'
import type { ExecutorContext } from '../../../agent/remediations/types.ts'
import { RemediationResultV1Schema } from '../../../shared/contracts/index.ts'
import { DiskCleanupParamsSchema } from '../../../shared/registry/remediations/disk-cleanup.ts'

type Script = (file: string, args: readonly string[]) => Partial<RunResult> | 'missing'

const dir = mkdtempSync(join(tmpdir(), 'ansai-dc-commands-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const apt = join(dir, 'apt-archives')
const dnf = join(dir, 'dnf')
const journal = join(dir, 'journal')
const executor = createDiskCleanupExecutor({ aptArchivesDir: apt, dnfCacheDir: dnf, journalDirs: [journal] })

function fill(d: string, files: Record<string, number>): number {
  mkdirSync(d, { recursive: true })
  let blocks = 0
  for (const [name, size] of Object.entries(files)) {
    mkdirSync(join(d, name, '..'), { recursive: true })
    writeFileSync(join(d, name), Buffer.alloc(size, 1))
    blocks += Number(statSync(join(d, name)).blocks) * 512
  }
  return blocks
}

function harness(script: Script, dryRun = false) {
  const calls: string[] = []
  const run = (async (file: string, args: readonly string[], _opts: RunOptions): Promise<RunResult> => {
    calls.push([file, ...args].join(' '))
    const r = script(file, args)
    if (r === 'missing') {
      throw new ExecError('spawn-failed', file, `cannot start ${file}: ENOENT`, { errno: 'ENOENT' })
    }
    return { exitCode: 0, signal: null, stdout: '', stderr: '', timedOut: false, truncated: false, durationMs: 1, ...r }
  }) as typeof runCommand
  const ctx: ExecutorContext = { key: 'k', dryRun, now: () => new Date(), run, log: () => {} }
  return { ctx, calls }
}

const params = (p: Record<string, unknown>) => DiskCleanupParamsSchema.parse(p)

beforeEach(() => {
  for (const d of [apt, dnf, journal]) rmSync(d, { recursive: true, force: true })
})

describe('package-cache', () => {
  it('apt-get clean, bytes measured as the cache directory before minus after', async () => {
    const blocks = fill(apt, { 'a_1.0_amd64.deb': 300_000, 'b_2.0_all.deb': 70_000, 'partial/c.deb': 5000 })
    const { ctx, calls } = harness((file, args) => {
      if (file === 'apt-get' && args[0] === 'clean') {
        rmSync(join(apt, 'a_1.0_amd64.deb'))
        rmSync(join(apt, 'b_2.0_all.deb'))
        rmSync(join(apt, 'partial/c.deb'))
      }
      return {}
    })
    const { result, audit } = await executor.execute(params({ packageCache: true }), ctx)
    expect(RemediationResultV1Schema.parse(result)).toEqual(result)
    expect(calls).toEqual(['apt-get clean'])
    expect(result.status).toBe('succeeded')
    expect(result.bytesRecovered).toEqual({ 'package-cache': blocks })
    expect(result.summary).toMatch(/^recovered \d+\.\d KiB: package-cache \d+\.\d KiB$/)
    expect(audit).toEqual([{ action: 'run', target: 'apt-get clean', bytes: blocks, category: 'package-cache' }])
  })

  it('dnf clean packages when there is no apt-get', async () => {
    const blocks = fill(dnf, { 'fedora-abc/packages/x.rpm': 100_000 })
    const { ctx, calls } = harness((file, args) => {
      if (file === 'apt-get') return 'missing'
      if (file === 'dnf' && args.join(' ') === 'clean packages') rmSync(join(dnf, 'fedora-abc/packages/x.rpm'))
      return {}
    })
    const { result } = await executor.execute(params({ packageCache: true }), ctx)
    expect(calls).toEqual(['apt-get clean', 'dnf clean packages'])
    expect(result.bytesRecovered).toEqual({ 'package-cache': blocks })
  })

  it('skipped with the reason when neither is installed', async () => {
    const { ctx } = harness(() => 'missing')
    const { result } = await executor.execute(params({ packageCache: true }), ctx)
    expect(result.status).toBe('skipped')
    expect(result.summary).toBe('recovered 0 B: package-cache skipped (no apt-get or dnf on this host)')
  })

  it('a failing apt-get (the lock is taken) fails the run, without throwing', async () => {
    fill(apt, { 'a.deb': 1000 })
    const { ctx } = harness(() => ({
      exitCode: 100,
      stderr: 'E: Could not get lock /var/cache/apt/archives/lock. It is held by process 4242 (apt-get)',
    }))
    const { result } = await executor.execute(params({ packageCache: true }), ctx)
    expect(result.status).toBe('failed')
    expect(result.error).toMatch(/^package-cache: apt-get clean: exit 100: E: Could not get lock/)
    expect(result.bytesRecovered).toEqual({ 'package-cache': 0 })
  })

  it('dry-run only asks whether apt-get exists, and says what is in the cache', async () => {
    const blocks = fill(apt, { 'a.deb': 200_000 })
    const { ctx, calls } = harness(() => ({}), true)
    const { result, audit } = await executor.execute(params({ packageCache: true }), ctx)
    expect(calls).toEqual(['apt-get --version'])
    expect(result.status).toBe('dry-run')
    expect(audit).toEqual([{ action: 'would-run', target: 'apt-get clean', bytes: blocks, category: 'package-cache' }])
  })
})

describe('journal', () => {
  it('journalctl --vacuum-size, bytes measured on the journal directory', async () => {
    const removedBlocks = fill(journal, { 'mid/system@a.journal~': 400_000, 'mid/system@b.journal~': 200_000 })
    fill(journal, { 'mid/system.journal': 100_000 })
    const { ctx, calls } = harness((file, args) => {
      if (args[0] === '--disk-usage') {
        const gone = !statSync(join(journal, 'mid'), { throwIfNoEntry: false }) ? 0 : 1
        return { stdout: `Archived and active journals take up ${gone ? '0.7M' : '0.1M'} in the file system.\n` }
      }
      if (file === 'journalctl' && args[0] === '--vacuum-size=100M') {
        rmSync(join(journal, 'mid/system@a.journal~'))
        rmSync(join(journal, 'mid/system@b.journal~'))
        return { stderr: 'Vacuuming done, freed 585.9K of archived journals from /var/log/journal/mid.\n' }
      }
      return {}
    })
    const { result } = await executor.execute(params({ journalMaxSize: '100M' }), ctx)
    expect(calls).toEqual(['journalctl --disk-usage', 'journalctl --vacuum-size=100M', 'journalctl --disk-usage'])
    expect(result.status).toBe('succeeded')
    expect(result.bytesRecovered).toEqual({ journal: removedBlocks })
    expect(result.evidence.categories).toMatchObject({
      journal: { status: 'done', measure: 'journal directories, sum of st_blocks x 512' },
    })
  })

  it('skipped without journalctl; dry-run runs no vacuum', async () => {
    const missing = harness(() => 'missing')
    const skipped = await executor.execute(params({ journalMaxSize: '1G' }), missing.ctx)
    expect(skipped.result.status).toBe('skipped')
    expect(skipped.result.summary).toContain('journal skipped (journalctl not installed (no systemd journal))')

    const dry = harness(() => ({ stdout: 'Archived and active journals take up 8.0M in the file system.' }), true)
    const { result } = await executor.execute(params({ journalMaxSize: '1G' }), dry.ctx)
    expect(dry.calls).toEqual(['journalctl --disk-usage'])
    expect(result.summary).toBe(
      'dry-run: would recover 0 B: journal would run journalctl --vacuum-size=1G (journal holds 8.0 MiB)',
    )
  })
})

describe('container-images', () => {
  it("docker image prune --all --force, bytes from docker's reclaimed total", async () => {
    const { ctx, calls } = harness(() => ({
      stdout:
        'Deleted Images:\nuntagged: nginx:1.25\ndeleted: sha256:aa\ndeleted: sha256:bb\n\nTotal reclaimed space: 187.3MB\n',
    }))
    const { result } = await executor.execute(params({ containerImages: 'unused' }), ctx)
    expect(calls).toEqual(['docker image prune --all --force'])
    expect(result.bytesRecovered).toEqual({ 'container-images': 187_300_000 })
    expect(result.evidence.categories).toMatchObject({ 'container-images': { engine: 'docker', layersDeleted: 2 } })
  })

  it('docker without its daemon, no podman: skipped with the reason', async () => {
    const { ctx, calls } = harness((file) =>
      file === 'docker'
        ? {
            exitCode: 1,
            stderr: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
          }
        : 'missing',
    )
    const { result } = await executor.execute(params({ containerImages: 'unused' }), ctx)
    expect(calls).toEqual(['docker image prune --all --force', 'podman images --format json'])
    expect(result.status).toBe('skipped')
    expect(result.summary).toContain('container-images skipped (docker daemon not running)')
  })

  it('podman: bytes from the image sizes before and after', async () => {
    let pruned = false
    const { ctx } = harness((file, args) => {
      if (file === 'docker') return 'missing'
      if (args[0] === 'images') {
        return {
          stdout: JSON.stringify(
            pruned
              ? [{ Id: 'a', Size: 1000 }]
              : [
                  { Id: 'a', Size: 1000 },
                  { Id: 'b', Size: 5000 },
                  { Id: 'c', Size: 250 },
                ],
          ),
        }
      }
      pruned = true
      return { stdout: 'b\nc\n' }
    })
    const { result } = await executor.execute(params({ containerImages: 'unused' }), ctx)
    expect(result.status).toBe('succeeded')
    expect(result.bytesRecovered).toEqual({ 'container-images': 5250 })
    expect(result.evidence.categories).toMatchObject({ 'container-images': { engine: 'podman', imagesRemoved: 2 } })
  })

  it('neither installed: skipped', async () => {
    const { ctx } = harness(() => 'missing')
    const { result } = await executor.execute(params({ containerImages: 'unused' }), ctx)
    expect(result.status).toBe('skipped')
    expect(result.summary).toContain('no docker or podman on this host')
  })

  it('dry-run asks docker for its version only', async () => {
    const { ctx, calls } = harness(() => ({ stdout: '28.2.2\n' }), true)
    const { result } = await executor.execute(params({ containerImages: 'unused' }), ctx)
    expect(calls).toEqual(['docker version --format {{.Server.Version}}'])
    expect(result.summary).toBe(
      'dry-run: would recover 0 B: container-images would run docker image prune --all --force',
    )
  })
})

describe('unexpected errors', () => {
  it('still give one failed result, never a throw', async () => {
    const { ctx } = harness(() => ({}))
    const bad = { ...params({ roots: [dir], logsOlderThan: '1d' }), logsOlderThan: 'soon' }
    const { result } = await executor.execute(bad, ctx)
    expect(RemediationResultV1Schema.parse(result)).toEqual(result)
    expect(result.status).toBe('failed')
    expect(result.error).toMatch(/'soon' is not a duration/)
  })
})
