import { z } from 'zod'
import { formatIssuePath as formatPath } from '../../shared/contracts/issue-path.ts'
import { parseDuration } from '../../shared/engine/duration.ts'
import { databaseTargetName } from '../probes/db-client.ts'

/**
 * The `probes:` part of the agent's config file: what `ansai-agent collect` observes on this host. Every field has a
 * default, so an empty config (`probes: {}` or no section at all) works on any Linux host: systemd's failed units,
 * every real filesystem, host memory, certbot's certificates, cron heartbeats and custom metrics in ANSAI's own
 * directories, pending package updates every 6 h, and Docker/Podman containers when a runtime is there.
 *
 * ```yaml
 * probes:
 *   services: { units: [nginx.service, "app-*.service"] }
 *   filesystems: { exclude: ["/boot/efi"] }
 *   certificates:
 *     files: ["/etc/letsencrypt/live/*\/cert.pem", /etc/nginx/tls/site.pem]
 *     endpoints: ["example.com:443", { host: 127.0.0.1, port: 8443, servername: api.example.com }]
 *   databases:
 *     - { engine: postgresql, database: app }                  # local socket, peer auth as the OS user postgres
 *     - { engine: mariadb, database: shop, defaultsFile: /etc/ansai/my.cnf }
 *     - { engine: sqlite, database: /var/lib/app/app.db }
 *   backups:
 *     - { job: nightly, dir: /var/backups/app, pattern: "app-*.tar.gz", integrity: auto }
 *   dns: { names: [example.com] }
 *   packages: { every: 12h }
 * ```
 */

/** Unit types systemd knows; a name without one of these suffixes gets `.service`. */
const UNIT_SUFFIX = /\.(service|socket|timer|target|mount|automount|path|scope|slice|swap|device)$/

/**
 * A unit name or a glob over unit names (`*`, `?`, `[...]`), matched by systemd itself against its loaded units.
 * No spaces, slashes or quotes, never starting with `-` (it goes into an argv after `--` anyway).
 */
export const UnitPatternSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(
    /^[A-Za-z0-9_*?[\]\\][A-Za-z0-9@._:*?[\]\\-]*$/,
    'a unit name or glob such as nginx.service or app-*.service (letters, digits, @ . _ : - \\ and * ? [ ])',
  )
  .transform((name) => (UNIT_SUFFIX.test(name) ? name : `${name}.service`))
  .describe('A systemd unit name or glob, e.g. nginx.service or app-*.service; without a type suffix, .service')

const hasControlCharacter = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x20 || code === 0x7f) return true
  }
  return false
}

/** An absolute path glob: `*`, `?` and `[...]` within one directory level; `**` is refused. */
export const FileGlobSchema = z
  .string()
  .min(2)
  .max(4096)
  .regex(/^\//, 'an absolute path or glob (starts with /)')
  .refine((p) => !hasControlCharacter(p), 'no NUL or control characters')
  .refine((p) => !p.includes('**'), '** is not supported: use * once per directory level')
  .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'no . or .. segments')
  .describe('An absolute path or glob (* ? [...] within one directory level), e.g. /etc/letsencrypt/live/*/cert.pem')

/** A mount point glob; `*` stays within one level, `**` crosses levels (`/var/lib/docker/**`). */
export const MountGlobSchema = z
  .string()
  .min(1)
  .max(4096)
  .regex(/^\//, 'a mount point or glob (starts with /)')
  .refine((p) => !hasControlCharacter(p), 'no NUL or control characters')
  .describe('A mount point or glob: / , /var, /mnt/* (one level) or /var/lib/docker/** (any depth)')

/** An absolute directory path. */
export const DirectorySchema = z
  .string()
  .min(1)
  .max(4096)
  .regex(/^\//, 'an absolute directory path (starts with /)')
  .refine((p) => !hasControlCharacter(p), 'no NUL or control characters')
  .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'no . or .. segments')

/** A job or metric name: letters, digits and `. _ @ : -`, as the observations name them. */
export const JobNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]*$/, 'a name: letters, digits and . _ @ : - (starting with a letter or digit)')

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/
const IPV6 = /^[0-9A-Fa-f:.]+$/
const isHost = (h: string): boolean => HOST_NAME.test(h) || IPV4.test(h) || (h.includes(':') && IPV6.test(h))

