import type { RunResult, runCommand } from './exec.ts'

/**
 * A thin systemctl (and journalctl) adapter over the one spawn function (agent/os/exec.ts): argv arrays, a timeout
 * on every call, no shell. Every command's outcome is returned as data (`ok`, the exit, a one-line `error`); only a
 * command that cannot be started at all (no systemctl on the host) throws, as {@link runCommand} does, and so does
 * a unit name or signal that is not one ({@link SystemdArgumentError}).
 *
 * Unit names arrive validated by the params schemas (shared/registry/remediations/params.ts); they are checked again
 * here, right where they become argv elements, so that nothing that starts with `-` (an option) can ever reach
 * systemctl in an operand's place.
 */

export type Run = typeof runCommand

/** Default timeout of a query (`show`, `is-active`, `journalctl`) and of `kill` / `reset-failed`. */
export const SYSTEMCTL_QUERY_TIMEOUT_MS = 15_000
/** Default timeout of `reload` (it waits for the reload job). */
export const SYSTEMCTL_RELOAD_TIMEOUT_MS = 90_000
/** The most journal lines ever asked for, and the most characters kept of each. */
export const JOURNAL_MAX_LINES = 50
export const JOURNAL_LINE_MAX_CHARS = 300
/** After a timeout, systemctl gets this long between SIGTERM and SIGKILL (it exits at once on SIGTERM). */
const KILL_GRACE_MS = 500
/** Output cap for every command: a unit's properties and 50 journal lines are far below it. */
const MAX_OUTPUT_BYTES = 256 * 1024

/** A unit name or a signal that must not become an argv element. */
export class SystemdArgumentError extends Error {
  override readonly name = 'SystemdArgumentError'
}

/** Letters, digits and `@ . _ : - \` (systemd's escapes), never starting with `-`, with a type suffix. */
const UNIT_NAME = /^[A-Za-z0-9_][A-Za-z0-9@._:\\-]*\.[a-z]+$/
const SIGNAL_NAME = /^SIG[A-Z0-9]+(\+[0-9]+)?$/
const PROPERTY_NAME = /^[A-Z][A-Za-z0-9]*$/

/** Throws unless `unit` is a plain unit name (never an option: no leading `-`). Returns it. */
export function checkUnitName(unit: string): string {
  if (typeof unit !== 'string' || unit.length === 0 || unit.length > 255) {
    throw new SystemdArgumentError(`not a unit name: ${JSON.stringify(unit)}`)
  }
  if (unit.startsWith('-'))
    throw new SystemdArgumentError(`a unit name may not start with "-": ${JSON.stringify(unit)}`)
  if (!UNIT_NAME.test(unit)) throw new SystemdArgumentError(`not a unit name: ${JSON.stringify(unit)}`)
  return unit
}

/** Throws unless `signal` is a signal name such as `SIGUSR1`. Returns it. */
export function checkSignalName(signal: string): string {
  if (typeof signal !== 'string' || !SIGNAL_NAME.test(signal)) {
    throw new SystemdArgumentError(`not a signal name: ${JSON.stringify(signal)}`)
  }
  return signal
}

/** The last line of defence: an operand (unit, signal) that starts with `-` never reaches argv. */
function checkOperands(operands: readonly string[]): void {
  for (const o of operands) {
    if (o.startsWith('-')) throw new SystemdArgumentError(`operand may not start with "-": ${JSON.stringify(o)}`)
  }
}

export interface CommandOutcome {
  /** The whole command, for the evidence and the audit trail. */
  argv: string[]
  /** Exit 0 and no timeout. */
  ok: boolean
  exitCode: number | null
  timedOut: boolean
  stdout: string
  stderr: string
  durationMs: number
  /** When not ok: why, in one short line (`systemctl restart x.service: exit 1: Job for x.service failed ...`). */
  error?: string
}

export interface ShowOutcome extends CommandOutcome {
  /** The requested properties; `''` for one systemd did not print. */
  properties: Record<string, string>
}

export interface JournalOutcome extends CommandOutcome {
  /** The last lines, each at most {@link JOURNAL_LINE_MAX_CHARS} characters. */
  lines: string[]
}

export interface CallOptions {
  timeoutMs?: number
}

