import type { ProbeError } from '../../shared/contracts/index.ts'
import type { DatabaseTarget } from '../config/probes.ts'
import type { RunResult } from '../os/exec.ts'
import {
  asUser,
  clientError,
  clientOsUser,
  type DbCommand,
  type DbTarget,
  databaseTargetName,
  MYSQL_CLIENTS,
  mysqlCommand,
  type OsUser,
  parsePasswdUser,
  psqlCommand,
  sqliteCommand,
} from '../probes/db-client.ts'
import {
  mysqlObservation,
  mysqlProbeSql,
  parseMysqlProbe,
  parseReplicaStatus,
  replicaStatusSql,
} from '../probes/db-mysql.ts'
import { type DatabaseObservation, PG_PROBE_SQL, parsePgProbe, pgObservation } from '../probes/db-postgresql.ts'
import { parseSqliteIntegrity, parseSqliteStats, SQLITE_STATS_SQL, sqliteObservation } from '../probes/db-sqlite.ts'
import {
  type CollectContext,
  cEnvironment,
  describeError,
  emptyOutput,
  errnoOf,
  mapLimit,
  type ProbeOutput,
} from './context.ts'

const PROBE = 'database'

/**
 * Databases (`probes.databases`): each configured database through its engine's own client, one query (two for a
 * MariaDB/MySQL replica), parsed by agent/probes/db-*.ts. Up to 4 databases at once, each query within the
 * target's `timeoutSeconds`.
 *
 * - A database the client cannot reach (no server on the socket, refused, authentication failed, no such
 *   database, too many connections, no answer in time, an SQLite file that is missing or damaged) is an
 *   observation with `reachable: false` and the client's reason in `error`: that is what a policy watches.
 * - A client that cannot be run at all (not installed, `runAs` unknown or the agent not root), or an answer that
 *   cannot be read, is a ProbeError: ANSAI cannot tell whether the database is up.
 *
 * How each engine is reached, and where credentials come from, is agent/probes/db-client.ts.
 */
export interface DatabasesOptions {
  /** Whether the agent runs as root (a local PostgreSQL database is then reached as `postgres`); default: getuid. */
  agentIsRoot?: boolean
}

type TargetOutcome = { observation: DatabaseObservation } | { error: ProbeError }

const unreachable = (t: DbTarget, name: string, error: string): TargetOutcome => ({
  observation: { kind: 'database', engine: t.engine, name, reachable: false, error },
})
const probeError = (name: string, t: DbTarget, reason: string): TargetOutcome => ({
  error: { probe: PROBE, reason: `${t.engine} ${name}: ${reason}` },
})

/** The OS user to run the client as, or a reason it cannot be used. */
export async function resolveOsUser(
  t: DbTarget,
  agentIsRoot: boolean,
  readPasswd: () => Promise<string>,
): Promise<{ user: OsUser | undefined } | { reason: string }> {
  const name = clientOsUser(t, agentIsRoot)
  if (name === undefined) return { user: undefined }
  if (!agentIsRoot) return { reason: `runAs ${name} needs the agent to run as root` }
  let passwd: string
  try {
    passwd = await readPasswd()
  } catch (err) {
    return { reason: `cannot read /etc/passwd for runAs ${name}: ${describeError(err)}` }
  }
  const user = parsePasswdUser(passwd, name)
  return user ? { user } : { reason: `runAs user ${name} is not in /etc/passwd` }
}

/** Runs a client; a binary that is not there (spawn ENOENT, or setpriv's exit 127) is `missing`. */
export async function runClient(
  run: CollectContext['run'],
  env: CollectContext['env'],
  command: DbCommand,
  timeoutMs: number,
): Promise<{ result: RunResult } | { missing: string } | { reason: string }> {
  try {
    const result = await run(command.file, command.args, {
      timeoutMs,
      env: { ...cEnvironment(env), ...command.env },
      maxOutputBytes: 1024 * 1024,
      killGraceMs: 1_000,
    })
    if (command.file === 'setpriv' && result.exitCode === 127 && /failed to execute/.test(result.stderr)) {
      return { missing: command.args[command.args.indexOf('--') + 1] ?? 'the client' }
    }
    return { result }
  } catch (err) {
    const code = errnoOf(err)
    if (code === 'ENOENT') return { missing: command.file }
    return { reason: `cannot run ${command.file}: ${code ?? describeError(err)}` }
  }
}

