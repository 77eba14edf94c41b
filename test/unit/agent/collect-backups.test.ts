import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { collectBackups, INTEGRITY_CACHE_FILE, integrityTestFor } from '../../../agent/collect/backups.ts'
import type { BackupJob } from '../../../agent/config/probes.ts'
import { BackupObservationSchema } from '../../../shared/contracts/index.ts'
import { type FakeTree, fakeContext, fakeRun, NOW, tempDir, timedOut } from '../../fixtures/collect/fakes.ts'

const HOUR = 3_600_000
const job = (over: Partial<BackupJob> = {}): BackupJob => ({
  job: 'nightly',
  dir: '/var/backups/app',
  pattern: 'app-*.tar.gz',
  integrity: 'auto',
  integrityTimeoutSeconds: 120,
  settleSeconds: 60,
  ...over,
})

const tree = (): FakeTree => ({
  files: {
    '/var/backups/app/app-2026-11-21.tar.gz': { text: 'x'.repeat(100), mtimeMs: NOW.getTime() - 49 * HOUR },
    '/var/backups/app/app-2026-11-22.tar.gz': { text: 'x'.repeat(300), mtimeMs: NOW.getTime() - 25 * HOUR },
    '/var/backups/app/app-2026-11-20.tar.gz': { text: 'x'.repeat(200), mtimeMs: NOW.getTime() - 73 * HOUR },
    '/var/backups/app/other.sql': { text: 'x', mtimeMs: NOW.getTime() },
    '/var/backups/app/.app-partial.tar.gz': { text: 'x', mtimeMs: NOW.getTime() },
  },
  dirs: { '/var/backups/app/app-dir.tar.gz': [] },
})

describe('integrityTestFor', () => {
  it('auto picks by extension', () => {
    expect(integrityTestFor('auto', '/b/a.tar.gz')).toBe('tar')
    expect(integrityTestFor('auto', '/b/a.TGZ')).toBe('tar')
    expect(integrityTestFor('auto', '/b/a.tar.zst')).toBe('tar')
    expect(integrityTestFor('auto', '/b/a.tar')).toBe('tar')
    expect(integrityTestFor('auto', '/b/a.sql.gz')).toBe('gzip')
    expect(integrityTestFor('auto', '/b/a.sql')).toBe('none')
    expect(integrityTestFor('gzip', '/b/a.tar')).toBe('gzip')
    expect(integrityTestFor('none', '/b/a.gz')).toBe('none')
  })
})

