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
  // At most MAX_SAMPLES, the oldest dropped first.
  first = Math.max(first, n + SAMPLE_WIDTH - MAX_SAMPLES * SAMPLE_WIDTH)
  // Copied into an array of the exact size: slice() then push() would allocate twice and keep up to half as much
  // again as spare capacity, in every resource state that holds samples.
  const out = new Array<number>(n - first + SAMPLE_WIDTH)
  let j = 0
  for (let i = first; i < n; i++) out[j++] = samples[i] as number
  out[j] = t
  out[j + 1] = value
  return out
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
): TrendFit =>
  fitTrendInto(
    { ratePerHour: 0, hoursToCapacity: Number.POSITIVE_INFINITY, samples: 0 },
    samples,
    current.tMs,
    current.value,
    current.capacity,
    windowMs,
    minSamples,
  )

/**
 * fitTrend with the current point as plain arguments and the result written into `out` (and returned): the engine
 * fits a trend for every trend resource of every report, and reuses one result object per evaluation.
 */
export const fitTrendInto = (
  out: TrendFit,
  samples: readonly number[],
  tMs: number,
  value: number,
  capacity: number | undefined,
  windowMs: number,
  minSamples: number,
): TrendFit => {
  const tNow = tMs / 1000
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
    sy += value
    sxx += x * x
    sxy += x * value
  }
  out.samples = n
  out.ratePerHour = 0
  out.hoursToCapacity = Number.POSITIVE_INFINITY
  if (n < minSamples || n < 2) return out
  const den = n * sxx - sx * sx
  if (den === 0) return out
  const slope = (n * sxy - sx * sy) / den
  out.ratePerHour = slope
  if (slope > 0 && capacity !== undefined && Number.isFinite(capacity)) {
    out.hoursToCapacity = Math.max(0, (capacity - value) / slope)
  }
  return out
}
