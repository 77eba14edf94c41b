import { join } from 'node:path'
import type { ObservationOf, ProbeError } from '../../shared/contracts/index.ts'
import { parseDuration } from '../../shared/engine/duration.ts'
import type { ProbesConfig } from '../config/probes.ts'
import type { RunResult } from '../os/exec.ts'
import {
  type CollectContext,
  cEnvironment,
  commandFailure,
  emptyOutput,
  errnoOf,
  fsReason,
  type ProbeOutput,
  spawnFailure,
} from './context.ts'
import { readJson, writeJson } from './state.ts'

const PROBE = 'packages'
type PackagesObservation = ObservationOf<'packages'>

export const PACKAGES_CACHE_FILE = 'packages.json'
/** A failed check is tried again after this long at most (sooner when `every` is shorter). */
export const FAILURE_RETRY_MS = 3_600_000
export const REBOOT_REQUIRED_PATH = '/var/run/reboot-required'

export interface PackagesCache {
  version: 1
  checkedAt: string
  observation?: PackagesObservation
  problems?: ProbeError[]
  error?: string
}

type CheckResult = { observation: PackagesObservation; problems: ProbeError[] } | { error: string }

class NotInstalled extends Error {}

async function runManager(
  ctx: CollectContext,
  file: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<RunResult> {
  try {
    return await ctx.run(file, args, { timeoutMs, env: cEnvironment(ctx.env), maxOutputBytes: 16 * 1024 * 1024 })
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') throw new NotInstalled(file)
    throw new Error(spawnFailure(file, err))
  }
}

/** apt: `apt-get -s -o Debug::NoLocking=1 dist-upgrade` (a simulation: no lock, no change), LC_ALL=C. */
async function checkApt(ctx: CollectContext, timeoutMs: number): Promise<CheckResult> {
  const result = await runManager(ctx, 'apt-get', ['-s', '-o', 'Debug::NoLocking=1', 'dist-upgrade'], timeoutMs)
  const failure = commandFailure('apt-get -s dist-upgrade', result)
  if (failure) return { error: failure }
  const rebootRequired = await ctx.fs.stat(REBOOT_REQUIRED_PATH).then(
    () => true,
    () => false,
  )
  const { parseAptUpgradable } = await import('../probes/apt-upgradable.ts')
  const parsed = parseAptUpgradable(result.stdout, { rebootRequired })
  return parsed.ok ? { observation: parsed.value, problems: parsed.problems } : { error: parsed.error.reason }
}

/**
 * dnf (or yum): `check-update` (exit 100 = updates pending, 0 = none) and, for dnf, `updateinfo list --security`,
 * both from the cached metadata (`-C`): refreshing it is the system's job (dnf-makecache.timer), as apt's lists are.
 */
async function checkDnf(ctx: CollectContext, manager: 'dnf' | 'yum', timeoutMs: number): Promise<CheckResult> {
  const check = await runManager(ctx, manager, ['-q', '-C', 'check-update'], timeoutMs)
  if (check.timedOut || (check.exitCode !== 0 && check.exitCode !== 100)) {
    return { error: commandFailure(`${manager} check-update`, check) ?? `${manager} check-update failed` }
  }
  let security: string | undefined
  if (manager === 'dnf') {
    const sec = await runManager(ctx, 'dnf', ['-q', '-C', 'updateinfo', 'list', '--security'], timeoutMs)
    if (!commandFailure('dnf updateinfo', sec)) security = sec.stdout
  }
  const { parseDnfUpdates } = await import('../probes/apt-upgradable.ts')
  const parsed = parseDnfUpdates(check.stdout, security, { manager })
  const problems = [...(parsed.ok ? parsed.problems : [])]
  if (manager === 'dnf' && security === undefined) {
    problems.push({ probe: PROBE, reason: 'security count unknown: dnf updateinfo failed' })
  }
  return parsed.ok ? { observation: parsed.value, problems } : { error: parsed.error.reason }
}

/** The first package manager found on PATH: apt-get, then dnf, then yum. */
export async function checkPackages(ctx: CollectContext, timeoutMs: number): Promise<CheckResult> {
  const attempts: (() => Promise<CheckResult>)[] = [
    () => checkApt(ctx, timeoutMs),
    () => checkDnf(ctx, 'dnf', timeoutMs),
    () => checkDnf(ctx, 'yum', timeoutMs),
  ]
  for (const attempt of attempts) {
    try {
      return await attempt()
    } catch (err) {
      if (err instanceof NotInstalled) continue
      return { error: err instanceof Error ? err.message : String(err) }
    }
  }
  return { error: 'no supported package manager found (apt-get, dnf, yum)' }
}

const validCache = (data: unknown): PackagesCache | undefined => {
  const c = data as Partial<PackagesCache> | undefined
  if (c?.version !== 1 || typeof c.checkedAt !== 'string' || !Number.isFinite(Date.parse(c.checkedAt))) return undefined
  if (c.observation === undefined && typeof c.error !== 'string') return undefined
  return c as PackagesCache
}

const fromCache = (cache: PackagesCache, out: ProbeOutput): ProbeOutput => {
  if (cache.observation) out.observations.push(cache.observation)
  out.errors.push(...(cache.problems ?? []))
  if (cache.error) out.errors.push({ probe: PROBE, reason: `${cache.error} (checked at ${cache.checkedAt})` })
  return out
}

/**
 * Pending package updates, a SLOW probe: the package manager's check costs seconds of CPU, so it really runs at
 * most once per `every` (a failure is retried after at most an hour) and its result is kept in
 * `<cacheDir>/packages.json` with its time; in between, every report carries the cached observation. A clock that
 * went backwards makes the cache stale.
 */
export async function collectPackages(config: ProbesConfig['packages'], ctx: CollectContext): Promise<ProbeOutput> {
  const out = emptyOutput()
  if (!config.enabled) return out
  const cachePath = join(ctx.cacheDir, PACKAGES_CACHE_FILE)
  const now = ctx.now().getTime()
  const cache = validCache(await readJson(cachePath))
  if (cache) {
    const age = now - Date.parse(cache.checkedAt)
    const everyMs = parseDuration(config.every)
    const maxAge = cache.error ? Math.min(everyMs, FAILURE_RETRY_MS) : everyMs
    if (age >= 0 && age < maxAge) return fromCache(cache, out)
  }

  const result = await checkPackages(ctx, config.timeoutSeconds * 1000)
  const fresh: PackagesCache = { version: 1, checkedAt: new Date(now).toISOString() }
  if ('error' in result) fresh.error = result.error
  else {
    fresh.observation = result.observation
    if (result.problems.length > 0) fresh.problems = result.problems
  }
  try {
    await writeJson(cachePath, fresh)
  } catch (err) {
    out.errors.push({
      probe: PROBE,
      reason: `result not cached, the next run checks again: ${fsReason(cachePath, err)}`,
    })
  }
  return fromCache(fresh, out)
}
