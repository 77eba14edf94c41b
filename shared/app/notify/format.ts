/** Small pure formatters for messages people read. */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const

/** Bytes in binary units: `0 B`, `512 B`, `1.5 KiB`, `310 MiB`, `3.1 GiB` (one decimal below 10). */
export const formatBytes = (bytes: number): string => {
  if (!Number.isFinite(bytes) || bytes < 0) return `${bytes} B`
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024
    unit += 1
  }
  if (unit === 0) return `${bytes} B`
  const shown = value < 10 ? Math.round(value * 10) / 10 : Math.round(value)
  return `${Number.isInteger(shown) ? shown.toFixed(0) : shown.toFixed(1)} ${BYTE_UNITS[unit]}`
}

/** A compact duration: `850 ms`, `12.0 s`, `4 min 10 s`, `2 h 5 min`, `3 d 4 h`. */
export const formatElapsed = (ms: number): string => {
  if (!Number.isFinite(ms) || ms < 0) return `${ms} ms`
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const s = Math.round(ms / 1000)
  const d = Math.floor(s / 86_400)
  const h = Math.floor((s % 86_400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  if (d > 0) return h > 0 ? `${d} d ${h} h` : `${d} d`
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`
  return sec > 0 ? `${m} min ${sec} s` : `${m} min`
}

/** `2026-11-23T10:00:05.000Z` → `2026-11-23 10:00:05 UTC`; anything else is returned as it is. */
export const formatTime = (iso: string): string => {
  const ms = Date.parse(iso)
  if (!Number.isFinite(ms)) return iso
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`
}

/** A value as a person reads it in one line: numbers and strings as they are, the rest as compact JSON. */
export const formatValue = (value: unknown, max = 200): string => {
  let s: string
  if (typeof value === 'string') s = value
  else if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    s = String(value)
  } else {
    try {
      s = JSON.stringify(value) ?? String(value)
    } catch {
      s = String(value)
    }
  }
  return truncate(s.replace(/\s+/g, ' '), max)
}

/** `usedPercent=92.5, hoursToFull=3.2` */
export const formatValues = (values: Readonly<Record<string, unknown>>, max = 200): string =>
  truncate(
    Object.entries(values)
      .map(([k, v]) => `${k}=${formatValue(v, 60)}`)
      .join(', '),
    max,
  )

/** Cut to at most `max` characters (code units), ending with `…` when cut. */
export const truncate = (s: string, max: number): string => {
  if (s.length <= max) return s
  if (max <= 0) return ''
  let cut = s.slice(0, max - 1)
  // Never leave half of a surrogate pair.
  const last = cut.charCodeAt(cut.length - 1)
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1)
  return `${cut}…`
}

/** `ansai.fix.verified.v1` → `fix verified` */
export const eventLabel = (event: string): string =>
  event
    .replace(/^ansai\./, '')
    .replace(/\.v\d+$/, '')
    .replace('.', ' ')