export const HostNameSchema = z
  .string()
  .min(1)
  .max(253)
  .refine(isHost, 'a DNS name or an IP address, e.g. example.com, 127.0.0.1 or ::1')

const PortSchema = z.number().int().min(1).max(65_535)

const EndpointObjectSchema = z
  .strictObject({
    host: HostNameSchema.describe('Where to connect: a DNS name or an IP address'),
    port: PortSchema.describe('The TCP port, e.g. 443'),
    servername: HostNameSchema.optional().describe(
      'The name sent by SNI, when it is not `host` (for example host 127.0.0.1, servername api.example.com)',
    ),
  })
  .describe('A TLS endpoint: host, port and optional SNI name')

/** `example.com:443`, `127.0.0.1:8443` or `[::1]:443`. */
const ENDPOINT_TEXT = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/

export const EndpointSchema = z
  .union([
    z.string().transform((text, ctx) => {
      const m = ENDPOINT_TEXT.exec(text)
      const host = m ? (m[1] ?? m[2]!) : ''
      const port = m ? Number(m[3]) : 0
      if (!m || !isHost(host) || port < 1 || port > 65_535) {
        ctx.addIssue({ code: 'custom', message: 'an endpoint host:port, e.g. example.com:443 or [::1]:443' })
        return z.NEVER
      }
      return { host, port }
    }),
    EndpointObjectSchema,
  ])
  .describe('A TLS endpoint as "host:port" (IPv6 in brackets) or { host, port, servername }')
export type Endpoint = { host: string; port: number; servername?: string | undefined }

/**
 * A duration as policies write them (`30m`, `6h`, `1h30m`; see shared/contracts/policy.ts), at least `minMs`. Not
 * imported from the contracts: the agent's config must load without the whole policy language.
 */
const durationAtLeast = (minMs: number, what: string) =>
  z
    .string()
    .regex(/^(\d+(ms|s|m|h|d|w))+$/, 'a duration such as 30m, 6h or 1d')
    .refine((d) => parseDuration(d) >= minMs, `at least ${what}`)

export const ServicesConfigSchema = z
  .strictObject({
    units: z
      .array(UnitPatternSchema)
      .max(1000)
      .default([])
      .describe('Units to observe, by name or glob (globs match the units systemd has loaded); default none'),
    failedAny: z
      .boolean()
      .default(true)
      .describe('Also observe every unit systemd lists as failed, whatever its name (default true)'),
  })
  .describe('systemd units: one `systemctl show` call for all of them')

export const FilesystemsConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Observe filesystems (default true)'),
    include: z
      .array(MountGlobSchema)
      .optional()
      .describe('Only these mount points (globs); default every real filesystem (pseudo filesystems are skipped)'),
    exclude: z.array(MountGlobSchema).default([]).describe('Mount points (globs) to leave out; default none'),
    includeTmpfs: z
      .boolean()
      .default(false)
      .describe('Also observe tmpfs mounts (RAM-backed, skipped by default); include still applies'),
  })
  .describe('Filesystems from /proc/self/mountinfo, measured with statfs: bytes and inodes')

export const MemoryConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Observe host memory: /proc/meminfo and PSI (default true)'),
  })
  .describe('Host memory')

export const ProcessMemoryConfigSchema = z
  .strictObject({
    units: z
      .array(UnitPatternSchema)
      .max(1000)
      .optional()
      .describe("Units whose memory to observe (names or globs); default: services.units, the watched services'"),
  })
  .describe("Per-unit memory: the unit's cgroup (v2, v1) or else the summed RSS of its processes")

export const DEFAULT_CERTIFICATE_FILES = ['/etc/letsencrypt/live/*/cert.pem'] as const

