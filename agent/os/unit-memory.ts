import { type Dirent, existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  cgroupMemoryToObservation,
  type ProcessMemoryObservation,
  type ProcStatus,
  parseCgroupV1Memory,
  parseCgroupV2Memory,
  parseProcStatus,
  rssToObservation,
} from '../probes/cgroup-memory.ts'
import { parseMeminfoFields } from '../probes/meminfo.ts'

/**
 * The memory a systemd unit uses right now, measured the same way by the per-service memory collector and by the
 * memory-relief remediation (so that the figure a policy saw is the figure a fix is judged by):
 *
 * 1. cgroup v2: `memory.current` of the unit's cgroup (`<root><ControlGroup>`, or `<root>/unified<ControlGroup>` on
 *    a hybrid host), the limit from its `memory.max`;
 * 2. cgroup v1: `memory.usage_in_bytes` under `<root>/memory<ControlGroup>`, the limit from `memory.limit_in_bytes`;
 * 3. otherwise (no memory controller, as in a nested cgroup2 that was given none, or v1 without MemoryAccounting=):
 *    the summed VmRSS of the unit's processes, listed by `cgroup.procs` of its cgroup and of the cgroups below it
 *    (a unit with Delegate= has children). Shared pages count once per process, so this overstates a little for
 *    forking servers.
 *
 * The limit is, in this order: the cgroup's own limit, systemd's MemoryMax= (else MemoryLimit=), the host's MemTotal (what a
 * process can reach at most): so `usedPercentOfLimit` is always defined when /proc/meminfo is readable.
 *
 * Synchronous, small reads only. A process that exits between the listing and its status read is skipped.
 */

export interface UnitMemoryInput {
  unit: string
  /** systemd's ControlGroup= for the unit, e.g. `/system.slice/app.service`; `''` when it runs no process. */
  controlGroup: string
  /** systemd's MemoryMax= (`infinity` or a byte count), the limit when the cgroup has none of its own. */
  memoryMax?: string
  /** systemd's MemoryLimit= (the cgroup v1 setting), used when MemoryMax= sets none. */
  memoryLimit?: string
}

export interface UnitMemoryOptions {
  /** Default `/sys/fs/cgroup`. */
  cgroupRoot?: string
  /** Default `/proc`. */
  procDir?: string
  /** Default `/proc/meminfo`. */
  meminfoPath?: string
}

/** Where the limit came from: the cgroup, the unit's MemoryMax= (or MemoryLimit=), the host's MemTotal, nowhere. */
export type LimitSource = 'cgroup' | 'MemoryMax' | 'host' | 'none'

export interface UnitMemory {
  /** The observation the collector reports (`source` says which way it was measured). */
  observation: ProcessMemoryObservation
  limitSource: LimitSource
  /** memory / limit × 100, two decimals (undefined without a limit). */
  usedPercentOfLimit: number | undefined
  /** The cgroup directory read, when one was. */
  cgroupDir?: string
  /** Processes summed (rss source). */
  processes?: number
  /** What was skipped on the way (a process gone, an unreadable file). */
  problems: string[]
}

const DEFAULTS: Required<UnitMemoryOptions> = {
  cgroupRoot: '/sys/fs/cgroup',
  procDir: '/proc',
  meminfoPath: '/proc/meminfo',
}

/** At most this many processes are summed (a fork bomb must not make a probe slow). */
const MAX_PROCESSES = 10_000

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

const errnoOf = (err: unknown): string => (err as NodeJS.ErrnoException | undefined)?.code ?? String(err)

/** A ControlGroup= value that is safe to join under the cgroup root: absolute, no `.`/`..` segments. */
function cleanControlGroup(cg: string): string | undefined {
  if (!cg.startsWith('/') || cg.includes('\0')) return undefined
  const parts = cg.split('/').filter((p) => p !== '')
  if (parts.some((p) => p === '.' || p === '..')) return undefined
  return parts.length === 0 ? '' : `/${parts.join('/')}`
}

/** MemoryMax= / MemoryLimit= (`infinity`, `` or bytes) → bytes or undefined. */
export function parseMemoryMaxProperty(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const t = value.trim()
  if (!/^\d+$/.test(t)) return undefined
  const n = Number(t)
  // UINT64_MAX and friends: no limit
  return Number.isSafeInteger(n) && n > 0 ? n : undefined
}

/** The pids in `dir`'s cgroup.procs and in every cgroup below it. */
function listCgroupPids(dir: string, problems: string[]): number[] {
  const pids: number[] = []
  const visit = (d: string, depth: number): void => {
    if (pids.length >= MAX_PROCESSES || depth > 32) return
    const procs = read(join(d, 'cgroup.procs'))
    if (procs !== undefined) {
      for (const line of procs.split('\n')) {
        const t = line.trim()
        if (/^\d+$/.test(t) && pids.length < MAX_PROCESSES) pids.push(Number(t))
      }
    } else {
      problems.push(`cannot read ${join(d, 'cgroup.procs')}`)
    }
    let entries: Dirent[]
    try {
      entries = readdirSync(d, { withFileTypes: true })
    } catch (err) {
      problems.push(`cannot list ${d} (${errnoOf(err)})`)
      return
    }
    for (const e of entries) if (e.isDirectory()) visit(join(d, e.name), depth + 1)
  }
  visit(dir, 0)
  return pids
}

