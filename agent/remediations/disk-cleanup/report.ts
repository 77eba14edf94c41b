import type { RemediationResultV1 } from '../../../shared/contracts/index.ts'

/**
 * Pure helpers for disk-cleanup's one result line: byte formatting, the summary, parsers of the sizes other tools
 * print, and the bounding that keeps the line well under SSM's 24,000-character output limit whatever the number or
 * the names of the files.
 */

/** The most characters the JSON result line may have. SSM cuts command output at 24,000. */
export const RESULT_MAX_CHARS = 16_000
/** The most items (paths) in a result; the schema allows 50. */
export const MAX_ITEMS = 50
/** A path longer than this is shortened in the middle in `items` (the audit trail keeps it whole). */
export const MAX_ITEM_CHARS = 240
/** Problems kept in the evidence, each shortened to {@link MAX_PROBLEM_CHARS}. */
export const MAX_PROBLEMS = 20
export const MAX_PROBLEM_CHARS = 300

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** 43_201_331 → `41.2 MiB`; below 1 KiB in bytes (`512 B`). Binary units, one decimal. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes)
  const sign = bytes < 0 ? '-' : ''
  let n = Math.abs(bytes)
  if (n < 1024) return `${sign}${Math.round(n)} B`
  let unit = -1
  while (n >= 1024 && unit < UNITS.length - 1) {
    n /= 1024
    unit++
  }
  return `${sign}${n.toFixed(1)} ${UNITS[unit]}`
}

/** Keeps the start and the end of a long text (the end of a path names the file): `/var/lo…/app.log`. */
export function shortenMiddle(text: string, max: number): string {
  if (text.length <= max) return text
  const keep = max - 1
  const head = Math.ceil(keep / 3)
  return `${text.slice(0, head)}…${text.slice(text.length - (keep - head))}`
}

const SIZE_UNITS_1000: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, PB: 1e15 }
const SIZE_UNITS_1024: Record<string, number> = {
  B: 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
  P: 1024 ** 5,
  E: 1024 ** 6,
}

/**
 * `docker image prune` ends with `Total reclaimed space: 1.534GB` (docker's HumanSize: decimal units, B, kB, MB,
 * GB, TB, PB). Returns bytes, or undefined when the line is missing or odd.
 */
export function parseDockerReclaimed(output: string): number | undefined {
  const m = /Total reclaimed space:\s*([0-9]+(?:\.[0-9]+)?)\s*([kKMGTP]?B)\b/.exec(output)
  if (!m) return undefined
  const unit = SIZE_UNITS_1000[(m[2] as string).toUpperCase()]
  return unit === undefined ? undefined : Math.round(Number(m[1]) * unit)
}

/**
 * `journalctl --disk-usage`: `Archived and active journals take up 1.2G in the file system.` (systemd's
 * format_bytes: binary units B, K, M, G, T, P, E, one decimal). Returns bytes, or undefined. Coarse by nature
 * (one decimal): the executor measures the journal directories itself and keeps this as evidence.
 */
export function parseJournalDiskUsage(output: string): number | undefined {
  const m = /take up\s+([0-9]+(?:\.[0-9]+)?)\s*([BKMGTPE])\b/.exec(output)
  if (!m) return undefined
  return Math.round(Number(m[1]) * (SIZE_UNITS_1024[m[2] as string] as number))
}

/** One category's part of the summary. */
export interface CategoryLine {
  category: string
  status: 'done' | 'dry-run' | 'skipped' | 'failed'
  /** Bytes recovered (done) or that would be (dry-run deletions). */
  bytes: number
  /** Files acted on, for file categories. */
  files?: number
  /** For compressed-logs in a dry-run: the bytes the files occupy now (the gain is only known after). */
  compressBytes?: number
  reason?: string
}

const filesText = (n: number): string => `${n} file${n === 1 ? '' : 's'}`