export const CertificatesConfigSchema = z
  .strictObject({
    files: z
      .array(FileGlobSchema)
      .max(1000)
      .default([...DEFAULT_CERTIFICATE_FILES])
      .describe(
        "PEM files (paths or globs); the first certificate of each file is read. Default: certbot's live " +
          'certificates, /etc/letsencrypt/live/*/cert.pem (a glob that matches nothing is not an error)',
      ),
    endpoints: z
      .array(EndpointSchema)
      .max(1000)
      .default([])
      .describe('TLS endpoints whose served certificate to read (SNI, no trust check); default none'),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(60_000)
      .default(3_000)
      .describe('Time allowed to each endpoint to connect and present its certificate, in ms (default 3000)'),
  })
  .describe('Certificates: files and TLS endpoints')

export const INTEGRITY_TESTS = ['none', 'gzip', 'tar', 'auto'] as const

export const BackupJobSchema = z
  .strictObject({
    job: JobNameSchema.describe('The job name, as backup observations and policies name it'),
    dir: DirectorySchema.describe('The directory the job writes its artifacts to'),
    pattern: z
      .string()
      .min(1)
      .max(255)
      .refine((p) => !p.includes('/') && !hasControlCharacter(p), 'a file name glob, without /')
      .default('*')
      .describe('Which files in dir are artifacts: a file name glob, e.g. app-*.tar.gz (default *)'),
    integrity: z
      .enum(INTEGRITY_TESTS)
      .default('auto')
      .describe(
        'Test the newest artifact: gzip (gzip -t), tar (tar -tf, compressed archives too), none, or auto by ' +
          'extension (.tar, .tar.*, .tgz → tar; .gz → gzip; others none). Each artifact is tested once',
      ),
    integrityTimeoutSeconds: z
      .number()
      .int()
      .min(1)
      .max(3_600)
      .default(120)
      .describe('How long one integrity test may take before it counts as unknown, in seconds (default 120)'),
    settleSeconds: z
      .number()
      .int()
      .min(0)
      .max(86_400)
      .default(60)
      .describe(
        'An artifact modified less than this many seconds ago may still be being written: its integrity is ' +
          'unknown until then (default 60)',
      ),
  })
  .describe('A backup job: the newest artifact in dir matching pattern')

export const CronConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Read cron heartbeat markers (default true)'),
    markerDir: DirectorySchema.default('/var/lib/ansai/cron').describe(
      'Where wrapped cron jobs write their markers, one <job>.json per job (default /var/lib/ansai/cron)',
    ),
    expect: z
      .array(JobNameSchema)
      .max(1000)
      .default([])
      .describe('Jobs that must have a marker: a missing one is observed as never run (default none)'),
  })
  .describe('Cron heartbeats: marker files with start, end and exit status')

export const DnsConfigSchema = z
  .strictObject({
    names: z
      .array(HostNameSchema)
      .max(100)
      .default([])
      .describe('Names to resolve with the system resolver each cycle (default none)'),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(30_000)
      .default(2_000)
      .describe('A lookup slower than this counts as failed, in ms (default 2000)'),
  })
  .describe('DNS resolution')

export const PackagesConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Count pending and security updates (apt or dnf; default true)'),
    every: durationAtLeast(60_000, '1m')
      .default('6h')
      .describe(
        'How often the (expensive: seconds of CPU) package check really runs; between runs the cached result ' +
          'is reported (default 6h)',
      ),
    timeoutSeconds: z
      .number()
      .int()
      .min(10)
      .max(3_600)
      .default(300)
      .describe('How long the package manager may take, in seconds (default 300)'),
  })
  .describe('Pending package updates (slow, cached)')

export const ContainersConfigSchema = z
  .strictObject({
    enabled: z
      .union([z.literal('auto'), z.boolean()])
      .default('auto')
      .describe(
        'auto (default): observe Docker and Podman where installed and answering, silently skip them otherwise; ' +
          'true: a missing or unreachable runtime is a probe error; false: off',
      ),
  })
  .describe('Docker and Podman containers')

