/**
 * The database probe and db-maintenance on real SQLite files, with Debian's sqlite3 shell, in a temp directory:
 * a file with 75 % of its 20,000 rows deleted (its pages on the freelist), a copy corrupted by overwriting bytes,
 * a file that is not a database at all. Bytes recovered are checked against the test's own stat() of the files.
 * Skipped loudly without sqlite3, failing under ANSAI_REQUIRE_ALL=1.
 */
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collectDatabases } from '../../agent/collect/databases.ts'
import { createHostContext } from '../../agent/collect/host-context.ts'
import { createDbMaintenanceExecutor } from '../../agent/remediations/db-maintenance.ts'
import { runRemediation } from '../../agent/remediations/runner.ts'
import type { RemediationExecutor } from '../../agent/remediations/types.ts'
import { type ObservationOf, RemediationResultV1Schema } from '../../shared/contracts/index.ts'
import { requireOrSkip } from '../support/require.ts'

const hasSqlite = requireOrSkip(
  'sqlite3',
  spawnSync('sqlite3', ['-version'], { stdio: 'ignore' }).status === 0,
  'sqlite3 not found: apt-get install sqlite3',
)

const ROWS = 20_000

describe.skipIf(!hasSqlite)('SQLite, for real', () => {
  // made in beforeAll: a skipped describe still runs its body, but never its hooks
  const dir = join(tmpdir(), `ansai-sqlite-${process.pid}-${Date.now()}`)
  beforeAll(() => mkdirSync(dir, { mode: 0o700 }))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const ctx = createHostContext({ cacheDir: join(dir, 'cache') })
  const executor = createDbMaintenanceExecutor({ databases: [] }) as RemediationExecutor<never>
  const sqlite = (file: string, sql: string): string => {
    const r = spawnSync('sqlite3', ['-batch', '-bail', file, sql], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`sqlite3 ${file}: ${r.stderr}`)
    return r.stdout.trim()
  }
  const makeDatabase = (file: string) =>
    sqlite(
      file,
      `CREATE TABLE items (id INTEGER PRIMARY KEY, payload TEXT NOT NULL); CREATE INDEX items_payload ON items (payload);
       WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${ROWS})
       INSERT INTO items (payload) SELECT printf('%0200d', i) FROM s;
       DELETE FROM items WHERE id % 4 <> 0;`,
    )
  /** What the files take on disk: st_blocks × 512 of the database and its -wal and -journal. */
  const allocated = (file: string): number =>
    [file, `${file}-wal`, `${file}-journal`].reduce((sum, p) => sum + (existsSync(p) ? statSync(p).blocks * 512 : 0), 0)
  const remediate = async (database: string, operation: string, dryRun = false) => {
    const { result } = await runRemediation(
      {
        key: `sqlite-${operation}`,
        remediation: 'db-maintenance',
        params: { engine: 'sqlite', database, operation },
        dryRun,
      },
      { overrides: { 'db-maintenance': executor } },
    )
    expect(RemediationResultV1Schema.parse(result)).toEqual(result)
    expect(JSON.stringify(result).length).toBeLessThan(16_000)
    return result
  }
  const probe = async (database: string) => {
    const out = await collectDatabases([{ engine: 'sqlite', database, timeoutSeconds: 10 }], ctx)
    expect(out.errors).toEqual([])
    return out.observations[0] as ObservationOf<'database'>
  }

  const app = join(dir, 'app.db')
  beforeAll(() => makeDatabase(app))

  it('the probe reads the free pages, read-only', async () => {
    const mtime = statSync(app).mtimeMs
    const obs = await probe(app)
    const pages = Number(sqlite(app, 'PRAGMA page_count'))
    const free = Number(sqlite(app, 'PRAGMA freelist_count'))
    expect(free).toBeGreaterThan(pages / 2)
    expect(obs).toEqual({
      kind: 'database',
      engine: 'sqlite',
      name: app,
      reachable: true,
      bloatRatio: Math.round((free / pages) * 10_000) / 10_000,
    })
    expect(statSync(app).mtimeMs).toBe(mtime)
  })

  it('VACUUM: dry-run changes nothing; then the file shrinks, and bytesRecovered is the measured change', async () => {
    const before = allocated(app)
    const sizeBefore = statSync(app).size
    const dry = await remediate(app, 'vacuum', true)
    expect(dry.status).toBe('dry-run')
    expect(dry.summary).toMatch(
      /^dry-run: would run VACUUM on .*app\.db \(.*, would recover at least .* \(\d+ free pages; more from half-empty pages\)\)$/,
    )
    expect(statSync(app).size).toBe(sizeBefore)

    const result = await remediate(app, 'vacuum')
    const after = allocated(app)
    expect(result.status).toBe('succeeded')
    expect(after).toBeLessThan(before / 2)
    expect(result.bytesRecovered).toEqual({ vacuum: before - after })
    expect(result.evidence).toMatchObject({ verified: true, after: { freelistCount: 0 } })
    expect(sqlite(app, 'PRAGMA freelist_count')).toBe('0')
    expect(sqlite(app, 'SELECT count(*) FROM items')).toBe(String(ROWS / 4))
    expect((await probe(app)).bloatRatio).toBe(0)
    console.log(`[figures] sqlite vacuum: ${result.summary} (measured ${before} -> ${after} bytes allocated)`)
  })

  it('ANALYZE, REINDEX and PRAGMA optimize run and verify', async () => {
    const analyzed = await remediate(app, 'analyze')
    expect(analyzed).toMatchObject({ status: 'succeeded', evidence: { statistics: true } })
    expect(Number(sqlite(app, 'SELECT count(*) FROM sqlite_stat1'))).toBeGreaterThan(0)
    const reindexed = await remediate(app, 'reindex')
    expect(reindexed).toMatchObject({ status: 'succeeded', evidence: { quickCheck: 'ok', verified: true } })
    const optimized = await remediate(app, 'optimize')
    expect(optimized).toMatchObject({ status: 'succeeded', evidence: { statement: 'PRAGMA optimize' } })
  })

  it('integrity-check: ok on a sound file, failed with the problems on a corrupted copy', async () => {
    expect(await remediate(app, 'integrity-check')).toMatchObject({
      status: 'succeeded',
      evidence: { integrity: 'ok' },
    })
    const bad = join(dir, 'bad.db')
    makeDatabase(bad)
    const fd = openSync(bad, 'r+')
    writeSync(fd, Buffer.alloc(3000, 0xff), 0, 3000, 4096 * 5 + 100)
    closeSync(fd)
    const copyBefore = readFileSync(bad)
    const result = await remediate(bad, 'integrity-check')
    expect(result.status).toBe('failed')
    expect(result.evidence.integrity).toBe('failed')
    expect(result.summary).toMatch(
      /^integrity check of .*bad\.db FAILED: \d+ problems, first: On tree page \d+ cell \d+: /,
    )
    expect(result.items?.length).toBeGreaterThan(1)
    expect(result.error).toMatch(/^corruption found: /)
    expect(readFileSync(bad).equals(copyBefore)).toBe(true) // checked read-only
  })

  it('a file that is not a database fails its integrity check; a missing file is never created', async () => {
    const junk = join(dir, 'junk.db')
    writeFileSync(junk, 'this is not a database, just text long enough\n')
    const result = await remediate(junk, 'integrity-check')
    expect(result).toMatchObject({ status: 'failed', evidence: { integrity: 'failed' } })
    expect(result.summary).toMatch(/not an SQLite 3 database/)
    expect(await probe(junk)).toMatchObject({
      reachable: false,
      integrity: 'failed',
      error: expect.stringMatching(/file is not a database/),
    })

    const missing = join(dir, 'missing.db')
    const vacuum = await remediate(missing, 'vacuum')
    expect(vacuum).toMatchObject({ status: 'failed', error: `${missing} does not exist` })
    expect(await probe(missing)).toMatchObject({
      reachable: false,
      error: expect.stringMatching(/unable to open database/),
    })
    expect(existsSync(missing)).toBe(false)
  })

  it.skipIf(process.getuid?.() !== 0)(
    'as root, works on an application’s file as its owner: what it creates stays theirs',
    async () => {
      chmodSync(dir, 0o711) // a temp dir is 0700: let the owner reach its directory below, as on a host
      const appDir = join(dir, 'owned')
      mkdirSync(appDir)
      const owned = join(appDir, 'owned.db')
      makeDatabase(owned)
      const nobody = 65534
      chownSync(appDir, nobody, nobody)
      chownSync(owned, nobody, nobody)
      sqlite(owned, 'PRAGMA journal_mode = WAL') // creates -wal and -shm files on use
      chownSync(owned, nobody, nobody)
      const result = await remediate(owned, 'vacuum')
      expect(result.status, result.error).toBe('succeeded')
      expect(result.evidence.runAsUid).toBe(nobody)
      for (const p of [owned, `${owned}-wal`, `${owned}-shm`]) {
        if (existsSync(p)) expect(statSync(p).uid, p).toBe(nobody)
      }
      // the application (here: nobody) still writes its database afterwards
      const write = spawnSync('sqlite3', ['-batch', '-bail', owned, "INSERT INTO items (payload) VALUES ('after')"], {
        uid: nobody,
        gid: nobody,
        encoding: 'utf8',
      })
      expect(write.status, write.stderr).toBe(0)
    },
  )
})
