import { z } from 'zod'
import { HostIdSchema, TimestampSchema } from './common.ts'
import { LevelSchema } from './decision.ts'

/**
 * Incident lifecycle: open → remediating (step k) → verifying → resolved; or escalated (a human owns it now), or
 * failed (the ladder ran out with nobody to escalate to). Flapping incidents are held open until stable.
 */
export const IncidentStatusSchema = z.enum(['open', 'remediating', 'verifying', 'escalated', 'failed', 'resolved'])
export type IncidentStatus = z.infer<typeof IncidentStatusSchema>

export const AttemptSchema = z
  .object({
    key: z.string(),
    step: z.number().int().nonnegative(),
    remediation: z.string(),
    startedAt: TimestampSchema,
    finishedAt: TimestampSchema.optional(),
    verifyBy: TimestampSchema,
    status: z.enum(['pending', 'succeeded', 'failed', 'skipped', 'verified', 'unverified']),
    summary: z.string().optional(),
  })
  .strict()
export type Attempt = z.infer<typeof AttemptSchema>

export const IncidentSchema = z
  .object({
    id: z.string().min(1),
    host: HostIdSchema,
    policy: z.string(),
    resource: z.string(),
    kind: z.string(),
    status: IncidentStatusSchema,
    severity: LevelSchema,
    peakSeverity: LevelSchema,
    openedAt: TimestampSchema,
    updatedAt: TimestampSchema,
    resolvedAt: TimestampSchema.optional(),
    /** Ladder steps already taken (indexes into the policy's `remediate` list). */
    stepsDone: z.array(z.number().int().nonnegative()),
    attempts: z.array(AttemptSchema),
    milestones: z.array(z.number()),
    flapping: z.boolean(),
    escalatedTo: z.string().optional(),
    /** Why the next fix is held back (window, dependency, limit), so the same reason is told once. */
    blockedBy: z.string().optional(),
    lastValues: z.record(z.string(), z.unknown()),
  })
  .strict()
export type Incident = z.infer<typeof IncidentSchema>
