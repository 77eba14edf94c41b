import { z } from 'zod'
import { HostIdSchema, TimestampSchema } from './common.ts'
import { EventTypeSchema, EvidenceSchema, LevelSchema } from './decision.ts'

/** A message to people, grouped per incident; `id` is the dedup key (the decision key). */
export const NotificationV1Schema = z
  .object({
    schema: z.literal('ansai.notification.v1'),
    id: z.string().min(1).max(128),
    channel: z.string().min(1),
    event: EventTypeSchema,
    host: HostIdSchema,
    policy: z.string(),
    resource: z.string(),
    incidentId: z.string(),
    severity: LevelSchema,
    subject: z.string().max(300),
    text: z.string().max(20_000),
    evidence: EvidenceSchema,
    escalateTo: z.string().optional(),
    at: TimestampSchema,
  })
  .strict()
export type NotificationV1 = z.infer<typeof NotificationV1Schema>