function lineText(l: CategoryLine, dryRun: boolean): string {
  if (l.status === 'skipped') return `${l.category} skipped (${l.reason ?? 'not applicable'})`
  if (l.status === 'failed') return `${l.category} failed (${l.reason ?? 'error'})`
  const count = l.files === undefined ? '' : ` (${filesText(l.files)})`
  if (dryRun && l.category === 'compressed-logs') {
    return `compressed-logs ${filesText(l.files ?? 0)} to compress (${formatBytes(l.compressBytes ?? 0)} now)`
  }
  if (dryRun && l.files === undefined) return `${l.category} ${l.reason ?? 'would run'}`
  return `${l.category} ${formatBytes(l.bytes)}${count}`
}

/**
 * `recovered 41.2 MiB: logs 40.0 MiB (12 files), temp 1.2 MiB (3 files)` (or `dry-run: would recover ...`), then
 * the skips and the maxFiles stop, if any. At most 2,000 characters (the schema's bound).
 */
export function buildSummary(input: {
  dryRun: boolean
  lines: CategoryLine[]
  skipped: Record<string, number>
  maxFiles?: { limit: number; left: number } | undefined
}): string {
  const total = input.lines.reduce((sum, l) => sum + (l.status === 'done' || l.status === 'dry-run' ? l.bytes : 0), 0)
  const head = input.dryRun ? `dry-run: would recover ${formatBytes(total)}` : `recovered ${formatBytes(total)}`
  const parts = [`${head}: ${input.lines.map((l) => lineText(l, input.dryRun)).join(', ')}`]
  const skips = Object.entries(input.skipped).filter(([, n]) => n > 0)
  if (skips.length > 0) {
    const n = skips.reduce((s, [, c]) => s + c, 0)
    parts.push(`${filesText(n)} left alone (${skips.map(([why, c]) => `${why} ${c}`).join(', ')})`)
  }
  if (input.maxFiles !== undefined && input.maxFiles.left > 0) {
    parts.push(`stopped at maxFiles ${input.maxFiles.limit}: ${filesText(input.maxFiles.left)} more eligible`)
  }
  return shortenMiddle(parts.join('; '), 2000)
}

const jsonLength = (value: unknown): number => JSON.stringify(value).length

/**
 * Makes a result fit in `maxChars` of JSON: paths in `items` shortened in the middle, at most 50 of them, problems
 * capped, and then items dropped from the end until it fits (`itemsTotal` keeps the true count; the audit trail
 * keeps every path). Never drops the summary, the figures or the status.
 */
export function boundResult(result: RemediationResultV1, maxChars = RESULT_MAX_CHARS): RemediationResultV1 {
  const out: RemediationResultV1 = { ...result, evidence: { ...result.evidence } }
  if (out.items !== undefined) {
    out.itemsTotal = out.itemsTotal ?? out.items.length
    out.items = out.items.slice(0, MAX_ITEMS).map((p) => shortenMiddle(p, MAX_ITEM_CHARS))
  }
  const problems = out.evidence.problems
  if (Array.isArray(problems)) {
    out.evidence.problems = problems.slice(0, MAX_PROBLEMS).map((p) => shortenMiddle(String(p), MAX_PROBLEM_CHARS))
    if (problems.length > MAX_PROBLEMS) out.evidence.problemsTotal = problems.length
  }
  if (out.error !== undefined) out.error = shortenMiddle(out.error, 4000)
  while (out.items !== undefined && out.items.length > 0 && jsonLength(out) > maxChars) {
    out.items = out.items.slice(0, Math.max(0, out.items.length - Math.max(1, Math.ceil(out.items.length / 8))))
  }
  if (jsonLength(out) > maxChars) {
    // Only an evidence blown up by something unforeseen gets here: keep its keys' figures, drop the rest.
    out.evidence = { truncated: true, keys: Object.keys(result.evidence).slice(0, 50) }
  }
  return out
}
