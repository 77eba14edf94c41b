/**
 * How ANSAI talks to a database: through the engine's own command-line client (`psql`, `mariadb`/`mysql`,
 * `mariadb-check`/`mysqlcheck`, `sqlite3`, `pg_amcheck`), spawned by agent/os/exec.ts with an argv array. Pure: this
 * module builds the argv and the environment from a configured target and parses `/etc/passwd`; the database probe
 * (agent/collect/databases.ts) and the db-maintenance executor (agent/remediations/db-maintenance.ts) run them.
 *
 * Credentials never appear on a command line (where `ps` would show them):
 * - PostgreSQL: peer authentication over the Unix socket (as `runAs`, by default the OS user `postgres` when the
 *   agent is root), or a password file in `.pgpass` format given as the environment variable `PGPASSFILE`;
 * - MariaDB/MySQL: unix_socket authentication (root over the socket, Debian's default), or an option file with a
 *   `[client]` section given as `--defaults-extra-file=<path>` (the path is on the command line, not the password);
 * - SQLite: the file's own permissions.
 *
 * SQL text is fixed (see db-postgresql.ts, db-mysql.ts, db-sqlite.ts): the database is chosen by the connection
 * (`-d`, `--database=`, the file) and named in SQL only as `current_database()` / `DATABASE()`. The one identifier
 * that must appear in SQL, PostgreSQL's `REINDEX DATABASE <name>`, is validated against {@link DB_NAME} and quoted
 * by {@link quotePgIdentifier}.
 */

export type DbEngine = 'postgresql' | 'mariadb' | 'mysql' | 'sqlite'

/** A configured database (`probes.databases[]` of the agent's config; see agent/config/probes.ts). */
export interface DbTarget {
  engine: DbEngine
  name?: string | undefined
  database: string
  host?: string | undefined
  socket?: string | undefined
  port?: number | undefined
  user?: string | undefined
  runAs?: string | undefined
  passFile?: string | undefined
  defaultsFile?: string | undefined
  timeoutSeconds?: number | undefined
}

/** A database name, as db-maintenance's params schema and the agent's config accept it. */
export const DB_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/

export const DEFAULT_PORTS: Record<Exclude<DbEngine, 'sqlite'>, number> = {
  postgresql: 5432,
  mariadb: 3306,
  mysql: 3306,
}

/** The application name ANSAI's own sessions carry (PostgreSQL's `application_name`). */
export const APPLICATION_NAME = 'ansai-agent'

/**
 * How observations name a target: its `name`, else the file (sqlite), `host:port/database` over TCP (IPv6 in
 * brackets), or the database alone over the local socket.
 */
export function databaseTargetName(t: Pick<DbTarget, 'engine' | 'name' | 'database' | 'host' | 'port'>): string {
  if (t.name !== undefined) return t.name
  if (t.engine === 'sqlite' || t.host === undefined) return t.database
  const host = t.host.includes(':') ? `[${t.host}]` : t.host
  return `${host}:${t.port ?? DEFAULT_PORTS[t.engine]}/${t.database}`
}

/** A PostgreSQL identifier in double quotes (embedded quotes doubled); refuses anything but a database name. */
export function quotePgIdentifier(name: string): string {
  if (!DB_NAME.test(name)) throw new Error(`not a database name: ${JSON.stringify(name.slice(0, 80))}`)
  return `"${name.replaceAll('"', '""')}"`
}

/** The OS user a client runs as (`setpriv`), from /etc/passwd. */
export interface OsUser {
  name: string
  uid: number
  gid: number
  home: string
  /** No supplementary groups (a uid without a passwd entry, e.g. a file's owner) instead of the user's own. */
  clearGroups?: boolean
}

/** The entry of `user` in /etc/passwd text, or undefined. */
export function parsePasswdUser(text: string, user: string): OsUser | undefined {
  for (const line of text.split('\n')) {
    const fields = line.split(':')
    if (fields.length < 7 || fields[0] !== user) continue
    const uid = Number(fields[2])
    const gid = Number(fields[3])
    if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid) || !/^\d+$/.test(fields[2]!)) return undefined
    return { name: user, uid, gid, home: fields[5] || '/' }
  }
  return undefined
}

