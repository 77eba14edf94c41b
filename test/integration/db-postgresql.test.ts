/**
 * The database probe and db-maintenance against a real PostgreSQL: a throwaway cluster (test/support/postgres.ts:
 * initdb in a temp directory, a Unix socket there only, autovacuum off), run as the OS user `postgres` when the
 * tests run as root, reached by the agent's code exactly as on a host (psql through setpriv, peer authentication).
 *
 * Real bloat (80 % of 20,000 rows deleted), a real old snapshot (a REPEATABLE READ session that read the table
 * before the delete) that keeps VACUUM from removing them, real sessions idle in a transaction in this database and
 * in another, a real lock waiter, and a B-tree index corrupted on disk. Independent checks read the server with the
 * test's own psql, not the code under test. Skipped loudly without PostgreSQL, failing under ANSAI_REQUIRE_ALL=1.
 */
import { chmodSync, closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collectDatabases } from '../../agent/collect/databases.ts'
import { createHostContext } from '../../agent/collect/host-context.ts'
import type { DatabaseTarget } from '../../agent/config/probes.ts'
import { createDbMaintenanceExecutor, type DbMaintenanceOptions } from '../../agent/remediations/db-maintenance.ts'
import { runRemediation } from '../../agent/remediations/runner.ts'
import type { RemediationExecutor } from '../../agent/remediations/types.ts'
import { type ObservationOf, RemediationResultV1Schema } from '../../shared/contracts/index.ts'
import { PASSWORD_ROLE, type PgCluster, type PgSession, startPostgresOrSkip } from '../support/postgres.ts'

type DatabaseObservation = ObservationOf<'database'>

const pg = await startPostgresOrSkip()
afterAll(() => pg?.stop())

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const ROWS = 20_000

