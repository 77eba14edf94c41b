import type { ObservationOf } from '../../shared/contracts/index.ts'
import type { ProbesConfig } from '../config/probes.ts'
import { type CollectContext, emptyOutput, errnoOf, fsReason, mapLimit, type ProbeOutput } from './context.ts'

const PROBE = 'custom'
const SUFFIX = '.value'
const METRIC_NAME = /^[A-Za-z0-9][A-Za-z0-9._@:-]*$/
const NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/
const MAX_METRICS = 1_000

/** A metric file's text → its value: one decimal number, surrounding white space allowed. */
export function parseMetricValue(text: string): number | undefined {
  const t = text.trim()
  if (!NUMBER.test(t)) return undefined
  const n = Number(t)
  return Number.isFinite(n) ? n : undefined
}

/**
 * Custom metrics: each `<dir>/<name>.value` holding one number is an observation `{name, value}`. Operators (or
 * their scripts) write these files, atomically: write a temp file, rename it. A missing directory means no metric;
 * an unreadable directory or a file that is not one number is a ProbeError naming it.
 */
export async function collectCustom(config: ProbesConfig['custom'], ctx: CollectContext): Promise<ProbeOutput> {
  const out = emptyOutput()
  if (!config.enabled) return out
  let names: string[]
  try {
    names = await ctx.fs.readdir(config.dir)
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') out.errors.push({ probe: PROBE, reason: fsReason(config.dir, err) })
    return out
  }
  const metrics = names
    .filter((n) => n.endsWith(SUFFIX) && METRIC_NAME.test(n.slice(0, -SUFFIX.length)))
    .sort()
    .slice(0, MAX_METRICS)
  type Read = { obs: ObservationOf<'custom'> } | { error: string } | undefined
  const read = await mapLimit(metrics, 16, async (file): Promise<Read> => {
    const name = file.slice(0, -SUFFIX.length)
    const path = `${config.dir}/${file}`
    try {
      const text = await ctx.fs.readFile(path)
      const value = parseMetricValue(text)
      if (value === undefined) {
        const shown = JSON.stringify(text.trim().slice(0, 40))
        return { error: `${path}: not a number: ${shown}` }
      }
      return { obs: { kind: 'custom', name, value } }
    } catch (err) {
      return errnoOf(err) === 'ENOENT' ? undefined : { error: fsReason(path, err) } // removed meanwhile
    }
  })
  for (const r of read) {
    if (r === undefined) continue
    if ('obs' in r) out.observations.push(r.obs)
    else out.errors.push({ probe: PROBE, reason: r.error })
  }
  return out
}