const shorten = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`)

/** One line saying why a command failed. */
export function describeFailure(argv: readonly string[], r: RunResult): string {
  const how = r.timedOut
    ? `timed out after ${Math.round(r.durationMs)} ms`
    : r.signal
      ? `killed by ${r.signal}`
      : `exit ${r.exitCode}`
  const said = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' / ')
  return shorten(`${argv.join(' ')}: ${how}${said ? `: ${said}` : ''}`, 500)
}

/** `Key=Value` lines (one unit's `systemctl show` block) → the requested keys. Pure. */
export function parseShowProperties(text: string, props: readonly string[]): Record<string, string> {
  const out: Record<string, string> = Object.fromEntries(props.map((p) => [p, '']))
  const wanted = new Set(props)
  for (const line of text.split(/\r?\n/)) {
    const eq = line.indexOf('=')
    if (eq <= 0) continue
    const key = line.slice(0, eq)
    if (wanted.has(key)) out[key] = line.slice(eq + 1)
  }
  return out
}

async function call(run: Run, file: string, args: string[], timeoutMs: number): Promise<CommandOutcome> {
  const r = await run(file, args, { timeoutMs, killGraceMs: KILL_GRACE_MS, maxOutputBytes: MAX_OUTPUT_BYTES })
  const argv = [file, ...args]
  const ok = r.exitCode === 0 && !r.timedOut
  const outcome: CommandOutcome = {
    argv,
    ok,
    exitCode: r.exitCode,
    timedOut: r.timedOut,
    stdout: r.stdout,
    stderr: r.stderr,
    durationMs: r.durationMs,
  }
  if (!ok) outcome.error = describeFailure(argv, r)
  return outcome
}

const timeout = (opts: CallOptions | undefined, fallback: number): number =>
  Math.max(1, Math.round(opts?.timeoutMs ?? fallback))

/** `systemctl show --property=A,B,... <unit>`. */
export async function showUnit(
  run: Run,
  unit: string,
  props: readonly string[],
  opts?: CallOptions,
): Promise<ShowOutcome> {
  checkUnitName(unit)
  for (const p of props) {
    if (!PROPERTY_NAME.test(p)) throw new SystemdArgumentError(`not a property name: ${JSON.stringify(p)}`)
  }
  const args = ['show', `--property=${props.join(',')}`, unit]
  checkOperands([unit])
  const outcome = await call(run, 'systemctl', args, timeout(opts, SYSTEMCTL_QUERY_TIMEOUT_MS))
  return { ...outcome, properties: parseShowProperties(outcome.ok ? outcome.stdout : '', props) }
}

/** `systemctl restart <unit>`: waits for the start job (pass the time left as the timeout). */
export async function restartUnit(run: Run, unit: string, opts: Required<CallOptions>): Promise<CommandOutcome> {
  checkOperands([checkUnitName(unit)])
  return call(run, 'systemctl', ['restart', unit], timeout(opts, opts.timeoutMs))
}

/** `systemctl reload <unit>`: waits for the reload job. */
export async function reloadUnit(run: Run, unit: string, opts?: CallOptions): Promise<CommandOutcome> {
  checkOperands([checkUnitName(unit)])
  return call(run, 'systemctl', ['reload', unit], timeout(opts, SYSTEMCTL_RELOAD_TIMEOUT_MS))
}

/** `systemctl reset-failed <unit>`: forgets the failed state and the start-limit counter. */
export async function resetFailedUnit(run: Run, unit: string, opts?: CallOptions): Promise<CommandOutcome> {
  checkOperands([checkUnitName(unit)])
  return call(run, 'systemctl', ['reset-failed', unit], timeout(opts, SYSTEMCTL_QUERY_TIMEOUT_MS))
}

/** `systemctl kill --kill-whom=<whom> --signal=<SIG> <unit>`. */
export async function killUnit(
  run: Run,
  unit: string,
  signal: string,
  whom: 'main' | 'control' | 'all' = 'main',
  opts?: CallOptions,
): Promise<CommandOutcome> {
  checkOperands([checkUnitName(unit), checkSignalName(signal)])
  return call(
    run,
    'systemctl',
    ['kill', `--kill-whom=${whom}`, `--signal=${signal}`, unit],
    timeout(opts, SYSTEMCTL_QUERY_TIMEOUT_MS),
  )
}

/** `systemctl is-active <unit>`: the state it prints (`active`, `failed`, ...); a non-zero exit is normal here. */
export async function isActiveUnit(
  run: Run,
  unit: string,
  opts?: CallOptions,
): Promise<CommandOutcome & { state: string }> {
  checkOperands([checkUnitName(unit)])
  const outcome = await call(run, 'systemctl', ['is-active', unit], timeout(opts, SYSTEMCTL_QUERY_TIMEOUT_MS))
  return { ...outcome, state: outcome.stdout.trim().split('\n')[0] ?? '' }
}

/** `journalctl -u <unit> -n <lines> --no-pager -o cat`: the unit's last messages, bounded. */
export async function journalTail(run: Run, unit: string, lines = 20, opts?: CallOptions): Promise<JournalOutcome> {
  checkOperands([checkUnitName(unit)])
  const n = Math.min(JOURNAL_MAX_LINES, Math.max(1, Math.floor(lines)))
  const outcome = await call(
    run,
    'journalctl',
    ['-u', unit, '-n', String(n), '--no-pager', '-o', 'cat'],
    timeout(opts, SYSTEMCTL_QUERY_TIMEOUT_MS),
  )
  const text = outcome.stdout.replace(/\n$/, '')
  const kept = text
    .split('\n')
    .filter((l) => l !== '' && l !== '-- No entries --')
    .slice(-n)
  return { ...outcome, lines: kept.map((l) => shorten(l, JOURNAL_LINE_MAX_CHARS)) }
}
