import { z } from 'zod'

/** An ISO-8601 timestamp with an explicit offset, e.g. `2026-11-23T10:00:00Z`. */
export const TimestampSchema = z.iso.datetime({ offset: true })

export const NonNegativeIntSchema = z.number().int().nonnegative()
export const NonNegativeNumberSchema = z.number().nonnegative()
export const BytesSchema = NonNegativeIntSchema

/** Host ids are SSM managed-instance ids in the fleet (`i-…`, `mi-…`) and any stable name on a single host. */
export const HostIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'host id: letters, digits and . _ : - only')

export const TagsSchema = z.record(z.string().min(1).max(128), z.string().max(256))

export const SeveritySchema = z.enum(['warning', 'critical', 'emergency'])
export type Severity = z.infer<typeof SeveritySchema>
/** Severity order, lowest first. `ok` means no tier matched. */
export const SEVERITY_ORDER = ['ok', 'warning', 'critical', 'emergency'] as const
export type Level = (typeof SEVERITY_ORDER)[number]
export const levelRank = (level: Level): number => SEVERITY_ORDER.indexOf(level)
