/**
 * db-maintenance with fake commands fed the text captured from real servers: what runs (argv, never a shell), what
 * a dry-run does not run, how each verification decides, and the bounds of the result line. The real servers:
 * test/integration/db-*.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { RunOptions } from '../../../agent/os/exec.ts'
import type { DbTarget } from '../../../agent/probes/db-client.ts'
import { SQLITE_HEADER } from '../../../agent/probes/db-sqlite.ts'
import {
  createDbMaintenanceExecutor,
  type DbMaintenanceOptions,
  targetFor,
} from '../../../agent/remediations/db-maintenance.ts'
import { EXECUTORS } from '../../../agent/remediations/index.ts'
import { runRemediation } from '../../../agent/remediations/runner.ts'
import type { ExecutorContext, RemediationExecutor } from '../../../agent/remediations/types.ts'
import { RemediationResultV1Schema } from '../../../shared/contracts/index.ts'
import { findRemediation } from '../../../shared/registry/remediations/index.ts'
import { type FakeCommand, fakeRun, osFixture } from '../../fixtures/collect/fakes.ts'

const PASSWD =
  'root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n'
const PG_FIGURES = osFixture('db-postgresql-maintenance.txt')
const MY_FIGURES = osFixture('db-mariadb-maintenance.txt')

/** A clock that moves 10 ms per reading, and a sleep that moves it. */
const clock = () => {
  let t = Date.parse('2026-11-23T10:00:00Z')
  return {
    now: () => {
      t += 10
      return new Date(t)
    },
    sleep: async (ms: number) => {
      t += ms
    },
  }
}

const run = async (
  params: Record<string, unknown>,
  commands: Record<string, FakeCommand>,
  opts: { dryRun?: boolean; options?: DbMaintenanceOptions } = {},
) => {
  const c = clock()
  const fake = fakeRun(commands)
  const executor = createDbMaintenanceExecutor({
    databases: [],
    agentIsRoot: false,
    readPasswd: async () => PASSWD,
    env: { PATH: '/nonexistent' },
    sleep: c.sleep,
    ...opts.options,
  })
  const { result, audit } = await runRemediation(
    { key: 'k-1', remediation: 'db-maintenance', params, dryRun: opts.dryRun ?? false },
    {
      run: fake as ExecutorContext['run'],
      now: c.now,
      overrides: { 'db-maintenance': executor as RemediationExecutor<never> },
    },
  )
  expect(RemediationResultV1Schema.parse(result)).toEqual(result)
  return { result, audit, calls: fake.calls }
}

const sqlOf = (args: readonly string[]): string =>
  args.filter((_, i) => args[i - 1] === '-c' || args[i - 1] === '-e').join('\n')

/** psql answering by the SQL it gets: figures, then `after` figures once `statement` ran. */
const psqlFake = (answers: { figuresAfter?: string; statement?: (sql: string) => FakeCommand; rows?: string }) => {
  let ran = false
  return (args: readonly string[], opts: RunOptions) => {
    const sql = sqlOf(args)
    if (sql.startsWith("SELECT 'server_version_num'"))
      return { stdout: ran && answers.figuresAfter ? answers.figuresAfter : PG_FIGURES }
    if (sql.startsWith('SELECT json_build_object') || sql.startsWith('SELECT pid FROM'))
      return { stdout: answers.rows ?? '' }
    ran = true
    const out = answers.statement?.(sql) ?? {}
    return typeof out === 'function' ? out(args, opts) : out
  }
}

