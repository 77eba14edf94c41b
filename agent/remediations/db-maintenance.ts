import { readFile } from 'node:fs/promises'
import type { RemediationResultV1 } from '../../shared/contracts/index.ts'
import type { DbMaintenanceParams } from '../../shared/registry/remediations/db-maintenance.ts'
import { resolveOsUser } from '../collect/databases.ts'
import { DB_NAME, type DbTarget, databaseTargetName } from '../probes/db-client.ts'
import type { MaintenanceRun, Outcome } from './db-maintenance/common.ts'
import { boundResult, shortenMiddle } from './disk-cleanup/report.ts'
import type { AuditEntry, ExecutorContext, RemediationExecutor } from './types.ts'

/**
 * db-maintenance: one maintenance operation on one database (shared/registry/remediations/db-maintenance.ts
 * documents the params; DB_OPERATIONS_BY_ENGINE which engine offers what). The engines' parts:
 * db-maintenance/postgresql.ts, db-maintenance/mysql.ts (MariaDB and MySQL), db-maintenance/sqlite.ts.
 *
 * How the database is reached comes from the agent's configuration: the `probes.databases` entry with the same
 * engine and database (socket, host, port, user, runAs, passFile, defaultsFile; see agent/config/probes.ts). A
 * database no entry names is reached the engines' default way: PostgreSQL over the local socket as the OS user
 * `postgres` (peer authentication) when the agent is root; MariaDB/MySQL over the local socket as the agent's user
 * (root: unix_socket authentication); SQLite by its path.
 *
 * Every run reads figures before and after, verifies the operation did what it is for, and returns one bounded
 * result line: the summary, the figures (`evidence.before`, `evidence.after`), the commands run (argv, never a
 * secret), the duration, `bytesRecovered` where space comes back (vacuum, reindex, optimize), and `items` (the
 * sessions ended, the corrupt relations or tables). A dry-run reads the figures and says what it would do.
 * Identifiers never reach SQL unvalidated: the database is the connection's, named in SQL only by PostgreSQL's
 * REINDEX DATABASE, validated and quoted.
 */
export interface DbMaintenanceOptions {
  /**
   * The configured databases (`probes.databases`). Default: read from the agent's configuration file
   * (/etc/ansai/config.yaml, when there is one) at the first run.
   */
  databases?: readonly DbTarget[]
  /** How to load them when `databases` is not given; default: the agent's configuration file. */
  loadDatabases?: () => Promise<readonly DbTarget[]>
  /** /etc/passwd's text (the OS user a client runs as); default: read the file. */
  readPasswd?: () => Promise<string>
  /** Whether the agent runs as root; default getuid() === 0. */
  agentIsRoot?: boolean
  /** pg_amcheck: a path, `null` to use the SQL fallback, undefined to look for it (PATH, PostgreSQL's bin dirs). */
  pgAmcheck?: string | null
  /** The maintenance statement's timeout; default 50 min (an SSM command gets an hour). */
  operationTimeoutMs?: number
  /** Each query around it (figures, session lists); default 30 s. */
  queryTimeoutMs?: number
  /** The environment the clients get (PATH, ...); default the agent's. */
  env?: Readonly<Record<string, string | undefined>>
  sleep?: (ms: number) => Promise<void>
}

const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The configured databases, from the agent's config file (none when it has no file or no `probes.databases`). */
async function configuredDatabases(): Promise<readonly DbTarget[]> {
  const { loadAgentConfigLazily } = await import('../config/load.ts')
  const { config } = await loadAgentConfigLazily(undefined)
  return config.probes.databases
}

/** The configured entry for these params, or the engine's defaults. Pure. */
export function targetFor(params: DbMaintenanceParams, databases: readonly DbTarget[]): DbTarget {
  const found = databases.find((d) => d.engine === params.engine && d.database === params.database)
  return found ?? { engine: params.engine, database: params.database }
}