/**
 * The OS user the client of `t` runs as, or undefined for the agent's own user. `runAs: root` (or the agent's own
 * user) means no switch. A local PostgreSQL database (no host) without `user`, `runAs` or `passFile`, reached by an
 * agent running as root, is reached as `postgres` (peer authentication, like `sudo -u postgres psql`).
 */
export function clientOsUser(t: DbTarget, agentIsRoot: boolean): string | undefined {
  if (t.runAs !== undefined) return t.runAs === 'root' && agentIsRoot ? undefined : t.runAs
  if (
    t.engine === 'postgresql' &&
    agentIsRoot &&
    t.host === undefined &&
    t.user === undefined &&
    t.passFile === undefined
  ) {
    return 'postgres'
  }
  return undefined
}

/** One command to run: what exec.ts gets. */
export interface DbCommand {
  file: string
  args: string[]
  /** Variables to add to the child's environment (LC_ALL=C and PATH come from the caller). */
  env: Record<string, string>
}

/**
 * `setpriv --reuid=<uid> --regid=<gid> --init-groups -- <file> <args...>` when a user is given (`--clear-groups`
 * for a bare uid); HOME is theirs. setpriv (util-linux) goes through no PAM session: nothing is logged per query.
 */
export function asUser(command: DbCommand, user: OsUser | undefined): DbCommand {
  if (user === undefined) return command
  const groups = user.clearGroups ? '--clear-groups' : '--init-groups'
  return {
    file: 'setpriv',
    args: [`--reuid=${user.uid}`, `--regid=${user.gid}`, groups, '--', command.file, ...command.args],
    env: { ...command.env, HOME: user.home, USER: user.name, LOGNAME: user.name },
  }
}

export interface PgSessionSettings {
  /** statement_timeout, ms (the server cancels a statement the client gave up on). */
  statementTimeoutMs: number
  /** lock_timeout, ms (a maintenance command never queues for long behind other sessions' locks). */
  lockTimeoutMs?: number | undefined
  /** The connection timeout, seconds. */
  connectTimeoutSeconds: number
}

/** The connection options of psql and pg_amcheck (`-h`, `-p`, `-U`) and their environment (PGPASSFILE, ...). */
export function pgConnection(t: DbTarget, s: PgSessionSettings): { args: string[]; env: Record<string, string> } {
  const args: string[] = []
  const host = t.host ?? t.socket
  if (host !== undefined) args.push('-h', host)
  if (t.port !== undefined) args.push('-p', String(t.port))
  if (t.user !== undefined) args.push('-U', t.user)
  args.push('-w') // never prompt for a password: there is nobody to answer
  const options = [`-c statement_timeout=${Math.max(1, Math.round(s.statementTimeoutMs))}`]
  if (s.lockTimeoutMs !== undefined) options.push(`-c lock_timeout=${Math.max(1, Math.round(s.lockTimeoutMs))}`)
  const env: Record<string, string> = {
    PGAPPNAME: APPLICATION_NAME,
    PGCONNECT_TIMEOUT: String(Math.max(2, Math.round(s.connectTimeoutSeconds))),
    PGOPTIONS: options.join(' '),
  }
  if (t.passFile !== undefined) env.PGPASSFILE = t.passFile
  return { args, env }
}

/**
 * `psql -X -A -t -q -v ON_ERROR_STOP=1 <connection> -d <database> -c <sql> [-c <sql>...]`: no psqlrc, unaligned
 * tuples only, `|` between fields, stop at the first error (exit 3).
 */
export function psqlCommand(t: DbTarget, sql: string | readonly string[], s: PgSessionSettings): DbCommand {
  const { args, env } = pgConnection(t, s)
  const statements = typeof sql === 'string' ? [sql] : sql
  return {
    file: 'psql',
    args: [
      '-X',
      '-A',
      '-t',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      ...args,
      '-d',
      t.database,
      ...statements.flatMap((q) => ['-c', q]),
    ],
    env,
  }
}

/** `pg_amcheck <connection> --install-missing <database>` (heap and B-tree checks, amcheck installed if missing). */
export function pgAmcheckCommand(file: string, t: DbTarget, s: PgSessionSettings): DbCommand {
  const { args, env } = pgConnection(t, s)
  return { file, args: [...args, '--install-missing', t.database], env }
}