describe('db-maintenance', () => {
  it('is the registry’s db-maintenance, available, with its executor', async () => {
    expect(findRemediation('db-maintenance')?.status).toBe('available')
    expect((await EXECUTORS['db-maintenance']!()).id).toBe('db-maintenance')
  })

  it('finds the configured connection of the database, else the engine’s defaults', () => {
    const configured: DbTarget[] = [
      { engine: 'postgresql', database: 'app', socket: '/run/pg' },
      { engine: 'mariadb', database: 'app', socket: '/run/mysqld/mysqld.sock' },
    ]
    expect(targetFor({ engine: 'mariadb', database: 'app', operation: 'analyze' }, configured)).toBe(configured[1])
    expect(targetFor({ engine: 'postgresql', database: 'other', operation: 'analyze' }, configured)).toEqual({
      engine: 'postgresql',
      database: 'other',
    })
  })

  it('refuses what the registry refuses before anything runs: an operation the engine lacks, a name that is not one', async () => {
    for (const params of [
      { engine: 'postgresql', database: 'app', operation: 'optimize' },
      { engine: 'postgresql', database: 'app; DROP DATABASE app', operation: 'analyze' },
      { engine: 'sqlite', database: '/a b.db', operation: 'vacuum' },
    ]) {
      const { result, calls } = await run(params, {})
      expect(result).toMatchObject({ status: 'failed', summary: 'refused: invalid params for db-maintenance' })
      expect(calls).toEqual([])
    }
  })
})

