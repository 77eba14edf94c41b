import type { ProcessMemoryObservation } from '../probes/cgroup-memory.ts'
import {
  cgroupMemoryToObservation,
  type ProcStatus,
  parseCgroupV1Memory,
  parseCgroupV2Memory,
  parseProcCgroup,
  parseProcStatus,
  rssToObservation,
  unitFromCgroupPath,
} from '../probes/cgroup-memory.ts'
import { parseMeminfoFields } from '../probes/meminfo.ts'
import { parseNonNegativeInt } from '../probes/parse-result.ts'
import { type CollectContext, emptyOutput, errnoOf, fsReason, mapLimit, type ProbeOutput } from './context.ts'
import { parseShowBlocks, systemctl, systemdUnavailable, uniqueUnits } from './systemd.ts'

const PROBE = 'process-memory'

export const PROCESS_MEMORY_PROPERTIES = [
  'Id',
  'LoadState',
  'ActiveState',
  'MainPID',
  'ControlGroup',
  'MemoryMax',
  'MemoryLimit',
] as const

/** Where the cgroup hierarchies are mounted. */
export interface CgroupLayout {
  /** The cgroup2 mount: /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified (hybrid). */
  unified: string | undefined
  /** The cgroup v1 memory controller's mount. */
  v1Memory: string | undefined
  /** The cgroup v1 name=systemd hierarchy (process lists on v1-only hosts). */
  v1Systemd: string | undefined
}

const exists = (ctx: CollectContext, path: string): Promise<boolean> =>
  ctx.fs.stat(path).then(
    () => true,
    () => false,
  )

export async function detectCgroupLayout(ctx: CollectContext): Promise<CgroupLayout> {
  if (await exists(ctx, '/sys/fs/cgroup/cgroup.controllers')) {
    return { unified: '/sys/fs/cgroup', v1Memory: undefined, v1Systemd: undefined }
  }
  const [unified, memory, systemd] = await Promise.all([
    exists(ctx, '/sys/fs/cgroup/unified/cgroup.controllers'),
    exists(ctx, '/sys/fs/cgroup/memory/memory.usage_in_bytes'),
    exists(ctx, '/sys/fs/cgroup/systemd/cgroup.procs'),
  ])
  return {
    unified: unified ? '/sys/fs/cgroup/unified' : undefined,
    v1Memory: memory ? '/sys/fs/cgroup/memory' : undefined,
    v1Systemd: systemd ? '/sys/fs/cgroup/systemd' : undefined,
  }
}

/** `/proc/<pid>/stat` → the parent pid (field 4; the command name in field 2 may hold spaces and parentheses). */
export function parseProcStatPpid(text: string): number | undefined {
  const close = text.lastIndexOf(')')
  if (close < 0) return undefined
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  return fields[1] === undefined ? undefined : parseNonNegativeInt(fields[1])
}

/** A systemd memory property (`MemoryMax=`, `MemoryLimit=`) in bytes; `infinity`, empty or unset → undefined. */
export const limitFromProperty = (value: string | undefined): number | undefined => {
  const n = value === undefined ? undefined : parseNonNegativeInt(value)
  return n !== undefined && n > 0 ? n : undefined
}

/** cgroup interface files (`memory.max`, `cgroup.procs`, `tasks`, ...): not child cgroups. */
const INTERFACE_FILE =
  /^(cgroup|memory|cpu|cpuacct|cpuset|io|pids|rdma|hugetlb|misc|blkio|devices|freezer|net_cls|net_prio|perf_event)\.|^(tasks|notify_on_release|release_agent)$/
const MAX_CGROUPS = 100
const MAX_DEPTH = 4

/**
 * The pids of a cgroup and of its child cgroups (a unit with `Delegate=` or its own scopes has some), from
 * `cgroup.procs`. Throws when the unit's own cgroup.procs cannot be read.
 */
async function cgroupPids(dir: string, ctx: CollectContext): Promise<number[]> {
  const pids = new Set<number>()
  const queue: { dir: string; depth: number }[] = [{ dir, depth: 0 }]
  let visited = 0
  while (queue.length > 0 && visited < MAX_CGROUPS) {
    const next = queue.shift()!
    visited++
    let text: string
    try {
      text = await ctx.fs.readFile(`${next.dir}/cgroup.procs`)
    } catch (err) {
      if (next.depth === 0) throw err
      continue // not a cgroup after all, or gone
    }
    for (const line of text.split('\n')) {
      const pid = parseNonNegativeInt(line)
      if (pid !== undefined && pid > 0) pids.add(pid)
    }
    if (next.depth >= MAX_DEPTH) continue
    const names = await ctx.fs.readdir(next.dir).catch(() => [] as string[])
    for (const name of names)
      if (!INTERFACE_FILE.test(name)) queue.push({ dir: `${next.dir}/${name}`, depth: next.depth + 1 })
  }
  return [...pids].sort((a, b) => a - b)
}