/** The client binaries of an engine, in the order they are tried (MariaDB renamed its clients in 10.5). */
export const MYSQL_CLIENTS: Record<'mariadb' | 'mysql', { client: string[]; check: string[] }> = {
  mariadb: { client: ['mariadb', 'mysql'], check: ['mariadb-check', 'mysqlcheck'] },
  mysql: { client: ['mysql', 'mariadb'], check: ['mysqlcheck', 'mariadb-check'] },
}

/**
 * The connection options shared by mariadb/mysql and mysqlcheck; `--defaults-extra-file` must come first.
 * mysqlcheck has no `--connect-timeout` (its process timeout bounds it).
 */
export function mysqlConnection(t: DbTarget, connectTimeoutSeconds: number | undefined): string[] {
  const args: string[] = []
  if (t.defaultsFile !== undefined) args.push(`--defaults-extra-file=${t.defaultsFile}`)
  if (t.host !== undefined) args.push(`--host=${t.host}`, '--protocol=TCP')
  if (t.port !== undefined) args.push(`--port=${t.port}`)
  if (t.socket !== undefined) args.push(`--socket=${t.socket}`, '--protocol=SOCKET')
  if (t.user !== undefined) args.push(`--user=${t.user}`)
  if (connectTimeoutSeconds !== undefined) {
    args.push(`--connect-timeout=${Math.max(1, Math.round(connectTimeoutSeconds))}`)
  }
  return args
}

/**
 * `mariadb <connection> --batch --skip-column-names --database=<db> -e <sql>`: tab-separated rows, special characters
 * escaped (`\t`, `\n`, `\\`), no header. With `columnNames`, each result set starts with its header row; with `force`,
 * an error in one statement does not stop the next ones.
 */
export function mysqlCommand(
  file: string,
  t: DbTarget,
  sql: string,
  connectTimeoutSeconds: number,
  opts: { columnNames?: boolean; force?: boolean } = {},
): DbCommand {
  return {
    file,
    args: [
      ...mysqlConnection(t, connectTimeoutSeconds),
      '--batch',
      ...(opts.force ? ['--force'] : []),
      ...(opts.columnNames ? [] : ['--skip-column-names']),
      `--database=${t.database}`,
      '-e',
      sql,
    ],
    env: {},
  }
}

export type MysqlCheckMode = 'analyze' | 'optimize' | 'check'

/** `mariadb-check <connection> --<mode> <database>`: every table of the database, one by one. */
export function mysqlCheckCommand(file: string, t: DbTarget, mode: MysqlCheckMode) {
  return {
    file,
    args: [...mysqlConnection(t, undefined), `--${mode}`, t.database],
    env: {},
  } satisfies DbCommand
}

/**
 * `sqlite3 -init /dev/null [-readonly] -batch -bail -noheader -list -separator | -cmd '.timeout <ms>' <file> <sql>`:
 * no ~/.sqliterc, stop at the first error, wait up to `busyTimeoutMs` for another connection's lock.
 */
export function sqliteCommand(
  file: string,
  sql: string,
  opts: { readonly: boolean; busyTimeoutMs: number },
): DbCommand {
  return {
    file: 'sqlite3',
    args: [
      '-init',
      '/dev/null',
      ...(opts.readonly ? ['-readonly'] : []),
      '-batch',
      '-bail',
      '-noheader',
      '-list',
      '-separator',
      '|',
      '-cmd',
      `.timeout ${Math.max(0, Math.round(opts.busyTimeoutMs))}`,
      file,
      sql,
    ],
    env: {},
  }
}

/** The command as one line for evidence and logs (SQL shortened; there is no secret in an argv). */
export function describeCommand(c: DbCommand, max = 300): string {
  const text = [c.file, ...c.args]
    .map((a) => (/^[A-Za-z0-9_./=:@%+,-]+$/.test(a) ? a : JSON.stringify(a.replace(/\s+/g, ' '))))
    .join(' ')
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** The first meaningful line of a client's error output, without the client's own prefix. */
export function clientError(stderr: string, stdout = ''): string {
  const line =
    `${stderr}\n${stdout}`
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0 && !/^(NOTICE|WARNING|DETAIL|HINT|CONTEXT):/.test(l)) ?? ''
  const cleaned = line
    .replace(/^(psql|pg_amcheck|mysqlcheck|mariadb-check|mariadb|mysql|sqlite3|setpriv): /, '')
    .replace(/^error: /, '')
  return cleaned.length > 300 ? `${cleaned.slice(0, 299)}…` : cleaned
}