/** Runs the first of `files` that is installed (mariadb, else mysql; ...). */
export async function runFirstClient(
  files: readonly string[],
  build: (file: string) => DbCommand,
  user: OsUser | undefined,
  run: CollectContext['run'],
  env: CollectContext['env'],
  timeoutMs: number,
): Promise<{ result: RunResult; file: string } | { reason: string }> {
  for (const file of files) {
    const out = await runClient(run, env, asUser(build(file), user), timeoutMs)
    if ('result' in out) return { result: out.result, file }
    if ('reason' in out) return out
  }
  return { reason: `${files.join(' or ')} not found (not installed, or not on PATH)` }
}

const timedOut = (r: RunResult, ms: number): boolean => r.timedOut || (r.exitCode === null && r.durationMs >= ms)

/** MariaDB/MySQL client errors of the connection phase: the database is not reachable for this client. */
const MYSQL_CONNECTION_ERRORS = /^ERROR (1040|1044|1045|1049|1129|1130|1203|1698|2002|2003|2005|2006|2013|2026|2059)\b/m

async function probePostgres(t: DbTarget, name: string, user: OsUser | undefined, ctx: CollectContext) {
  const timeoutMs = (t.timeoutSeconds ?? 10) * 1000
  const command = psqlCommand(t, PG_PROBE_SQL, {
    statementTimeoutMs: Math.max(500, timeoutMs - 500),
    connectTimeoutSeconds: Math.min(timeoutMs / 1000, 10),
  })
  const out = await runClient(ctx.run, ctx.env, asUser(command, user), timeoutMs)
  if ('missing' in out) return probeError(name, t, `${out.missing} not found (install the PostgreSQL client, psql)`)
  if ('reason' in out) return probeError(name, t, out.reason)
  const r = out.result
  if (timedOut(r, timeoutMs)) return unreachable(t, name, `no answer within ${timeoutMs / 1000} s`)
  // psql: 2 = the connection failed (or was lost), 3 = an error in the SQL, 1 = psql's own fatal error
  if (r.exitCode === 2) return unreachable(t, name, clientError(r.stderr) || 'connection failed')
  if (r.exitCode !== 0) return probeError(name, t, `psql exited ${r.exitCode ?? r.signal}: ${clientError(r.stderr)}`)
  const figures = parsePgProbe(r.stdout)
  if (!figures.ok) return probeError(name, t, figures.error.reason)
  return { observation: pgObservation(name, figures.value) }
}

async function probeMysql(
  t: DbTarget & { engine: 'mariadb' | 'mysql' },
  name: string,
  user: OsUser | undefined,
  ctx: CollectContext,
): Promise<TargetOutcome[]> {
  const timeoutMs = (t.timeoutSeconds ?? 10) * 1000
  const connectSeconds = Math.min(timeoutMs / 1000, 10)
  const clients = MYSQL_CLIENTS[t.engine].client
  const ran = await runFirstClient(
    clients,
    (file) => mysqlCommand(file, t, mysqlProbeSql(t.engine), connectSeconds),
    user,
    ctx.run,
    ctx.env,
    timeoutMs,
  )
  if ('reason' in ran) return [probeError(name, t, ran.reason)]
  const r = ran.result
  if (timedOut(r, timeoutMs)) return [unreachable(t, name, `no answer within ${timeoutMs / 1000} s`)]
  if (r.exitCode !== 0) {
    const why = clientError(r.stderr) || `${ran.file} exited ${r.exitCode ?? r.signal}`
    return [MYSQL_CONNECTION_ERRORS.test(r.stderr) ? unreachable(t, name, why) : probeError(name, t, why)]
  }
  const figures = parseMysqlProbe(r.stdout)
  if (!figures.ok) return [probeError(name, t, figures.error.reason)]
  if (!(figures.value.replicasRunning !== undefined && figures.value.replicasRunning > 0)) {
    return [{ observation: mysqlObservation(t.engine, name, figures.value) }]
  }
  // A replica: its lag, from the replica status (header row + one row per channel)
  const status = async (legacy: boolean) =>
    runClient(
      ctx.run,
      ctx.env,
      asUser(
        mysqlCommand(ran.file, t, replicaStatusSql(t.engine, legacy), connectSeconds, { columnNames: true }),
        user,
      ),
      timeoutMs,
    )
  let lagRun = await status(false)
  if ('result' in lagRun && lagRun.result.exitCode !== 0 && /^ERROR 1064\b/m.test(lagRun.result.stderr)) {
    lagRun = await status(true) // MySQL before 8.0.22: only SHOW SLAVE STATUS
  }
  const outcomes: TargetOutcome[] = []
  let lag: number | undefined
  if ('result' in lagRun && lagRun.result.exitCode === 0) {
    const parsedLag = parseReplicaStatus(lagRun.result.stdout)
    if (parsedLag.ok) lag = parsedLag.value
    else outcomes.push(probeError(name, t, `replication lag unknown: ${parsedLag.error.reason}`))
  } else {
    const why =
      'result' in lagRun ? clientError(lagRun.result.stderr) : 'reason' in lagRun ? lagRun.reason : 'no client'
    outcomes.push(probeError(name, t, `replication lag unknown: ${why}`))
  }
  outcomes.unshift({ observation: mysqlObservation(t.engine, name, figures.value, lag) })
  return outcomes
}