/** `root` and every process under it, from the ppid in /proc/<pid>/stat (the fallback when no cgroup tells). */
export async function processTree(root: number, ctx: CollectContext): Promise<number[]> {
  const names = await ctx.fs.readdir('/proc')
  const children = new Map<number, number[]>()
  await mapLimit(
    names.filter((n) => /^\d+$/.test(n)),
    16,
    async (name) => {
      const text = await ctx.fs.readFile(`/proc/${name}/stat`).catch(() => undefined)
      const ppid = text === undefined ? undefined : parseProcStatPpid(text)
      if (ppid === undefined) return
      const list = children.get(ppid) ?? []
      list.push(Number(name))
      children.set(ppid, list)
    },
  )
  const out: number[] = []
  const seen = new Set<number>()
  const queue = [root]
  while (queue.length > 0) {
    const pid = queue.shift()!
    if (seen.has(pid)) continue
    seen.add(pid)
    out.push(pid)
    queue.push(...(children.get(pid) ?? []))
  }
  return out.sort((a, b) => a - b)
}

/** VmRSS of each pid; processes that ended meanwhile, and kernel threads, are left out. */
async function readStatuses(pids: readonly number[], ctx: CollectContext): Promise<ProcStatus[]> {
  const statuses = await mapLimit(pids, 16, async (pid): Promise<ProcStatus | undefined> => {
    const text = await ctx.fs.readFile(`/proc/${pid}/status`).catch(() => undefined)
    if (text === undefined) return undefined
    const parsed = parseProcStatus(text)
    return parsed.ok ? { ...parsed.value, pid: parsed.value.pid ?? pid } : undefined
  })
  return statuses.filter((s): s is ProcStatus => s !== undefined)
}

interface UnitFacts {
  unit: string
  controlGroup: string
  mainPid: number
  propertyLimit: number | undefined
}

type Measured = { obs: ProcessMemoryObservation } | { error: string } | undefined

/**
 * One unit's memory, first source that works: cgroup v2 `memory.current` (+ `memory.max`), cgroup v1
 * `memory.usage_in_bytes` (+ `memory.limit_in_bytes`) when the unit has its own memory cgroup, else the summed VmRSS
 * of its processes (from `cgroup.procs`, or MainPID and its descendants). The limit is the cgroup's, else
 * MemoryMax=/MemoryLimit=, else the host's MemTotal. A unit with no process gives no observation.
 */