describe('db-maintenance on PostgreSQL', () => {
  it('reaches a local database as postgres when root (setpriv, peer authentication)', async () => {
    const { result, calls } = await run(
      { engine: 'postgresql', database: 'app', operation: 'analyze' },
      { setpriv: (args, o) => psqlFake({})(args.slice(args.indexOf('--') + 2), o) },
      { options: { agentIsRoot: true } },
    )
    expect(calls[0]?.args.slice(0, 5)).toEqual(['--reuid=101', '--regid=104', '--init-groups', '--', 'psql'])
    expect(result.evidence.connection).toEqual({ name: 'app', configured: false, runAs: 'postgres' })
  })

  it('dry-run reads the figures and runs no maintenance statement', async () => {
    for (const operation of ['vacuum', 'vacuum-analyze', 'analyze', 'reindex', 'integrity-check']) {
      const { result, calls } = await run(
        { engine: 'postgresql', database: 'app', operation },
        { psql: psqlFake({}) },
        { dryRun: true },
      )
      expect(result.status, operation).toBe('dry-run')
      expect(calls.map((c) => sqlOf(c.args))).toEqual([expect.stringMatching(/^SELECT 'server_version_num'/)])
    }
    const { result, calls } = await run(
      { engine: 'postgresql', database: 'app', operation: 'terminate-idle-in-transaction', idleLongerThan: '1s' },
      { psql: psqlFake({ rows: osFixture('db-postgresql-sessions.txt') }) },
      { dryRun: true },
    )
    expect(result).toMatchObject({ status: 'dry-run', itemsTotal: 2 })
    expect(result.summary).toMatch(
      /^dry-run: would end 2 sessions of app idle in a transaction for longer than 1s: pid 27461 /,
    )
    expect(calls.map((c) => sqlOf(c.args)).join('\n')).not.toMatch(/pg_terminate_backend/)
  })

  it('VACUUM verified: dead tuples went down, bytes recovered measured by the server', async () => {
    const after = PG_FIGURES.replace('dead_tuples|16000', 'dead_tuples|0').replace(
      'database_bytes|13221223',
      'database_bytes|13000000',
    )
    const { result, audit, calls } = await run(
      { engine: 'postgresql', database: 'app', operation: 'vacuum' },
      { psql: psqlFake({ figuresAfter: after, statement: () => ({ durationMs: 812 }) }) },
    )
    expect(result).toMatchObject({
      status: 'succeeded',
      summary: 'VACUUM (SKIP_LOCKED) on app in 812 ms: dead tuples 16000 -> 0, size 12.6 MiB -> 12.4 MiB',
      bytesRecovered: { vacuum: 221223 },
      evidence: { verified: true, statement: 'VACUUM (SKIP_LOCKED)', operationMs: 812 },
    })
    expect(sqlOf(calls[1]!.args)).toBe('VACUUM (SKIP_LOCKED)')
    expect(calls[1]?.opts.env).toMatchObject({ PGOPTIONS: expect.stringMatching(/lock_timeout=30000/) })
    expect(audit).toEqual([{ action: 'vacuum', target: 'postgresql:app', detail: 'VACUUM (SKIP_LOCKED) in 812 ms' }])
  })

  it('VACUUM that removed nothing fails and names the session holding the oldest snapshot', async () => {
    const { result } = await run(
      { engine: 'postgresql', database: 'app', operation: 'vacuum' },
      { psql: psqlFake({ figuresAfter: PG_FIGURES }) },
    )
    expect(result.status).toBe('failed')
    expect(result.error).toBe(
      'the dead tuples did not go down (16000 -> 16000): the oldest snapshot is held by pid 27463 (active, 3 s)',
    )
    expect(result.evidence.xminHolder).toEqual({ pid: 27463, state: 'active', xminAge: 2, seconds: 2.695 })
  })

  it('a failed statement fails the fix with psql’s reason (lock_timeout, permission)', async () => {
    const { result } = await run(
      { engine: 'postgresql', database: 'app', operation: 'reindex' },
      {
        psql: psqlFake({
          statement: () => ({ exitCode: 1, stderr: 'ERROR:  canceling statement due to lock timeout\n' }),
        }),
      },
    )
    expect(result).toMatchObject({
      status: 'failed',
      summary: 'REINDEX DATABASE CONCURRENTLY "app" on app failed: ERROR:  canceling statement due to lock timeout',
    })
  })

  it('terminate: ends the listed sessions, waits until they are gone, fails when one stays', async () => {
    const rows = osFixture('db-postgresql-sessions.txt').replaceAll('"terminated" : false', '"terminated" : true')
    let checks = 0
    const gone = await run(
      { engine: 'postgresql', database: 'app', operation: 'terminate-idle-in-transaction', idleLongerThan: '1s' },
      {
        psql: (args) => {
          const sql = sqlOf(args)
          if (sql.startsWith("SELECT 'server_version_num'")) return { stdout: PG_FIGURES }
          if (sql.startsWith('SELECT json_build_object')) return { stdout: rows }
          checks++
          return { stdout: checks === 1 ? '27465\n' : '' } // one is still exiting at the first look
        },
      },
    )
    expect(gone.result).toMatchObject({ status: 'succeeded', evidence: { terminated: [27461, 27465] }, itemsTotal: 2 })
    expect(gone.result.items).toEqual([
      'pid 27461 (postgres, psql; idle in transaction 3 s)',
      'pid 27465 (postgres, psql; idle in transaction 3 s)',
    ])
    const stuck = await run(
      { engine: 'postgresql', database: 'app', operation: 'terminate-idle-in-transaction', idleLongerThan: '1s' },
      {
        psql: (args) => {
          const sql = sqlOf(args)
          if (sql.startsWith("SELECT 'server_version_num'")) return { stdout: PG_FIGURES }
          if (sql.startsWith('SELECT json_build_object')) return { stdout: rows }
          return { stdout: '27465\n' }
        },
      },
    )
    expect(stuck.result).toMatchObject({ status: 'failed', error: 'still there after 5 s: pid 27465' })
  })

  it('integrity-check uses pg_amcheck when there is one, and names the corrupt relations', async () => {
    const { result, calls } = await run(
      { engine: 'postgresql', database: 'app', operation: 'integrity-check' },
      {
        psql: psqlFake({}),
        '/opt/pg/bin/pg_amcheck': { exitCode: 2, stdout: osFixture('db-postgresql-amcheck-corrupt.txt') },
      },
      { options: { pgAmcheck: '/opt/pg/bin/pg_amcheck' } },
    )
    expect(calls[1]?.args.slice(-2)).toEqual(['--install-missing', 'app'])
    expect(result).toMatchObject({
      status: 'failed',
      summary: 'integrity check of app FAILED: 1 problem in app.public.items_payload',
      items: ['app.public.items_payload'],
      evidence: { method: 'pg_amcheck', integrity: 'failed', findingsTotal: 1 },
    })
  })

  it('a database it cannot connect to fails at once, nothing else runs', async () => {
    const { result, calls } = await run(
      { engine: 'postgresql', database: 'app', operation: 'vacuum' },
      {
        psql: {
          exitCode: 2,
          stderr:
            'psql: error: connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: No such file or directory\n',
        },
      },
    )
    expect(result).toMatchObject({
      status: 'failed',
      summary:
        'cannot reach postgresql database app: connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: No such file or directory',
    })
    expect(calls).toHaveLength(1)
  })

  it('keeps the result line bounded whatever the number of sessions', async () => {
    const rows = Array.from(
      { length: 500 },
      (_, i) =>
        `{"pid" : ${1000 + i}, "user" : "${'u'.repeat(60)}", "application" : "${'a'.repeat(60)}", "client" : null, "state" : "idle in transaction", "idleSeconds" : 700, "terminated" : true}`,
    ).join('\n')
    const { result } = await run(
      { engine: 'postgresql', database: 'app', operation: 'terminate-idle-in-transaction', idleLongerThan: '10m' },
      { psql: psqlFake({ rows }) },
    )
    expect(result.status).toBe('succeeded')
    expect(result.itemsTotal).toBe(500)
    expect(result.items?.length).toBeLessThanOrEqual(50)
    expect(JSON.stringify(result).length).toBeLessThanOrEqual(16_000)
  })
})

