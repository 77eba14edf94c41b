import { z } from 'zod'
import { HostIdSchema, NonNegativeIntSchema, TagsSchema, TimestampSchema } from './common.ts'
import { ObservationSchema, ProbeErrorSchema } from './observation.ts'

export const HostSchema = z
  .object({
    id: HostIdSchema,
    hostname: z.string().min(1).max(255),
    tags: TagsSchema.default({}),
  })
  .strict()
export type Host = z.infer<typeof HostSchema>

/** Report v1: what an agent sends each cycle (or at once when a policy's state changes). */
export const ReportV1Schema = z
  .object({
    schema: z.literal('ansai.report.v1'),
    host: HostSchema,
    agent: z.object({ version: z.string().min(1) }).strict(),
    time: TimestampSchema,
    /** Per-host sequence number, strictly increasing; state moves forward only on a newer sequence. */
    seq: NonNegativeIntSchema,
    observations: z.array(ObservationSchema).max(10_000),
    probeErrors: z.array(ProbeErrorSchema).default([]),
  })
  .strict()
export type ReportV1 = z.infer<typeof ReportV1Schema>
export type ReportV1Input = z.input<typeof ReportV1Schema>
