/**
 * The database probe and db-maintenance against a real MariaDB: a throwaway server (test/support/mariadb.ts:
 * mariadb-install-db in a temp directory, mariadbd on a Unix socket there only, no networking), reached by the
 * agent's code exactly as on a Debian host (the `mariadb` and `mariadb-check` clients; root by unix_socket, and a
 * password user through an option file).
 *
 * Real fragmentation (80 % of 20,000 InnoDB rows deleted), real sessions idle in a transaction in this database and
 * another, a real row-lock waiter, and a MyISAM index corrupted on disk. Independent checks read the server with
 * the test's own client. Skipped loudly without MariaDB, failing under ANSAI_REQUIRE_ALL=1.
 */
import { chmodSync, closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collectDatabases } from '../../agent/collect/databases.ts'
import { createHostContext } from '../../agent/collect/host-context.ts'
import type { DatabaseTarget } from '../../agent/config/probes.ts'
import { createDbMaintenanceExecutor } from '../../agent/remediations/db-maintenance.ts'
import { runRemediation } from '../../agent/remediations/runner.ts'
import type { RemediationExecutor } from '../../agent/remediations/types.ts'
import { type ObservationOf, RemediationResultV1Schema } from '../../shared/contracts/index.ts'
import { type MariadbServer, type MariadbSession, startMariadbOrSkip } from '../support/mariadb.ts'

type DatabaseObservation = ObservationOf<'database'>

