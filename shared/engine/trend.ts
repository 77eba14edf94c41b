/**
 * Trend samples are kept flat, two numbers each: [t (epoch seconds), value]. The fit is ordinary least squares of
 * value over time; the capacity it is projected against is the current observation's.
 */
export const SAMPLE_WIDTH = 2
/** Samples kept per window at most: older points are at least window/32 apart, the newest is always kept. */
export const SAMPLES_PER_WINDOW = 32
export const MAX_SAMPLES = 720

export interface TrendFit {
  /** Growth of the value per hour. */
  ratePerHour: number
  /** Hours until the value reaches capacity: +∞ when not growing, capacity unknown, or too few samples. */
  hoursToCapacity: number
  samples: number
}

/**
 * Add a sample (keeping time order; a repeated time replaces) and trim to the window. When the newest kept sample is
 * less than window/32 after the one before it, the new sample replaces it: the fit keeps its span and recency with
 * at most ~33 points, whatever the report rate. Returns a new array; the input is not changed.
 */
export const addSample = (samples: readonly number[], tMs: number, value: number, windowMs: number): number[] => {
  const t = Math.round(tMs / 1000)
  const from = t - windowMs / 1000
  const out: number[] = []
  let inserted = false
  for (let i = 0; i < samples.length; i += SAMPLE_WIDTH) {
    const st = samples[i] as number
    if (st < from) continue
    if (!inserted && st >= t) {
      out.push(t, value)
      inserted = true
      if (st === t) continue
    }
    out.push(st, samples[i + 1] as number)
  }
  if (!inserted) {
    const n = out.length
    const bucket = windowMs / 1000 / SAMPLES_PER_WINDOW
    if (n >= 2 * SAMPLE_WIDTH && t - (out[n - 2 * SAMPLE_WIDTH] as number) < bucket) out.length = n - SAMPLE_WIDTH
    out.push(t, value)
  }
  const excess = out.length - MAX_SAMPLES * SAMPLE_WIDTH
  return excess > 0 ? out.slice(excess) : out
}

export const fitTrend = (samples: readonly number[], capacity: number | undefined, minSamples: number): TrendFit => {
  const n = samples.length / SAMPLE_WIDTH
  if (n < minSamples || n < 2) return { ratePerHour: 0, hoursToCapacity: Number.POSITIVE_INFINITY, samples: n }
  const t0 = samples[0] as number
  let sx = 0
  let sy = 0
  let sxx = 0
  let sxy = 0
  for (let i = 0; i < samples.length; i += SAMPLE_WIDTH) {
    const x = ((samples[i] as number) - t0) / 3600
    const y = samples[i + 1] as number
    sx += x
    sy += y
    sxx += x * x
    sxy += x * y
  }
  const den = n * sxx - sx * sx
  if (den === 0) return { ratePerHour: 0, hoursToCapacity: Number.POSITIVE_INFINITY, samples: n }
  const slope = (n * sxy - sx * sy) / den
  const value = samples[samples.length - 1] as number
  const hoursToCapacity =
    slope > 0 && capacity !== undefined && Number.isFinite(capacity)
      ? Math.max(0, (capacity - value) / slope)
      : Number.POSITIVE_INFINITY
  return { ratePerHour: slope, hoursToCapacity, samples: n }
}
