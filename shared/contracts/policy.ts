import { z } from 'zod'
import { HostIdSchema, SeveritySchema } from './common.ts'
import { OBSERVATION_KINDS } from './observation.ts'

/** What a policy observes: an observation kind, or `host` (the engine's own signal: silence since the last report). */
export const ObserveSchema = z.enum(['host', ...OBSERVATION_KINDS])

/** `30s`, `5m`, `1h`, `7d`, `2w`, or compounds such as `1h30m`. */
export const DurationSchema = z
  .string()
  .regex(/^(\d+(ms|s|m|h|d|w))+$/, 'a duration such as 30s, 5m, 1h, 7d or 1h30m')
  .describe('A duration: a number and a unit (ms, s, m, h, d, w), e.g. 30m, 1h, 7d, 1h30m')

/** `3 cycles` (3 in a row) or `3 times within 5 cycles`. At most 32 cycles. */
export const DebounceSchema = z
  .string()
  .regex(
    /^\s*(\d+)\s+cycles?\s*$|^\s*(\d+)\s+times?\s+within\s+(\d+)\s+cycles?\s*$/,
    "a debounce such as '3 cycles' or '3 times within 5 cycles'",
  )
  .describe("Debounce: '3 cycles' (three evaluations in a row) or '3 times within 5 cycles'")

export const CelExpressionSchema = z
  .string()
  .min(1)
  .max(2000)
  .describe('A CEL expression over the observation fields and derived values, returning a bool')

export const TierSchema = z
  .object({
    when: CelExpressionSchema,
    for: DebounceSchema.optional(),
  })
  .strict()

export const SeverityTiersSchema = z
  .object({
    warning: TierSchema.optional(),
    critical: TierSchema.optional(),
    emergency: TierSchema.optional(),
  })
  .strict()
  .refine((t) => t.warning || t.critical || t.emergency, 'at least one severity tier (warning, critical, emergency)')

const TagValuesSchema = z.array(z.string().min(1).max(256)).min(1)

export const TargetsSchema = z
  .object({
    tags: z.record(z.string().min(1).max(128), TagValuesSchema).optional(),
    hosts: z.array(HostIdSchema).min(1).optional(),
  })
  .strict()
  .describe(
    'Which hosts the policy applies to. Leave it out to apply the policy wherever its pack is enabled; an empty selector or a wildcard is refused.',
  )

const MatchScalarSchema = z.union([z.string(), z.number(), z.boolean()])
export const MatchSchema = z
  .record(z.string().min(1), z.union([MatchScalarSchema, z.array(MatchScalarSchema).min(1)]))
  .describe('Which resources of the observed kind: field equality; strings may use * as a glob; a list means any of')

export const VerifySchema = z
  .object({
    within: DurationSchema.default('10m'),
  })
  .strict()

export const RemediationStepSchema = z
  .object({
    at: SeveritySchema.optional().describe('The lowest severity at which this step runs (default: any open incident)'),
    run: z.string().regex(/^[a-z][a-z0-9-]*$/, 'a remediation id such as disk-cleanup'),
    params: z.record(z.string(), z.unknown()).default({}),
    verify: VerifySchema.optional(),
  })
  .strict()

export const EscalationStepSchema = z
  .object({
    at: SeveritySchema.optional(),
    escalate: z.string().min(1).max(64).describe('Who to page: a notification channel or level name, e.g. page'),
  })
  .strict()

export const LadderStepSchema = z.union([RemediationStepSchema, EscalationStepSchema])

export const LimitSchema = z
  .object({
    max: z.number().int().min(1).max(1000),
    within: DurationSchema,
    then: z.enum(['escalate', 'stop']).default('escalate'),
  })
  .strict()

export const WindowSchema = z
  .object({
    cron: z.string().min(9).max(200).describe('Five-field cron: the minutes in which fixes may run'),
    tz: z.string().min(1).default('UTC'),
  })
  .strict()

export const FlappingSchema = z
  .object({
    changes: z.number().int().min(2).max(100).default(4),
    within: DurationSchema.default('1h'),
    stableFor: z.number().int().min(1).max(100).default(5),
  })
  .strict()

export const GuardsSchema = z
  .object({
    limit: LimitSchema.optional(),
    cooldown: DurationSchema.optional(),
    window: WindowSchema.optional(),
    dependsOn: z.array(z.string().min(1)).default([]),
    flapping: FlappingSchema.optional(),
  })
  .strict()

export const MilestonesSchema = z
  .object({
    field: z.string().min(1).describe('A numeric value that falls over time, e.g. daysLeft'),
    at: z.array(z.number()).min(1).max(20),
  })
  .strict()
  .describe('Alert points: each fires one notification once per incident as the value falls to or below it')

export const TrendSchema = z
  .object({
    window: DurationSchema.default('1h'),
    minSamples: z.number().int().min(2).max(10_000).default(4),
  })
  .strict()

export const PolicyNameSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'lowercase letters, digits and dashes (kebab-case)')

export const PolicySpecSchema = z
  .object({
    targets: TargetsSchema.optional(),
    observe: ObserveSchema.describe('The observation kind: service, filesystem, memory, certificate, ... or host'),
    match: MatchSchema.optional(),
    severity: SeverityTiersSchema,
    milestones: MilestonesSchema.optional(),
    trend: TrendSchema.optional(),
    remediate: z.array(LadderStepSchema).max(10).default([]),
    verify: VerifySchema.optional(),
    guards: GuardsSchema.default({ dependsOn: [] }),
    mode: z.enum(['active', 'passive']).default('active'),
    allowDestructive: z
      .boolean()
      .default(false)
      .describe('Opt-in for remediations whose risk is destructive (they delete data)'),
    notify: z.array(z.string().min(1)).default([]),
  })
  .strict()

export const PolicySchema = z
  .object({
    apiVersion: z.literal('ansai/v1'),
    kind: z.literal('Policy'),
    metadata: z
      .object({
        name: PolicyNameSchema,
        description: z.string().max(500).optional(),
        labels: z.record(z.string(), z.string()).optional(),
      })
      .strict(),
    spec: PolicySpecSchema,
  })
  .strict()
export type Policy = z.infer<typeof PolicySchema>
export type PolicyInput = z.input<typeof PolicySchema>
export type LadderStep = z.infer<typeof LadderStepSchema>
export type RemediationStep = z.infer<typeof RemediationStepSchema>
