import type { X509Certificate } from 'node:crypto'
import type { Observation, ProbeError } from '../../shared/contracts/index.ts'
import type { RunOptions, RunResult } from '../os/exec.ts'
import type { StatfsLike } from '../probes/mountinfo.ts'

/**
 * What every probe adapter gets: everything that touches the host comes through here, so a unit test injects
 * fixture text and fake commands, and the integration test (or a systemd test machine) the real thing.
 *
 * Reads of host files go through `fs`; spawning goes through `run` (agent/os/exec.ts in production, the only place
 * that spawns). The adapters' own state (caches of slow probes, integrity results) is written with node:fs under
 * `cacheDir`, a directory that belongs to the agent.
 */
export interface CollectContext {
  /** `runCommand` of agent/os/exec.ts: argv arrays, mandatory timeout; throws only when it cannot start. */
  run: (file: string, args: readonly string[], opts: RunOptions) => Promise<RunResult>
  /** Wall clock. */
  now: () => Date
  /** Read-only access to the host's files. */
  fs: CollectFs
  /** The agent's cache directory (slow probes, integrity results); created when needed. */
  cacheDir: string
  /** The environment children get (PATH, ...); the adapters add LC_ALL=C where they parse text. */
  env: Readonly<Record<string, string | undefined>>
  /** DNS lookup (all addresses); default node:dns/promises `lookup`. */
  lookup?: (name: string) => Promise<string[]>
  /** Connects with TLS and returns the peer's certificate; default node:tls, no trust check. */
  peerCertificate?: (endpoint: TlsTarget, timeoutMs: number) => Promise<X509Certificate>
}

export interface TlsTarget {
  host: string
  port: number
  servername?: string | undefined
}

export interface FileStat {
  size: number
  mtimeMs: number
  isFile: boolean
  isDirectory: boolean
}

/** Errors are node's: an `Error` with `code` (ENOENT, EACCES, ...). */
export interface CollectFs {
  readFile: (path: string) => Promise<string>
  /** Entry names, not paths. */
  readdir: (path: string) => Promise<string[]>
  /** Follows symlinks. */
  stat: (path: string) => Promise<FileStat>
  statfs: (path: string) => Promise<StatfsLike>
}

/** What a probe adapter returns; it never throws for anything the host does. */
export interface ProbeOutput {
  observations: Observation[]
  errors: ProbeError[]
}

export type ProbeAdapter<C> = (config: C, ctx: CollectContext) => Promise<ProbeOutput>

export const emptyOutput = (): ProbeOutput => ({ observations: [], errors: [] })

/** The OS error code of an error (`ENOENT`, `EACCES`), when it has one. */
export const errnoOf = (err: unknown): string | undefined => {
  const code = (err as { errno?: unknown; code?: unknown } | null)?.code
  const errno = (err as { errno?: unknown } | null)?.errno
  if (typeof errno === 'string') return errno // ExecError keeps the OS code in errno
  return typeof code === 'string' ? code : undefined
}

/** A short, single-line description of an error for a ProbeError reason. */
export const describeError = (err: unknown): string => {
  const message = err instanceof Error ? err.message : String(err)
  const line = message.split('\n')[0]!.trim()
  return line.length > 300 ? `${line.slice(0, 300)}…` : line || 'unknown error'
}

const FS_MESSAGES: Record<string, string> = {
  ENOENT: 'does not exist',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'is not a directory',
  ELOOP: 'too many symlinks',
}

/** `path: permission denied (EACCES)`. */
export const fsReason = (path: string, err: unknown): string => {
  const code = errnoOf(err)
  const known = code ? FS_MESSAGES[code] : undefined
  return known ? `${path}: ${known} (${code})` : `${path}: ${describeError(err)}`
}

/** The first meaningful line of a command's stderr (or stdout), for error messages. */
export const firstLine = (text: string): string => {
  const line =
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? ''
  return line.length > 300 ? `${line.slice(0, 300)}…` : line
}

/** Why a finished command is not a success, or undefined when it is (exit 0, no timeout). */
export const commandFailure = (what: string, result: RunResult): string | undefined => {
  if (result.timedOut) return `${what} timed out after ${Math.round(result.durationMs)} ms`
  if (result.exitCode === 0) return undefined
  const how = result.exitCode === null ? `was killed by ${result.signal ?? 'a signal'}` : `exited ${result.exitCode}`
  const said = firstLine(result.stderr) || firstLine(result.stdout)
  return `${what} ${how}${said ? `: ${said}` : ''}`
}

/** Why a command could not start: `systemctl not found`, `... permission denied`. */
export const spawnFailure = (file: string, err: unknown): string => {
  const code = errnoOf(err)
  if (code === 'ENOENT') return `${file} not found (not installed, or not on PATH)`
  if (code === 'EACCES') return `${file}: permission denied`
  return `cannot run ${file}: ${describeError(err)}`
}

/** The child environment with LC_ALL=C (parsed output must not be translated), without undefined values. */
export const cEnvironment = (env: CollectContext['env']): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string') out[k] = v
  out.LC_ALL = 'C'
  out.LANG = 'C'
  if (!out.PATH) out.PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  return out
}

/** Resolves with the value, or rejects with a TimeoutError after `ms`. The timer never keeps the process alive. */
export const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms)
    timer.unref?.()
    promise.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      (e: unknown) => {
        clearTimeout(timer)
        reject(e)
      },
    )
  })

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError'
}

/** Runs `fn` over `items` with at most `limit` at a time; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  return results
}
