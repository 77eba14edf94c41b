import type { ProbeError } from '../../shared/contracts/index.ts'

/**
 * What every pure probe parser returns: never an exception. A failure names the probe and what was wrong, in the
 * shape of the report's `ProbeError`, so a collector can pass it on as is. A success may carry `problems`: parts of
 * the input that were skipped (one bad unit block, one odd container) while the rest was usable.
 */
export type ParseResult<T> = ParseOk<T> | ParseFailure

export interface ParseOk<T> {
  ok: true
  value: T
  problems: ProbeError[]
}

export interface ParseFailure {
  ok: false
  error: ProbeError
}

export const parsed = <T>(value: T, problems: ProbeError[] = []): ParseOk<T> => ({ ok: true, value, problems })

export const failed = (probe: string, reason: string): ParseFailure => ({
  ok: false,
  error: { probe, reason: reason.length > 0 ? reason : 'unknown error' },
})

export const problem = (probe: string, reason: string): ProbeError => ({ probe, reason })

/** Shortens outside text quoted in an error message. */
export const quote = (text: string, max = 80): string =>
  JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text)

/** A non-negative safe integer written in decimal, or undefined. */
export function parseNonNegativeInt(text: string): number | undefined {
  const t = text.trim()
  if (!/^\d+$/.test(t)) return undefined
  const n = Number(t)
  return Number.isSafeInteger(n) ? n : undefined
}

/** Splits text into lines, tolerating CRLF. */
export const splitLines = (text: string): string[] => text.split(/\r?\n/)
