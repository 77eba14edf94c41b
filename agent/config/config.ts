import { isNode, LineCounter, parseDocument } from 'yaml'
import { z } from 'zod'
import { NotificationChannelsSchema } from '../../shared/app/notify/config.ts'
import { DurationSchema, HostIdSchema, TagsSchema } from '../../shared/contracts/index.ts'
import { parseDuration } from '../../shared/engine/duration.ts'
import { ConfigError, readConfigText } from './load.ts'
import { ProbesConfigSchema } from './probes.ts'

// Kept in load.ts (no zod, no YAML): `ansai-agent collect` without a config file loads only that one.
export { ConfigError, DEFAULT_CONFIG_PATH } from './load.ts'

const ArgvSchema = z.array(z.string().min(1).max(4096)).min(1).max(64)

const MAX_RESEND_MS = 24 * 3_600_000

const resendWindowProblem = (value: unknown): string =>
  `a duration from 0 to 24h is needed, such as 90m (0 turns resending off), not ${JSON.stringify(value)}`

/** A resend window as a duration string: `90m` as given, `0` as `0m`, a bare whole number as minutes (`45` → `45m`). */
const resendWindowText = (value: number | string): string | undefined => {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? `${value}m` : undefined
  if (value === '0') return '0m'
  return DurationSchema.safeParse(value).success ? value : undefined
}

/**
 * `fleet.resendMinutes`: a duration (`90m`, `1h30m`), or `0` to turn resending off; a bare number counts minutes
 * (the key's name says so). From 0 to 24h; normalized to a duration string, as `heartbeat` is one.
 */
const ResendWindowSchema = z
  .union([z.number(), z.string()], { error: (issue) => resendWindowProblem(issue.input) })
  .transform((value, ctx) => {
    const text = resendWindowText(value)
    if (text === undefined || parseDuration(text) > MAX_RESEND_MS) {
      ctx.addIssue({ code: 'custom', message: resendWindowProblem(value) })
      return z.NEVER
    }
    return text
  })

/** The single-host configuration (`/etc/ansai/config.yaml`): every section optional, every default sensible. */
export const AgentConfigSchema = z
  .object({
    host: z
      .object({
        id: HostIdSchema.optional().describe(
          'A stable host id; default: the host name (in the fleet: the SSM instance id)',
        ),
        tags: TagsSchema.default({}).describe('Tags that policies target, e.g. { role: web }'),
      })
      .strict()
      .default({ tags: {} }),
    policies: z
      .object({
        builtin: z.boolean().default(true).describe('Load the baseline pack shipped with ANSAI'),
        paths: z.array(z.string().min(1)).default([]).describe('Your policy files or directories (YAML)'),
        disable: z.array(z.string().min(1)).default([]).describe('Names of loaded policies to leave out'),
      })
      .strict()
      .default({ builtin: true, paths: [], disable: [] }),
    probes: ProbesConfigSchema.default(ProbesConfigSchema.parse({})),
    notifications: z
      .object({
        channels: NotificationChannelsSchema.default({}).describe('Named channels: console, email, webhook, slack'),
        default: z
          .array(z.string().min(1))
          .default(['console'])
          .describe('Channels for policies that name none in `notify:`'),
      })
      .strict()
      .default({ channels: {}, default: ['console'] }),
    remediation: z
      .object({
        dryRun: z.boolean().default(false).describe('Decide and tell, never change anything'),
        backupCommands: z
          .record(z.string(), ArgvSchema)
          .default({})
          .describe('backup-retry: the command (argv, no shell) that runs each backup job that has no systemd unit'),
      })
      .strict()
      .default({ dryRun: false, backupCommands: {} }),
    state: z
      .object({
        dir: z.string().min(1).default('/var/lib/ansai').describe('Where the SQLite state and caches live'),
        keepAudit: DurationSchema.default('30d').describe('How long the audit trail is kept'),
      })
      .strict()
      .default({ dir: '/var/lib/ansai', keepAudit: '30d' }),
    interval: DurationSchema.default('60s').describe('Time between cycles of `ansai run` (the timer in production)'),
    fleet: z
      .object({
        reportsQueueUrl: z
          .url({ protocol: /^https?$/ })
          .describe(
            "The control plane's reports queue (stack output ReportsQueueUrl): set, this host reports to the fleet",
          ),
        region: z
          .string()
          .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'an AWS region such as eu-west-1')
          .optional()
          .describe('Default: the region in the queue URL'),
        heartbeat: DurationSchema.default('15m').describe(
          "Without a change of any policy's state, spooled reports are sent this often",
        ),
        resendMinutes: ResendWindowSchema.default('90m').describe(
          'Every send also carries the reports already sent within this window (a duration, or minutes; 0: off; at most 24h). ' +
            "The control plane writes a quiet host's state at most once an hour, so the trend samples of heartbeats it " +
            'did not write come again with a later batch (a report it already applied only adds samples: safe to repeat). ' +
            '90m = that hour + the 15-min heartbeat + a margin',
        ),
        spool: z
          .object({
            maxReports: z.number().int().min(10).max(100_000).default(1440),
            maxBytes: z
              .number()
              .int()
              .min(1_000_000)
              .max(1_000_000_000)
              .default(32 * 1024 * 1024),
          })
          .strict()
          .default({ maxReports: 1440, maxBytes: 32 * 1024 * 1024 })
          .describe(
            'Reports kept while the queue is unreachable; past this the oldest go (the sent ones kept for resending, too)',
          ),
      })
      .strict()
      .optional()
      .describe('The fleet shape: `ansai-agent report` sends to the control plane instead of running a local cycle'),
  })
  .strict()
export type AgentConfig = z.infer<typeof AgentConfigSchema>

/** Parse a config text (YAML); errors name the file, line and path. */
export const parseAgentConfig = (text: string, file: string): AgentConfig => {
  const counter = new LineCounter()
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true })
  if (doc.errors.length) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => `${file}:${e.linePos?.[0]?.line ?? 1}: YAML: ${e.message.split('\n')[0]}`),
    )
  }
  const parsed = AgentConfigSchema.safeParse(doc.toJS() ?? {})
  if (parsed.success) return parsed.data
  throw new ConfigError(
    file,
    parsed.error.issues.map((i) => {
      const path = i.path as (string | number)[]
      let line = 1
      for (let n = path.length; n >= 0; n--) {
        const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true)
        if (isNode(node) && node.range) {
          line = counter.linePos(node.range[0]).line
          break
        }
      }
      const where = path.join('.') || '(top level)'
      return `${file}:${line} ${where}: ${i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.join(', ')}` : i.message}`
    }),
  )
}

/**
 * Load the config file. The default path may be absent (defaults apply: a first run needs no config); a path
 * given explicitly must exist. (load.ts's `loadAgentConfigLazily` does the same and loads this module only when
 * there is a file.)
 */
export const loadAgentConfig = (path: string | undefined): { config: AgentConfig; file: string | undefined } => {
  const read = readConfigText(path)
  if (!read) return { config: AgentConfigSchema.parse({}), file: undefined }
  return { config: parseAgentConfig(read.text, read.file), file: read.file }
}