describe('collectBackups', () => {
  it('the newest matching regular file: time, path, size; integrity by tar -tf, with a timeout', async () => {
    const ctx = fakeContext({ tree: tree(), run: fakeRun({ tar: { stdout: 'a\nb\n' } }) })
    const out = await collectBackups([job()], ctx)
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      {
        kind: 'backup',
        job: 'nightly',
        newestArtifactAt: new Date(NOW.getTime() - 25 * HOUR).toISOString(),
        newestArtifactPath: '/var/backups/app/app-2026-11-22.tar.gz',
        sizeBytes: 300,
        integrity: 'ok',
      },
    ])
    BackupObservationSchema.parse(out.observations[0])
    expect(ctx.run.calls).toEqual([
      {
        file: 'tar',
        args: ['-tf', '/var/backups/app/app-2026-11-22.tar.gz'],
        opts: expect.objectContaining({ timeoutMs: 120_000, maxOutputBytes: 65536 }),
      },
    ])
  })

  it('tests each artifact once: the result is cached by path, size and mtime', async () => {
    const t = tree()
    const ctx = fakeContext({
      tree: t,
      run: fakeRun({ tar: { exitCode: 2, stderr: 'gzip: stdin: unexpected end of file\n' } }),
    })
    const first = await collectBackups([job()], ctx)
    expect(first.observations[0]).toMatchObject({ integrity: 'failed' })
    const cached = JSON.parse(readFileSync(join(ctx.cacheDir, INTEGRITY_CACHE_FILE), 'utf8'))
    expect(cached.jobs.nightly).toMatchObject({
      path: '/var/backups/app/app-2026-11-22.tar.gz',
      size: 300,
      integrity: 'failed',
      detail: 'tar -tf exited 2: gzip: stdin: unexpected end of file',
    })
    const again = await collectBackups([job()], ctx)
    expect(again.observations[0]).toMatchObject({ integrity: 'failed' })
    expect(ctx.run.calls).toHaveLength(1)

    // the same name rewritten (new size/mtime): tested again
    t.files!['/var/backups/app/app-2026-11-22.tar.gz'] = { text: 'y'.repeat(301), mtimeMs: NOW.getTime() - HOUR }
    const rewritten = fakeContext({ tree: t, cacheDir: ctx.cacheDir, run: fakeRun({ tar: {} }) })
    expect((await collectBackups([job()], rewritten)).observations[0]).toMatchObject({
      integrity: 'ok',
      sizeBytes: 301,
    })
    expect(rewritten.run.calls).toHaveLength(1)
  })

  it('gzip -t for .gz; none by config or extension; an artifact still being written is unknown, untested', async () => {
    const t: FakeTree = {
      files: {
        '/b/db.sql.gz': { text: 'z', mtimeMs: NOW.getTime() - HOUR },
        '/c/db.sql': { text: 'z', mtimeMs: NOW.getTime() - HOUR },
        '/d/fresh.tar': { text: 'z', mtimeMs: NOW.getTime() - 10_000 },
      },
    }
    const ctx = fakeContext({ tree: t, run: fakeRun({ gzip: {}, tar: {} }) })
    const out = await collectBackups(
      [
        job({ job: 'db', dir: '/b', pattern: '*.gz' }),
        job({ job: 'plain', dir: '/c', pattern: '*' }),
        job({ job: 'db-none', dir: '/b', pattern: '*', integrity: 'none' }),
        job({ job: 'fresh', dir: '/d', pattern: '*', settleSeconds: 60 }),
      ],
      ctx,
    )
    expect(out.errors).toEqual([])
    expect(out.observations.map((o) => (o.kind === 'backup' ? [o.job, o.integrity] : []))).toEqual([
      ['db', 'ok'],
      ['plain', undefined],
      ['db-none', undefined],
      ['fresh', 'unknown'],
    ])
    expect(ctx.run.calls.map((c) => [c.file, ...c.args])).toEqual([['gzip', '-t', '--', '/b/db.sql.gz']])
  })

  it('no artifact (empty or missing directory): observed without one, so its age is infinite', async () => {
    const ctx = fakeContext({ tree: { dirs: { '/empty': [] } } })
    const out = await collectBackups([job({ dir: '/empty' }), job({ job: 'gone', dir: '/nowhere' })], ctx)
    expect(out).toEqual({
      observations: [
        { kind: 'backup', job: 'nightly' },
        { kind: 'backup', job: 'gone' },
      ],
      errors: [],
    })
  })

  it('an unreadable directory is a ProbeError and no observation (nothing is known)', async () => {
    const ctx = fakeContext({ tree: { dirs: { '/secret': { error: 'EACCES' } } } })
    expect(await collectBackups([job({ dir: '/secret' })], ctx)).toEqual({
      observations: [],
      errors: [{ probe: 'backup', reason: 'nightly: /secret: permission denied (EACCES)' }],
    })
  })

  it('tar missing or too slow: integrity unknown with a ProbeError, not cached, the observation kept', async () => {
    for (const [run, reason] of [
      [fakeRun({}), /nightly: integrity unknown: tar not found/],
      [fakeRun({ tar: timedOut(120_000) }), /nightly: integrity unknown: tar took more than 120 s/],
    ] as const) {
      const ctx = fakeContext({ tree: tree(), run })
      const out = await collectBackups([job()], ctx)
      expect(out.observations[0]).toMatchObject({ integrity: 'unknown', sizeBytes: 300 })
      expect(out.errors).toEqual([{ probe: 'backup', reason: expect.stringMatching(reason) }])
      await collectBackups([job()], ctx)
      expect(ctx.run.calls).toHaveLength(2) // tried again next time
    }
  })

  it('an unwritable cache directory is noted, the observation stands', async () => {
    const file = join(tempDir(), 'a-file')
    writeFileSync(file, '')
    const ctx = fakeContext({ tree: tree(), run: fakeRun({ tar: {} }), cacheDir: join(file, 'cache') })
    const out = await collectBackups([job()], ctx)
    expect(out.observations[0]).toMatchObject({ integrity: 'ok' })
    expect(out.errors).toEqual([{ probe: 'backup', reason: expect.stringMatching(/^integrity results not cached: /) }])
  })
})