async function waitFor<T>(what: string, fn: () => Promise<T> | T, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (ok(v)) return v
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${ms} ms`)
    await sleep(100)
  }
}

describe.skipIf(!pg)('PostgreSQL, for real', () => {
  const cluster = pg as PgCluster
  // made in beforeAll: a skipped describe still runs its body, but never its hooks
  const scratch = join(tmpdir(), `ansai-pg-test-${process.pid}-${Date.now()}`)
  beforeAll(() => mkdirSync(scratch, { mode: 0o700 }))
  afterAll(() => rmSync(scratch, { recursive: true, force: true }))
  const target = (database: string, extra: Partial<DatabaseTarget> = {}): DatabaseTarget => ({
    engine: 'postgresql',
    database,
    socket: cluster.socketDir,
    port: cluster.port,
    timeoutSeconds: 10,
    ...extra,
  })
  const ctx = createHostContext({ cacheDir: join(scratch, 'cache') })
  const probe = async (database = 'app', extra: Partial<DatabaseTarget> = {}): Promise<DatabaseObservation> => {
    const out = await collectDatabases([target(database, extra)], ctx)
    expect(out.errors).toEqual([])
    expect(out.observations).toHaveLength(1)
    return out.observations[0] as DatabaseObservation
  }
  const executor = (options: DbMaintenanceOptions = {}) =>
    createDbMaintenanceExecutor({ databases: [target('app'), target('other'), target('nope')], ...options })
  const remediate = async (
    params: Record<string, unknown>,
    opts: { dryRun?: boolean; executor?: RemediationExecutor<never> } = {},
  ) => {
    const { result, audit } = await runRemediation(
      {
        key: `pg-${params.operation}`,
        remediation: 'db-maintenance',
        params: { engine: 'postgresql', database: 'app', ...params },
        dryRun: opts.dryRun ?? false,
      },
      { overrides: { 'db-maintenance': opts.executor ?? (executor() as RemediationExecutor<never>) } },
    )
    expect(RemediationResultV1Schema.parse(result)).toEqual(result)
    expect(JSON.stringify(result).length).toBeLessThan(16_000)
    return { result, audit }
  }
  const deadTuples = () =>
    Number(cluster.psql('app', 'SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables').trim())
  const backendAlive = (pid: number) =>
    cluster.psql('postgres', `SELECT count(*) FROM pg_stat_activity WHERE pid = ${pid}`).trim() === '1'

  let snapshot: PgSession // REPEATABLE READ, read the table before the delete: holds the dead tuples
  let otherDb: PgSession // idle in a transaction in another database
  let plainIdle: PgSession // connected to app, not in a transaction

  beforeAll(async () => {
    cluster.psql('postgres', 'CREATE DATABASE app')
    cluster.psql('postgres', 'CREATE DATABASE other')
    cluster.psql(
      'app',
      `CREATE TABLE items (id serial PRIMARY KEY, payload text NOT NULL); INSERT INTO items (payload) SELECT repeat(md5(i::text), 6) FROM generate_series(1, ${ROWS}) i; CREATE INDEX items_payload ON items (payload); ANALYZE items`,
    )
    cluster.psql('other', 'CREATE TABLE t (id int); INSERT INTO t VALUES (1); CREATE TABLE locked (id int)')
    snapshot = await cluster.session('app')
    snapshot.send('BEGIN ISOLATION LEVEL REPEATABLE READ;')
    snapshot.send('SELECT count(*) FROM items;')
    otherDb = await cluster.session('other')
    otherDb.send('BEGIN;')
    otherDb.send('UPDATE t SET id = 2;')
    plainIdle = await cluster.session('app')
    cluster.psql('app', 'DELETE FROM items WHERE id % 5 <> 0')
    // a backend's statistics reach the shared counters when it ends or goes idle: wait for them
    await waitFor('dead tuples counted', deadTuples, (n) => n >= ROWS * 0.8)
  })

  it('the probe sees the bloat, the session idle in a transaction, the connections', async () => {
    const obs = await probe()
    expect(obs).toMatchObject({
      kind: 'database',
      engine: 'postgresql',
      name: 'app',
      reachable: true,
      maxConnections: 40,
      idleInTransaction: 1, // this database's only: the one in `other` is not counted
      deadTuples: ROWS * 0.8,
      bloatRatio: 0.8,
      longestLockWaitSeconds: 0,
    })
    expect(obs.connections).toBeGreaterThanOrEqual(4) // three sessions and the probe's own
    expect(obs).not.toHaveProperty('replicationLagSeconds') // a primary without standbys
    expect(obs).not.toHaveProperty('integrity') // data checksums are off in this cluster
  })

  it('sees a session waiting for a lock, and for how long', async () => {
    const holder = await cluster.session('other')
    holder.send('BEGIN;')
    holder.send('LOCK TABLE locked IN ACCESS EXCLUSIVE MODE;')
    await sleep(200)
    const waiter = await cluster.session('other')
    waiter.send('SELECT count(*) FROM locked;')
    await sleep(1_200)
    const obs = await probe('other')
    expect(obs.longestLockWaitSeconds).toBeGreaterThanOrEqual(1)
    expect(obs.longestLockWaitSeconds).toBeLessThan(30)
    await holder.close()
    await waiter.close()
  })

  it('a database that is not there, or a server that is not there, is unreachable with the reason', async () => {
    const out = await collectDatabases(
      [target('nope'), target('app', { socket: join(cluster.dir, 'no-server-here') })],
      ctx,
    )
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      expect.objectContaining({
        name: 'nope',
        reachable: false,
        error: expect.stringMatching(/database "nope" does not exist/),
      }),
      expect.objectContaining({
        name: 'app',
        reachable: false,
        error: expect.stringMatching(/No such file or directory/),
      }),
    ])
  })

  it('logs in with a password file (PGPASSFILE), never a password on the command line', async () => {
    cluster.psql('postgres', `CREATE ROLE ${PASSWORD_ROLE} LOGIN PASSWORD 'pw-in-a-file' IN ROLE pg_monitor`)
    const passFile = join(scratch, 'pgpass')
    writeFileSync(passFile, `*:*:*:${PASSWORD_ROLE}:pw-in-a-file\n`)
    chmodSync(passFile, 0o600)
    const seen: string[][] = []
    const spy = {
      ...ctx,
      run: (file: string, args: readonly string[], o: Parameters<typeof ctx.run>[2]) => {
        seen.push([file, ...args])
        return ctx.run(file, args, o)
      },
    }
    const out = await collectDatabases([target('app', { user: PASSWORD_ROLE, passFile })], spy)
    expect(out.observations[0]).toMatchObject({ reachable: true, deadTuples: ROWS * 0.8 })
    expect(seen.flat().join(' ')).not.toContain('pw-in-a-file')
    writeFileSync(passFile, `*:*:*:${PASSWORD_ROLE}:wrong\n`)
    const wrong = await collectDatabases([target('app', { user: PASSWORD_ROLE, passFile })], ctx)
    expect(wrong.observations[0]).toMatchObject({
      reachable: false,
      error: expect.stringMatching(/password authentication failed for user "ansai_pw"/),
    })
  })

  it('dry-run: says what VACUUM would do and changes nothing', async () => {
    const { result, audit } = await remediate({ operation: 'vacuum' }, { dryRun: true })
    expect(result).toMatchObject({ status: 'dry-run', dryRun: true })
    expect(result.summary).toMatch(
      /^dry-run: would run VACUUM \(SKIP_LOCKED\) on app \(now 16000 dead tuples in 1 table, [\d.]+ MiB\)$/,
    )
    expect(audit).toEqual([{ action: 'would-run', target: 'postgresql:app', detail: 'VACUUM (SKIP_LOCKED)' }])
    expect(deadTuples()).toBe(ROWS * 0.8)
  })

  it('VACUUM held back by an old snapshot fails its verification and names the session holding it', async () => {
    const { result } = await remediate({ operation: 'vacuum' })
    expect(result.status).toBe('failed')
    expect(result.summary).toMatch(/dead tuples 16000 -> 16000/)
    expect(result.error).toMatch(
      new RegExp(`the dead tuples did not go down .* held by pid ${snapshot.pid} \\(idle in transaction`),
    )
    expect(result.evidence.xminHolder).toMatchObject({ pid: snapshot.pid, state: 'idle in transaction' })
    expect(deadTuples()).toBe(ROWS * 0.8)
  })

  it('terminate-idle-in-transaction ends the old idle transaction, and only it', async () => {
    await sleep(2_100) // the snapshot session has been idle for longer than 2 s by now; others are not
    const recent = await cluster.session('app')
    recent.send('BEGIN;')
    recent.send('SELECT 1;') // idle in a transaction too, but for far less than 2 s
    await sleep(100)
    const dry = await remediate({ operation: 'terminate-idle-in-transaction', idleLongerThan: '2s' }, { dryRun: true })
    expect(dry.result).toMatchObject({ status: 'dry-run', itemsTotal: 1 })
    expect(dry.result.items?.[0]).toMatch(
      new RegExp(`^pid ${snapshot.pid} \\(${cluster.superuser}, psql; idle in transaction \\d+ s\\)$`),
    )
    expect(backendAlive(snapshot.pid)).toBe(true)

    const { result, audit } = await remediate({ operation: 'terminate-idle-in-transaction', idleLongerThan: '2s' })
    expect(result.status).toBe('succeeded')
    expect(result.summary).toMatch(/^ended 1 session of app idle in a transaction for longer than 2s: pid \d+/)
    expect(result.evidence.terminated).toEqual([snapshot.pid])
    expect(audit).toEqual([expect.objectContaining({ action: 'terminate', target: 'postgresql:app' })])
    // independent checks: the backend is gone and its psql saw the connection end; the others are untouched
    expect(backendAlive(snapshot.pid)).toBe(false)
    snapshot.send('SELECT 1;') // its psql learns the connection is gone at its next statement, and ends
    expect(await snapshot.exited).not.toBe(0)
    for (const s of [otherDb, plainIdle, recent]) {
      expect(backendAlive(s.pid), `pid ${s.pid}`).toBe(true)
      expect(s.alive).toBe(true)
    }
    await recent.close()
    expect((await probe()).idleInTransaction).toBe(0)
  })

  it('with nothing idle for that long, terminate-idle-in-transaction changes nothing and says so', async () => {
    const { result } = await remediate({ operation: 'terminate-idle-in-transaction', idleLongerThan: '1h' })
    expect(result).toMatchObject({
      status: 'skipped',
      summary: 'no session of app idle in a transaction for longer than 1h',
    })
    expect(backendAlive(otherDb.pid)).toBe(true)
  })

  it('VACUUM ANALYZE then removes the dead tuples, and the probe sees the bloat gone', async () => {
    const { result } = await remediate({ operation: 'vacuum-analyze' })
    expect(result.status).toBe('succeeded')
    expect(result.summary).toMatch(
      /^VACUUM \(ANALYZE, SKIP_LOCKED\) on app in .*: dead tuples 16000 -> 0, size .* -> .*, 1 table analyzed$/,
    )
    expect(result.evidence).toMatchObject({ verified: true, before: { deadTuples: 16000 }, after: { deadTuples: 0 } })
    expect(result.bytesRecovered).toEqual({ 'vacuum-analyze': expect.any(Number) })
    expect(deadTuples()).toBe(0)
    const obs = await probe()
    expect(obs).toMatchObject({ deadTuples: 0, bloatRatio: 0, idleInTransaction: 0 })
    console.log(
      `[figures] postgresql vacuum-analyze: ${result.summary}; bytesRecovered ${JSON.stringify(result.bytesRecovered)}`,
    )
  })

  it('ANALYZE analyzes every table', async () => {
    const before = cluster.psql('app', 'SELECT last_analyze FROM pg_stat_user_tables').trim()
    await sleep(20)
    const { result } = await remediate({ operation: 'analyze' })
    expect(result).toMatchObject({ status: 'succeeded', evidence: { verified: true } })
    expect(cluster.psql('app', 'SELECT last_analyze FROM pg_stat_user_tables').trim() > before).toBe(true)
  })

  it('REINDEX DATABASE CONCURRENTLY rebuilds the bloated indexes smaller, none left invalid', async () => {
    const indexBytes = () => Number(cluster.psql('app', "SELECT pg_relation_size('items_payload')").trim())
    const before = indexBytes()
    const { result } = await remediate({ operation: 'reindex' })
    expect(result.status).toBe('succeeded')
    expect(result.evidence.statement).toBe('REINDEX DATABASE CONCURRENTLY "app"')
    const after = indexBytes()
    expect(after).toBeLessThan(before / 2) // 80 % of its entries were dead
    expect(result.bytesRecovered?.reindex).toBeGreaterThan(before - after - 1) // both indexes shrank
    expect(cluster.psql('app', 'SELECT count(*) FROM pg_index WHERE NOT indisvalid').trim()).toBe('0')
    console.log(`[figures] postgresql reindex: ${result.summary}`)
  })

  it('integrity-check: pg_amcheck and its SQL fallback find a healthy database ok', async () => {
    expect(cluster.binaries.pgAmcheck, 'pg_amcheck ships with the server package').toBeDefined()
    const tool = await remediate(
      { operation: 'integrity-check' },
      { executor: executor({ pgAmcheck: cluster.binaries.pgAmcheck! }) as RemediationExecutor<never> },
    )
    expect(tool.result).toMatchObject({ status: 'succeeded', evidence: { method: 'pg_amcheck', integrity: 'ok' } })
    const fallback = await remediate(
      { operation: 'integrity-check' },
      { executor: executor({ pgAmcheck: null }) as RemediationExecutor<never> },
    )
    expect(fallback.result).toMatchObject({
      status: 'succeeded',
      evidence: { method: 'amcheck through psql', integrity: 'ok' },
    })
    expect(fallback.result.evidence.indexesChecked).toBeGreaterThan(100) // the catalogs' and items'
  })

  it('integrity-check: an index corrupted on disk fails, named, by both methods', async () => {
    await plainIdle.close()
    await otherDb.close()
    const file = cluster.psql('app', "SELECT pg_relation_filepath('items_payload')").trim()
    cluster.restart() // flushes every page: what is on disk is what the server will read
    // overwrite the line pointers of the index's first leaf page while the server still runs: the page is not
    // cached since the restart, so the check reads the damage from disk
    const fd = openSync(join(cluster.dir, 'data', file), 'r+')
    writeSync(fd, Buffer.alloc(120, 0xab), 0, 120, 8192 + 24)
    closeSync(fd)
    for (const options of [{ pgAmcheck: cluster.binaries.pgAmcheck! }, { pgAmcheck: null }]) {
      const { result } = await remediate(
        { operation: 'integrity-check' },
        { executor: executor(options) as RemediationExecutor<never> },
      )
      expect(result.status).toBe('failed')
      expect(result.summary).toMatch(/^integrity check of app FAILED: \d+ problems? in app\.public\.items_payload/)
      expect(result.items).toEqual(['app.public.items_payload'])
      expect(result.evidence.integrity).toBe('failed')
      expect(result.error).toMatch(/^corruption found/)
    }
  })

  it('a database it cannot reach fails the fix with the reason, and a bad name never reaches SQL', async () => {
    const { result } = await remediate({ database: 'nope', operation: 'analyze' })
    expect(result.status).toBe('failed')
    expect(result.summary).toMatch(/^cannot reach postgresql database nope: .*database "nope" does not exist/)
    const refused = await remediate({ database: 'app"; DROP DATABASE app; --', operation: 'reindex' })
    expect(refused.result).toMatchObject({ status: 'failed', summary: 'refused: invalid params for db-maintenance' })
    expect(cluster.psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'app'").trim()).toBe('1')
  })
})
