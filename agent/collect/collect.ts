import { hostname as osHostname } from 'node:os'
import type { Observation, ProbeError, ReportV1 } from '../../shared/contracts/index.ts'
import type { ProbesConfig } from '../config/probes.ts'
import { type CollectContext, describeError, mapLimit, type ProbeOutput, TimeoutError, withTimeout } from './context.ts'
import { type HostConfig, hostIdentity } from './host.ts'
import { nextSeq } from './state.ts'

/** The probes, by their key in the `probes:` config. */
export type ProbeName =
  | 'services'
  | 'filesystems'
  | 'memory'
  | 'processMemory'
  | 'certificates'
  | 'databases'
  | 'backups'
  | 'cron'
  | 'dns'
  | 'packages'
  | 'containers'
  | 'custom'

export interface ProbeEntry {
  name: ProbeName
  /** The name ProbeErrors use: the observation kind. */
  probe: string
  enabled: (c: ProbesConfig) => boolean
  /** The whole probe's budget; each command and connection inside has its own, shorter, timeout. */
  timeoutMs: (c: ProbesConfig) => number
  /** Loads the adapter (dynamic import: a disabled probe costs nothing) and runs it. */
  run: (c: ProbesConfig, ctx: CollectContext) => Promise<ProbeOutput>
}

/** Units whose memory is watched: `processMemory.units`, else the watched services. */
export const processMemoryUnits = (c: ProbesConfig): string[] => c.processMemory.units ?? c.services.units

/** Every probe, in report order. Listed explicitly (house style 3). */
export const PROBE_ENTRIES: readonly ProbeEntry[] = [
  {
    name: 'services',
    probe: 'service',
    enabled: (c) => c.services.units.length > 0 || c.services.failedAny,
    timeoutMs: () => 25_000,
    run: async (c, ctx) => (await import('./services.ts')).collectServices(c.services, ctx),
  },
  {
    name: 'filesystems',
    probe: 'filesystem',
    enabled: (c) => c.filesystems.enabled,
    timeoutMs: () => 15_000,
    run: async (c, ctx) => (await import('./filesystems.ts')).collectFilesystems(c.filesystems, ctx),
  },
  {
    name: 'memory',
    probe: 'memory',
    enabled: (c) => c.memory.enabled,
    timeoutMs: () => 5_000,
    run: async (c, ctx) => (await import('./memory.ts')).collectMemory(c.memory, ctx),
  },
  {
    name: 'processMemory',
    probe: 'process-memory',
    enabled: (c) => processMemoryUnits(c).length > 0,
    timeoutMs: () => 20_000,
    run: async (c, ctx) =>
      (await import('./process-memory.ts')).collectProcessMemory({ units: processMemoryUnits(c) }, ctx),
  },
  {
    name: 'certificates',
    probe: 'certificate',
    enabled: (c) => c.certificates.files.length > 0 || c.certificates.endpoints.length > 0,
    timeoutMs: (c) => 10_000 + Math.ceil(c.certificates.endpoints.length / 8) * (c.certificates.timeoutMs + 500),
    run: async (c, ctx) => (await import('./certificates.ts')).collectCertificates(c.certificates, ctx),
  },
  {
    name: 'databases',
    probe: 'database',
    enabled: (c) => c.databases.length > 0,
    // 4 at once; a target takes at most two queries, each within its timeoutSeconds (plus the kill grace)
    timeoutMs: (c) =>
      5_000 +
      Math.ceil(c.databases.length / 4) * Math.max(0, ...c.databases.map((d) => d.timeoutSeconds * 2_000 + 2_500)),
    run: async (c, ctx) => (await import('./databases.ts')).collectDatabases(c.databases, ctx),
  },
  {
    name: 'backups',
    probe: 'backup',
    enabled: (c) => c.backups.length > 0,
    timeoutMs: (c) => 10_000 + c.backups.reduce((sum, j) => sum + j.integrityTimeoutSeconds * 1000 + 2_500, 0),
    run: async (c, ctx) => (await import('./backups.ts')).collectBackups(c.backups, ctx),
  },
  {
    name: 'cron',
    probe: 'cron',
    enabled: (c) => c.cron.enabled,
    timeoutMs: () => 5_000,
    run: async (c, ctx) => (await import('./cron.ts')).collectCron(c.cron, ctx),
  },
  {
    name: 'dns',
    probe: 'dns',
    enabled: (c) => c.dns.names.length > 0,
    timeoutMs: (c) => 1_000 + Math.ceil(c.dns.names.length / 8) * (c.dns.timeoutMs + 100),
    run: async (c, ctx) => (await import('./dns.ts')).collectDns(c.dns, ctx),
  },
  {
    name: 'packages',
    probe: 'packages',
    enabled: (c) => c.packages.enabled,
    // apt-get, then maybe dnf's two commands, each with its own timeout, plus the kill grace
    timeoutMs: (c) => c.packages.timeoutSeconds * 1000 * 2 + 5_000,
    run: async (c, ctx) => (await import('./packages.ts')).collectPackages(c.packages, ctx),
  },
  {
    name: 'containers',
    probe: 'container',
    enabled: (c) => c.containers.enabled !== false,
    timeoutMs: () => 45_000,
    run: async (c, ctx) => (await import('./containers.ts')).collectContainers(c.containers, ctx),
  },
  {
    name: 'custom',
    probe: 'custom',
    enabled: (c) => c.custom.enabled,
    timeoutMs: () => 5_000,
    run: async (c, ctx) => (await import('./custom.ts')).collectCustom(c.custom, ctx),
  },
]

