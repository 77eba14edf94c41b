import { z } from 'zod'
import { HostIdSchema, SeveritySchema, TimestampSchema } from './common.ts'

export const LevelSchema = z.enum(['ok', 'warning', 'critical', 'emergency'])

/** Event types, `ansai.<noun>.<past-verb>.v1`; every incident or fix event also goes to users' integrations. */
export const EventTypeSchema = z.enum([
  'ansai.incident.opened.v1',
  'ansai.incident.worsened.v1',
  'ansai.incident.escalated.v1',
  'ansai.incident.resolved.v1',
  'ansai.incident.failed.v1',
  'ansai.milestone.reached.v1',
  'ansai.fix.started.v1',
  'ansai.fix.verified.v1',
  'ansai.fix.failed.v1',
  'ansai.fix.skipped.v1',
  /** The fleet's daily summary (`send-digest`); not an incident event. */
  'ansai.digest.sent.v1',
])
export type EventType = z.infer<typeof EventTypeSchema>

export const EvidenceSchema = z.record(z.string(), z.unknown())

const DecisionBaseSchema = z.object({
  /** Deterministic idempotency key: the same input always gives the same key. */
  key: z.string().min(1).max(128),
  host: HostIdSchema,
  policy: z.string().min(1),
  resource: z.string(),
  incidentId: z.string().min(1),
  severity: LevelSchema,
  at: TimestampSchema,
})

export const RemediateDecisionSchema = DecisionBaseSchema.extend({
  type: z.literal('remediate'),
  step: z.number().int().nonnegative(),
  attempt: z.number().int().positive(),
  remediation: z.string().min(1),
  params: z.record(z.string(), z.unknown()),
  risk: z.enum(['safe', 'disruptive', 'destructive']),
  dryRun: z.boolean(),
  verifyBy: TimestampSchema,
  reason: z.string(),
}).strict()

export const NotifyDecisionSchema = DecisionBaseSchema.extend({
  type: z.literal('notify'),
  event: EventTypeSchema,
  channels: z.array(z.string()),
  /** Set when a human is paged: the escalation target from the ladder or the limit. */
  escalateTo: z.string().optional(),
  summary: z.string(),
  evidence: EvidenceSchema,
}).strict()

export const DecisionSchema = z.discriminatedUnion('type', [RemediateDecisionSchema, NotifyDecisionSchema])
export type Decision = z.infer<typeof DecisionSchema>
export type RemediateDecision = z.infer<typeof RemediateDecisionSchema>
export type NotifyDecision = z.infer<typeof NotifyDecisionSchema>

export const FindingSchema = z
  .object({
    host: HostIdSchema,
    policy: z.string(),
    resource: z.string(),
    kind: z.string(),
    level: LevelSchema,
    /** What the expression saw (observation fields and derived values used by the policy). */
    values: z.record(z.string(), z.unknown()),
    incident: z.string().optional(),
    status: z.string().optional(),
    notes: z.array(z.string()),
  })
  .strict()
export type Finding = z.infer<typeof FindingSchema>

export { SeveritySchema }