/** Measures one unit's memory (see the module comment). Never throws for a missing or unreadable file. */
export function measureUnitMemory(input: UnitMemoryInput, options: UnitMemoryOptions = {}): UnitMemory {
  const cfg = { ...DEFAULTS, ...options }
  const problems: string[] = []
  const memTotal = (): number | undefined => {
    const text = read(cfg.meminfoPath)
    if (text === undefined) {
      problems.push(`cannot read ${cfg.meminfoPath}`)
      return undefined
    }
    return parseMeminfoFields(text).get('MemTotal')
  }
  const fallbackLimit = (): { limit: number | undefined; source: LimitSource } => {
    const max = parseMemoryMaxProperty(input.memoryMax) ?? parseMemoryMaxProperty(input.memoryLimit)
    if (max !== undefined) return { limit: max, source: 'MemoryMax' }
    const total = memTotal()
    return total === undefined ? { limit: undefined, source: 'none' } : { limit: total, source: 'host' }
  }
  const finish = (
    observation: ProcessMemoryObservation,
    limitSource: LimitSource,
    extra: Partial<UnitMemory> = {},
  ): UnitMemory => {
    const limit = observation.limitBytes
    return {
      observation,
      limitSource,
      usedPercentOfLimit:
        limit === undefined || limit === 0 ? undefined : Math.round((observation.memoryBytes / limit) * 10_000) / 100,
      problems,
      ...extra,
    }
  }

  const cg = cleanControlGroup(input.controlGroup)
  if (input.controlGroup !== '' && cg === undefined)
    problems.push(`odd ControlGroup ${JSON.stringify(input.controlGroup)}`)
  if (!cg) {
    // No cgroup (the unit runs nothing): no memory.
    const { limit, source } = fallbackLimit()
    return finish(rssToObservation(input.unit, [], limit), source, { processes: 0 })
  }

  // 1. cgroup v2 (pure, or the unified hierarchy of a hybrid host)
  for (const dir of [join(cfg.cgroupRoot, cg), join(cfg.cgroupRoot, 'unified', cg)]) {
    const current = read(join(dir, 'memory.current'))
    if (current === undefined) continue
    const parsed = parseCgroupV2Memory(current, read(join(dir, 'memory.max')) ?? 'max')
    if (!parsed.ok) {
      problems.push(parsed.error.reason)
      continue
    }
    const pids = listCgroupPids(dir, [])
    if (parsed.value.limitBytes !== undefined) {
      return finish(cgroupMemoryToObservation(input.unit, parsed.value, 'cgroup-v2', pids), 'cgroup', {
        cgroupDir: dir,
      })
    }
    const { limit, source } = fallbackLimit()
    const obs = cgroupMemoryToObservation(input.unit, { ...parsed.value, limitBytes: limit }, 'cgroup-v2', pids)
    return finish(obs, source, { cgroupDir: dir })
  }

  // 2. cgroup v1 memory controller
  const v1 = join(cfg.cgroupRoot, 'memory', cg)
  const usage = read(join(v1, 'memory.usage_in_bytes'))
  if (usage !== undefined) {
    const parsed = parseCgroupV1Memory(usage, read(join(v1, 'memory.limit_in_bytes')) ?? '-1')
    if (parsed.ok) {
      const pids = listCgroupPids(v1, [])
      if (parsed.value.limitBytes !== undefined) {
        return finish(cgroupMemoryToObservation(input.unit, parsed.value, 'cgroup-v1', pids), 'cgroup', {
          cgroupDir: v1,
        })
      }
      const { limit, source } = fallbackLimit()
      const obs = cgroupMemoryToObservation(input.unit, { ...parsed.value, limitBytes: limit }, 'cgroup-v1', pids)
      return finish(obs, source, { cgroupDir: v1 })
    }
    problems.push(parsed.error.reason)
  }

  // 3. RSS of the unit's processes
  const dirs = [join(cfg.cgroupRoot, cg), join(cfg.cgroupRoot, 'unified', cg), join(cfg.cgroupRoot, 'systemd', cg)]
  const dir = dirs.find((d) => existsSync(join(d, 'cgroup.procs')))
  const processes: ProcStatus[] = []
  if (dir === undefined) {
    problems.push(`no cgroup.procs for ${cg} under ${cfg.cgroupRoot}`)
  } else {
    for (const pid of listCgroupPids(dir, problems)) {
      const text = read(join(cfg.procDir, String(pid), 'status'))
      if (text === undefined) continue // exited since the listing
      const status = parseProcStatus(text)
      if (status.ok) processes.push(status.value.pid === undefined ? { ...status.value, pid } : status.value)
      else problems.push(`pid ${pid}: ${status.error.reason}`)
    }
  }
  const { limit, source } = fallbackLimit()
  const extra: Partial<UnitMemory> = { processes: processes.length }
  if (dir !== undefined) extra.cgroupDir = dir
  return finish(rssToObservation(input.unit, processes, limit), source, extra)
}
