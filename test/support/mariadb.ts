/**
 * A throwaway MariaDB server for tests, from Debian's packages (`apt-get install mariadb-server`): a data directory
 * made by `mariadb-install-db` in a temp directory, and `mariadbd` on a Unix socket in that directory only
 * (`--skip-networking`: no TCP at all), with no option file read (`--no-defaults`).
 *
 * - As root, the server runs as root (`--user=root`: the data directory is the test's own, in a temp directory);
 *   `root@localhost` authenticates by unix_socket, as on a Debian host, so the tests' root reaches it without a
 *   password.
 * - Small and fast: a 16 MiB buffer pool, no binary log, no performance schema.
 *
 *   const db = await startMariadbOrSkip()         // undefined → skipped (fails under ANSAI_REQUIRE_ALL=1)
 *   afterAll(() => db?.stop())
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requireOrSkip } from './require.ts'

export interface MariadbServer {
  dir: string
  socket: string
  version: string
  /** The `mariadb` client as root over the socket: the rows printed (tab-separated, no header). */
  sql(sql: string, database?: string): string
  /** Opens a session that stays connected (a `mariadb` child reading statements from a pipe). */
  session(database: string): Promise<MariadbSession>
  log(): string
  /** Stops the server (SIGTERM, then SIGKILL after 20 s) and removes the directory. */
  stop(): Promise<void>
}

export interface MariadbSession {
  /** CONNECTION_ID() of the session. */
  id: number
  send(sql: string): void
  exited: Promise<number | null>
  readonly alive: boolean
  close(): Promise<void>
}

const which = (name: string): string | undefined => {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` },
  })
  return r.status === 0 ? r.stdout.trim() || undefined : undefined
}

interface MariadbBinaries {
  server: string
  installDb: string
  client: string
}

export function findMariadbBinaries(): MariadbBinaries | undefined {
  const server = which('mariadbd') ?? which('mysqld')
  const installDb = which('mariadb-install-db') ?? which('mysql_install_db')
  const client = which('mariadb') ?? which('mysql')
  return server && installDb && client ? { server, installDb, client } : undefined
}

/** Why MariaDB cannot be started here, or undefined when it can. */
export function mariadbMissing(): string | undefined {
  if (!findMariadbBinaries()) return 'mariadbd, mariadb-install-db or mariadb not found: apt-get install mariadb-server'
  if (!which('mariadb-check') && !which('mysqlcheck')) return 'mariadb-check not found: apt-get install mariadb-client'
  return undefined
}

export async function startMariadb(): Promise<MariadbServer> {
  const bin = findMariadbBinaries()
  if (!bin) throw new Error('MariaDB binaries not found')
  const dir = mkdtempSync(join(tmpdir(), 'ansai-mariadb-'))
  const data = join(dir, 'data')
  const socket = join(dir, 'mysqld.sock')
  const errorLog = join(dir, 'error.log')
  const asRoot = process.getuid?.() === 0
  const userArgs = asRoot ? ['--user=root'] : []
  const install = spawnSync(
    bin.installDb,
    [
      '--no-defaults',
      `--datadir=${data}`,
      ...userArgs,
      '--auth-root-authentication-method=socket',
      '--skip-test-db',
      '--skip-name-resolve',
    ],
    { encoding: 'utf8', timeout: 120_000 },
  )
  if (install.status !== 0) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`mariadb-install-db failed (${install.status}): ${install.stderr || install.stdout}`)
  }
  const child: ChildProcess = spawn(
    bin.server,
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--pid-file=${join(dir, 'mysqld.pid')}`,
      '--skip-networking',
      ...userArgs,
      `--log-error=${errorLog}`,
      '--innodb-buffer-pool-size=16M',
      '--innodb-log-file-size=16M',
      '--skip-log-bin',
      '--performance-schema=OFF',
      '--skip-name-resolve',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000)
  })
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const log = () => (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : stderr)
  const clientArgs = ['--no-defaults', `--socket=${socket}`, '--batch', '--skip-column-names']
  const sql = (text: string, database?: string): string => {
    const r = spawnSync(bin.client, [...clientArgs, ...(database ? [`--database=${database}`] : []), '-e', text], {
      encoding: 'utf8',
      timeout: 120_000,
    })
    if (r.status !== 0) throw new Error(`mariadb: ${text.slice(0, 120)}: ${r.stderr || r.error}`)
    return r.stdout
  }
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true })
      throw new Error(`mariadbd exited ${child.exitCode}: ${log()}`)
    }
    const ping = spawnSync(bin.client, [...clientArgs, '-e', 'SELECT 1'], { encoding: 'utf8', timeout: 5_000 })
    if (ping.status === 0) break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
      throw new Error(`mariadbd did not answer on ${socket} within 60 s: ${log()}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  const sessions = new Set<ChildProcess>()
  const session = (database: string): Promise<MariadbSession> =>
    new Promise((resolve, reject) => {
      const c = spawn(bin.client, [...clientArgs, '--unbuffered', `--database=${database}`], {
        stdio: ['pipe', 'pipe', 'pipe'],
      })
      sessions.add(c)
      let out = ''
      let err = ''
      const ended = new Promise<number | null>((r) => c.once('exit', (code) => r(code)))
      void ended.then(() => sessions.delete(c))
      c.stderr?.on('data', (b: Buffer) => {
        err += b.toString()
      })
      const onData = (b: Buffer) => {
        out += b.toString()
        const m = /^(\d+)$/m.exec(out)
        if (!m) return
        c.stdout?.off('data', onData)
        c.stdout?.resume()
        resolve({
          id: Number(m[1]),
          send: (text) => c.stdin?.write(`${text}\n`),
          exited: ended,
          get alive() {
            return c.exitCode === null && c.signalCode === null
          },
          close: async () => {
            if (c.exitCode === null && c.signalCode === null) {
              c.stdin?.end()
              const timer = setTimeout(() => c.kill('SIGKILL'), 5_000)
              await ended
              clearTimeout(timer)
            }
          },
        })
      }
      c.stdout?.on('data', onData)
      c.once('exit', (code) => reject(new Error(`mariadb session ended (${code}) before it started: ${err}`)))
      c.stdin?.write('SELECT CONNECTION_ID();\n')
    })
  const version = sql('SELECT VERSION()').trim()
  let stopped = false
  return {
    dir,
    socket,
    version,
    sql,
    session,
    log,
    stop: async () => {
      if (stopped) return
      stopped = true
      for (const c of sessions) c.kill('SIGKILL')
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
        await exited
        clearTimeout(timer)
      }
      process.off('exit', killOnExit)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Starts a server, or returns undefined after `requireOrSkip` said to skip (it throws under ANSAI_REQUIRE_ALL=1). */
export async function startMariadbOrSkip(): Promise<MariadbServer | undefined> {
  const missing = mariadbMissing()
  if (!requireOrSkip('mariadb', missing === undefined, missing ?? '')) return undefined
  return startMariadb()
}