export interface CollectOptions {
  probes: ProbesConfig
  host?: HostConfig | undefined
  /** The agent's version, as the report states it. */
  agentVersion: string
  /** Where the sequence counter lives (`<stateDir>/seq`). */
  stateDir: string
  /** Probes at once; default 4. */
  concurrency?: number
  /** Run only these probes (e.g. `services` for an instant OnFailure= report); default every enabled one. */
  only?: readonly ProbeName[]
  /** Override a probe's overall timeout (tests). */
  timeoutsMs?: Partial<Record<ProbeName, number>>
  /** The host name; default os.hostname(). */
  hostname?: string
  /**
   * Check every observation and the envelope against the v1 contract (default true): an adapter bug then costs one
   * observation, not the report. This loads zod and the contracts (~20-40 ms of CPU and ~10 MiB in a fresh
   * process); `false` skips it where the receiver validates anyway and the budget is tight.
   */
  validate?: boolean
}

export interface ProbeRun {
  name: ProbeName
  wallMs: number
  observations: number
  errors: number
  outcome: 'ok' | 'threw' | 'timed-out'
}

export interface CollectResult {
  report: ReportV1
  probes: ProbeRun[]
}

const MAX_OBSERVATIONS = 10_000

type ObservationCheck = (obs: Observation) => { ok: true; value: Observation } | { ok: false; where: string }

