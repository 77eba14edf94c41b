/**
 * The fleet configuration (`infra/fleet.example.yaml`, or the file given with `-c config=<path>`): parsed and
 * validated once, at synth, with every problem reported as `file:line:col path: message`. What the functions need at
 * run time becomes a `FleetRuntimeConfig` (functions/platform/runtime-config.ts), written as `fleet-config.json`
 * into each function's asset; the rest shapes the stacks (IAM scopes, schedules, retention).
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, relative, resolve } from 'node:path'
import { type Document, isMap, isNode, isScalar, LineCounter, parseAllDocuments, parseDocument } from 'yaml'
import { z } from 'zod'
import { readPolicySources } from '../agent/policy/files.ts'
import { builtinPolicySources } from '../agent/policy/load-config.ts'
import { FUNCTION_NAMES } from '../functions/platform/names.ts'
import {
  FleetChannelSchema,
  type FleetRuntimeConfig,
  FleetRuntimeConfigSchema,
} from '../functions/platform/runtime-config.ts'
import { DurationSchema, type Policy } from '../shared/contracts/index.ts'
import { parseDuration } from '../shared/engine/duration.ts'
import { formatPolicyError, loadPolicies, type PolicySource } from '../shared/policy/load.ts'
import { QUEUE_CONSUMERS } from './layout.ts'

export const DEFAULT_CONFIG_PATH = 'infra/fleet.example.yaml'

const ChannelNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'a channel name: lowercase letters, digits and -, e.g. ops-email')
const TagKeySchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9 _.:/=+@-]+$/, 'a tag key (letters, digits, spaces and _ . : / = + @ -)')
const TagValueSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9 _.:/=+@-]+$/, 'a tag value (letters, digits, spaces and _ . : / = + @ -); no wildcards')

/** CloudWatch Logs retention periods, in days. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const

export const FleetConfigSchema = z.strictObject({
  version: z.literal(1).describe('The format of this file; 1'),
  name: z
    .string()
    .regex(/^[A-Z][A-Za-z0-9]{0,23}$/, 'a name such as Ansai or AnsaiProd: a capital letter, then letters and digits')
    .default('Ansai')
    .describe('Prefix of the stack names (<name>Stateful, <name>ControlPlane) and of the exports'),
  notifications: z
    .strictObject({
      channels: z
        .record(ChannelNameSchema, FleetChannelSchema)
        .default({})
        .describe('Named channels: email (SES), webhook (Standard Webhooks, whsec_ secret in Secrets Manager), slack'),
      default: z.array(ChannelNameSchema).default([]).describe('Channels for policies that name none in notify:'),
      digest: z.array(ChannelNameSchema).default([]).describe('Channels of the daily digest'),
      holdFixStarted: DurationSchema.refine(
        (d) => parseDuration(d) <= 900_000 && parseDuration(d) % 1000 === 0,
        'whole seconds up to 15m (SQS holds a message at most 15 minutes)',
      )
        .default('2m')
        .describe(
          'A "fix started" message waits this long; when the fix resolved the incident meanwhile, only the resolution message goes out (0s: at once)',
        ),
    })
    .default({ channels: {}, default: [], digest: [], holdFixStarted: '2m' }),
  hostGroups: z
    .record(
      ChannelNameSchema,
      z.strictObject({
        description: z.string().max(256).optional(),
        tags: z
          .record(TagKeySchema, z.union([TagValueSchema, z.array(TagValueSchema).min(1).max(50)]))
          .refine((t) => Object.keys(t).length > 0, 'at least one tag: an empty selector would mean every host'),
      }),
    )
    .default({})
    .describe(
      'Hosts ANSAI may send commands to, by tag, besides ansai:managed=true. None: every host tagged ansai:managed=true',
    ),
  policies: z
    .strictObject({
      baseline: z.boolean().default(true).describe('Load the baseline pack shipped with ANSAI'),
      paths: z
        .array(z.string().min(1))
        .default([])
        .describe('Policy files or directories (YAML), relative to this file'),
      disable: z.array(z.string().min(1)).default([]).describe('Names of loaded policies to leave out'),
    })
    .default({ baseline: true, paths: [], disable: [] }),
  fleet: z
    .strictObject({
      shards: z.number().int().min(1).max(4096).default(16),
      dryRun: z.boolean().default(false),
      verifyWithin: DurationSchema.default('15m'),
      maxCommandsPerMinute: z.number().int().min(1).max(10_000).default(100),
      quietWriteEvery: DurationSchema.refine(
        (d) => parseDuration(d) <= 6 * 3_600_000,
        "at most 6h (and below the agents' fleet.resendMinutes minus their heartbeat, 90m − 15m by default)",
      )
        .default('60m')
        .describe(
          "Write a host's state at most this often when a report changed only trend samples and its last-seen time (0m: every report). Host silence is measured beyond it",
        ),
      metrics: z
        .enum(['problems', 'all'])
        .default('problems')
        .describe(
          'Custom CloudWatch metrics: problems only (each emitted only when it happens), or all (also activity counts, about $0.30 a month each)',
        ),
    })
    .default({
      shards: 16,
      dryRun: false,
      verifyWithin: '15m',
      maxCommandsPerMinute: 100,
      quietWriteEvery: '60m',
      metrics: 'problems',
    }),
  schedules: z
    .strictObject({
      evaluate: DurationSchema.refine((d) => {
        const ms = parseDuration(d)
        return ms >= 60_000 && ms % 60_000 === 0 && ms <= 86_400_000
      }, 'whole minutes from 1m to 24h, e.g. 10m')
        .default('10m')
        .describe(
          'The fleet round: silent hosts, certificate and backup ages, overdue verifications. Each round reads every host (½ RRU a host): every 10 minutes is $0.29 a month per 1,000 hosts, every 5 minutes twice that',
        ),
      digest: z
        .strictObject({
          at: z
            .string()
            .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day such as 08:00')
            .default('08:00'),
          timezone: z
            .string()
            .regex(/^[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)*$/, 'an IANA time zone such as UTC or Europe/Paris')
            .default('UTC'),
        })
        .default({ at: '08:00', timezone: 'UTC' }),
    })
    .default({ evaluate: '10m', digest: { at: '08:00', timezone: 'UTC' } }),
  functions: z
    .strictObject({
      memoryMb: z.number().int().min(128).max(10_240).default(512),
      logRetentionDays: z
        .number()
        .refine((n) => (LOG_RETENTION_DAYS as readonly number[]).includes(n), `one of ${LOG_RETENTION_DAYS.join(', ')}`)
        .default(30),
      logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
      reservedConcurrency: z
        .partialRecord(z.enum(FUNCTION_NAMES), z.number().int().min(1).max(1000))
        .default({ 'dispatch-remediation': 10, 'send-digest': 1 })
        .describe('Reserved concurrency per function; {} on accounts whose concurrency quota is small'),
    })
    .default({
      memoryMb: 512,
      logRetentionDays: 30,
      logLevel: 'INFO',
      reservedConcurrency: { 'dispatch-remediation': 10, 'send-digest': 1 },
    }),
  storage: z
    .strictObject({
      retain: z.boolean().default(true).describe('Keep the table and the bucket when the stacks are deleted'),
      commandOutputDays: z.number().int().min(1).max(3650).default(30),
    })
    .default({ retain: true, commandOutputDays: 30 }),
})
export type FleetConfig = z.infer<typeof FleetConfigSchema>

/** A fleet config that does not validate: every problem, one per line, `file:line:col path: message`. */
export class FleetConfigError extends Error {
  override name = 'FleetConfigError'
  readonly problems: string[]
  constructor(file: string, problems: string[]) {
    super(`${file}: invalid fleet configuration\n${problems.map((p) => `  ${p}`).join('\n')}`)
    this.problems = problems
  }
}

