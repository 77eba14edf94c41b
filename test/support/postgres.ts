/**
 * A throwaway PostgreSQL cluster for tests, from Debian's packages (`apt-get install postgresql`): `initdb` in a
 * temp directory and `pg_ctl start` on a Unix socket in that directory only (`listen_addresses=''`: no TCP at all).
 *
 * - PostgreSQL refuses to run as root: when the tests run as root, the cluster runs as the OS user `postgres` (the
 *   package creates it); the temp directory is given to that user, and every server process and setup `psql` is
 *   spawned with its uid and gid. Not root, the cluster runs as the test's own user.
 * - `pg_hba.conf`: peer authentication for everybody over the socket, except the role {@link PASSWORD_ROLE}, which
 *   logs in with a password (scram-sha-256), to test `passFile` for real.
 * - `autovacuum=off` (the tests create dead tuples and must find them there), `fsync=off` (speed; nothing here
 *   must survive a crash).
 * - Debian keeps initdb, pg_ctl and pg_amcheck in /usr/lib/postgresql/<major>/bin (not on PATH): they are looked
 *   up on PATH first, then there (newest major first).
 *
 *   const pg = await startPostgresOrSkip()          // undefined → skipped (fails under ANSAI_REQUIRE_ALL=1)
 *   afterAll(() => pg?.stop())
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { requireOrSkip } from './require.ts'

export const PASSWORD_ROLE = 'ansai_pw'

export interface PgOsUser {
  name: string
  uid: number
  gid: number
  home: string
}

export interface PgBinaries {
  initdb: string
  pgCtl: string
  /** pg_amcheck of the same installation (undefined when absent). */
  pgAmcheck: string | undefined
  binDir: string
}

export interface PgCluster {
  /** The temp directory: data/, the socket, the log. */
  dir: string
  /** Where the socket is (`-h` for psql). */
  socketDir: string
  port: number
  /** The OS user the server runs as (undefined: the test's own user). */
  osUser: PgOsUser | undefined
  /** The superuser role: the OS user's name (peer authentication maps one to the other). */
  superuser: string
  binaries: PgBinaries
  serverVersionNum: number
  /** psql as the cluster's OS user (peer authentication as the superuser): the tuples printed, `|` between fields. */
  psql(database: string, sql: string): string
  /** Opens a session that stays connected (a psql child reading statements from a pipe). */
  session(database: string): Promise<PgSession>
  /** The server's log so far. */
  log(): string
  /** Stops the server (fast) and starts it again on the same directory (e.g. after corrupting a file). */
  restart(): void
  /** Stops the server (immediate) and removes the directory. */
  stop(): Promise<void>
}

export interface PgSession {
  /** The backend's pid (pg_backend_pid()). */
  pid: number
  /** Sends statements (terminated by `;`); does not wait for them. */
  send(sql: string): void
  /** Resolves when the psql child has exited (the session ended, or the server ended it). */
  exited: Promise<number | null>
  readonly alive: boolean
  close(): Promise<void>
}

const which = (name: string): string | undefined => {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() || undefined : undefined
}

/** initdb and pg_ctl on PATH, else in the newest /usr/lib/postgresql/<major>/bin. */
export function findPgBinaries(): PgBinaries | undefined {
  const onPath = which('initdb')
  const ctlOnPath = which('pg_ctl')
  const dirs: string[] = []
  if (existsSync('/usr/lib/postgresql')) {
    for (const v of readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))) {
      dirs.push(join('/usr/lib/postgresql', v, 'bin'))
    }
  }
  if (onPath && ctlOnPath) {
    const real = spawnSync('readlink', ['-f', onPath], { encoding: 'utf8' }).stdout.trim() || onPath
    const binDir = real.slice(0, real.lastIndexOf('/'))
    const amcheck = join(binDir, 'pg_amcheck')
    return {
      initdb: onPath,
      pgCtl: ctlOnPath,
      pgAmcheck: existsSync(amcheck) ? amcheck : which('pg_amcheck'),
      binDir,
    }
  }
  for (const binDir of dirs) {
    if (existsSync(join(binDir, 'initdb')) && existsSync(join(binDir, 'pg_ctl'))) {
      const amcheck = join(binDir, 'pg_amcheck')
      return {
        initdb: join(binDir, 'initdb'),
        pgCtl: join(binDir, 'pg_ctl'),
        pgAmcheck: existsSync(amcheck) ? amcheck : undefined,
        binDir,
      }
    }
  }
  return undefined
}

