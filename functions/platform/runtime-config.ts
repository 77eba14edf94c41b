import { z } from 'zod'
import { DurationSchema } from '../../shared/contracts/index.ts'

/**
 * What the CDK app writes into every function's asset (`fleet-config.json`) after validating the user's fleet config
 * at synth time: the policy sources (YAML text, loaded and compiled again at cold start), the notification channels
 * and the fleet's knobs. Secrets are never in it: only the ARNs of Secrets Manager secrets.
 */

const AddressSchema = z.string().regex(/^(?:[^\s<>@]+@[^\s<>@]+|[^<>]*<[^\s<>@]+@[^\s<>@]+>)$/, 'an email address')
const SecretArnSchema = z
  .string()
  .regex(/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/, 'a Secrets Manager secret ARN')

export const FleetChannelSchema = z.discriminatedUnion('type', [
  /** Email through SES v2 from a verified identity. */
  z.strictObject({
    type: z.literal('email'),
    from: AddressSchema,
    to: z.array(AddressSchema).min(1).max(50),
    configurationSet: z.string().min(1).optional(),
  }),
  /** A generic JSON webhook signed by the Standard Webhooks specification; the `whsec_` secret is in Secrets Manager. */
  z.strictObject({
    type: z.literal('webhook'),
    url: z.url({ protocol: /^https?$/ }),
    secretArn: SecretArnSchema,
  }),
  /** A Slack incoming webhook; its URL is the secret. */
  z.strictObject({ type: z.literal('slack'), urlSecretArn: SecretArnSchema }),
])
export type FleetChannel = z.infer<typeof FleetChannelSchema>

export const FleetRuntimeConfigSchema = z.strictObject({
  version: z.literal(1),
  /** Policy sources in load order: the baseline pack (unless turned off) and the user's packs. */
  policies: z.array(z.strictObject({ file: z.string().min(1), text: z.string() })),
  /** Names of loaded policies to leave out. */
  disable: z.array(z.string().min(1)).default([]),
  channels: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]*$/), FleetChannelSchema).default({}),
  /** Channels for policies that name none. */
  defaultChannels: z.array(z.string().min(1)).default([]),
  /** Channels of the daily digest. */
  digestChannels: z.array(z.string().min(1)).default([]),
  /**
   * How long a "fix started" message waits before it goes out; if the fix resolved the incident meanwhile it is
   * dropped, and the resolution message (which names the fix) is the one people get. 0s: at once. At most 15m.
   */
  holdFixStarted: DurationSchema.default('2m'),
  /** Shards of the scheduled evaluation round (each shard is one SQS message and one batch of hosts). */
  shards: z.number().int().min(1).max(4096).default(16),
  /** Decide and tell, never send a command (the whole fleet). */
  dryRun: z.boolean().default(false),
  /** A fix whose verification has not come back by then is escalated by the scheduled round. */
  verifyWithin: DurationSchema.default('15m'),
  /** Fleet-wide breaker: at most this many commands per minute across the fleet; the rest wait in the queue. */
  maxCommandsPerMinute: z.number().int().min(1).max(10_000).default(100),
  /**
   * A host's state is written whenever anything that decides changes (a level, a match, an incident, a fix); when a
   * report changed only trend samples and the last-seen time, at most this often (0m: every report). Agents re-send
   * their recent reports with every batch (`fleet.resendMinutes`), so no sample is lost; host silence is measured
   * beyond this interval.
   */
  quietWriteEvery: DurationSchema.default('60m'),
  /**
   * Custom CloudWatch metrics: `problems` (rejected reports, failed records, refused commands, failed fixes,
   * undelivered notifications, silent hosts; each only when it happens) or `all` (also the activity counts).
   */
  metrics: z.enum(['problems', 'all']).default('problems'),
})
export type FleetRuntimeConfig = z.infer<typeof FleetRuntimeConfigSchema>
