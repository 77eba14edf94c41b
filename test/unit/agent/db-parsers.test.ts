/**
 * The pure parsers of the database probe and db-maintenance, on text captured from real servers: PostgreSQL 15.18,
 * MariaDB 10.11.19 and SQLite 3.40.1 of Debian 12, run by test/support/postgres.ts and test/support/mariadb.ts with
 * the exact SQL of agent/probes/db-*.ts (a session idle in a transaction, one waiting for its lock, 80 % of the rows
 * deleted; an index and a MyISAM table corrupted by overwriting bytes; an SQLite copy corrupted the same way).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  asUser,
  clientOsUser,
  databaseTargetName,
  describeCommand,
  mysqlCheckCommand,
  mysqlCommand,
  parsePasswdUser,
  pgAmcheckCommand,
  psqlCommand,
  quotePgIdentifier,
  sqliteCommand,
} from '../../../agent/probes/db-client.ts'
import {
  mysqlAliveSql,
  mysqlIdleInTransactionSql,
  mysqlKillSql,
  mysqlObservation,
  mysqlProbeSql,
  parseMysqlCheck,
  parseMysqlMaintenance,
  parseMysqlProbe,
  parseMysqlSessions,
  parseReplicaStatus,
} from '../../../agent/probes/db-mysql.ts'
import {
  fallbackIndexesChecked,
  PG_PROBE_SQL,
  parsePgAmcheck,
  parsePgAmcheckFallback,
  parsePgMaintenance,
  parsePgProbe,
  parsePgSessions,
  parsePids,
  pgAmcheckFallbackSql,
  pgBackendsAliveSql,
  pgIdleInTransactionSql,
  pgMaintenanceStatement,
  pgObservation,
} from '../../../agent/probes/db-postgresql.ts'
import { parseKeyedRows, unescapeBatchField } from '../../../agent/probes/db-rows.ts'
import {
  parseSqliteIntegrity,
  parseSqliteStats,
  sqliteMaintenanceStatement,
  sqliteObservation,
} from '../../../agent/probes/db-sqlite.ts'
import { DatabaseObservationSchema } from '../../../shared/contracts/index.ts'
import { assertNeverThrows, expectFailure, expectOk, readOsFixture } from './os-fixtures.ts'

describe('PostgreSQL', () => {
  it('reads the probe figures of a busy database and makes a contract-valid observation', () => {
    const f = expectOk(parsePgProbe(readOsFixture('db-postgresql-probe.txt')))
    expect(f).toEqual({
      serverVersionNum: 150018,
      connections: 4,
      maxConnections: 40,
      idleInTransaction: 2,
      longestIdleInTransactionSeconds: 2.982,
      lockWaiters: 1,
      longestLockWaitSeconds: 2.624,
      liveTuples: 4000,
      deadTuples: 16000,
      inRecovery: false,
      standbyLagSeconds: undefined,
      standbys: 0,
      replicaLagSeconds: undefined,
      dataChecksums: false,
      checksumFailures: undefined,
      databaseBytes: 13221223,
    })
    const obs = pgObservation('app', f)
    expect(obs).toEqual({
      kind: 'database',
      engine: 'postgresql',
      name: 'app',
      reachable: true,
      connections: 4,
      maxConnections: 40,
      idleInTransaction: 2,
      longestLockWaitSeconds: 2.624,
      deadTuples: 16000,
      bloatRatio: 0.8,
    })
    expect(DatabaseObservationSchema.parse(obs)).toEqual(obs)
  })

  it('tells replication lag and integrity only when the server knows them', () => {
    const base = expectOk(parsePgProbe(readOsFixture('db-postgresql-probe.txt')))
    expect(pgObservation('a', { ...base, inRecovery: true, standbyLagSeconds: 12.5 }).replicationLagSeconds).toBe(12.5)
    expect(pgObservation('a', { ...base, standbys: 2, replicaLagSeconds: 0.25 }).replicationLagSeconds).toBe(0.25)
    expect(pgObservation('a', base)).not.toHaveProperty('replicationLagSeconds')
    expect(pgObservation('a', base)).not.toHaveProperty('integrity')
    expect(pgObservation('a', { ...base, dataChecksums: true, checksumFailures: 0 }).integrity).toBe('ok')
    expect(pgObservation('a', { ...base, dataChecksums: true, checksumFailures: 3 }).integrity).toBe('failed')
    expect(pgObservation('a', { ...base, liveTuples: 0, deadTuples: 0 }).bloatRatio).toBe(0)
  })

  it('fails on output that is not the probe query’s', () => {
    expectFailure(parsePgProbe(''), /printed nothing/)
    expectFailure(parsePgProbe('server_version_num|150018\n'), /no connections/)
    expectFailure(parsePgProbe('psql: error: connection to server failed'), /not key\|value/)
    const text = readOsFixture('db-postgresql-probe.txt').replace('connections|4', 'connections|four')
    expectFailure(parsePgProbe(text), /bad connections "four"/)
    expectFailure(parsePgProbe('a|1\na|2\n'), /a printed twice/)
  })

  it('reads the maintenance figures, the invalid indexes and the session holding the oldest snapshot', () => {
    const f = expectOk(parsePgMaintenance(readOsFixture('db-postgresql-maintenance.txt')))
    expect(f).toMatchObject({
      serverVersionNum: 150018,
      tables: 1,
      liveTuples: 4000,
      deadTuples: 16000,
      databaseBytes: 13221223,
      indexBytes: 671744,
      indexes: 2,
      invalidIndexes: [],
      neverVacuumed: 1,
      neverAnalyzed: 1,
      idleInTransaction: 2,
      xminHolder: { pid: 27463, state: 'active', xminAge: 2, seconds: 2.695 },
    })
    expect(f.clock).toBeCloseTo(1795405375.976, 3)
    expect(f.oldestVacuum).toBeUndefined()
    const invalid = readOsFixture('db-postgresql-maintenance.txt').replace(
      'invalid_indexes|',
      'invalid_indexes|items_payload_ccnew,public.x_idx',
    )
    expect(expectOk(parsePgMaintenance(invalid)).invalidIndexes).toEqual(['items_payload_ccnew', 'public.x_idx'])
  })

  it('lists sessions idle in a transaction (JSON rows) and pids', () => {
    const sessions = expectOk(parsePgSessions(readOsFixture('db-postgresql-sessions.txt')))
    expect(sessions).toEqual([
      {
        pid: 27461,
        user: 'postgres',
        application: 'psql',
        client: undefined,
        idleSeconds: 3.089,
        terminated: false,
      },
      {
        pid: 27465,
        user: 'postgres',
        application: 'psql',
        client: undefined,
        idleSeconds: 2.67,
        terminated: false,
      },
    ])
    expect(expectOk(parsePgSessions(''))).toEqual([])
    expectFailure(parsePgSessions('{"user": "x"}'), /without pid/)
    expectFailure(parsePgSessions('27461|postgres'), /not JSON/)
    expect(parsePids('123\n456\n\n')).toEqual([123, 456])
  })

  it('reads pg_amcheck: corruption named per object, exit 0 with nothing is ok, other exits are errors', () => {
    const report = expectOk(parsePgAmcheck(readOsFixture('db-postgresql-amcheck-corrupt.txt'), 2))
    expect(report).toEqual({
      integrity: 'failed',
      findings: [
        {
          object: 'btree index "app.public.items_payload"',
          message:
            'line pointer points past end of tuple space in index "items_payload" Index tid=(1,1) lp_off=11179, lp_len=21973 lp_flags=3.',
        },
      ],
      relations: ['app.public.items_payload'],
    })
    expect(expectOk(parsePgAmcheck('', 0))).toEqual({ integrity: 'ok', findings: [], relations: [] })
    expectFailure(parsePgAmcheck('', 1), /exited 1/)
    expectFailure(parsePgAmcheck('', 2), /without naming a problem/)
  })

  it('reads the SQL fallback of pg_amcheck: WARNING per corrupt index on stderr, heap rows on stdout', () => {
    const stderr = readOsFixture('db-postgresql-amcheck-fallback-corrupt.stderr.txt')
    const report = expectOk(parsePgAmcheckFallback('', stderr))
    expect(report.integrity).toBe('failed')
    expect(report.relations).toEqual(['app.public.items_payload'])
    expect(report.findings[0]?.message).toMatch(/^line pointer points past end of tuple space/)
    expect(fallbackIndexesChecked(stderr)).toBe(165)
    const heap =
      '{"object" : "heap table \\"app.public.items\\", block 1, offset 3", "message" : "line pointer length 0"}'
    expect(expectOk(parsePgAmcheckFallback(heap, '')).relations).toEqual(['app.public.items'])
    expect(
      expectOk(parsePgAmcheckFallback('', 'NOTICE:  ansai-amcheck: 3 btree indexes checked, 0 corrupt')).integrity,
    ).toBe('ok')
  })

  it('builds fixed statements: never VACUUM FULL, SKIP_LOCKED and CONCURRENTLY from 12, the name quoted', () => {
    expect(pgMaintenanceStatement('vacuum', 'app', 150018)).toBe('VACUUM (SKIP_LOCKED)')
    expect(pgMaintenanceStatement('vacuum-analyze', 'app', 150018)).toBe('VACUUM (ANALYZE, SKIP_LOCKED)')
    expect(pgMaintenanceStatement('analyze', 'app', 110005)).toBe('ANALYZE')
    expect(pgMaintenanceStatement('vacuum', 'app', 110005)).toBe('VACUUM')
    expect(pgMaintenanceStatement('reindex', 'my-app', 150018)).toBe('REINDEX DATABASE CONCURRENTLY "my-app"')
    expect(pgMaintenanceStatement('reindex', 'app', 110005)).toBe('REINDEX DATABASE "app"')
    for (const op of ['vacuum', 'vacuum-analyze', 'analyze', 'reindex'] as const) {
      expect(pgMaintenanceStatement(op, 'app', 150018)).not.toMatch(/FULL/)
    }
    expect(() => quotePgIdentifier('app"; DROP DATABASE x; --')).toThrow(/not a database name/)
    expect(() => pgMaintenanceStatement('reindex', 'a b', 150018)).toThrow()
    expect(pgIdleInTransactionSql(600, true)).toMatch(/pg_terminate_backend\(pid\).*make_interval\(secs => 600\)/s)
    expect(pgIdleInTransactionSql(1.5, false)).not.toMatch(/pg_terminate_backend/)
    expect(pgIdleInTransactionSql(600, true)).toMatch(/pid <> pg_backend_pid\(\)/)
    expect(() => pgIdleInTransactionSql(Number.NaN, true)).toThrow()
    expect(pgBackendsAliveSql([12, 34])).toMatch(/ARRAY\[12,34\]::int\[\]/)
    expect(() => pgBackendsAliveSql([1.5])).toThrow()
    expect(pgAmcheckFallbackSql(130000)).toHaveLength(2)
    expect(pgAmcheckFallbackSql(150018)[2]).toMatch(/verify_heapam/)
  })

  it('never throws on arbitrary text', () => {
    assertNeverThrows(parsePgProbe, ['server_version_num', 'connections', '|', '\n', 'true', 'NULL'], (f) =>
      DatabaseObservationSchema.parse(pgObservation('x', f)),
    )
    assertNeverThrows(parsePgMaintenance, ['clock', 'dead_tuples', '|', '\n'])
    assertNeverThrows(parsePgSessions, ['{', '}', '"pid"', ':', '\n'])
  })
})

describe('MariaDB / MySQL', () => {
  it('reads the probe figures of a busy database and makes a contract-valid observation', () => {
    const f = expectOk(parseMysqlProbe(readOsFixture('db-mariadb-probe.txt')))
    expect(f).toEqual({
      version: '10.11.19-MariaDB-0+deb12u1',
      connections: 4,
      maxConnections: 151,
      idleInTransaction: 2,
      longestIdleInTransactionSeconds: 2,
      longestLockWaitSeconds: 2,
      tableBytes: 404128,
      freeBytes: 4194304,
      tables: 3,
      replicasRunning: 0,
    })
    const obs = mysqlObservation('mariadb', 'shop', f)
    expect(obs).toEqual({
      kind: 'database',
      engine: 'mariadb',
      name: 'shop',
      reachable: true,
      connections: 4,
      maxConnections: 151,
      idleInTransaction: 2,
      longestLockWaitSeconds: 2,
      bloatRatio: 0.9121,
    })
    expect(DatabaseObservationSchema.parse(obs)).toEqual(obs)
    expect(mysqlObservation('mysql', 'shop', f, 7).replicationLagSeconds).toBe(7)
  })

  it('asks MySQL for its running replicas in performance_schema, MariaDB in its status', () => {
    expect(mysqlProbeSql('mysql')).toMatch(/replication_applier_status/)
    expect(mysqlProbeSql('mariadb')).not.toMatch(/performance_schema/)
    const mysqlText = readOsFixture('db-mariadb-probe.txt').replace('Slaves_running\t0\n', 'replicas_running\t1\n')
    expect(expectOk(parseMysqlProbe(mysqlText)).replicasRunning).toBe(1)
  })

  it('fails on output that is not the probe query’s', () => {
    expectFailure(parseMysqlProbe(''), /printed nothing/)
    expectFailure(parseMysqlProbe('version\t10.11\n'), /no Threads_connected/)
    expectFailure(parseMysqlProbe("ERROR 1045 (28000): Access denied for user 'x'@'localhost'"), /not key/)
  })

  it('reads the replica status: NULL lag is unknown, a number is the lag, no row is not a replica', () => {
    const stopped = readOsFixture('db-mariadb-replica-status-stopped.txt')
    expect(expectOk(parseReplicaStatus(stopped))).toBeUndefined()
    // the same row with the SQL thread running 42 s behind
    const lines = stopped.trimEnd().split('\n')
    const header = lines[0]!.split('\t')
    const row = lines[1]!.split('\t')
    row[header.indexOf('Seconds_Behind_Master')] = '42'
    expect(expectOk(parseReplicaStatus(`${lines[0]}\n${row.join('\t')}\n`))).toBe(42)
    const mysql8 = `${lines[0]!.replace('Seconds_Behind_Master', 'Seconds_Behind_Source')}\n${row.join('\t')}\n`
    expect(expectOk(parseReplicaStatus(mysql8))).toBe(42)
    expect(expectOk(parseReplicaStatus(''))).toBeUndefined()
    expectFailure(parseReplicaStatus('a\tb\n1\t2\n'), /without Seconds_Behind/)
  })

  it('reads the maintenance figures and the idle sessions (batch escaping undone)', () => {
    expect(expectOk(parseMysqlMaintenance(readOsFixture('db-mariadb-maintenance.txt')))).toEqual({
      tableBytes: 404128,
      freeBytes: 4194304,
      tables: 3,
      idleInTransaction: 2,
    })
    expect(expectOk(parseMysqlSessions(readOsFixture('db-mariadb-sessions.txt')))).toEqual([
      { id: 7, idleSeconds: 2, user: 'root' },
      { id: 9, idleSeconds: 2, user: 'root' },
    ])
    expect(expectOk(parseMysqlSessions('12\t700\tapp\\tuser\n'))).toEqual([
      { id: 12, idleSeconds: 700, user: 'app\tuser' },
    ])
    expectFailure(parseMysqlSessions('x\t1\troot'), /not id, time, user/)
    expect(unescapeBatchField('a\\\\b\\nc')).toBe('a\\b\nc')
  })

  it('builds KILL and liveness statements from integers only', () => {
    expect(mysqlKillSql([7, 9])).toBe('KILL CONNECTION 7;\nKILL CONNECTION 9;')
    expect(() => mysqlKillSql([0])).toThrow()
    expect(mysqlAliveSql([7, 9])).toMatch(/WHERE ID IN \(7,9\)/)
    expect(mysqlIdleInTransactionSql(600.9)).toMatch(/p\.TIME > 600 /)
    expect(mysqlIdleInTransactionSql(600)).toMatch(/p\.ID <> CONNECTION_ID\(\)/)
  })

  it('reads mysqlcheck per table: OK, already up to date, recreate + analyze, corrupt', () => {
    expect(
      expectOk(parseMysqlCheck(readOsFixture('db-mysqlcheck-analyze.txt'))).map((t) => [t.table, t.status, t.ok]),
    ).toEqual([
      ['shop.items', 'OK', true],
      ['shop.legacy', 'Table is already up to date', true],
      ['shop.logs', 'OK', true],
    ])
    const optimized = expectOk(parseMysqlCheck(readOsFixture('db-mysqlcheck-optimize.txt')))
    expect(optimized[0]).toEqual({
      table: 'shop.items',
      status: 'OK',
      ok: true,
      messages: [{ level: 'note', text: 'Table does not support optimize, doing recreate + analyze instead' }],
    })
    const checked = expectOk(parseMysqlCheck(readOsFixture('db-mysqlcheck-check-corrupt.txt')))
    expect(checked.map((t) => [t.table, t.ok])).toEqual([
      ['shop.items', true],
      ['shop.legacy', false],
      ['shop.logs', true],
    ])
    expect(checked[1]?.messages.map((m) => m.level)).toEqual(['error', 'error', 'error'])
    expect(checked[1]?.messages.at(-1)?.text).toBe('Corrupt')
    const long = `${'shop.a_table_with_a_name_longer_than_fifty_characters_x'} OK\n`
    expect(expectOk(parseMysqlCheck(long))).toEqual([
      { table: 'shop.a_table_with_a_name_longer_than_fifty_characters_x', status: 'OK', ok: true, messages: [] },
    ])
    expectFailure(parseMysqlCheck('status   : OK\n'), /names no table/)
  })

  it('never throws on arbitrary text', () => {
    assertNeverThrows(parseMysqlProbe, ['version', 'Threads_connected', 'max_connections', '\t', '\n', 'NULL'], (f) =>
      DatabaseObservationSchema.parse(mysqlObservation('mariadb', 'x', f)),
    )
    assertNeverThrows(parseMysqlCheck, ['shop.items', 'OK', 'error', ':', '    ', '\n'])
    assertNeverThrows(parseReplicaStatus, ['Seconds_Behind_Master', '\t', '\n', 'NULL', '12'])
  })
})

describe('SQLite', () => {
  it('reads pages and free pages; the observation’s bloat is the free share', () => {
    const f = expectOk(parseSqliteStats(readOsFixture('db-sqlite-stats.txt')))
    expect(f).toEqual({
      pageCount: 2236,
      freelistCount: 1563,
      pageSize: 4096,
      journalMode: 'delete',
      tables: 1,
      indexes: 1,
    })
    const obs = sqliteObservation('/var/lib/app/app.db', f)
    expect(obs).toEqual({
      kind: 'database',
      engine: 'sqlite',
      name: '/var/lib/app/app.db',
      reachable: true,
      bloatRatio: 0.699,
    })
    expect(DatabaseObservationSchema.parse(obs)).toEqual(obs)
    expect(sqliteObservation('x', { ...f, pageCount: 0, freelistCount: 0 }).bloatRatio).toBe(0)
    expectFailure(parseSqliteStats('page_count|2236\n'), /no freelist_count/)
  })

  it('reads integrity_check: ok, the problems of a corrupt file, a file that is not a database, one it cannot open', () => {
    expect(parseSqliteIntegrity('ok\n', '', 0)).toEqual({ integrity: 'ok', problems: [] })
    const corrupt = parseSqliteIntegrity(readOsFixture('db-sqlite-integrity-corrupt.txt'), '', 0)
    expect(corrupt.integrity).toBe('failed')
    expect(corrupt.problems[0]).toBe('On tree page 6 cell 14: invalid page number 808464432')
    expect(corrupt.problems.at(-1)).toBe('database disk image is malformed')
    expect(parseSqliteIntegrity('', 'Error: in prepare, file is not a database (26)\n', 26)).toEqual({
      integrity: 'failed',
      problems: ['in prepare, file is not a database (26)'],
    })
    expect(
      parseSqliteIntegrity('', 'Error: unable to open database "/x.db": unable to open database file\n', 1),
    ).toEqual({ integrity: 'unknown', problems: ['unable to open database "/x.db": unable to open database file'] })
  })

  it('maps operations to fixed statements', () => {
    expect(['vacuum', 'analyze', 'reindex', 'optimize'].map((o) => sqliteMaintenanceStatement(o as 'vacuum'))).toEqual([
      'VACUUM',
      'ANALYZE',
      'REINDEX',
      'PRAGMA optimize',
    ])
  })

  it('never throws on arbitrary text', () => {
    assertNeverThrows(parseSqliteStats, ['page_count', 'freelist_count', 'page_size', '|', '\n'], (f) =>
      DatabaseObservationSchema.parse(sqliteObservation('x', f)),
    )
  })
})

describe('clients: argv and environment', () => {
  const pg = { engine: 'postgresql' as const, database: 'app', socket: '/run/postgresql', port: 5433, user: 'monitor' }
  const session = { statementTimeoutMs: 9_500, lockTimeoutMs: 30_000, connectTimeoutSeconds: 10 }

  it('psql: no psqlrc, unaligned tuples, stop on error, never a password prompt; the password file in the environment', () => {
    const c = psqlCommand({ ...pg, passFile: '/etc/ansai/pgpass' }, PG_PROBE_SQL, session)
    expect(c.file).toBe('psql')
    expect(c.args.slice(0, 6)).toEqual(['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1'])
    expect(c.args).toEqual(
      expect.arrayContaining(['-h', '/run/postgresql', '-p', '5433', '-U', 'monitor', '-w', '-d', 'app']),
    )
    expect(c.args.at(-2)).toBe('-c')
    expect(c.env).toEqual({
      PGAPPNAME: 'ansai-agent',
      PGCONNECT_TIMEOUT: '10',
      PGOPTIONS: '-c statement_timeout=9500 -c lock_timeout=30000',
      PGPASSFILE: '/etc/ansai/pgpass',
    })
    expect(pgAmcheckCommand('/usr/lib/postgresql/15/bin/pg_amcheck', pg, session).args.slice(-2)).toEqual([
      '--install-missing',
      'app',
    ])
  })

  it('mariadb/mysqlcheck: the option file first (it holds the password), then the connection, then the database', () => {
    const t = {
      engine: 'mariadb' as const,
      database: 'shop',
      socket: '/run/mysqld/mysqld.sock',
      defaultsFile: '/etc/ansai/my.cnf',
    }
    const c = mysqlCommand('mariadb', t, 'SELECT 1', 10)
    expect(c.args).toEqual([
      '--defaults-extra-file=/etc/ansai/my.cnf',
      '--socket=/run/mysqld/mysqld.sock',
      '--protocol=SOCKET',
      '--connect-timeout=10',
      '--batch',
      '--skip-column-names',
      '--database=shop',
      '-e',
      'SELECT 1',
    ])
    expect(
      mysqlCheckCommand(
        'mariadb-check',
        { ...t, defaultsFile: undefined, host: 'db.example.com', port: 3307, socket: undefined },
        'check',
      ).args,
    ).toEqual(['--host=db.example.com', '--protocol=TCP', '--port=3307', '--check', 'shop'])
  })

  it('sqlite3: no ~/.sqliterc, read-only for the probe, a busy timeout', () => {
    expect(
      sqliteCommand('/var/lib/app/app.db', 'PRAGMA integrity_check', { readonly: true, busyTimeoutMs: 5000 }).args,
    ).toEqual([
      '-init',
      '/dev/null',
      '-readonly',
      '-batch',
      '-bail',
      '-noheader',
      '-list',
      '-separator',
      '|',
      '-cmd',
      '.timeout 5000',
      '/var/lib/app/app.db',
      'PRAGMA integrity_check',
    ])
  })

  it('runs as another OS user through setpriv, with their HOME', () => {
    const user = parsePasswdUser(
      'root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n',
      'postgres',
    )
    expect(user).toEqual({ name: 'postgres', uid: 101, gid: 104, home: '/var/lib/postgresql' })
    const c = asUser(psqlCommand(pg, 'SELECT 1', session), user)
    expect(c.file).toBe('setpriv')
    expect(c.args.slice(0, 5)).toEqual(['--reuid=101', '--regid=104', '--init-groups', '--', 'psql'])
    expect(c.env).toMatchObject({ HOME: '/var/lib/postgresql', USER: 'postgres', PGAPPNAME: 'ansai-agent' })
    expect(asUser(c, undefined)).toBe(c)
    expect(parsePasswdUser('postgres:x:abc:1:::\n', 'postgres')).toBeUndefined()
    expect(parsePasswdUser('', 'postgres')).toBeUndefined()
  })

  it('reaches a local PostgreSQL as postgres when root, unless told otherwise', () => {
    const local = { engine: 'postgresql' as const, database: 'app' }
    expect(clientOsUser(local, true)).toBe('postgres')
    expect(clientOsUser(local, false)).toBeUndefined()
    expect(clientOsUser({ ...local, user: 'app' }, true)).toBeUndefined()
    expect(clientOsUser({ ...local, host: '127.0.0.1' }, true)).toBeUndefined()
    expect(clientOsUser({ ...local, passFile: '/etc/ansai/pgpass' }, true)).toBeUndefined()
    expect(clientOsUser({ ...local, runAs: 'root' }, true)).toBeUndefined()
    expect(clientOsUser({ ...local, runAs: 'app' }, true)).toBe('app')
    expect(clientOsUser({ engine: 'mariadb', database: 'shop' }, true)).toBeUndefined()
  })

  it('names targets by name, file, host:port/database or database', () => {
    expect(databaseTargetName({ engine: 'postgresql', database: 'app' })).toBe('app')
    expect(databaseTargetName({ engine: 'postgresql', database: 'app', host: '10.0.0.5' })).toBe('10.0.0.5:5432/app')
    expect(databaseTargetName({ engine: 'mysql', database: 'shop', host: '::1', port: 3307 })).toBe('[::1]:3307/shop')
    expect(databaseTargetName({ engine: 'sqlite', database: '/var/lib/a.db' })).toBe('/var/lib/a.db')
    expect(databaseTargetName({ engine: 'sqlite', database: '/var/lib/a.db', name: 'app' })).toBe('app')
  })

  it('shows commands as one line for the evidence, SQL shortened', () => {
    expect(describeCommand({ file: 'psql', args: ['-d', 'app', '-c', 'VACUUM (SKIP_LOCKED)'], env: {} })).toBe(
      'psql -d app -c "VACUUM (SKIP_LOCKED)"',
    )
    expect(describeCommand({ file: 'psql', args: ['-c', 'x'.repeat(500)], env: {} }).length).toBe(300)
  })

  it('reads key/value rows strictly', () => {
    expect(expectOk(parseKeyedRows('a|1|2\nb|x\n', '|', 't')).get('a')).toEqual(['1', '2'])
    expect(expectOk(parseKeyedRows('a|1|2|3\n', '|', 't', 2)).get('a')).toEqual(['1|2|3'])
    expectFailure(parseKeyedRows('1a|1\n', '|', 't'), /bad key/)
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        const r = parseKeyedRows(text, '|', 't')
        expect(typeof r.ok).toBe('boolean')
      }),
      { numRuns: 300 },
    )
  })
})

describe('the pure parsers', () => {
  it('do no I/O', () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url))
    const io = /(['"])(node:)?(fs|fs\/promises|child_process|net|tls|dgram|http|https|dns|os|process)\1|process\.env/
    for (const name of ['db-client', 'db-rows', 'db-postgresql', 'db-mysql', 'db-sqlite']) {
      expect(readFileSync(join(root, `agent/probes/${name}.ts`), 'utf8'), name).not.toMatch(io)
    }
  })
})
