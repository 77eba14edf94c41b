import { z } from 'zod'
import { HostIdSchema, TimestampSchema } from './common.ts'

export const RiskSchema = z.enum(['safe', 'disruptive', 'destructive'])
export type Risk = z.infer<typeof RiskSchema>

/** What the control plane asks a host to do (carried by SSM Run Command in the fleet, in process on one host). */
export const RemediationRequestV1Schema = z
  .object({
    schema: z.literal('ansai.remediation-request.v1'),
    key: z.string().min(1).max(128),
    host: HostIdSchema,
    remediation: z.string().min(1),
    params: z.record(z.string(), z.unknown()),
    dryRun: z.boolean(),
    policy: z.string(),
    resource: z.string(),
    incidentId: z.string(),
    requestedAt: TimestampSchema,
  })
  .strict()
export type RemediationRequestV1 = z.infer<typeof RemediationRequestV1Schema>

export const RemediationStatusSchema = z.enum(['succeeded', 'failed', 'skipped', 'dry-run'])

/** One JSON line printed by `ansai-agent remediate`; bounded well under SSM's 24,000-character output. */
export const RemediationResultV1Schema = z
  .object({
    schema: z.literal('ansai.remediation-result.v1'),
    key: z.string().min(1).max(128),
    remediation: z.string().min(1),
    host: HostIdSchema.optional(),
    status: RemediationStatusSchema,
    dryRun: z.boolean(),
    startedAt: TimestampSchema,
    finishedAt: TimestampSchema,
    durationMs: z.number().nonnegative(),
    summary: z.string().max(2000),
    /** Bytes recovered per category (disk-cleanup), measured. */
    bytesRecovered: z.record(z.string(), z.number().int().nonnegative()).optional(),
    /** The first items acted on (files, units); the full list goes to the audit trail. */
    items: z.array(z.string().max(1024)).max(50).optional(),
    itemsTotal: z.number().int().nonnegative().optional(),
    evidence: z.record(z.string(), z.unknown()).default({}),
    error: z.string().max(4000).optional(),
  })
  .strict()
export type RemediationResultV1 = z.infer<typeof RemediationResultV1Schema>
export type RemediationResultV1Input = z.input<typeof RemediationResultV1Schema>
