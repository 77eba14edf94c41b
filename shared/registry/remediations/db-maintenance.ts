import { z } from 'zod'
import type { RemediationDefinition } from '../types.ts'
import { AbsolutePathSchema, limitThenEscalate, PositiveDurationSchema } from './params.ts'

export const DB_ENGINES = ['postgresql', 'mariadb', 'mysql', 'sqlite'] as const
export type DbEngine = (typeof DB_ENGINES)[number]

export const DB_OPERATIONS = [
  'vacuum',
  'vacuum-analyze',
  'analyze',
  'reindex',
  'optimize',
  'integrity-check',
  'terminate-idle-in-transaction',
] as const
export type DbOperation = (typeof DB_OPERATIONS)[number]

/**
 * What each engine can do: PostgreSQL `VACUUM` (never `VACUUM FULL`), `ANALYZE`, `REINDEX DATABASE`, `pg_amcheck`,
 * `pg_terminate_backend`; MariaDB/MySQL `ANALYZE TABLE`, `OPTIMIZE TABLE`, `CHECK TABLE` (mysqlcheck), `KILL`;
 * SQLite `VACUUM`, `ANALYZE`, `REINDEX`, `PRAGMA optimize`, `PRAGMA integrity_check`.
 */
export const DB_OPERATIONS_BY_ENGINE: Record<DbEngine, readonly DbOperation[]> = {
  postgresql: ['vacuum', 'vacuum-analyze', 'analyze', 'reindex', 'integrity-check', 'terminate-idle-in-transaction'],
  mariadb: ['analyze', 'optimize', 'integrity-check', 'terminate-idle-in-transaction'],
  mysql: ['analyze', 'optimize', 'integrity-check', 'terminate-idle-in-transaction'],
  sqlite: ['vacuum', 'analyze', 'reindex', 'optimize', 'integrity-check'],
}

/** A database name: letters, digits, `_` and `-`, starting with a letter or `_`, at most 63 characters. */
const DB_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/

/**
 * Either form `database` takes, before the engine's own check below: a database name, or an absolute path whose
 * segments hold letters, digits and `. _ @ % + = : , -` only. It is also the SSM document's `allowedPattern` for
 * the parameter (shared/registry/ssm.ts derives it from this regex), which must refuse the empty string.
 */
const DATABASE_FORM = /^(?:[A-Za-z_][A-Za-z0-9_-]{0,62}|(?:\/[A-Za-z0-9._@%+=:,-]+)+)$/

export const DbMaintenanceParamsSchema = z
  .object({
    engine: z.enum(DB_ENGINES).describe('The database engine: postgresql, mariadb, mysql or sqlite'),
    database: z
      .string()
      .min(1)
      .max(4096)
      .regex(
        DATABASE_FORM,
        'a database name, or for sqlite the absolute path of its file (letters, digits and . _ @ % + = : , - between the slashes)',
      )
      .describe('The database name (letters, digits, _ and -, up to 63) or, for sqlite, the absolute path of its file'),
    operation: z
      .enum(DB_OPERATIONS)
      .describe(`What to do: ${DB_OPERATIONS.join(', ')}; not every engine offers every operation`),
    idleLongerThan: PositiveDurationSchema.optional().describe(
      'terminate-idle-in-transaction only (and required there): end sessions idle in a transaction for longer than this, e.g. 10m',
    ),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.engine === 'sqlite') {
      const path = AbsolutePathSchema.safeParse(p.database)
      if (!path.success) {
        for (const issue of path.error.issues) {
          ctx.addIssue({
            code: 'custom',
            path: ['database'],
            message: `sqlite needs the database file: ${issue.message}`,
          })
        }
      }
    } else if (!DB_IDENTIFIER.test(p.database)) {
      ctx.addIssue({
        code: 'custom',
        path: ['database'],
        message: 'a database name: letters, digits, _ and -, starting with a letter or _, up to 63 characters',
      })
    }
    if (!DB_OPERATIONS_BY_ENGINE[p.engine].includes(p.operation)) {
      ctx.addIssue({
        code: 'custom',
        path: ['operation'],
        message: `${p.engine} offers ${DB_OPERATIONS_BY_ENGINE[p.engine].join(', ')}`,
      })
    }
    if (p.operation === 'terminate-idle-in-transaction' && p.idleLongerThan === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['idleLongerThan'],
        message: 'terminate-idle-in-transaction needs idleLongerThan, e.g. 10m',
      })
    }
    if (p.operation !== 'terminate-idle-in-transaction' && p.idleLongerThan !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['idleLongerThan'],
        message: 'idleLongerThan only goes with operation terminate-idle-in-transaction',
      })
    }
  })
export type DbMaintenanceParams = z.infer<typeof DbMaintenanceParamsSchema>

export const dbMaintenanceRemediation: RemediationDefinition<typeof DbMaintenanceParamsSchema> = {
  id: 'db-maintenance',
  title: 'Database maintenance',
  description:
    'One maintenance operation on one database: vacuum, analyze, reindex, optimize, an integrity check, or ending sessions left idle in a transaction (they hold locks and stop vacuum).',
  params: DbMaintenanceParamsSchema,
  risk: 'disruptive',
  status: 'available',
  appliesTo: ['database'],
  defaultGuards: { limit: limitThenEscalate(2, '1d'), cooldown: '6h' },
  ssmDocument: 'ANSAI-MaintainDatabase',
  permissions: [
    'postgresql: a role that owns the database or has pg_maintain (PostgreSQL 17+), and pg_signal_backend to end sessions',
    'mariadb/mysql: a user with SELECT and INSERT on the database (mysqlcheck), and PROCESS and CONNECTION_ADMIN to end sessions',
    'sqlite: read and write the database file and its directory (journal, WAL)',
  ],
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: postgres-idle-in-transaction }
spec:
  observe: database
  match: { engine: postgresql }
  severity:
    warning: { when: "idleInTransaction > 0", for: 3 cycles }
    critical: { when: "idleInTransaction > 5 || longestLockWaitSeconds > 60.0" }
  remediate:
    - at: critical
      run: db-maintenance
      params: { engine: postgresql, database: app, operation: terminate-idle-in-transaction, idleLongerThan: 10m }
    - escalate: page
`,
}
