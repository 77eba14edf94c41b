import { ExecError, type RunResult } from '../../os/exec.ts'
import type { AuditEntry, ExecutorContext } from '../types.ts'
import { formatBytes, parseDockerReclaimed, parseJournalDiskUsage, shortenMiddle } from './report.ts'
import { measureTree } from './walk.ts'

/**
 * The categories a tool cleans for us: package-cache (apt-get / dnf), journal (journalctl), container-images
 * (docker / podman). Every command goes through ctx.run (argv arrays, timeouts). Bytes are measured, not taken
 * from the tool's word where a measure is at hand: the cache and journal directories are summed (st_blocks × 512)
 * before and after.
 */

export interface CommandPaths {
  aptArchivesDir: string
  dnfCacheDir: string
  journalDirs: readonly string[]
}

export interface CommandOutcome {
  status: 'done' | 'dry-run' | 'skipped' | 'failed'
  bytes: number
  reason?: string
  evidence: Record<string, unknown>
  audit: AuditEntry[]
}

const PACKAGE_TIMEOUT_MS = 300_000
const JOURNAL_TIMEOUT_MS = 300_000
const CONTAINER_TIMEOUT_MS = 900_000
const PROBE_TIMEOUT_MS = 30_000

/** Runs a command; `missing` when it is not installed (ENOENT from spawn). Other spawn errors propagate. */
async function tryRun(
  ctx: ExecutorContext,
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<RunResult | 'missing'> {
  try {
    return await ctx.run(file, args, { timeoutMs })
  } catch (err) {
    if (err instanceof ExecError && err.errno === 'ENOENT') return 'missing'
    throw err
  }
}

const ok = (r: RunResult): boolean => r.exitCode === 0 && !r.timedOut

/** Why a command failed, in one short line. */
export function failureText(argv: string[], r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`
  const err = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' / ')
  return shortenMiddle(`${argv.join(' ')}: ${how}${err ? `: ${err}` : ''}`, 500)
}

/** The outcome of a cleanup command that ran: done with the bytes it freed, or failed with why (and what it freed). */
const commandOutcome = (
  argv: string[],
  r: RunResult,
  bytes: number,
  evidence: Record<string, unknown>,
  category: string,
): CommandOutcome => {
  const target = argv.join(' ')
  if (!ok(r)) {
    const reason = failureText(argv, r)
    return {
      status: 'failed',
      bytes,
      reason,
      evidence,
      audit: [{ action: 'run-failed', target, category, detail: reason }],
    }
  }
  return { status: 'done', bytes, evidence, audit: [{ action: 'run', target, bytes, category }] }
}

const spawnFailure = (err: unknown): string => (err instanceof Error ? err.message : String(err))

const sumMeasured = (dirs: readonly string[]): number | undefined => {
  let any = false
  let total = 0
  for (const d of dirs) {
    const m = measureTree(d)
    if (m !== undefined) {
      any = true
      total += m
    }
  }
  return any ? total : undefined
}

/** package-cache: `apt-get clean`, else `dnf clean packages`; bytes = the cache directory before minus after. */
export async function cleanPackageCache(ctx: ExecutorContext, paths: CommandPaths): Promise<CommandOutcome> {
  const managers = [
    { file: 'apt-get', clean: ['clean'], dir: paths.aptArchivesDir },
    { file: 'dnf', clean: ['clean', 'packages'], dir: paths.dnfCacheDir },
  ]
  try {
    for (const m of managers) {
      const argv = [m.file, ...m.clean]
      const before = measureTree(m.dir) ?? 0
      if (ctx.dryRun) {
        const probe = await tryRun(ctx, m.file, ['--version'], PROBE_TIMEOUT_MS)
        if (probe === 'missing') continue
        return {
          status: 'dry-run',
          bytes: before,
          reason: `would run ${argv.join(' ')} (${formatBytes(before)} in ${m.dir})`,
          evidence: { manager: m.file, command: argv, cacheDir: m.dir, cacheBytesBefore: before },
          audit: [{ action: 'would-run', target: argv.join(' '), bytes: before, category: 'package-cache' }],
        }
      }
      const r = await tryRun(ctx, m.file, m.clean, PACKAGE_TIMEOUT_MS)
      if (r === 'missing') continue
      const after = measureTree(m.dir) ?? 0
      const bytes = Math.max(0, before - after)
      const evidence = {
        manager: m.file,
        command: argv,
        cacheDir: m.dir,
        cacheBytesBefore: before,
        cacheBytesAfter: after,
      }
      return commandOutcome(argv, r, bytes, evidence, 'package-cache')
    }
  } catch (err) {
    return { status: 'failed', bytes: 0, reason: spawnFailure(err), evidence: {}, audit: [] }
  }
  return { status: 'skipped', bytes: 0, reason: 'no apt-get or dnf on this host', evidence: {}, audit: [] }
}

/**
 * journal: `journalctl --vacuum-size=<size>` (removes archived journal files until the journal fits).
 * Bytes = the journal directories before minus after, summed exactly; `journalctl --disk-usage` before and after
 * (one-decimal figures) go to the evidence, and stand in when no journal directory exists.
 */
export async function vacuumJournal(ctx: ExecutorContext, size: string, paths: CommandPaths): Promise<CommandOutcome> {
  try {
    const usage = await tryRun(ctx, 'journalctl', ['--disk-usage'], PROBE_TIMEOUT_MS)
    if (usage === 'missing') {
      return {
        status: 'skipped',
        bytes: 0,
        reason: 'journalctl not installed (no systemd journal)',
        evidence: {},
        audit: [],
      }
    }
    const usageBefore = ok(usage) ? parseJournalDiskUsage(usage.stdout + usage.stderr) : undefined
    const measuredBefore = sumMeasured(paths.journalDirs)
    const argv = ['journalctl', `--vacuum-size=${size}`]
    const evidence: Record<string, unknown> = {
      command: argv,
      journalDirs: paths.journalDirs,
      measuredBytesBefore: measuredBefore,
      diskUsageBefore: usageBefore,
    }
    if (ctx.dryRun) {
      const now = measuredBefore ?? usageBefore ?? 0
      return {
        status: 'dry-run',
        bytes: 0,
        reason: `would run ${argv.join(' ')} (journal holds ${formatBytes(now)})`,
        evidence,
        audit: [{ action: 'would-run', target: argv.join(' '), bytes: now, category: 'journal' }],
      }
    }
    const r = await tryRun(ctx, 'journalctl', argv.slice(1), JOURNAL_TIMEOUT_MS)
    if (r === 'missing') {
      return { status: 'skipped', bytes: 0, reason: 'journalctl disappeared', evidence, audit: [] }
    }
    const measuredAfter = sumMeasured(paths.journalDirs)
    const usageAfterRun = await tryRun(ctx, 'journalctl', ['--disk-usage'], PROBE_TIMEOUT_MS)
    const usageAfter =
      usageAfterRun !== 'missing' && ok(usageAfterRun)
        ? parseJournalDiskUsage(usageAfterRun.stdout + usageAfterRun.stderr)
        : undefined
    evidence.measuredBytesAfter = measuredAfter
    evidence.diskUsageAfter = usageAfter
    let bytes = 0
    if (measuredBefore !== undefined && measuredAfter !== undefined) {
      bytes = Math.max(0, measuredBefore - measuredAfter)
      evidence.measure = 'journal directories, sum of st_blocks x 512'
    } else if (usageBefore !== undefined && usageAfter !== undefined) {
      bytes = Math.max(0, usageBefore - usageAfter)
      evidence.measure = 'journalctl --disk-usage (one decimal)'
    }
    return commandOutcome(argv, r, bytes, evidence, 'journal')
  } catch (err) {
    return { status: 'failed', bytes: 0, reason: spawnFailure(err), evidence: {}, audit: [] }
  }
}

const DAEMON_DOWN =
  /Cannot connect to the Docker daemon|Is the docker daemon running|error during connect|permission denied while trying to connect/i

/** `podman images --format json` → the sum of the images' sizes (each image id once). */
export function sumPodmanImageSizes(json: string): number | undefined {
  let rows: unknown
  try {
    rows = JSON.parse(json)
  } catch {
    return undefined
  }
  if (!Array.isArray(rows)) return undefined
  const seen = new Set<string>()
  let total = 0
  for (const row of rows) {
    if (typeof row !== 'object' || row === null) continue
    const r = row as Record<string, unknown>
    const id = String(r.Id ?? r.ID ?? r.id ?? '')
    const size = r.Size ?? r.size
    if (typeof size !== 'number' || !Number.isFinite(size) || seen.has(id)) continue
    seen.add(id)
    total += size
  }
  return total
}

/**
 * container-images: `docker image prune --all --force` (bytes: docker's own "Total reclaimed space", the sum of
 * the layers it deleted), else `podman image prune --all --force` (bytes: the image sizes before minus after).
 * Skipped with the reason when neither is installed or the docker daemon is not running.
 */
export async function pruneContainerImages(ctx: ExecutorContext): Promise<CommandOutcome> {
  let dockerReason: string | undefined
  try {
    // docker
    const dockerArgv = ['docker', 'image', 'prune', '--all', '--force']
    if (ctx.dryRun) {
      const v = await tryRun(ctx, 'docker', ['version', '--format', '{{.Server.Version}}'], PROBE_TIMEOUT_MS)
      if (v !== 'missing') {
        if (ok(v)) {
          return {
            status: 'dry-run',
            bytes: 0,
            reason: `would run ${dockerArgv.join(' ')}`,
            evidence: { engine: 'docker', command: dockerArgv },
            audit: [{ action: 'would-run', target: dockerArgv.join(' '), category: 'container-images' }],
          }
        }
        dockerReason = `docker daemon not reachable: ${failureText(['docker', 'version'], v)}`
      }
    } else {
      const r = await tryRun(ctx, 'docker', dockerArgv.slice(1), CONTAINER_TIMEOUT_MS)
      if (r !== 'missing') {
        if (ok(r)) {
          return commandOutcome(
            dockerArgv,
            r,
            parseDockerReclaimed(r.stdout) ?? 0,
            {
              engine: 'docker',
              command: dockerArgv,
              layersDeleted: r.stdout.split('\n').filter((l) => /^deleted: /i.test(l)).length,
              measure: 'docker: Total reclaimed space (decimal units, 3 significant digits)',
              reclaimedText: /Total reclaimed space:.*/.exec(r.stdout)?.[0],
            },
            'container-images',
          )
        }
        if (!DAEMON_DOWN.test(r.stderr + r.stdout)) {
          return commandOutcome(dockerArgv, r, 0, { engine: 'docker', command: dockerArgv }, 'container-images')
        }
        dockerReason = 'docker daemon not running'
      }
    }

    // podman
    const podmanArgv = ['podman', 'image', 'prune', '--all', '--force']
    const sizes = async (): Promise<number | undefined | 'missing'> => {
      const r = await tryRun(ctx, 'podman', ['images', '--format', 'json'], PROBE_TIMEOUT_MS)
      if (r === 'missing') return 'missing'
      return ok(r) ? sumPodmanImageSizes(r.stdout) : undefined
    }
    const before = await sizes()
    if (before !== 'missing') {
      if (ctx.dryRun) {
        return {
          status: 'dry-run',
          bytes: 0,
          reason: `would run ${podmanArgv.join(' ')}`,
          evidence: { engine: 'podman', command: podmanArgv, imageBytesBefore: before },
          audit: [{ action: 'would-run', target: podmanArgv.join(' '), category: 'container-images' }],
        }
      }
      const r = await tryRun(ctx, 'podman', podmanArgv.slice(1), CONTAINER_TIMEOUT_MS)
      if (r !== 'missing') {
        const after = await sizes()
        const bytes = typeof before === 'number' && typeof after === 'number' ? Math.max(0, before - after) : 0
        const evidence = {
          engine: 'podman',
          command: podmanArgv,
          imageBytesBefore: before,
          imageBytesAfter: after === 'missing' ? undefined : after,
          imagesRemoved: r.stdout.split('\n').filter((l) => l.trim().length > 0).length,
          measure: 'podman images: sum of image sizes before minus after (shared layers counted per image)',
        }
        return commandOutcome(podmanArgv, r, bytes, evidence, 'container-images')
      }
    }
  } catch (err) {
    return { status: 'failed', bytes: 0, reason: spawnFailure(err), evidence: {}, audit: [] }
  }
  return {
    status: 'skipped',
    bytes: 0,
    reason: dockerReason ?? 'no docker or podman on this host',
    evidence: {},
    audit: [],
  }
}
