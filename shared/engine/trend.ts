/**
 * Samples are kept flat, three numbers each: [t (epoch ms), value, capacity (NaN when unknown)].
 * The fit is ordinary least squares of value over time.
 */
export const SAMPLE_WIDTH = 3
export const MAX_SAMPLES = 720

export interface TrendFit {
  /** Growth of the value per hour. */
  ratePerHour: number
  /** Hours until the value reaches capacity: +∞ when not growing, capacity unknown, or too few samples. */
  hoursToCapacity: number
  samples: number
}

const HOUR_MS = 3_600_000

/** Append a sample (keeping time order and dropping a duplicate time) and trim to the window. Returns a new array. */
export const addSample = (
  samples: readonly number[],
  t: number,
  value: number,
  capacity: number | undefined,
  windowMs: number,
): number[] => {
  const out: number[] = []
  const from = t - windowMs
  let inserted = false
  for (let i = 0; i < samples.length; i += SAMPLE_WIDTH) {
    const st = samples[i] as number
    if (st < from) continue
    if (!inserted && st >= t) {
      out.push(t, value, capacity ?? Number.NaN)
      inserted = true
      if (st === t) continue
    }
    out.push(st, samples[i + 1] as number, samples[i + 2] as number)
  }
  if (!inserted) out.push(t, value, capacity ?? Number.NaN)
  const excess = out.length - MAX_SAMPLES * SAMPLE_WIDTH
  return excess > 0 ? out.slice(excess) : out
}

export const fitTrend = (samples: readonly number[], minSamples: number): TrendFit => {
  const n = samples.length / SAMPLE_WIDTH
  if (n < minSamples || n < 2) return { ratePerHour: 0, hoursToCapacity: Number.POSITIVE_INFINITY, samples: n }
  const t0 = samples[0] as number
  let sx = 0
  let sy = 0
  let sxx = 0
  let sxy = 0
  for (let i = 0; i < samples.length; i += SAMPLE_WIDTH) {
    const x = ((samples[i] as number) - t0) / HOUR_MS
    const y = samples[i + 1] as number
    sx += x
    sy += y
    sxx += x * x
    sxy += x * y
  }
  const den = n * sxx - sx * sx
  if (den === 0) return { ratePerHour: 0, hoursToCapacity: Number.POSITIVE_INFINITY, samples: n }
  const slope = (n * sxy - sx * sy) / den
  const last = samples.length - SAMPLE_WIDTH
  const value = samples[last + 1] as number
  const capacity = samples[last + 2] as number
  const hoursToCapacity =
    slope > 0 && Number.isFinite(capacity) ? Math.max(0, (capacity - value) / slope) : Number.POSITIVE_INFINITY
  return { ratePerHour: slope, hoursToCapacity, samples: n }
}
