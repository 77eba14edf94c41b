import type { ObservationOf, ProbeError } from '../../shared/contracts/index.ts'
import { failed, type ParseResult, parsed, problem, quote, splitLines } from './parse-result.ts'

const PROBE = 'memory'

export type MemoryObservation = ObservationOf<'memory'>
export type Psi = NonNullable<MemoryObservation['psi']>

/** `/proc/meminfo` → bytes per field (the kernel's `kB` is KiB); fields without a unit are kept as they are. */
export function parseMeminfoFields(text: string): Map<string, number> {
  const fields = new Map<string, number>()
  for (const line of splitLines(text)) {
    const m = /^([A-Za-z0-9_()]+):\s+(\d+)(?:\s+(kB))?\s*$/.exec(line)
    if (!m) continue
    const n = Number(m[2])
    const value = m[3] ? n * 1024 : n
    if (Number.isSafeInteger(value)) fields.set(m[1]!, value)
  }
  return fields
}

/**
 * `/proc/pressure/memory` (PSI, Linux ≥ 4.20):
 * ```
 * some avg10=0.00 avg60=0.00 avg300=0.00 total=0
 * full avg10=0.00 avg60=0.00 avg300=0.00 total=0
 * ```
 * `some` is required, `full` optional.
 */
export function parsePressure(text: string): ParseResult<Psi> {
  if (typeof text !== 'string') return failed(PROBE, 'pressure text is not text')
  const rows = new Map<string, { avg10: number; avg60: number; avg300: number }>()
  for (const line of splitLines(text)) {
    if (line.trim() === '') continue
    const m =
      /^(some|full)\s+avg10=(\d+(?:\.\d+)?)\s+avg60=(\d+(?:\.\d+)?)\s+avg300=(\d+(?:\.\d+)?)(?:\s+total=\d+)?\s*$/.exec(
        line,
      )
    if (!m) return failed(PROBE, `unexpected pressure line ${quote(line)}`)
    rows.set(m[1]!, { avg10: Number(m[2]), avg60: Number(m[3]), avg300: Number(m[4]) })
  }
  const some = rows.get('some')
  if (!some) return failed(PROBE, 'pressure text has no "some" line')
  const psi: Psi = { someAvg10: some.avg10, someAvg60: some.avg60, someAvg300: some.avg300 }
  const full = rows.get('full')
  if (full) {
    psi.fullAvg10 = full.avg10
    psi.fullAvg60 = full.avg60
    psi.fullAvg300 = full.avg300
  }
  return parsed(psi)
}

/**
 * `/proc/meminfo` (+ `/proc/pressure/memory` when the kernel has PSI) → MemoryObservation.
 *
 * MemTotal is required. MemAvailable exists since Linux 3.14; without it the estimate is MemFree + Buffers + Cached
 * (what `free` did before). Missing swap lines mean no swap. A pressure text that does not parse does not fail the
 * observation: it is left out and named in `problems`.
 */
export function parseMeminfo(meminfo: string, pressure?: string): ParseResult<MemoryObservation> {
  if (typeof meminfo !== 'string') return failed(PROBE, 'meminfo is not text')
  const f = parseMeminfoFields(meminfo)
  const totalBytes = f.get('MemTotal')
  if (totalBytes === undefined) return failed(PROBE, 'meminfo has no MemTotal line')
  let availableBytes = f.get('MemAvailable')
  if (availableBytes === undefined) {
    const free = f.get('MemFree')
    if (free === undefined) return failed(PROBE, 'meminfo has neither MemAvailable nor MemFree')
    availableBytes = Math.min(totalBytes, free + (f.get('Buffers') ?? 0) + (f.get('Cached') ?? 0))
  }
  const obs: MemoryObservation = {
    kind: 'memory',
    totalBytes,
    availableBytes,
    swapTotalBytes: f.get('SwapTotal') ?? 0,
    swapFreeBytes: f.get('SwapFree') ?? 0,
  }
  const problems: ProbeError[] = []
  if (pressure !== undefined) {
    const psi = parsePressure(pressure)
    if (psi.ok) obs.psi = psi.value
    else problems.push(problem(PROBE, `memory pressure ignored: ${psi.error.reason}`))
  }
  return parsed(obs, problems)
}