/** The `postgres` OS user when the tests run as root (PostgreSQL will not run as root); undefined otherwise. */
export function pgOsUser(): PgOsUser | undefined | 'missing' {
  if (process.getuid?.() !== 0) return undefined
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'))
  if (!line) return 'missing'
  const f = line.split(':')
  return { name: 'postgres', uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' }
}

/** Why PostgreSQL cannot be started here, or undefined when it can. */
export function postgresMissing(): string | undefined {
  if (!findPgBinaries()) return 'initdb/pg_ctl not found: apt-get install postgresql'
  if (!which('psql')) return 'psql not found: apt-get install postgresql-client'
  if (pgOsUser() === 'missing') return 'running as root without a postgres user: apt-get install postgresql creates it'
  return undefined
}

/** The server's options (pg_ctl -o: parsed by sh, so no quoting beyond '' for the empty listen list). */
const serverOptions = (dir: string, port: number): string =>
  [
    `-k ${dir}`,
    "-c listen_addresses=''",
    `-p ${port}`,
    '-c autovacuum=off',
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c shared_buffers=16MB',
    '-c max_connections=40',
  ].join(' ')

const asUser = (user: PgOsUser | undefined) =>
  user === undefined
    ? { env: { ...process.env, LC_ALL: 'C' } }
    : { uid: user.uid, gid: user.gid, env: { ...process.env, LC_ALL: 'C', HOME: user.home, USER: user.name } }

export async function startPostgres(): Promise<PgCluster> {
  const binaries = findPgBinaries()
  if (!binaries) throw new Error('initdb/pg_ctl not found')
  const user = pgOsUser()
  if (user === 'missing') throw new Error('no postgres OS user')
  const dir = mkdtempSync(join(tmpdir(), 'ansai-pg-'))
  if (user) chownSync(dir, user.uid, user.gid)
  const data = join(dir, 'data')
  const logFile = join(dir, 'server.log')
  const port = 5432 // only names the socket file: no TCP, and the directory is this cluster's own
  const superuser = user?.name ?? userInfo().username
  const run = (file: string, args: string[], what: string) => {
    const r = spawnSync(file, args, { ...asUser(user), encoding: 'utf8', timeout: 120_000 })
    if (r.status !== 0) throw new Error(`${what} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout || r.error}`)
    return r.stdout
  }
  try {
    run(
      binaries.initdb,
      ['-D', data, '-U', superuser, '--auth-local=peer', '--auth-host=reject', '--no-sync', '-E', 'UTF8', '--locale=C'],
      'initdb',
    )
    writeFileSync(
      join(data, 'pg_hba.conf'),
      [`local all ${PASSWORD_ROLE} scram-sha-256`, 'local all all peer', ''].join('\n'),
    )
    if (user) chownSync(join(data, 'pg_hba.conf'), user.uid, user.gid)
    run(
      binaries.pgCtl,
      ['-D', data, '-l', logFile, '-w', '-t', '60', '-o', serverOptions(dir, port), 'start'],
      'pg_ctl start',
    )
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  const psqlArgs = (database: string) => [
    '-X',
    '-A',
    '-t',
    '-q',
    '-v',
    'ON_ERROR_STOP=1',
    '-h',
    dir,
    '-p',
    String(port),
    '-d',
    database,
  ]
  const psql = (database: string, sql: string): string => {
    const r = spawnSync('psql', [...psqlArgs(database), '-c', sql], {
      ...asUser(user),
      encoding: 'utf8',
      timeout: 120_000,
    })
    if (r.status !== 0) throw new Error(`psql ${database}: ${sql.slice(0, 120)}: ${r.stderr || r.error}`)
    return r.stdout
  }
  const sessions = new Set<ChildProcess>()
  const session = (database: string): Promise<PgSession> =>
    new Promise((resolve, reject) => {
      const child = spawn('psql', [...psqlArgs(database), '-n'], { ...asUser(user), stdio: ['pipe', 'pipe', 'pipe'] })
      sessions.add(child)
      let out = ''
      let err = ''
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
      void exited.then(() => sessions.delete(child))
      child.stderr?.on('data', (b: Buffer) => {
        err += b.toString()
      })
      const onData = (b: Buffer) => {
        out += b.toString()
        const m = /^(\d+)$/m.exec(out)
        if (!m) return
        child.stdout?.off('data', onData)
        child.stdout?.resume()
        resolve({
          pid: Number(m[1]),
          send: (sql) => child.stdin?.write(`${sql}\n`),
          exited,
          get alive() {
            return child.exitCode === null && child.signalCode === null
          },
          close: async () => {
            if (child.exitCode === null && child.signalCode === null) {
              child.stdin?.end()
              const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
              await exited
              clearTimeout(timer)
            }
          },
        })
      }
      child.stdout?.on('data', onData)
      child.once('exit', (code) => reject(new Error(`psql session ended (${code}) before it started: ${err}`)))
      child.stdin?.write('SELECT pg_backend_pid();\n')
    })
  const version = Number(psql('postgres', "SELECT current_setting('server_version_num')").trim())
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    for (const child of sessions) child.kill('SIGKILL')
    spawnSync(binaries.pgCtl, ['-D', data, '-m', 'immediate', '-w', '-t', '60', 'stop'], {
      ...asUser(user),
      encoding: 'utf8',
      timeout: 90_000,
    })
    rmSync(dir, { recursive: true, force: true })
  }
  // Never leave a server behind, even when no afterAll ran.
  const onExit = () => {
    if (!stopped)
      spawnSync(binaries.pgCtl, ['-D', data, '-m', 'immediate', 'stop'], { ...asUser(user), timeout: 30_000 })
  }
  process.once('exit', onExit)
  const restart = () => {
    for (const child of sessions) child.kill('SIGKILL')
    run(binaries.pgCtl, ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop'], 'pg_ctl stop')
    run(
      binaries.pgCtl,
      ['-D', data, '-l', logFile, '-w', '-t', '60', '-o', serverOptions(dir, port), 'start'],
      'pg_ctl start',
    )
  }
  return {
    dir,
    socketDir: dir,
    port,
    osUser: user,
    superuser,
    restart,
    binaries,
    serverVersionNum: version,
    psql,
    session,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop: async () => {
      process.off('exit', onExit)
      await stop()
    },
  }
}

/** Starts a cluster, or returns undefined after `requireOrSkip` said to skip (it throws under ANSAI_REQUIRE_ALL=1). */
export async function startPostgresOrSkip(): Promise<PgCluster | undefined> {
  const missing = postgresMissing()
  if (!requireOrSkip('postgresql', missing === undefined, missing ?? '')) return undefined
  return startPostgres()
}
