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

/**
 * What the agent's transport puts on the reports queue: the reports of one host taken since the last send, oldest
 * first. The agent samples every 60 s and sends at once when a policy's state changes; otherwise the samples ride
 * along with a heartbeat every 15 minutes, so the fleet gets every sample for trends at a fraction of the requests.
 */
export const ReportBatchV1Schema = z
  .object({
    schema: z.literal('ansai.report-batch.v1'),
    /** Why it was sent now: a state change, the heartbeat, the spool running full, or an operator. */
    reason: z.enum(['change', 'heartbeat', 'spool-full', 'manual']),
    /**
     * Reports at or below this sequence were sent before and come again as context (the agent's
     * `fleet.resendMinutes`): the control plane skips those it has applied already, without checking them again.
     */
    resentThrough: z.number().int().nonnegative().optional(),
    reports: z.array(ReportV1Schema).min(1).max(120),
  })
  .strict()
  .refine((b) => b.reports.every((r) => r.host.id === b.reports[0]!.host.id), {
    error: 'every report of a batch is about the same host',
    path: ['reports'],
  })
export type ReportBatchV1 = z.infer<typeof ReportBatchV1Schema>
export type ReportBatchV1Input = z.input<typeof ReportBatchV1Schema>
