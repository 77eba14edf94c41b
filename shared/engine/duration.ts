const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** `1h30m` → 5,400,000. Throws a RangeError naming the input when it is not a duration. */
export const parseDuration = (text: string): number => {
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d|w)/g)]
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new RangeError(`'${text}' is not a duration (e.g. 30s, 5m, 1h, 7d, 1h30m)`)
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (UNIT_MS[p[2] as string] as number), 0)
}

export const formatDuration = (ms: number): string => {
  if (!Number.isFinite(ms)) return '∞'
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ]
  let rest = Math.round(ms)
  const out: string[] = []
  for (const [u, size] of units) {
    if (rest >= size) {
      out.push(`${Math.floor(rest / size)}${u}`)
      rest %= size
    }
  }
  return out.length ? out.slice(0, 2).join('') : `${rest}ms`
}

export interface Debounce {
  /** How many of the last `within` evaluations must match. */
  times: number
  within: number
}

export const MAX_DEBOUNCE_CYCLES = 32

/** `3 cycles` → 3 of 3; `3 times within 5 cycles` → 3 of 5; absent → 1 of 1. */
export const parseDebounce = (text: string | undefined): Debounce => {
  if (text === undefined) return { times: 1, within: 1 }
  const inRow = /^\s*(\d+)\s+cycles?\s*$/.exec(text)
  if (inRow) {
    const n = Number(inRow[1])
    return check({ times: n, within: n }, text)
  }
  const some = /^\s*(\d+)\s+times?\s+within\s+(\d+)\s+cycles?\s*$/.exec(text)
  if (some) return check({ times: Number(some[1]), within: Number(some[2]) }, text)
  throw new RangeError(`'${text}' is not a debounce (e.g. '3 cycles' or '3 times within 5 cycles')`)
}

const check = (d: Debounce, text: string): Debounce => {
  if (d.times < 1 || d.within < d.times || d.within > MAX_DEBOUNCE_CYCLES) {
    throw new RangeError(
      `'${text}': need 1 ≤ times ≤ cycles ≤ ${MAX_DEBOUNCE_CYCLES} (got ${d.times} within ${d.within})`,
    )
  }
  return d
}