async function measureUnit(
  facts: UnitFacts,
  layout: CgroupLayout,
  ctx: CollectContext,
  hostTotal: () => Promise<number | undefined>,
): Promise<Measured> {
  const { unit, controlGroup: cg, mainPid } = facts
  const limitOr = async (cgroupLimit: number | undefined): Promise<number | undefined> =>
    cgroupLimit ?? facts.propertyLimit ?? (await hostTotal())

  if (layout.unified && cg) {
    const dir = `${layout.unified}${cg}`
    const current = await ctx.fs.readFile(`${dir}/memory.current`).catch(() => undefined)
    if (current !== undefined) {
      const max = await ctx.fs.readFile(`${dir}/memory.max`).catch(() => 'max')
      const parsed = parseCgroupV2Memory(current, max)
      if (!parsed.ok) return { error: `${unit}: ${parsed.error.reason}` }
      const pids = await cgroupPids(dir, ctx).catch(() => [])
      const obs = cgroupMemoryToObservation(unit, parsed.value, 'cgroup-v2', pids)
      const limit = await limitOr(parsed.value.limitBytes)
      if (limit !== undefined) obs.limitBytes = limit
      return { obs }
    }
  }

  if (layout.v1Memory) {
    let path: string | undefined = cg || undefined
    if (mainPid > 0) {
      const text = await ctx.fs.readFile(`/proc/${mainPid}/cgroup`).catch(() => undefined)
      const parsed = text === undefined ? undefined : parseProcCgroup(text)
      if (parsed?.ok) path = parsed.value.v1.get('memory') ?? path
    }
    // Without memory accounting the unit's processes sit in a parent's memory cgroup: that is not the unit's figure.
    if (path && unitFromCgroupPath(path) === unit) {
      const dir = `${layout.v1Memory}${path}`
      const usage = await ctx.fs.readFile(`${dir}/memory.usage_in_bytes`).catch(() => undefined)
      if (usage !== undefined) {
        const limit = await ctx.fs.readFile(`${dir}/memory.limit_in_bytes`).catch(() => '-1')
        const parsed = parseCgroupV1Memory(usage, limit)
        if (!parsed.ok) return { error: `${unit}: ${parsed.error.reason}` }
        const pids = await cgroupPids(dir, ctx).catch(() => [])
        const obs = cgroupMemoryToObservation(unit, parsed.value, 'cgroup-v1', pids)
        const l = await limitOr(parsed.value.limitBytes)
        if (l !== undefined) obs.limitBytes = l
        return { obs }
      }
    }
  }

  let pids: number[] | undefined
  const procsRoot = layout.unified ?? layout.v1Systemd
  if (procsRoot && cg) pids = await cgroupPids(`${procsRoot}${cg}`, ctx).catch(() => undefined)
  if (pids === undefined && mainPid > 0) {
    try {
      pids = await processTree(mainPid, ctx)
    } catch (err) {
      return { error: `${unit}: no cgroup to read and ${fsReason('/proc', err)}` }
    }
  }
  if (pids === undefined || pids.length === 0) return undefined
  const statuses = await readStatuses(pids, ctx)
  if (statuses.length === 0) return undefined
  return { obs: rssToObservation(unit, statuses, await limitOr(undefined)) }
}

/**
 * Per-unit memory for the configured units (names or globs, expanded by systemd): one `systemctl show` for their
 * ControlGroup, MainPID and memory limits, then each unit's cgroup files or processes (see {@link measureUnit}).
 * The nested cgroup2 of a container or test machine often has no memory controller: the RSS path covers it.
 */
export async function collectProcessMemory(
  config: { units: readonly string[] },
  ctx: CollectContext,
): Promise<ProbeOutput> {
  const out = emptyOutput()
  const units = uniqueUnits(config.units)
  if (units.length === 0) return out
  const unavailable = await systemdUnavailable(ctx)
  if (unavailable) {
    out.errors.push({ probe: PROBE, reason: unavailable })
    return out
  }
  const shown = await systemctl(ctx, [
    'show',
    '--no-pager',
    `--property=${PROCESS_MEMORY_PROPERTIES.join(',')}`,
    '--',
    ...units,
  ])
  if (!shown.ok) {
    out.errors.push({ probe: PROBE, reason: shown.reason })
    return out
  }
  const facts: UnitFacts[] = []
  const seen = new Set<string>()
  for (const block of parseShowBlocks(shown.stdout)) {
    const unit = block.get('Id')
    if (!unit || seen.has(unit)) continue
    seen.add(unit)
    facts.push({
      unit,
      controlGroup: block.get('ControlGroup') ?? '',
      mainPid: parseNonNegativeInt(block.get('MainPID') ?? '') ?? 0,
      propertyLimit: limitFromProperty(block.get('MemoryMax')) ?? limitFromProperty(block.get('MemoryLimit')),
    })
  }
  const running = facts.filter((f) => f.controlGroup !== '' || f.mainPid > 0)
  if (running.length === 0) return out

  const layout = await detectCgroupLayout(ctx)
  let total: Promise<number | undefined> | undefined
  const hostTotal = (): Promise<number | undefined> => {
    total ??= ctx.fs.readFile('/proc/meminfo').then(
      (text) => parseMeminfoFields(text).get('MemTotal'),
      () => undefined,
    )
    return total
  }
  const measured = await mapLimit(running, 4, async (f) => {
    try {
      return await measureUnit(f, layout, ctx, hostTotal)
    } catch (err) {
      const code = errnoOf(err)
      return { error: `${f.unit}: ${code ? fsReason(f.controlGroup || `pid ${f.mainPid}`, err) : String(err)}` }
    }
  })
  for (const m of measured) {
    if (m === undefined) continue
    if ('obs' in m) out.observations.push(m.obs)
    else out.errors.push({ probe: PROBE, reason: m.error })
  }
  return out
}
