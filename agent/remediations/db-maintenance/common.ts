import { runClient, runFirstClient } from '../../collect/databases.ts'
import type { RunResult } from '../../os/exec.ts'
import {
  asUser,
  clientError,
  type DbCommand,
  type DbTarget,
  describeCommand,
  type OsUser,
} from '../../probes/db-client.ts'
import type { ParseResult } from '../../probes/parse-result.ts'
import type { AuditEntry, ExecutorContext } from '../types.ts'

/** What one engine's part of db-maintenance gets. */
export interface MaintenanceRun {
  ctx: ExecutorContext
  target: DbTarget
  /** The OS user the clients run as (setpriv), or undefined for the agent's own. */
  user: OsUser | undefined
  env: Readonly<Record<string, string | undefined>>
  /** A query (measurements, listings): default 30 s. */
  queryTimeoutMs: number
  /** The maintenance command itself: default 50 min (an SSM command gets an hour). */
  operationTimeoutMs: number
  /** pg_amcheck: a path, null (use the SQL fallback), or undefined (look for it). */
  pgAmcheck: string | null | undefined
  sleep: (ms: number) => Promise<void>
  audit: AuditEntry[]
  /** Every command run, for the evidence (argv as one line; no secret is ever in an argv). */
  commands: string[]
}

/** One engine's outcome; db-maintenance.ts turns it into the result line. */
export interface Outcome {
  status: 'succeeded' | 'failed' | 'skipped' | 'dry-run'
  summary: string
  error?: string
  evidence: Record<string, unknown>
  bytesRecovered?: Record<string, number>
  items?: string[]
  itemsTotal?: number
}

/** A command that ran to its end (any exit status), or why it did not. */
export type Ran = { ok: true; result: RunResult; file: string } | { ok: false; reason: string; timedOut?: boolean }

/** Runs one client command (as `run.user`), within `timeoutMs`; recorded in `run.commands`. */
export async function runDb(run: MaintenanceRun, command: DbCommand, timeoutMs: number): Promise<Ran> {
  const wrapped = asUser(command, run.user)
  run.commands.push(describeCommand(wrapped))
  const out = await runClient(run.ctx.run, run.env, wrapped, timeoutMs)
  if ('missing' in out) return { ok: false, reason: `${out.missing} not found (not installed, or not on PATH)` }
  if ('reason' in out) return { ok: false, reason: out.reason }
  if (out.result.timedOut) {
    return {
      ok: false,
      reason: `${command.file} did not finish within ${Math.round(timeoutMs / 1000)} s`,
      timedOut: true,
    }
  }
  return { ok: true, result: out.result, file: command.file }
}

/** The first installed client of `files` (mariadb, else mysql), recorded in `run.commands`. */
export async function runFirstDb(
  run: MaintenanceRun,
  files: readonly string[],
  build: (file: string) => DbCommand,
  timeoutMs: number,
): Promise<Ran> {
  const out = await runFirstClient(files, build, run.user, run.ctx.run, run.env, timeoutMs)
  if ('reason' in out) return { ok: false, reason: out.reason }
  run.commands.push(describeCommand(asUser(build(out.file), run.user)))
  if (out.result.timedOut) {
    return { ok: false, reason: `${out.file} did not finish within ${Math.round(timeoutMs / 1000)} s`, timedOut: true }
  }
  return { ok: true, result: out.result, file: out.file }
}

/** Why a command that ran is not a success, or undefined (exit 0). */
export const exitProblem = (ran: Extract<Ran, { ok: true }>): string | undefined =>
  ran.result.exitCode === 0
    ? undefined
    : clientError(ran.result.stderr, ran.result.stdout) ||
      `${ran.file} exited ${ran.result.exitCode ?? ran.result.signal}`

/** Rounds to whole milliseconds. */
export const ms = (n: number): number => Math.round(n)

export const plural = (n: number, word: string, many = `${word}s`): string => `${n} ${n === 1 ? word : many}`

/** `12.3 s` / `850 ms`. */
export const formatDuration = (durationMs: number): string =>
  durationMs >= 1000 ? `${Math.round(durationMs / 100) / 10} s` : `${Math.round(durationMs)} ms`

/**
 * Ending sessions idle in a transaction, the part every engine shares: with the sessions found (already listed and
 * parsed), nothing to do, or a dry run that lists them; undefined when there are sessions to end for real.
 */
export const idleSessionsOutcome = <S>(
  run: MaintenanceRun,
  found: readonly S[],
  text: (s: S) => string,
  o: { db: string; bound: string; target: string; wouldAction: string; evidence: Record<string, unknown> },
): Outcome | undefined => {
  o.evidence.sessions = found.slice(0, 20)
  if (found.length === 0) {
    return {
      status: run.ctx.dryRun ? 'dry-run' : 'skipped',
      summary: `${run.ctx.dryRun ? 'dry-run: ' : ''}no session of ${o.db} idle in a transaction for longer than ${o.bound}`,
      evidence: o.evidence,
    }
  }
  if (!run.ctx.dryRun) return undefined
  const items = found.map(text)
  for (const s of found) run.audit.push({ action: o.wouldAction, target: o.target, detail: text(s) })
  return {
    status: 'dry-run',
    summary: `dry-run: would end ${plural(found.length, 'session')} of ${o.db} idle in a transaction for longer than ${o.bound}: ${items.slice(0, 5).join(', ')}`,
    evidence: o.evidence,
    items,
    itemsTotal: items.length,
  }
}

/**
 * Wait (at most 5 s, polling every 100 ms) until the given sessions are gone: ending a session only asks the server
 * to. `stillThere` answers which of them are still there, or undefined when it cannot tell (the wait stops). Returns
 * those still there at the end.
 */
export const waitUntilGone = async (
  run: MaintenanceRun,
  ids: readonly number[],
  stillThere: (ids: readonly number[]) => Promise<number[] | undefined>,
): Promise<number[]> => {
  let alive = [...ids]
  const deadline = run.ctx.now().getTime() + 5_000
  while (alive.length > 0) {
    const now = await stillThere(alive)
    if (now === undefined) break
    alive = now
    if (alive.length === 0 || run.ctx.now().getTime() >= deadline) break
    await run.sleep(100)
  }
  return alive
}

/**
 * The rows a client printed, parsed; or the failed outcome that says why there are none (the client did not run, it
 * exited with an error, or its output did not parse). `what` names the step: `list the sessions of app`.
 */
export const parsedOrFailed = <T>(
  ran: Ran,
  what: string,
  parse: (stdout: string) => ParseResult<T>,
  evidence: Record<string, unknown>,
): { ok: true; value: T } | { ok: false; outcome: Outcome } => {
  const fail = (reason: string, summary = `cannot ${what}: ${reason}`) => ({
    ok: false as const,
    outcome: { status: 'failed' as const, summary, error: reason, evidence },
  })
  if (!ran.ok) return fail(ran.reason)
  const problem = exitProblem(ran)
  if (problem) return fail(problem)
  const parsed = parse(ran.result.stdout)
  return parsed.ok ? { ok: true, value: parsed.value } : fail(parsed.error.reason, parsed.error.reason)
}
