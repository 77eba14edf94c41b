/**
 * The database probe's adapter (agent/collect/databases.ts) with fake commands fed the text captured from real
 * servers, and every way a database or its client can fail. The real servers: test/integration/db-*.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { PROBE_ENTRIES } from '../../../agent/collect/collect.ts'
import { collectDatabases } from '../../../agent/collect/databases.ts'
import { type DatabaseTarget, ProbesConfigSchema, parseProbesConfig } from '../../../agent/config/probes.ts'
import { DatabaseObservationSchema } from '../../../shared/contracts/index.ts'
import { fakeContext, fakeRun, osFixture, timedOut } from '../../fixtures/collect/fakes.ts'

const PASSWD =
  'root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n'
const target = (t: Partial<DatabaseTarget> & Pick<DatabaseTarget, 'engine' | 'database'>): DatabaseTarget =>
  ({ timeoutSeconds: 10, ...t }) as DatabaseTarget

describe('collectDatabases: PostgreSQL', () => {
  it('runs psql as postgres (setpriv) over the socket, and reports the figures', async () => {
    const run = fakeRun({ setpriv: { stdout: osFixture('db-postgresql-probe.txt') } })
    const ctx = fakeContext({ run, tree: { files: { '/etc/passwd': PASSWD } } })
    const out = await collectDatabases([target({ engine: 'postgresql', database: 'app' })], ctx, { agentIsRoot: true })
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      {
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
      },
    ])
    const [call] = run.calls
    expect(call?.args.slice(0, 5)).toEqual(['--reuid=101', '--regid=104', '--init-groups', '--', 'psql'])
    expect(call?.args).toContain('-w')
    expect(call?.opts.timeoutMs).toBe(10_000)
    expect(call?.opts.env).toMatchObject({ LC_ALL: 'C', HOME: '/var/lib/postgresql', PGAPPNAME: 'ansai-agent' })
    for (const o of out.observations) DatabaseObservationSchema.parse(o)
  })

  it('keeps credentials off the command line: the password file goes in PGPASSFILE', async () => {
    const run = fakeRun({ psql: { stdout: osFixture('db-postgresql-probe.txt') } })
    const ctx = fakeContext({ run })
    await collectDatabases(
      [
        target({
          engine: 'postgresql',
          database: 'app',
          user: 'monitor',
          passFile: '/etc/ansai/pgpass',
          host: '10.0.0.5',
        }),
      ],
      ctx,
      { agentIsRoot: true },
    )
    const [call] = run.calls
    expect(call?.file).toBe('psql')
    expect(call?.args.join(' ')).not.toMatch(/pgpass|password/i)
    expect(call?.opts.env?.PGPASSFILE).toBe('/etc/ansai/pgpass')
  })

  it('a database psql cannot connect to is unreachable, with psql’s reason; so is one that does not answer', async () => {
    const refused = fakeRun({
      psql: {
        exitCode: 2,
        stderr:
          'psql: error: connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: No such file or directory\n',
      },
    })
    const a = await collectDatabases(
      [target({ engine: 'postgresql', database: 'app' })],
      fakeContext({ run: refused }),
      {
        agentIsRoot: false,
      },
    )
    expect(a.observations).toEqual([
      {
        kind: 'database',
        engine: 'postgresql',
        name: 'app',
        reachable: false,
        error: 'connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: No such file or directory',
      },
    ])
    const slow = fakeRun({ psql: timedOut(3000) })
    const b = await collectDatabases(
      [target({ engine: 'postgresql', database: 'app', timeoutSeconds: 3 })],
      fakeContext({ run: slow }),
      { agentIsRoot: false },
    )
    expect(b.observations).toEqual([
      { kind: 'database', engine: 'postgresql', name: 'app', reachable: false, error: 'no answer within 3 s' },
    ])
  })

  it('a client that cannot run, or an answer that cannot be read, is a probe error: up or down is unknown', async () => {
    const none = await collectDatabases(
      [target({ engine: 'postgresql', database: 'app' })],
      fakeContext({ run: fakeRun() }),
      {
        agentIsRoot: false,
      },
    )
    expect(none).toEqual({
      observations: [],
      errors: [{ probe: 'database', reason: 'postgresql app: psql not found (install the PostgreSQL client, psql)' }],
    })
    const sqlError = fakeRun({
      psql: { exitCode: 3, stderr: 'ERROR:  permission denied for function pg_database_size\n' },
    })
    const c = await collectDatabases(
      [target({ engine: 'postgresql', database: 'app' })],
      fakeContext({ run: sqlError }),
      {
        agentIsRoot: false,
      },
    )
    expect(c.errors[0]?.reason).toBe(
      'postgresql app: psql exited 3: ERROR:  permission denied for function pg_database_size',
    )
    const garbage = fakeRun({ psql: { stdout: 'hello\n' } })
    const d = await collectDatabases(
      [target({ engine: 'postgresql', database: 'app' })],
      fakeContext({ run: garbage }),
      {
        agentIsRoot: false,
      },
    )
    expect(d.errors[0]?.reason).toMatch(/^postgresql app: psql: line 1 is not key\|value/)
    const noUser = await collectDatabases(
      [target({ engine: 'postgresql', database: 'app', runAs: 'pgadmin' })],
      fakeContext({ run: fakeRun(), tree: { files: { '/etc/passwd': PASSWD } } }),
      { agentIsRoot: true },
    )
    expect(noUser.errors[0]?.reason).toBe('postgresql app: runAs user pgadmin is not in /etc/passwd')
    const notRoot = await collectDatabases(
      [target({ engine: 'postgresql', database: 'app', runAs: 'postgres' })],
      fakeContext({ run: fakeRun() }),
      { agentIsRoot: false },
    )
    expect(notRoot.errors[0]?.reason).toBe('postgresql app: runAs postgres needs the agent to run as root')
    const missingInside = fakeRun({
      setpriv: { exitCode: 127, stderr: 'setpriv: failed to execute psql: No such file or directory\n' },
    })
    const e = await collectDatabases(
      [target({ engine: 'postgresql', database: 'app' })],
      fakeContext({ run: missingInside, tree: { files: { '/etc/passwd': PASSWD } } }),
      { agentIsRoot: true },
    )
    expect(e.errors[0]?.reason).toMatch(/psql not found/)
  })
})

describe('collectDatabases: MariaDB/MySQL', () => {
  it('uses mariadb, else mysql; a replica gets its lag from a second query', async () => {
    const replica = osFixture('db-mariadb-probe.txt').replace('Slaves_running\t0', 'Slaves_running\t1')
    const stopped = osFixture('db-mariadb-replica-status-stopped.txt').trimEnd().split('\n')
    const header = stopped[0]!.split('\t')
    const row = stopped[1]!.split('\t')
    row[header.indexOf('Seconds_Behind_Master')] = '42'
    const run = fakeRun({
      mysql: (args) => ({
        stdout: args.includes('SHOW SLAVE STATUS') ? `${stopped[0]}\n${row.join('\t')}\n` : replica,
      }),
    })
    const out = await collectDatabases(
      [target({ engine: 'mariadb', database: 'shop', socket: '/run/mysqld/mysqld.sock' })],
      fakeContext({ run }),
      { agentIsRoot: true },
    )
    expect(out.errors).toEqual([])
    expect(out.observations[0]).toMatchObject({
      engine: 'mariadb',
      name: 'shop',
      reachable: true,
      replicationLagSeconds: 42,
    })
    expect(run.calls.map((c) => c.file)).toEqual(['mariadb', 'mysql', 'mysql'])
    expect(run.calls[1]?.args).toContain('--skip-column-names')
    expect(run.calls[2]?.args).not.toContain('--skip-column-names')
  })

  it('MySQL before 8.0.22 gets SHOW SLAVE STATUS when SHOW REPLICA STATUS is a syntax error', async () => {
    const replica = osFixture('db-mariadb-probe.txt').replace('Slaves_running\t0', 'replicas_running\t1')
    const run = fakeRun({
      mysql: (args) =>
        args.includes('SHOW REPLICA STATUS')
          ? { exitCode: 1, stderr: 'ERROR 1064 (42000) at line 1: You have an error in your SQL syntax\n' }
          : { stdout: args.includes('SHOW SLAVE STATUS') ? '' : replica },
    })
    const out = await collectDatabases([target({ engine: 'mysql', database: 'shop' })], fakeContext({ run }), {
      agentIsRoot: true,
    })
    expect(out).toEqual({
      observations: [expect.objectContaining({ engine: 'mysql', reachable: true })],
      errors: [],
    })
    expect(out.observations[0]).not.toHaveProperty('replicationLagSeconds')
  })

  it('connection errors make it unreachable; a missing privilege is a probe error naming it', async () => {
    const down = fakeRun({
      mariadb: {
        exitCode: 1,
        stderr: "ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)\n",
      },
    })
    const a = await collectDatabases([target({ engine: 'mariadb', database: 'shop' })], fakeContext({ run: down }), {
      agentIsRoot: true,
    })
    expect(a.observations).toEqual([
      {
        kind: 'database',
        engine: 'mariadb',
        name: 'shop',
        reachable: false,
        error: "ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)",
      },
    ])
    const full = fakeRun({ mariadb: { exitCode: 1, stderr: 'ERROR 1040 (HY000): Too many connections\n' } })
    const b = await collectDatabases([target({ engine: 'mariadb', database: 'shop' })], fakeContext({ run: full }), {
      agentIsRoot: true,
    })
    expect(b.observations[0]).toMatchObject({ reachable: false, error: 'ERROR 1040 (HY000): Too many connections' })
    const denied = fakeRun({
      mariadb: {
        exitCode: 1,
        stderr:
          'ERROR 1227 (42000) at line 5: Access denied; you need (at least one of) the PROCESS privilege(s) for this operation\n',
      },
    })
    const c = await collectDatabases([target({ engine: 'mariadb', database: 'shop' })], fakeContext({ run: denied }), {
      agentIsRoot: true,
    })
    expect(c.errors[0]?.reason).toMatch(/^mariadb shop: ERROR 1227 .*PROCESS privilege/)
    const none = await collectDatabases(
      [target({ engine: 'mariadb', database: 'shop' })],
      fakeContext({ run: fakeRun() }),
      {
        agentIsRoot: true,
      },
    )
    expect(none.errors[0]?.reason).toBe('mariadb shop: mariadb or mysql not found (not installed, or not on PATH)')
  })
})

describe('collectDatabases: SQLite', () => {
  it('opens the file read-only; missing is unreachable, damaged is unreachable with integrity failed', async () => {
    const run = fakeRun({
      sqlite3: (args) => {
        const file = args.at(-2)
        if (file === '/data/app.db') return { stdout: osFixture('db-sqlite-stats.txt') }
        if (file === '/data/junk.db')
          return { exitCode: 26, stderr: 'Error: in prepare, file is not a database (26)\n' }
        return { exitCode: 1, stderr: `Error: unable to open database "${file}": unable to open database file\n` }
      },
    })
    const out = await collectDatabases(
      ['/data/app.db', '/data/junk.db', '/data/gone.db'].map((database) => target({ engine: 'sqlite', database })),
      fakeContext({ run }),
    )
    expect(out.observations).toEqual([
      { kind: 'database', engine: 'sqlite', name: '/data/app.db', reachable: true, bloatRatio: 0.699 },
      {
        kind: 'database',
        engine: 'sqlite',
        name: '/data/junk.db',
        reachable: false,
        error: 'in prepare, file is not a database (26)',
        integrity: 'failed',
      },
      {
        kind: 'database',
        engine: 'sqlite',
        name: '/data/gone.db',
        reachable: false,
        error: 'unable to open database "/data/gone.db": unable to open database file',
      },
    ])
    for (const c of run.calls) expect(c.args.slice(0, 3)).toEqual(['-init', '/dev/null', '-readonly'])
  })
})

describe('the databases probe entry and its config', () => {
  it('is off without databases, and its budget covers two queries per database, four at a time', () => {
    const entry = PROBE_ENTRIES.find((e) => e.name === 'databases')!
    expect(entry.probe).toBe('database')
    expect(entry.enabled(ProbesConfigSchema.parse({}))).toBe(false)
    const c = ProbesConfigSchema.parse({
      databases: [
        { engine: 'postgresql', database: 'a' },
        { engine: 'postgresql', database: 'b', timeoutSeconds: 30 },
        { engine: 'sqlite', database: '/x.db' },
        { engine: 'mariadb', database: 'c' },
        { engine: 'mariadb', database: 'd' },
      ],
    })
    expect(entry.enabled(c)).toBe(true)
    expect(entry.timeoutMs(c)).toBe(5_000 + 2 * (30 * 2_000 + 2_500))
  })

  it('takes each engine’s connection settings, with defaults', () => {
    const parsed = parseProbesConfig(
      {
        databases: [
          { engine: 'postgresql', database: 'app' },
          {
            engine: 'postgresql',
            database: 'app',
            name: 'replica',
            host: '10.0.0.6',
            port: 5433,
            user: 'monitor',
            passFile: '/etc/ansai/pgpass',
          },
          { engine: 'mariadb', database: 'shop', socket: '/run/mysqld/mysqld.sock', defaultsFile: '/etc/ansai/my.cnf' },
          { engine: 'sqlite', database: '/var/lib/app/app.db' },
        ],
      },
      'config.yaml',
    )
    expect(parsed.ok && parsed.config.databases).toEqual([
      { engine: 'postgresql', database: 'app', timeoutSeconds: 10 },
      {
        engine: 'postgresql',
        database: 'app',
        name: 'replica',
        host: '10.0.0.6',
        port: 5433,
        user: 'monitor',
        passFile: '/etc/ansai/pgpass',
        timeoutSeconds: 10,
      },
      {
        engine: 'mariadb',
        database: 'shop',
        socket: '/run/mysqld/mysqld.sock',
        defaultsFile: '/etc/ansai/my.cnf',
        timeoutSeconds: 10,
      },
      { engine: 'sqlite', database: '/var/lib/app/app.db', timeoutSeconds: 10 },
    ])
  })

  it('refuses names, paths and options a command line could misread, and settings of the wrong engine', () => {
    const errors = (databases: unknown[]) => {
      const parsed = parseProbesConfig({ databases }, 'config.yaml')
      return parsed.ok ? [] : parsed.errors
    }
    expect(errors([{ engine: 'postgresql', database: '-c' }])).toEqual([
      'config.yaml: probes.databases[0].database: a database name: letters, digits, _ and -, starting with a letter or _, up to 63 characters',
    ])
    expect(errors([{ engine: 'postgresql', database: 'app; DROP' }])).toHaveLength(1)
    expect(errors([{ engine: 'sqlite', database: 'app.db' }])[0]).toMatch(
      /databases\[0\]\.database: sqlite needs the database file/,
    )
    expect(errors([{ engine: 'sqlite', database: '/a/../b.db' }])[0]).toMatch(/no \. or \.\. segments/)
    expect(errors([{ engine: 'sqlite', database: '/a.db', host: 'x' }])[0]).toMatch(/host does not apply to sqlite/)
    expect(errors([{ engine: 'mariadb', database: 'a', passFile: '/p' }])[0]).toMatch(/passFile is for postgresql/)
    expect(errors([{ engine: 'postgresql', database: 'a', defaultsFile: '/p' }])[0]).toMatch(
      /defaultsFile is for mariadb/,
    )
    expect(errors([{ engine: 'postgresql', database: 'a', host: 'h', socket: '/s' }])[0]).toMatch(
      /host \(TCP\) or socket/,
    )
    expect(errors([{ engine: 'postgresql', database: 'a', user: '--help' }])).toHaveLength(1)
    expect(errors([{ engine: 'postgresql', database: 'a', runAs: 'Root Admin' }])).toHaveLength(1)
    expect(errors([{ engine: 'postgresql', database: 'a', password: 'x' }])[0]).toMatch(/password/)
    expect(
      errors([
        { engine: 'postgresql', database: 'a' },
        { engine: 'postgresql', database: 'a' },
      ])[0],
    ).toMatch(/postgresql:a is listed twice/)
  })
})