export const CustomConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Read custom metric files (default true)'),
    dir: DirectorySchema.default('/var/lib/ansai/metrics').describe(
      'Where operators write metrics, one <name>.value file per metric holding a number (default /var/lib/ansai/metrics)',
    ),
  })
  .describe('Custom metrics')

export const DATABASE_ENGINES = ['postgresql', 'mariadb', 'mysql', 'sqlite'] as const

/**
 * A database name as db-maintenance's params take it (shared/registry/remediations/db-maintenance.ts, repeated here
 * so the agent's config loads without the registry): letters, digits, `_` and `-`, starting with a letter or `_`.
 */
const DB_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/
/** A PostgreSQL role or MariaDB/MySQL user name: never an option (`-`), no spaces, quotes or `$`. */
const DB_USER = /^[A-Za-z_][A-Za-z0-9_.@-]{0,79}$/
/** A Unix user name (useradd's rules, the common subset). */
const OS_USER = /^[a-z_][a-z0-9_-]{0,31}$/

/** An absolute path in canonical form (no `.`/`..` segments, no `//`, no trailing slash, no control character). */
const CanonicalPathSchema = z
  .string()
  .min(2)
  .max(4096)
  .regex(/^\//, 'an absolute path (starts with /)')
  .refine((p) => !hasControlCharacter(p), 'no NUL or control characters')
  .refine((p) => !p.endsWith('/') && !p.includes('//'), 'no trailing slash, no empty segment (//)')
  .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'no . or .. segments')

export const DatabaseTargetSchema = z
  .strictObject({
    engine: z.enum(DATABASE_ENGINES).describe('postgresql, mariadb, mysql or sqlite'),
    name: z
      .string()
      .min(1)
      .max(255)
      .refine((n) => !hasControlCharacter(n), 'no control characters')
      .optional()
      .describe(
        'How observations name it (their `name` field); default: the database, `host:port/database` over TCP, ' +
          'or the file path for sqlite',
      ),
    database: z
      .string()
      .min(1)
      .max(4096)
      .describe('The database name (letters, digits, _ and -); for sqlite the absolute path of the database file'),
    host: HostNameSchema.optional().describe(
      'postgresql, mariadb, mysql: connect over TCP to this host (default: the local Unix socket)',
    ),
    socket: CanonicalPathSchema.optional().describe(
      'postgresql: the socket directory (e.g. /var/run/postgresql); mariadb, mysql: the socket file ' +
        "(e.g. /run/mysqld/mysqld.sock); default: the client's own default",
    ),
    port: PortSchema.optional().describe('The TCP port, or the port that names a PostgreSQL socket (default 5432)'),
    user: z
      .string()
      .regex(DB_USER, 'a database user name: letters, digits and _ . @ -, starting with a letter or _')
      .optional()
      .describe("The database role or user to connect as (default: the client's default, the OS user)"),
    runAs: z
      .string()
      .regex(OS_USER, 'a Unix user name such as postgres')
      .optional()
      .describe(
        'Run the client as this OS user (setpriv; the agent must run as root), for peer or unix_socket ' +
          'authentication. Default: postgres for a local PostgreSQL database without user when the agent is root; ' +
          'root stays root',
      ),
    passFile: CanonicalPathSchema.optional().describe(
      'postgresql: a password file in .pgpass format (given to psql as PGPASSFILE, never on the command line; ' +
        'mode 0600, readable by runAs)',
    ),
    defaultsFile: CanonicalPathSchema.optional().describe(
      'mariadb, mysql: an option file with a [client] section (user, password, socket), given as ' +
        '--defaults-extra-file: the password never appears on the command line',
    ),
    timeoutSeconds: z
      .number()
      .int()
      .min(1)
      .max(300)
      .default(10)
      .describe('How long one query of the probe may take, connection included, in seconds (default 10)'),
  })
  .superRefine((t, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message })
    if (t.engine === 'sqlite') {
      const path = CanonicalPathSchema.safeParse(t.database)
      if (!path.success) issue('database', `sqlite needs the database file: ${path.error.issues[0]?.message}`)
      for (const key of ['host', 'socket', 'port', 'user', 'runAs', 'passFile', 'defaultsFile'] as const) {
        if (t[key] !== undefined) issue(key, `${key} does not apply to sqlite (a file)`)
      }
      return
    }
    if (!DB_NAME.test(t.database)) {
      issue('database', 'a database name: letters, digits, _ and -, starting with a letter or _, up to 63 characters')
    }
    if (t.host !== undefined && t.socket !== undefined) issue('socket', 'host (TCP) or socket, not both')
    if (t.passFile !== undefined && t.engine !== 'postgresql') {
      issue('passFile', 'passFile is for postgresql; mariadb and mysql take defaultsFile')
    }
    if (t.defaultsFile !== undefined && t.engine === 'postgresql') {
      issue('defaultsFile', 'defaultsFile is for mariadb and mysql; postgresql takes passFile')
    }
  })
  .describe('A database to observe, and how to reach it (credentials never on a command line)')