describe('db-maintenance on MariaDB/MySQL', () => {
  const mysqlFake = (check: FakeCommand, idle = '') => ({
    mariadb: (args: readonly string[]) => {
      const sql = sqlOf(args)
      if (sql.startsWith("SELECT 'table_bytes'")) return { stdout: MY_FIGURES }
      if (sql.startsWith('SELECT p.ID')) return { stdout: idle }
      if (sql.startsWith('KILL')) return {}
      return { stdout: '' }
    },
    'mariadb-check': check,
  })

  it('runs mariadb-check per mode through the configured socket; a corrupt table fails the check, named', async () => {
    const socket = { databases: [{ engine: 'mariadb' as const, database: 'shop', socket: '/run/mysqld/mysqld.sock' }] }
    const { result, calls } = await run(
      { engine: 'mariadb', database: 'shop', operation: 'integrity-check' },
      mysqlFake({ stdout: osFixture('db-mysqlcheck-check-corrupt.txt') }),
      { options: socket },
    )
    expect(calls[1]).toMatchObject({
      file: 'mariadb-check',
      args: ['--socket=/run/mysqld/mysqld.sock', '--protocol=SOCKET', '--check', 'shop'],
    })
    expect(result).toMatchObject({
      status: 'failed',
      evidence: { integrity: 'failed', tablesDone: 3, connection: { configured: true } },
      itemsTotal: 1,
    })
    expect(result.summary).toBe(
      "CHECK TABLE FAILED 1 table of 3 in shop: shop.legacy: no status; Can't read key from filepos: 2048; Index for table './shop/legacy.MYI' is corrupt; try to repair it; Corrupt",
    )
    const optimized = await run(
      { engine: 'mariadb', database: 'shop', operation: 'optimize' },
      mysqlFake({ stdout: osFixture('db-mysqlcheck-optimize.txt') }),
    )
    expect(optimized.result).toMatchObject({ status: 'succeeded', bytesRecovered: { optimize: 0 } })
  })

  it('uses mysql and mysqlcheck when the MariaDB names are not there', async () => {
    const { result, calls } = await run(
      { engine: 'mariadb', database: 'shop', operation: 'analyze' },
      {
        mysql: (args) => ({ stdout: sqlOf(args).startsWith("SELECT 'table_bytes'") ? MY_FIGURES : '' }),
        mysqlcheck: { stdout: osFixture('db-mysqlcheck-analyze.txt') },
      },
    )
    expect(result.status).toBe('succeeded')
    expect(calls.map((c) => c.file)).toEqual(['mariadb', 'mysql', 'mariadb-check', 'mysqlcheck', 'mariadb', 'mysql'])
  })

  it('terminate: KILL CONNECTION of each idle transaction (with --force), dry-run kills nothing', async () => {
    const idle = osFixture('db-mariadb-sessions.txt')
    const dry = await run(
      { engine: 'mariadb', database: 'shop', operation: 'terminate-idle-in-transaction', idleLongerThan: '1s' },
      mysqlFake({}, idle),
      { dryRun: true },
    )
    expect(dry.result).toMatchObject({
      status: 'dry-run',
      items: ['connection 7 (root; idle in transaction 2 s)', 'connection 9 (root; idle in transaction 2 s)'],
    })
    expect(dry.calls.map((c) => sqlOf(c.args)).join('\n')).not.toMatch(/KILL/)
    const real = await run(
      { engine: 'mariadb', database: 'shop', operation: 'terminate-idle-in-transaction', idleLongerThan: '1s' },
      mysqlFake({}, idle),
    )
    const kill = real.calls.find((c) => sqlOf(c.args).startsWith('KILL'))
    expect(sqlOf(kill!.args)).toBe('KILL CONNECTION 7;\nKILL CONNECTION 9;')
    expect(kill?.args).toContain('--force')
    expect(real.result).toMatchObject({ status: 'succeeded', evidence: { killed: [7, 9] } })
  })
})

