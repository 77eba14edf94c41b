import type { ObservationOf } from '../../shared/contracts/index.ts'
import { failed, type ParseResult, parsed, parseNonNegativeInt, quote, splitLines } from './parse-result.ts'

const PROBE = 'process-memory'

export type ProcessMemoryObservation = ObservationOf<'process-memory'>

export interface CgroupMemory {
  memoryBytes: number
  /** undefined when the cgroup has no limit. */
  limitBytes: number | undefined
}

/**
 * A cgroup v1 limit at or above this is "no limit": the kernel reports PAGE_COUNTER_MAX rounded to the page size
 * (9223372036854771712 on 4 KiB pages, a little less on larger pages). Anything from 2^60 (1 EiB) on is treated as
 * unlimited; no real memory limit is that large.
 */
const V1_UNLIMITED_FROM = 2 ** 60

function readBytes(name: string, text: string): number | string {
  if (typeof text !== 'string') return `${name} is not text`
  const n = parseNonNegativeInt(text)
  return n === undefined ? `${name} is not a byte count: ${quote(text.trim())}` : n
}

/** cgroup v2: `memory.current` and `memory.max` (`max` = no limit). */
export function parseCgroupV2Memory(current: string, max: string): ParseResult<CgroupMemory> {
  const memoryBytes = readBytes('memory.current', current)
  if (typeof memoryBytes === 'string') return failed(PROBE, memoryBytes)
  if (typeof max !== 'string') return failed(PROBE, 'memory.max is not text')
  if (max.trim() === 'max') return parsed({ memoryBytes, limitBytes: undefined })
  const limitBytes = readBytes('memory.max', max)
  if (typeof limitBytes === 'string') return failed(PROBE, limitBytes)
  return parsed({ memoryBytes, limitBytes })
}

/** cgroup v1: `memory.usage_in_bytes` and `memory.limit_in_bytes` (a huge value = no limit). */
export function parseCgroupV1Memory(usage: string, limit: string): ParseResult<CgroupMemory> {
  const memoryBytes = readBytes('memory.usage_in_bytes', usage)
  if (typeof memoryBytes === 'string') return failed(PROBE, memoryBytes)
  if (typeof limit !== 'string') return failed(PROBE, 'memory.limit_in_bytes is not text')
  const t = limit.trim()
  if (/^\d+$/.test(t) && Number(t) >= V1_UNLIMITED_FROM) return parsed({ memoryBytes, limitBytes: undefined })
  if (t === '-1') return parsed({ memoryBytes, limitBytes: undefined })
  const limitBytes = readBytes('memory.limit_in_bytes', limit)
  if (typeof limitBytes === 'string') return failed(PROBE, limitBytes)
  return parsed({ memoryBytes, limitBytes })
}

/** Builds the observation for a unit from its cgroup figures. */
export function cgroupMemoryToObservation(
  unit: string,
  memory: CgroupMemory,
  source: 'cgroup-v2' | 'cgroup-v1',
  pids?: readonly number[],
): ProcessMemoryObservation {
  const obs: ProcessMemoryObservation = { kind: 'process-memory', unit, memoryBytes: memory.memoryBytes, source }
  if (memory.limitBytes !== undefined) obs.limitBytes = memory.limitBytes
  if (pids && pids.length > 0) obs.pids = [...pids]
  return obs
}

export interface ProcStatus {
  name: string
  pid: number | undefined
  /** VmRSS in bytes. */
  rssBytes: number
}

/** `/proc/<pid>/status` → name, pid and resident memory (VmRSS, in kB = KiB). Kernel threads have no VmRSS. */
export function parseProcStatus(text: string): ParseResult<ProcStatus> {
  if (typeof text !== 'string') return failed(PROBE, 'status is not text')
  let name: string | undefined
  let pid: number | undefined
  let rssBytes: number | undefined
  for (const line of splitLines(text)) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const key = line.slice(0, colon)
    const value = line.slice(colon + 1).trim()
    if (key === 'Name') name = value
    else if (key === 'Pid') pid = parseNonNegativeInt(value)
    else if (key === 'VmRSS') {
      const m = /^(\d+)\s+kB$/.exec(value)
      if (!m) return failed(PROBE, `bad VmRSS ${quote(value)}`)
      rssBytes = Number(m[1]) * 1024
      if (!Number.isSafeInteger(rssBytes)) return failed(PROBE, `VmRSS overflows: ${quote(value)}`)
    }
  }
  if (name === undefined) return failed(PROBE, 'status has no Name line')
  if (rssBytes === undefined) return failed(PROBE, `status of ${quote(name)} has no VmRSS (a kernel thread?)`)
  return parsed({ name, pid, rssBytes })
}

/** RSS fallback: the summed VmRSS of a unit's processes (shared pages are counted once per process). */
export function rssToObservation(
  unit: string,
  processes: readonly ProcStatus[],
  limitBytes?: number,
): ProcessMemoryObservation {
  const obs: ProcessMemoryObservation = {
    kind: 'process-memory',
    unit,
    memoryBytes: processes.reduce((sum, p) => sum + p.rssBytes, 0),
    source: 'rss',
  }
  const pids = processes.flatMap((p) => (p.pid === undefined ? [] : [p.pid]))
  if (pids.length > 0) obs.pids = pids
  if (limitBytes !== undefined) obs.limitBytes = limitBytes
  return obs
}

export interface ProcCgroup {
  /** The unified (v2) path, from the `0::<path>` line, when there is one. */
  unified: string | undefined
  /** v1 hierarchies: controller (or `name=systemd`) → path. */
  v1: Map<string, string>
  /** The systemd unit the process belongs to (deepest `.service` or `.scope`), when there is one. */
  unit: string | undefined
}

const UNIT_SEGMENT = /^[^/]+\.(service|scope)$/

/** The deepest `.service` / `.scope` segment of a cgroup path: `/system.slice/nginx.service` → `nginx.service`. */
export function unitFromCgroupPath(path: string): string | undefined {
  const segments = path.split('/').filter((s) => s.length > 0)
  for (let i = segments.length - 1; i >= 0; i--) {
    if (UNIT_SEGMENT.test(segments[i]!)) return segments[i]
  }
  return undefined
}

/**
 * `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path` per line (`0::/system.slice/x.service` on v2). The unit is
 * taken from the v2 path, else from the `name=systemd` v1 hierarchy, else from the memory controller's path.
 */
export function parseProcCgroup(text: string): ParseResult<ProcCgroup> {
  if (typeof text !== 'string') return failed(PROBE, 'cgroup file is not text')
  let unified: string | undefined
  const v1 = new Map<string, string>()
  let lines = 0
  for (const line of splitLines(text)) {
    if (line.trim() === '') continue
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line)
    if (!m) return failed(PROBE, `unexpected cgroup line ${quote(line)}`)
    lines++
    const [, id, controllers, path] = m
    if (id === '0' && controllers === '') unified = path
    else for (const c of controllers!.split(',')) if (c) v1.set(c, path!)
  }
  if (lines === 0) return failed(PROBE, 'cgroup file is empty')
  const candidates = [unified, v1.get('name=systemd'), v1.get('memory')]
  let unit: string | undefined
  for (const path of candidates) {
    unit = path === undefined ? undefined : unitFromCgroupPath(path)
    if (unit) break
  }
  return parsed({ unified, v1, unit })
}