const db = await startMariadbOrSkip()
afterAll(() => db?.stop())

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.skipIf(!db)('MariaDB, for real', () => {
  const server = db as MariadbServer
  // made in beforeAll: a skipped describe still runs its body, but never its hooks
  const scratch = join(tmpdir(), `ansai-mariadb-test-${process.pid}-${Date.now()}`)
  beforeAll(() => mkdirSync(scratch, { mode: 0o700 }))
  afterAll(() => rmSync(scratch, { recursive: true, force: true }))
  const target = (database: string, extra: Partial<DatabaseTarget> = {}): DatabaseTarget => ({
    engine: 'mariadb',
    database,
    socket: server.socket,
    timeoutSeconds: 10,
    ...extra,
  })
  const ctx = createHostContext({ cacheDir: join(scratch, 'cache') })
  const probe = async (database = 'shop', extra: Partial<DatabaseTarget> = {}): Promise<DatabaseObservation> => {
    const out = await collectDatabases([target(database, extra)], ctx)
    expect(out.errors).toEqual([])
    return out.observations[0] as DatabaseObservation
  }
  const executor = () => createDbMaintenanceExecutor({ databases: [target('shop'), target('other')] })
  const remediate = async (params: Record<string, unknown>, dryRun = false) => {
    const { result, audit } = await runRemediation(
      {
        key: `my-${params.operation}`,
        remediation: 'db-maintenance',
        params: { engine: 'mariadb', database: 'shop', ...params },
        dryRun,
      },
      { overrides: { 'db-maintenance': executor() as RemediationExecutor<never> } },
    )
    expect(RemediationResultV1Schema.parse(result)).toEqual(result)
    expect(JSON.stringify(result).length).toBeLessThan(16_000)
    return { result, audit }
  }
  const connectionAlive = (id: number) =>
    server.sql(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ${id}`).trim() === '1'

  let idle: MariadbSession // idle in a transaction in shop
  let otherDb: MariadbSession // idle in a transaction in another database
  let plain: MariadbSession // connected to shop, no transaction

  beforeAll(async () => {
    server.sql('CREATE DATABASE shop; CREATE DATABASE other')
    server.sql(
      [
        'CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, payload VARCHAR(255) NOT NULL, KEY (payload)) ENGINE=InnoDB',
        'INSERT INTO items (payload) SELECT CONCAT(MD5(seq), MD5(seq + 1), MD5(seq + 2)) FROM seq_1_to_20000',
        'DELETE FROM items WHERE id % 5 <> 0',
        'CREATE TABLE legacy (id INT PRIMARY KEY, msg VARCHAR(100), KEY (msg)) ENGINE=MyISAM',
        "INSERT INTO legacy SELECT seq, CONCAT('m', seq) FROM seq_1_to_5000",
        'CREATE TABLE logs (id INT PRIMARY KEY, msg TEXT) ENGINE=Aria',
        "INSERT INTO logs SELECT seq, REPEAT('y', 100) FROM seq_1_to_1000",
      ].join(';\n'),
      'shop',
    )
    server.sql(
      'CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO t VALUES (1); CREATE TABLE locked (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO locked VALUES (1)',
      'other',
    )
    idle = await server.session('shop')
    idle.send('BEGIN;')
    idle.send('UPDATE items SET payload = CONCAT(payload, "x") WHERE id = 5;')
    otherDb = await server.session('other')
    otherDb.send('BEGIN;')
    otherDb.send('UPDATE t SET id = 2 WHERE id = 1;')
    plain = await server.session('shop')
    await sleep(200)
  })

  it('the probe sees the session idle in a transaction, the connections, the free space', async () => {
    const obs = await probe()
    expect(obs).toMatchObject({
      kind: 'database',
      engine: 'mariadb',
      name: 'shop',
      reachable: true,
      maxConnections: 151,
      idleInTransaction: 1, // shop's only
      longestLockWaitSeconds: 0,
    })
    expect(obs.connections).toBeGreaterThanOrEqual(4)
    expect(obs.bloatRatio).toBeGreaterThanOrEqual(0)
    expect(obs.bloatRatio).toBeLessThanOrEqual(1)
    expect(obs).not.toHaveProperty('replicationLagSeconds')
    expect(obs).not.toHaveProperty('deadTuples')
  })

  it('sees a session waiting for a row lock, and for how long', async () => {
    const holder = await server.session('other')
    holder.send('BEGIN;')
    holder.send('SELECT * FROM locked WHERE id = 1 FOR UPDATE;')
    await sleep(200)
    const waiter = await server.session('other')
    waiter.send('UPDATE locked SET id = 3 WHERE id = 1;')
    await sleep(2_200)
    const obs = await probe() // lock waits are the server's: seen from shop too
    expect(obs.longestLockWaitSeconds).toBeGreaterThanOrEqual(1)
    expect(obs.longestLockWaitSeconds).toBeLessThan(30)
    expect(obs.idleInTransaction).toBe(1) // the holder is idle in a transaction, but in `other`
    holder.send('ROLLBACK;')
    await holder.close()
    await waiter.close()
  })

  it('an unknown database or a missing server is unreachable, with the client’s reason', async () => {
    const out = await collectDatabases(
      [target('nope'), target('shop', { socket: join(scratch, 'no.sock'), name: 'gone' })],
      ctx,
    )
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      expect.objectContaining({
        name: 'nope',
        reachable: false,
        error: expect.stringMatching(/^ERROR 1049 .*Unknown database 'nope'/),
      }),
      expect.objectContaining({
        name: 'gone',
        reachable: false,
        error: expect.stringMatching(/^ERROR 2002 .*Can't connect/),
      }),
    ])
  })

  it('logs in with an option file (--defaults-extra-file), never a password on the command line', async () => {
    server.sql(
      "CREATE USER 'ansai'@'localhost' IDENTIFIED BY 'pw-in-a-file'; GRANT SELECT, PROCESS ON *.* TO 'ansai'@'localhost'",
    )
    const cnf = join(scratch, 'my.cnf')
    writeFileSync(cnf, '[client]\nuser = ansai\npassword = pw-in-a-file\n')
    chmodSync(cnf, 0o600)
    const seen: string[] = []
    const spy = {
      ...ctx,
      run: (file: string, args: readonly string[], o: Parameters<typeof ctx.run>[2]) => {
        seen.push(file, ...args)
        return ctx.run(file, args, o)
      },
    }
    const out = await collectDatabases([target('shop', { defaultsFile: cnf })], spy)
    expect(out.observations[0]).toMatchObject({ reachable: true, idleInTransaction: 1 })
    expect(seen.join(' ')).not.toContain('pw-in-a-file')
    expect(seen[1]).toBe(`--defaults-extra-file=${cnf}`)
    writeFileSync(cnf, '[client]\nuser = ansai\npassword = wrong\n')
    const wrong = await collectDatabases([target('shop', { defaultsFile: cnf })], ctx)
    expect(wrong.observations[0]).toMatchObject({
      reachable: false,
      error: expect.stringMatching(/^ERROR 1045 .*Access denied for user 'ansai'@'localhost'/),
    })
  })

  it('ANALYZE TABLE of every table', async () => {
    const { result, audit } = await remediate({ operation: 'analyze' })
    expect(result).toMatchObject({ status: 'succeeded', evidence: { tablesDone: 3 } })
    expect(result.summary).toMatch(/^ANALYZE TABLE of 3 tables in shop in /)
    expect(audit.map((a) => a.target).sort()).toEqual([
      'mariadb:shop.items',
      'mariadb:shop.legacy',
      'mariadb:shop.logs',
    ])
  })

  it('terminate-idle-in-transaction kills the idle transaction of this database, and only it', async () => {
    await sleep(1_100) // PROCESSLIST.TIME counts whole seconds
    const dry = await remediate({ operation: 'terminate-idle-in-transaction', idleLongerThan: '1s' }, true)
    expect(dry.result).toMatchObject({ status: 'dry-run', itemsTotal: 1 })
    expect(dry.result.items?.[0]).toMatch(new RegExp(`^connection ${idle.id} \\(root; idle in transaction \\d+ s\\)$`))
    expect(connectionAlive(idle.id)).toBe(true)

    const { result } = await remediate({ operation: 'terminate-idle-in-transaction', idleLongerThan: '1s' })
    expect(result.status).toBe('succeeded')
    expect(result.evidence.killed).toEqual([idle.id])
    expect(connectionAlive(idle.id)).toBe(false)
    for (const s of [otherDb, plain]) expect(connectionAlive(s.id), `connection ${s.id}`).toBe(true)
    expect((await probe()).idleInTransaction).toBe(0)
    // the killed transaction was rolled back: the row is as it was
    expect(server.sql('SELECT RIGHT(payload, 1) = "x" FROM items WHERE id = 5', 'shop').trim()).toBe('0')
  })

  it('OPTIMIZE TABLE rebuilds the fragmented tables and measures the space it gives back', async () => {
    server.sql('ANALYZE TABLE items', 'shop') // fresh statistics for the "before" figures
    const dry = await remediate({ operation: 'optimize' }, true)
    expect(dry.result.status).toBe('dry-run')
    const { result } = await remediate({ operation: 'optimize' })
    expect(result.status).toBe('succeeded')
    expect(result.summary).toMatch(/^OPTIMIZE TABLE of 3 tables in shop in .*: .* -> .* allocated \(.* recovered\)$/)
    expect(result.bytesRecovered).toEqual({ optimize: expect.any(Number) })
    const before = result.evidence.before as { tableBytes: number; freeBytes: number }
    const after = result.evidence.after as { tableBytes: number; freeBytes: number }
    expect(result.bytesRecovered?.optimize).toBe(
      Math.max(0, before.tableBytes + before.freeBytes - after.tableBytes - after.freeBytes),
    )
    expect(after.tableBytes).toBeLessThan(before.tableBytes) // 80 % of the rows were gone
    console.log(`[figures] mariadb optimize: ${result.summary}`)
  })

  it('integrity-check: CHECK TABLE finds the tables ok, then a corrupted MyISAM index, named', async () => {
    const ok = await remediate({ operation: 'integrity-check' })
    expect(ok.result).toMatchObject({ status: 'succeeded', evidence: { integrity: 'ok' } })
    server.sql('FLUSH TABLES')
    const fd = openSync(join(server.dir, 'data', 'shop', 'legacy.MYI'), 'r+')
    writeSync(fd, Buffer.alloc(1024, 0xff), 0, 1024, 2048)
    closeSync(fd)
    server.sql('FLUSH TABLES')
    const { result } = await remediate({ operation: 'integrity-check' })
    expect(result.status).toBe('failed')
    expect(result.evidence.integrity).toBe('failed')
    expect(result.summary).toMatch(/^CHECK TABLE FAILED 1 table of 3 in shop: shop\.legacy: /)
    expect(result.items?.[0]).toMatch(/^shop\.legacy: .*Corrupt/)
  })
})