describe('db-maintenance on SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ansai-db-unit-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'app.db')
  writeFileSync(file, Buffer.concat([Buffer.from(SQLITE_HEADER, 'latin1'), Buffer.alloc(4096 - 16)]))

  it('dry-run reads only, read-only; the statement is fixed', async () => {
    const { result, calls } = await run(
      { engine: 'sqlite', database: file, operation: 'vacuum' },
      { sqlite3: { stdout: osFixture('db-sqlite-stats.txt') } },
      { dryRun: true },
    )
    expect(result).toMatchObject({ status: 'dry-run' })
    expect(result.summary).toMatch(/would recover at least 6\.1 MiB \(1563 free pages; more from half-empty pages\)\)$/)
    expect(calls).toHaveLength(1)
    expect(calls[0]?.args).toContain('-readonly')
  })

  it('never touches a file that is missing or not SQLite', async () => {
    const missing = await run({ engine: 'sqlite', database: join(dir, 'none.db'), operation: 'vacuum' }, {})
    expect(missing.result).toMatchObject({ status: 'failed', error: `${join(dir, 'none.db')} does not exist` })
    expect(missing.calls).toEqual([])
    const text = join(dir, 'notes.db')
    writeFileSync(text, 'plain text, long enough to have a header\n')
    const notDb = await run({ engine: 'sqlite', database: text, operation: 'reindex' }, {})
    expect(notDb.result).toMatchObject({
      status: 'failed',
      error: `${text} is not an SQLite 3 database (no SQLite header)`,
    })
    const check = await run({ engine: 'sqlite', database: text, operation: 'integrity-check' }, {})
    expect(check.result).toMatchObject({ status: 'failed', evidence: { integrity: 'failed' } })
    expect(notDb.calls.concat(check.calls)).toEqual([])
  })

  it('integrity-check: the problems of a corrupt file fail the fix', async () => {
    const { result, calls } = await run(
      { engine: 'sqlite', database: file, operation: 'integrity-check' },
      { sqlite3: { stdout: osFixture('db-sqlite-integrity-corrupt.txt') } },
    )
    expect(calls[0]?.args.slice(-2)).toEqual([file, 'PRAGMA integrity_check'])
    expect(calls[0]?.args).toContain('-readonly')
    expect(result).toMatchObject({ status: 'failed', evidence: { integrity: 'failed' }, itemsTotal: 28 })
  })
})