export function createDbMaintenanceExecutor(
  options: DbMaintenanceOptions = {},
): RemediationExecutor<DbMaintenanceParams> {
  let databases: Promise<readonly DbTarget[]> | undefined =
    options.databases !== undefined ? Promise.resolve(options.databases) : undefined
  return {
    id: 'db-maintenance',
    async execute(params: DbMaintenanceParams, ctx: ExecutorContext) {
      const started = ctx.now()
      const audit: AuditEntry[] = []
      const label = `${params.engine} ${params.database}`
      const finish = (o: Outcome, commands: string[]): { result: RemediationResultV1; audit: AuditEntry[] } => {
        const finished = ctx.now()
        const evidence: Record<string, unknown> = {
          engine: params.engine,
          database: params.database,
          operation: params.operation,
          ...o.evidence,
        }
        if (commands.length > 0) evidence.commands = commands.slice(0, 12)
        const result: RemediationResultV1 = {
          schema: 'ansai.remediation-result.v1',
          key: ctx.key,
          remediation: 'db-maintenance',
          status: o.status,
          dryRun: ctx.dryRun,
          startedAt: started.toISOString(),
          finishedAt: finished.toISOString(),
          durationMs: Math.max(0, finished.getTime() - started.getTime()),
          summary: shortenMiddle(o.summary, 2000),
          evidence,
        }
        if (o.error !== undefined) result.error = o.error
        if (o.bytesRecovered !== undefined && Object.keys(o.bytesRecovered).length > 0) {
          result.bytesRecovered = o.bytesRecovered
        }
        if (o.items !== undefined) {
          result.items = o.items
          result.itemsTotal = o.itemsTotal ?? o.items.length
        }
        return { result: boundResult(result), audit }
      }
      const commands: string[] = []
      try {
        // The params were validated by the registry's schema; the identifier is checked again where it matters.
        if (params.engine !== 'sqlite' && !DB_NAME.test(params.database)) {
          return finish(
            {
              status: 'failed',
              summary: `refused: ${label} is not a database name`,
              error: 'bad database name',
              evidence: {},
            },
            commands,
          )
        }
        databases ??= (options.loadDatabases ?? configuredDatabases)()
        let configured: readonly DbTarget[]
        try {
          configured = await databases
        } catch (err) {
          databases = undefined
          const why = `the agent's configuration does not load: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`
          return finish({ status: 'failed', summary: `${label}: ${why}`, error: why, evidence: {} }, commands)
        }
        const target = targetFor(params, configured)
        const agentIsRoot = options.agentIsRoot ?? process.getuid?.() === 0
        const run: MaintenanceRun = {
          ctx,
          target,
          user: undefined,
          env: options.env ?? process.env,
          queryTimeoutMs: options.queryTimeoutMs ?? 30_000,
          operationTimeoutMs: options.operationTimeoutMs ?? 50 * 60_000,
          pgAmcheck: options.pgAmcheck,
          sleep: options.sleep ?? realSleep,
          audit,
          commands,
        }
        const connection: Record<string, unknown> = {
          name: databaseTargetName(target),
          configured: configured.includes(target),
        }
        let outcome: Outcome
        if (params.engine === 'sqlite') {
          const { maintainSqlite } = await import('./db-maintenance/sqlite.ts')
          outcome = await maintainSqlite(run, params, agentIsRoot)
        } else {
          const readPasswd = options.readPasswd ?? (() => readFile('/etc/passwd', 'utf8'))
          const resolved = await resolveOsUser(target, agentIsRoot, readPasswd)
          if ('reason' in resolved) {
            return finish(
              {
                status: 'failed',
                summary: `${label}: ${resolved.reason}`,
                error: resolved.reason,
                evidence: { connection },
              },
              commands,
            )
          }
          run.user = resolved.user
          if (resolved.user) connection.runAs = resolved.user.name
          if (params.engine === 'postgresql') {
            const { maintainPostgres } = await import('./db-maintenance/postgresql.ts')
            outcome = await maintainPostgres(run, params)
          } else {
            const { maintainMysql } = await import('./db-maintenance/mysql.ts')
            outcome = await maintainMysql(run, params)
          }
        }
        outcome.evidence = { connection, ...outcome.evidence }
        return finish(outcome, commands)
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err)
        return finish(
          { status: 'failed', summary: `db-maintenance of ${label} failed: ${message}`, error: message, evidence: {} },
          commands,
        )
      }
    },
  }
}

export const dbMaintenanceExecutor: RemediationExecutor<DbMaintenanceParams> = createDbMaintenanceExecutor()
