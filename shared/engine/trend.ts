/**
 * Trend samples are kept flat, two numbers each: [t (epoch seconds), value]. A sample is stored at most once per
 * window/32 (the bucket); between stored samples the current observation joins the fit without being stored, so the
 * state of a resource changes only when a sample is kept. The fit is ordinary least squares of value over time; the
 * capacity it is projected against is the current observation's.
 */
export const SAMPLE_WIDTH = 2
/** Samples stored per window at most. */
export const SAMPLES_PER_WINDOW = 32
export const MAX_SAMPLES = 720

export interface TrendFit {
  /** Growth of the value per hour. */
  ratePerHour: number
  /** Hours until the value reaches capacity: +∞ when not growing, capacity unknown, or too few samples. */
  hoursToCapacity: number
  /** Points in the fit (stored samples in the window plus the current one). */
  samples: number
}

const HOUR_S = 3600

/**
 * Keep the sample of a new report: returns the same array when it falls in the bucket of the newest stored sample
 * (the fit still sees it as the current point), else a new array trimmed to the window. A sample not newer than the
 * newest stored one is left to `insertOldSample`. The input is never changed.
 */
export const addSample = (samples: readonly number[], tMs: number, value: number, windowMs: number): number[] => {
  const t = Math.round(tMs / 1000)
  const n = samples.length
  const lastT = n ? (samples[n - SAMPLE_WIDTH] as number) : Number.NEGATIVE_INFINITY
  if (t <= lastT || t - lastT < windowMs / 1000 / SAMPLES_PER_WINDOW) return samples as number[]
  const from = t - windowMs / 1000
  let first = 0
  while (first < n && (samples[first] as number) < from) first += SAMPLE_WIDTH
  const out = samples.slice(first)
  out.push(t, value)
  const excess = out.length - MAX_SAMPLES * SAMPLE_WIDTH
  return excess > 0 ? out.slice(excess) : out
}

/**
 * The sample of an old report that arrived late: inserted in time order when it fills a gap (no stored sample within
 * half a bucket of it) inside the window of the newest stored sample; otherwise the same array is returned, so a
 * replayed report changes nothing.
 */
export const insertOldSample = (samples: readonly number[], tMs: number, value: number, windowMs: number): number[] => {
  const t = Math.round(tMs / 1000)
  const n = samples.length
  if (n === 0) return samples as number[]
  const lastT = samples[n - SAMPLE_WIDTH] as number
  const half = windowMs / 1000 / SAMPLES_PER_WINDOW / 2
  if (t >= lastT || t < lastT - windowMs / 1000) return samples as number[]
  let at = 0
  while (at < n && (samples[at] as number) < t) at += SAMPLE_WIDTH
  const before = at > 0 ? (samples[at - SAMPLE_WIDTH] as number) : Number.NEGATIVE_INFINITY
  const after = samples[at] as number
  if (t - before < half || after - t < half) return samples as number[]
  return [...samples.slice(0, at), t, value, ...samples.slice(at)]
}

/** Least squares over the stored samples within the window ending at `tMs`, plus the current point. */
export const fitTrend = (
  samples: readonly number[],
  current: { tMs: number; value: number; capacity: number | undefined },
  windowMs: number,
  minSamples: number,
): TrendFit => {
  const tNow = current.tMs / 1000
  const from = tNow - windowMs / 1000
  let n = 0
  let sx = 0
  let sy = 0
  let sxx = 0
  let sxy = 0
  let lastT = Number.NEGATIVE_INFINITY
  for (let i = 0; i < samples.length; i += SAMPLE_WIDTH) {
    const st = samples[i] as number
    if (st < from || st > tNow) continue
    const x = (st - from) / HOUR_S
    const y = samples[i + 1] as number
    n++
    sx += x
    sy += y
    sxx += x * x
    sxy += x * y
    lastT = st
  }
  if (Math.round(tNow) > lastT) {
    const x = (tNow - from) / HOUR_S
    n++
    sx += x
    sy += current.value
    sxx += x * x
    sxy += x * current.value
  }
  if (n < minSamples || n < 2) return { ratePerHour: 0, hoursToCapacity: Number.POSITIVE_INFINITY, samples: n }
  const den = n * sxx - sx * sx
  if (den === 0) return { ratePerHour: 0, hoursToCapacity: Number.POSITIVE_INFINITY, samples: n }
  const slope = (n * sxy - sx * sy) / den
  const capacity = current.capacity
  const hoursToCapacity =
    slope > 0 && capacity !== undefined && Number.isFinite(capacity)
      ? Math.max(0, (capacity - current.value) / slope)
      : Number.POSITIVE_INFINITY
  return { ratePerHour: slope, hoursToCapacity, samples: n }
}