type Path = (string | number)[]

const formatPath = (path: Path): string =>
  path.reduce<string>(
    (out, seg) => (typeof seg === 'number' ? `${out}[${seg}]` : out ? `${out}.${seg}` : String(seg)),
    '',
  )

/** Line and column of the deepest node on the path that exists (a missing key points at its parent). */
const locate = (doc: Document, counter: LineCounter, path: Path): { line: number; col: number } => {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true)
    if (isNode(node) && node.range) return counter.linePos(node.range[0])
  }
  return { line: 1, col: 1 }
}

/** Where a key itself is (for unknown keys): the key node of the pair in the parent map. */
const locateKey = (doc: Document, counter: LineCounter, parent: Path, key: string): { line: number; col: number } => {
  const map = parent.length === 0 ? doc.contents : doc.getIn(parent, true)
  if (isMap(map)) {
    const pair = map.items.find((item) => isScalar(item.key) && item.key.value === key)
    if (pair && isNode(pair.key) && pair.key.range) return counter.linePos(pair.key.range[0])
  }
  return locate(doc, counter, [...parent, key])
}

/** A path for messages: relative to the working directory when inside it, else absolute. */
const shownPath = (file: string): string => {
  const rel = relative(process.cwd(), file)
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file
}

export interface LoadedFleetConfig {
  /** The config file as given (shown in errors). */
  file: string
  config: FleetConfig
  /** What every function gets as fleet-config.json. */
  runtime: FleetRuntimeConfig
  policies: Policy[]
  /** SES identities the email channels send from: each From address and its domain. */
  sesIdentities: string[]
  /** SES configuration sets the email channels name. */
  sesConfigurationSets: string[]
  /** Secrets Manager secret ARNs of the webhook and Slack channels. */
  secretArns: string[]
}

