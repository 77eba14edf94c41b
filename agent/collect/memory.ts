import type { ProbesConfig } from '../config/probes.ts'
import { parseMeminfo } from '../probes/meminfo.ts'
import { type CollectContext, emptyOutput, errnoOf, fsReason, type ProbeOutput } from './context.ts'

const PROBE = 'memory'
export const MEMINFO_PATH = '/proc/meminfo'
export const PRESSURE_PATH = '/proc/pressure/memory'

/**
 * Host memory from /proc/meminfo, with pressure stall information from /proc/pressure/memory when the kernel has
 * it (Linux ≥ 4.20 with PSI on; missing or `psi=0` is not an error, only another read failure is noted).
 */
export async function collectMemory(config: ProbesConfig['memory'], ctx: CollectContext): Promise<ProbeOutput> {
  const out = emptyOutput()
  if (!config.enabled) return out
  const [meminfo, pressure] = await Promise.allSettled([ctx.fs.readFile(MEMINFO_PATH), ctx.fs.readFile(PRESSURE_PATH)])
  if (meminfo.status === 'rejected') {
    out.errors.push({ probe: PROBE, reason: fsReason(MEMINFO_PATH, meminfo.reason) })
    return out
  }
  let pressureText: string | undefined
  if (pressure.status === 'fulfilled') pressureText = pressure.value
  else {
    const code = errnoOf(pressure.reason)
    // ENOENT: no PSI in this kernel; EOPNOTSUPP: compiled in but switched off (psi=0)
    if (code !== 'ENOENT' && code !== 'EOPNOTSUPP') {
      out.errors.push({ probe: PROBE, reason: `memory pressure unknown: ${fsReason(PRESSURE_PATH, pressure.reason)}` })
    }
  }
  const parsed = parseMeminfo(meminfo.value, pressureText)
  if (!parsed.ok) {
    out.errors.push(parsed.error)
    return out
  }
  out.errors.push(...parsed.problems)
  out.observations.push(parsed.value)
  return out
}