/** The contract check of one observation (zod, loaded only when validating). */
async function loadObservationCheck(): Promise<ObservationCheck> {
  const { ObservationSchema } = await import('../../shared/contracts/observation.ts')
  return (obs) => {
    const checked = ObservationSchema.safeParse(obs)
    if (checked.success) return { ok: true, value: checked.data }
    const issue = checked.error.issues[0]
    return { ok: false, where: issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid' }
  }
}

/** Runs one probe within its timeout; a throw or a timeout becomes a ProbeError. */
async function runProbe(
  entry: ProbeEntry,
  options: CollectOptions,
  ctx: CollectContext,
  check: ObservationCheck | undefined,
): Promise<{ output: ProbeOutput; run: ProbeRun }> {
  // process.hrtime, not performance.now(): the `performance` global loads perf_hooks (~0.5 MB, 1 ms) at first use
  const started = process.hrtime.bigint()
  const timeoutMs = options.timeoutsMs?.[entry.name] ?? entry.timeoutMs(options.probes)
  let output: ProbeOutput
  let outcome: ProbeRun['outcome'] = 'ok'
  try {
    output = await withTimeout(entry.run(options.probes, ctx), timeoutMs, entry.probe)
  } catch (err) {
    outcome = err instanceof TimeoutError ? 'timed-out' : 'threw'
    const reason =
      err instanceof TimeoutError
        ? `did not finish within ${timeoutMs} ms; its results are left out of this report`
        : `failed: ${describeError(err)}`
    output = { observations: [], errors: [{ probe: entry.probe, reason }] }
  }
  // An adapter bug must not cost the report: each observation is checked against its contract on its own.
  const observations: Observation[] = []
  const errors: ProbeError[] = [...output.errors]
  for (const obs of output.observations) {
    const checked = check ? check(obs) : { ok: true as const, value: obs }
    if (checked.ok) observations.push(checked.value)
    else {
      errors.push({
        probe: entry.probe,
        reason: `an observation was dropped, it breaks the contract (${checked.where})`,
      })
    }
  }
  const run: ProbeRun = {
    name: entry.name,
    wallMs: Math.round(Number(process.hrtime.bigint() - started) / 100_000) / 10,
    observations: observations.length,
    errors: errors.length,
    outcome,
  }
  return { output: { observations, errors }, run }
}

/**
 * Runs every enabled probe against this host (up to `concurrency` at once, each within its own timeout) and builds
 * a ReportV1. A probe that throws or times out adds a ProbeError; the rest of the report is unaffected. The host is
 * `host.id ?? hostname`; `seq` comes from the counter in the state directory (see {@link nextSeq}); `time` is when
 * the collection started.
 */
export async function collectDetailed(options: CollectOptions, ctx: CollectContext): Promise<CollectResult> {
  const time = ctx.now()
  const entries = PROBE_ENTRIES.filter(
    (e) => e.enabled(options.probes) && (options.only === undefined || options.only.includes(e.name)),
  )
  const validate = options.validate ?? true
  const check = validate ? await loadObservationCheck() : undefined
  const [results, seqResult] = await Promise.all([
    mapLimit(entries, options.concurrency ?? 4, (entry) => runProbe(entry, options, ctx, check)),
    nextSeq(options.stateDir, time).then(
      (seq) => ({ seq }),
      (err: unknown) => ({ seq: Math.floor(time.getTime() / 1000), error: describeError(err) }),
    ),
  ])

  let observations = results.flatMap((r) => r.output.observations)
  const probeErrors = results.flatMap((r) => r.output.errors)
  if (observations.length > MAX_OBSERVATIONS) {
    probeErrors.push({
      probe: 'agent',
      reason: `${observations.length} observations, only the first ${MAX_OBSERVATIONS} are reported`,
    })
    observations = observations.slice(0, MAX_OBSERVATIONS)
  }
  if ('error' in seqResult) {
    probeErrors.push({ probe: 'agent', reason: `sequence counter not saved (${seqResult.error}); seq from the clock` })
  }
  const report: ReportV1 = {
    schema: 'ansai.report.v1',
    host: hostIdentity(options.host, options.hostname ?? osHostname()),
    agent: { version: options.agentVersion },
    time: time.toISOString(),
    seq: seqResult.seq,
    observations,
    probeErrors,
  }
  const runs = results.map((r) => r.run)
  if (!validate) return { report, probes: runs }
  const { ReportV1Schema } = await import('../../shared/contracts/report.ts')
  const checked = ReportV1Schema.safeParse(report)
  if (!checked.success) {
    // Only the envelope can be wrong here (observations were checked one by one): a configuration mistake.
    const issue = checked.error.issues[0]
    throw new Error(`the report breaks its contract at ${issue?.path.join('.')}: ${issue?.message}`)
  }
  return { report: checked.data, probes: runs }
}

/** {@link collectDetailed}, the report only. */
export const collect = async (options: CollectOptions, ctx: CollectContext): Promise<ReportV1> =>
  (await collectDetailed(options, ctx)).report