const issueMessage = (issue: z.core.$ZodIssue, key?: string): string =>
  key !== undefined ? `unknown key '${key}' (check its spelling and indentation)` : issue.message

/** The address inside `Name <address>` or the address itself. */
export const emailAddressOf = (from: string): string => /<([^<>]+)>\s*$/.exec(from)?.[1] ?? from.trim()

/**
 * Parse and validate a fleet config text. `file` is shown in errors; `baseDir` is where policy paths are relative to
 * (the config file's directory). Throws {@link FleetConfigError} listing every problem.
 */
export const parseFleetConfig = (text: string, file: string, baseDir: string): LoadedFleetConfig => {
  const counter = new LineCounter()
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false })
  if (doc.errors.length) {
    throw new FleetConfigError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? { line: 1, col: 1 }
        return `${file}:${pos.line}:${pos.col}: YAML: ${e.message.split('\n')[0]}`
      }),
    )
  }
  const at = (path: Path, message: string, unknownKey = false): string => {
    const pos = unknownKey
      ? locateKey(doc, counter, path.slice(0, -1), String(path[path.length - 1]))
      : locate(doc, counter, path)
    return `${file}:${pos.line}:${pos.col} ${formatPath(path) || '(top level)'}: ${message}`
  }
  const parsed = FleetConfigSchema.safeParse(doc.toJS({ maxAliasCount: 100 }) ?? {})
  if (!parsed.success) {
    throw new FleetConfigError(
      file,
      parsed.error.issues.flatMap((issue) => {
        const path = issue.path as Path
        if (issue.code === 'unrecognized_keys') {
          return issue.keys.map((k) => at([...path, k], issueMessage(issue, k), true))
        }
        return [at(path, issueMessage(issue))]
      }),
    )
  }
  const config = parsed.data
  const problems: string[] = []

  // channel references
  const channels = config.notifications.channels
  const known = Object.keys(channels)
  const checkChannel = (name: string, path: Path): void => {
    if (!(name in channels)) {
      problems.push(at(path, `no channel '${name}' (channels: ${known.length ? known.join(', ') : 'none defined'})`))
    }
  }
  for (const list of ['default', 'digest'] as const) {
    config.notifications[list].forEach((n, i) => {
      checkChannel(n, ['notifications', list, i])
    })
  }

  // a queue consumer needs room for SQS's two pollers at least
  for (const [name, reserved] of Object.entries(config.functions.reservedConcurrency)) {
    if (reserved !== undefined && reserved < 2 && (Object.values(QUEUE_CONSUMERS) as string[]).includes(name)) {
      problems.push(
        at(['functions', 'reservedConcurrency', name], `${name} consumes an SQS queue: reserve 2 or more, or none`),
      )
    }
  }

  // policies: the baseline pack and the configured files, loaded and validated by the policy loader
  const sources: { display: PolicySource; label: string }[] = []
  if (config.policies.baseline) {
    for (const s of builtinPolicySources()) sources.push({ display: s, label: s.file })
  }
  config.policies.paths.forEach((p, i) => {
    const abs = isAbsolute(p) ? p : resolve(baseDir, p)
    try {
      for (const s of readPolicySources([abs])) {
        sources.push({ display: { file: shownPath(s.file), text: s.text }, label: relative(baseDir, s.file) || s.file })
      }
    } catch (err) {
      problems.push(at(['policies', 'paths', i], `${(err as Error).message}`))
    }
  })
  const loaded = loadPolicies(
    sources.map((s) => s.display),
    { allowPlanned: true },
  )
  problems.push(...loaded.errors.map(formatPolicyError))
  const names = new Set(loaded.policies.map((p) => p.metadata.name))
  config.policies.disable.forEach((n, i) => {
    if (!names.has(n)) problems.push(at(['policies', 'disable', i], `no loaded policy is named '${n}'`))
  })
  if (loaded.errors.length === 0) {
    for (const { display } of sources) {
      const lc = new LineCounter()
      const docs = parseAllDocuments(display.text, { lineCounter: lc })
      for (const d of Array.isArray(docs) ? docs : [docs]) {
        const notify = d.getIn(['spec', 'notify'])
        const policyName = d.getIn(['metadata', 'name'])
        const list = (d.toJS() as { spec?: { notify?: unknown } } | null)?.spec?.notify
        if (!notify || !Array.isArray(list)) continue
        list.forEach((n, i) => {
          if (typeof n === 'string' && !(n in channels)) {
            const pos = locate(d, lc, ['spec', 'notify', i])
            problems.push(
              `${display.file}:${pos.line}:${pos.col} spec.notify[${i}]: policy '${String(policyName)}' names channel '${n}', which the fleet config does not define (channels: ${known.length ? known.join(', ') : 'none'})`,
            )
          }
        })
      }
    }
  }
  if (problems.length) throw new FleetConfigError(file, problems)

  const runtimeInput = {
    version: 1,
    policies: sources.map((s) => ({ file: s.label, text: s.display.text })),
    disable: config.policies.disable,
    channels,
    defaultChannels: config.notifications.default,
    digestChannels: config.notifications.digest,
    holdFixStarted: config.notifications.holdFixStarted,
    shards: config.fleet.shards,
    dryRun: config.fleet.dryRun,
    verifyWithin: config.fleet.verifyWithin,
    maxCommandsPerMinute: config.fleet.maxCommandsPerMinute,
    quietWriteEvery: config.fleet.quietWriteEvery,
    metrics: config.fleet.metrics,
  }
  const runtime = FleetRuntimeConfigSchema.safeParse(runtimeInput)
  if (!runtime.success) {
    throw new FleetConfigError(
      file,
      runtime.error.issues.map((i) => `${file}: runtime config ${formatPath(i.path as Path)}: ${i.message}`),
    )
  }

  const sesIdentities = new Set<string>()
  const sesConfigurationSets = new Set<string>()
  const secretArns = new Set<string>()
  for (const channel of Object.values(channels)) {
    if (channel.type === 'email') {
      const address = emailAddressOf(channel.from)
      sesIdentities.add(address)
      sesIdentities.add(address.slice(address.lastIndexOf('@') + 1))
      if (channel.configurationSet) sesConfigurationSets.add(channel.configurationSet)
    } else if (channel.type === 'webhook') secretArns.add(channel.secretArn)
    else secretArns.add(channel.urlSecretArn)
  }
  return {
    file,
    config,
    runtime: runtime.data,
    policies: loaded.policies,
    sesIdentities: [...sesIdentities].sort(),
    sesConfigurationSets: [...sesConfigurationSets].sort(),
    secretArns: [...secretArns].sort(),
  }
}

/** Read and validate the fleet config file at `path` (relative to the working directory, or absolute). */
export const loadFleetConfig = (path: string = DEFAULT_CONFIG_PATH): LoadedFleetConfig => {
  const abs = resolve(path)
  let text: string
  try {
    text = readFileSync(abs, 'utf8')
  } catch (err) {
    throw new FleetConfigError(path, [
      `${path}: cannot read the fleet config (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give one with -c config=<file>`,
    ])
  }
  return parseFleetConfig(text, path, dirname(abs))
}