export type DatabaseTarget = z.infer<typeof DatabaseTargetSchema>

export const ProbesConfigSchema = z
  .strictObject({
    services: ServicesConfigSchema.prefault({}),
    filesystems: FilesystemsConfigSchema.prefault({}),
    memory: MemoryConfigSchema.prefault({}),
    processMemory: ProcessMemoryConfigSchema.prefault({}),
    certificates: CertificatesConfigSchema.prefault({}),
    databases: z
      .array(DatabaseTargetSchema)
      .max(100)
      .default([])
      .superRefine((targets, ctx) => {
        const seen = new Set<string>()
        targets.forEach((t, i) => {
          const key = `${t.engine}:${databaseTargetName(t)}`
          if (seen.has(key)) {
            ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${key} is listed twice (give it a name)` })
          }
          seen.add(key)
        })
      })
      .describe('Databases to observe: PostgreSQL, MariaDB/MySQL, SQLite (default none)'),
    backups: z
      .array(BackupJobSchema)
      .max(100)
      .default([])
      .superRefine((jobs, ctx) => {
        const seen = new Set<string>()
        jobs.forEach((j, i) => {
          if (seen.has(j.job))
            ctx.addIssue({ code: 'custom', path: [i, 'job'], message: `job ${j.job} is listed twice` })
          seen.add(j.job)
        })
      })
      .describe('Backup jobs to watch (default none)'),
    cron: CronConfigSchema.prefault({}),
    dns: DnsConfigSchema.prefault({}),
    packages: PackagesConfigSchema.prefault({}),
    containers: ContainersConfigSchema.prefault({}),
    custom: CustomConfigSchema.prefault({}),
  })
  .describe('What the agent observes on this host')

export type ProbesConfig = z.infer<typeof ProbesConfigSchema>
export type ProbesConfigInput = z.input<typeof ProbesConfigSchema>
export type BackupJob = z.infer<typeof BackupJobSchema>

export type ParsedProbesConfig = { ok: true; config: ProbesConfig } | { ok: false; errors: string[] }

/**
 * Parses the `probes:` section (undefined or null = all defaults). Every error names the source and the path,
 * e.g. `agent.yaml: probes.backups[0].dir: an absolute directory path (starts with /)`.
 */
export function parseProbesConfig(input: unknown, source: string, base = 'probes'): ParsedProbesConfig {
  const result = ProbesConfigSchema.safeParse(input ?? {})
  if (result.success) return { ok: true, config: result.data }
  const errors = result.error.issues.map((i) => {
    const at = formatPath(base, i.path)
    // A union reports "Invalid input": say what each branch wanted instead.
    const union = (i as { errors?: { message: string }[][] }).errors
    const detail =
      i.code === 'invalid_union' && union?.length
        ? [...new Set(union.flat().map((e) => e.message))].join('; or ')
        : i.message
    return `${source}: ${at}: ${detail}`
  })
  return { ok: false, errors }
}

/** The configuration of an empty `probes:` section. */
export const defaultProbesConfig = (): ProbesConfig => ProbesConfigSchema.parse({})
