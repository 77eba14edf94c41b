import { join } from 'node:path'
import type { ObservationOf } from '../../shared/contracts/index.ts'
import type { BackupJob } from '../config/probes.ts'
import {
  type CollectContext,
  cEnvironment,
  commandFailure,
  emptyOutput,
  errnoOf,
  fsReason,
  mapLimit,
  type ProbeOutput,
  spawnFailure,
} from './context.ts'
import { globToRegExp } from './glob.ts'
import { readJson, writeJson } from './state.ts'

const PROBE = 'backup'
type BackupObservation = ObservationOf<'backup'>
type Integrity = NonNullable<BackupObservation['integrity']>

export const INTEGRITY_CACHE_FILE = 'backup-integrity.json'

/** `auto`: by extension. `.tar`, `.tar.<anything>`, `.tgz`, `.tbz2`, `.txz` → tar (GNU tar detects compression); `.gz` → gzip. */
export function integrityTestFor(mode: BackupJob['integrity'], path: string): 'gzip' | 'tar' | 'none' {
  if (mode !== 'auto') return mode
  const name = path.toLowerCase()
  if (/\.(tar|tar\.[a-z0-9]+|tgz|tbz2?|txz|tzst)$/.test(name)) return 'tar'
  if (name.endsWith('.gz')) return 'gzip'
  return 'none'
}

interface CachedIntegrity {
  path: string
  size: number
  mtimeMs: number
  integrity: 'ok' | 'failed'
  checkedAt: string
  detail?: string
}

interface IntegrityCache {
  version: 1
  jobs: Record<string, CachedIntegrity>
}

const loadCache = async (path: string): Promise<IntegrityCache> => {
  const data = (await readJson(path)) as Partial<IntegrityCache> | undefined
  return data?.version === 1 && typeof data.jobs === 'object' && data.jobs !== null
    ? { version: 1, jobs: data.jobs }
    : { version: 1, jobs: {} }
}

interface Artifact {
  path: string
  size: number
  mtimeMs: number
}

/** The newest regular file in `dir` whose name matches `pattern` (by mtime; same mtime: the later name). */
async function newestArtifact(job: BackupJob, ctx: CollectContext): Promise<Artifact | undefined> {
  const re = globToRegExp(job.pattern)
  const names = (await ctx.fs.readdir(job.dir)).filter(
    (n) => re.test(n) && (!n.startsWith('.') || job.pattern.startsWith('.')),
  )
  const stats = await mapLimit(names, 16, async (name) => {
    const path = join(job.dir, name)
    const s = await ctx.fs.stat(path).catch(() => undefined) // removed meanwhile, or a dangling link
    return s?.isFile ? { path, size: s.size, mtimeMs: s.mtimeMs } : undefined
  })
  let newest: Artifact | undefined
  for (const a of stats) {
    if (!a) continue
    if (!newest || a.mtimeMs > newest.mtimeMs || (a.mtimeMs === newest.mtimeMs && a.path > newest.path)) newest = a
  }
  return newest
}

/** Runs `gzip -t` / `tar -tf` on the artifact: exit 0 → ok, another exit → failed; no answer → undefined. */
async function testIntegrity(
  test: 'gzip' | 'tar',
  artifact: Artifact,
  job: BackupJob,
  ctx: CollectContext,
): Promise<{ integrity: 'ok' | 'failed'; detail?: string } | { error: string }> {
  const args = test === 'gzip' ? ['-t', '--', artifact.path] : ['-tf', artifact.path]
  let result: Awaited<ReturnType<CollectContext['run']>>
  try {
    result = await ctx.run(test, args, {
      timeoutMs: job.integrityTimeoutSeconds * 1000,
      env: cEnvironment(ctx.env),
      maxOutputBytes: 64 * 1024, // tar lists every member on stdout: keep a little, drop the rest
    })
  } catch (err) {
    return { error: `${job.job}: integrity unknown: ${spawnFailure(test, err)}` }
  }
  if (result.timedOut) {
    return { error: `${job.job}: integrity unknown: ${test} took more than ${job.integrityTimeoutSeconds} s` }
  }
  const failure = commandFailure(test === 'gzip' ? 'gzip -t' : 'tar -tf', result)
  return failure ? { integrity: 'failed', detail: failure } : { integrity: 'ok' }
}

/**
 * Backups: for each job, the newest artifact in `dir` matching `pattern`: its time (mtime), path and size, and the
 * result of an integrity test (`gzip -t`, `tar -tf`). The test runs once per artifact: its result is cached in
 * `<cacheDir>/backup-integrity.json` by (path, size, mtime), so an unchanged artifact is not read again. An
 * artifact younger than `settleSeconds` may still be being written: integrity `unknown` until then. A job whose
 * directory is missing or empty is observed without an artifact (its age is then infinite); an unreadable
 * directory is a ProbeError.
 */
export async function collectBackups(jobs: readonly BackupJob[], ctx: CollectContext): Promise<ProbeOutput> {
  const out = emptyOutput()
  if (jobs.length === 0) return out
  const cachePath = join(ctx.cacheDir, INTEGRITY_CACHE_FILE)
  const cache = await loadCache(cachePath)
  let cacheChanged = false
  const now = ctx.now().getTime()

  for (const job of jobs) {
    let artifact: Artifact | undefined
    try {
      artifact = await newestArtifact(job, ctx)
    } catch (err) {
      const code = errnoOf(err)
      if (code !== 'ENOENT') {
        out.errors.push({ probe: PROBE, reason: `${job.job}: ${fsReason(job.dir, err)}` })
        continue
      }
    }
    if (!artifact) {
      out.observations.push({ kind: 'backup', job: job.job })
      continue
    }
    const obs: BackupObservation = {
      kind: 'backup',
      job: job.job,
      newestArtifactAt: new Date(artifact.mtimeMs).toISOString(),
      newestArtifactPath: artifact.path,
      sizeBytes: artifact.size,
    }
    const test = integrityTestFor(job.integrity, artifact.path)
    if (test !== 'none') obs.integrity = await integrityOf(test, artifact, job)
    out.observations.push(obs)
  }
  if (cacheChanged) {
    try {
      await writeJson(cachePath, cache)
    } catch (err) {
      out.errors.push({ probe: PROBE, reason: `integrity results not cached: ${fsReason(cachePath, err)}` })
    }
  }
  return out

  async function integrityOf(test: 'gzip' | 'tar', artifact: Artifact, job: BackupJob): Promise<Integrity> {
    const cached = cache.jobs[job.job]
    if (
      cached &&
      cached.path === artifact.path &&
      cached.size === artifact.size &&
      cached.mtimeMs === artifact.mtimeMs
    ) {
      return cached.integrity
    }
    if (now - artifact.mtimeMs < job.settleSeconds * 1000) return 'unknown'
    const tested = await testIntegrity(test, artifact, job, ctx)
    if ('error' in tested) {
      out.errors.push({ probe: PROBE, reason: tested.error })
      return 'unknown'
    }
    cache.jobs[job.job] = {
      path: artifact.path,
      size: artifact.size,
      mtimeMs: artifact.mtimeMs,
      integrity: tested.integrity,
      checkedAt: new Date(now).toISOString(),
      ...(tested.detail ? { detail: tested.detail } : {}),
    }
    cacheChanged = true
    return tested.integrity
  }
}