async function probeSqlite(t: DbTarget, name: string, ctx: CollectContext): Promise<TargetOutcome> {
  const timeoutMs = (t.timeoutSeconds ?? 10) * 1000
  const command = sqliteCommand(t.database, SQLITE_STATS_SQL, {
    readonly: true,
    busyTimeoutMs: Math.max(0, timeoutMs - 1000),
  })
  const out = await runClient(ctx.run, ctx.env, command, timeoutMs)
  if ('missing' in out) return probeError(name, t, 'sqlite3 not found (install sqlite3)')
  if ('reason' in out) return probeError(name, t, out.reason)
  const r = out.result
  if (timedOut(r, timeoutMs)) return unreachable(t, name, `no answer within ${timeoutMs / 1000} s`)
  if (r.exitCode !== 0) {
    const verdict = parseSqliteIntegrity('', r.stderr, r.exitCode)
    const error = verdict.problems[0] ?? `sqlite3 exited ${r.exitCode ?? r.signal}`
    const obs = unreachable(t, name, error) as { observation: DatabaseObservation }
    if (verdict.integrity === 'failed') obs.observation.integrity = 'failed'
    return obs
  }
  const figures = parseSqliteStats(r.stdout)
  if (!figures.ok) return probeError(name, t, figures.error.reason)
  return { observation: sqliteObservation(name, figures.value) }
}

/** One configured database → its observation (or ProbeErrors). Never throws. */
export async function probeDatabase(
  target: DbTarget,
  ctx: CollectContext,
  opts: DatabasesOptions = {},
): Promise<TargetOutcome[]> {
  const name = databaseTargetName(target)
  try {
    if (target.engine === 'sqlite') return [await probeSqlite(target, name, ctx)]
    const agentIsRoot = opts.agentIsRoot ?? process.getuid?.() === 0
    const resolved = await resolveOsUser(target, agentIsRoot, () => ctx.fs.readFile('/etc/passwd'))
    if ('reason' in resolved) return [probeError(name, target, resolved.reason)]
    if (target.engine === 'postgresql') return [await probePostgres(target, name, resolved.user, ctx)]
    return await probeMysql(target as DbTarget & { engine: 'mariadb' | 'mysql' }, name, resolved.user, ctx)
  } catch (err) {
    return [probeError(name, target, `failed: ${describeError(err)}`)]
  }
}

export async function collectDatabases(
  targets: readonly DatabaseTarget[],
  ctx: CollectContext,
  opts: DatabasesOptions = {},
): Promise<ProbeOutput> {
  const out = emptyOutput()
  const results = await mapLimit(targets, 4, (t) => probeDatabase(t, ctx, opts))
  for (const outcome of results.flat()) {
    if ('observation' in outcome) out.observations.push(outcome.observation)
    else out.errors.push(outcome.error)
  }
  return out
}
