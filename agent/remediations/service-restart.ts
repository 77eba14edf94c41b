import type { RemediationResultV1 } from '../../shared/contracts/index.ts'
import type { ServiceRestartParams } from '../../shared/registry/remediations/service-restart.ts'
import {
  journalTail,
  resetFailedUnit,
  restartUnit,
  type ShowOutcome,
  SYSTEMCTL_QUERY_TIMEOUT_MS,
  showUnit,
} from '../os/systemd.ts'
import { boundResult, shortenMiddle } from './disk-cleanup/report.ts'
import type { AuditEntry, ExecutorContext, RemediationExecutor } from './types.ts'

/**
 * service-restart: restarts a systemd unit and verifies it is running again (shared/registry/remediations/
 * service-restart.ts documents the params).
 *
 * 1. Read the unit's state (`systemctl show`): ActiveState, SubState, Result, NRestarts, Restart=, MainPID,
 *    ExecMainStatus, Type, RemainAfterExit. A unit that is not loaded (not-found, masked, bad-setting) fails at once.
 * 2. With `respectRestartPolicy`, a unit whose Restart= is set, that has not hit its start limit, and that systemd
 *    is restarting right now (ActiveState=activating, e.g. SubState=auto-restart) is left to systemd: `skipped`,
 *    with the reason. Once systemd gives up (the unit is `failed`; Result is `start-limit-hit` when a start was
 *    refused, or still the failure's own result when the limit ran out during systemd's auto-restarts, as on
 *    systemd 252) the unit is ANSAI's to restart. So the two never fight.
 * 3. `systemctl reset-failed` when the unit is failed (forgets the start-limit counter, which would refuse the
 *    start), then `systemctl restart` (it waits for the start job; its timeout is the time left).
 * 4. Poll `systemctl show` every {@link ServiceRestartOptions.pollMs} until the unit is up: ActiveState=active and,
 *    for a service, SubState=running (or `exited` with RemainAfterExit=yes; a oneshot without it counts when it ran
 *    to `inactive` with Result=success). It must then stay up with the same MainPID and NRestarts for
 *    {@link ServiceRestartOptions.confirmMs} (a process that dies right after its start, `ExecStart=/bin/false`
 *    with Type=simple, is active for a few milliseconds). A unit that ends `failed` or `inactive` fails at once;
 *    one still not up after `waitActiveSeconds` fails then: the wait is bounded whatever the unit does. On failure,
 *    the last state and the unit's last journal lines go to the evidence.
 *
 * Evidence: the state before and after, the old and new MainPID, `restartMs` (restart issued → first seen up) and
 * `verifiedMs` (→ confirmed), the commands run. Dry-run reads the state and says what it would do.
 */

export interface ServiceRestartOptions {
  /** Time between two state reads while waiting; default 100 ms. */
  pollMs?: number
  /** How long the unit must stay up, same MainPID, before the restart counts; default 500 ms. */
  confirmMs?: number
  /** Journal lines in the evidence of a failure; default 20. */
  journalLines?: number
  /** Injectable for tests; default setTimeout. */
  sleep?: (ms: number) => Promise<void>
}

/** What `systemctl show` is asked for. */
export const UNIT_STATE_PROPERTIES = [
  'Id',
  'LoadState',
  'ActiveState',
  'SubState',
  'Result',
  'NRestarts',
  'Restart',
  'MainPID',
  'ExecMainPID',
  'ExecMainCode',
  'ExecMainStatus',
  'Type',
  'RemainAfterExit',
] as const

export interface UnitState {
  loadState: string
  activeState: string
  subState: string
  result: string
  restart: string
  nRestarts: number | undefined
  mainPid: number
  /** The last main process's pid, kept after it ended (MainPID is 0 then). */
  execMainPid: number
  /** How the main process last ended: `exited 1`, `killed by signal 9`, `dumped core (signal 11)`. */
  execMain: string | undefined
  execMainStatus: number | undefined
  type: string
  remainAfterExit: boolean
}

const int = (text: string | undefined): number | undefined =>
  text !== undefined && /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined

/** `systemctl show` properties → the state the executors reason on. Pure. */
export function toUnitState(p: Record<string, string>): UnitState {
  const code = int(p.ExecMainCode)
  const status = int(p.ExecMainStatus)
  // ExecMainCode is the CLD_* code of the last main process: 1 exited, 2 killed, 3 dumped; 0 = never ran.
  const execMain =
    code === 1
      ? `exited ${status}`
      : code === 2
        ? `killed by signal ${status}`
        : code === 3
          ? `dumped core (signal ${status})`
          : undefined
  return {
    loadState: p.LoadState ?? '',
    activeState: p.ActiveState ?? '',
    subState: p.SubState ?? '',
    result: p.Result ?? '',
    restart: p.Restart ?? '',
    nRestarts: int(p.NRestarts),
    mainPid: int(p.MainPID) ?? 0,
    execMainPid: int(p.ExecMainPID) ?? 0,
    execMain,
    execMainStatus: status,
    type: p.Type ?? '',
    remainAfterExit: p.RemainAfterExit === 'yes',
  }
}

/** `failed/failed, Result=signal, main process killed by signal 9`. */
export function describeState(s: UnitState): string {
  const parts = [`${s.activeState}/${s.subState}`]
  if (s.result && s.result !== 'success') parts.push(`Result=${s.result}`)
  if (s.execMain && s.activeState !== 'active') parts.push(`main process ${s.execMain}`)
  return parts.join(', ')
}

const isService = (unit: string): boolean => unit.endsWith('.service')

/** The unit is up: active, and for a service running (or exited with RemainAfterExit=yes). */
export function isUp(unit: string, s: UnitState): boolean {
  if (s.activeState !== 'active') return false
  if (!isService(unit)) return true
  return s.subState === 'running' || (s.remainAfterExit && s.subState === 'exited')
}

/** A oneshot without RemainAfterExit that ran to completion. */
const ranToCompletion = (unit: string, s: UnitState): boolean =>
  isService(unit) && s.type === 'oneshot' && s.activeState === 'inactive' && s.result === 'success'

/** systemd is bringing the unit up by itself (its Restart= policy, before its start limit). */
export function systemdIsRestarting(s: UnitState): boolean {
  return s.restart !== '' && s.restart !== 'no' && s.result !== 'start-limit-hit' && s.activeState === 'activating'
}

/** Why a unit cannot be restarted at all (not loaded), or undefined. */
export function notLoadedReason(unit: string, s: UnitState): string | undefined {
  if (s.loadState === 'loaded') return undefined
  if (s.loadState === 'not-found') return `${unit} not found`
  if (s.loadState === 'masked') return `${unit} is masked`
  return `${unit} is not loaded (LoadState=${s.loadState || 'unknown'})`
}

export interface Timing {
  pollMs: number
  confirmMs: number
  journalLines: number
  sleep: (ms: number) => Promise<void>
}

const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export const timingOf = (o: ServiceRestartOptions = {}): Timing => ({
  pollMs: o.pollMs ?? 100,
  confirmMs: o.confirmMs ?? 500,
  journalLines: o.journalLines ?? 20,
  sleep: o.sleep ?? realSleep,
})

/** Reads the unit's state; a failing `systemctl show` is a thrown Error with its reason. */
export async function readUnitState(
  ctx: ExecutorContext,
  unit: string,
  extra: readonly string[] = [],
): Promise<{ state: UnitState; show: ShowOutcome }> {
  const show = await showUnit(ctx.run, unit, [...UNIT_STATE_PROPERTIES, ...extra], {
    timeoutMs: SYSTEMCTL_QUERY_TIMEOUT_MS,
  })
  if (!show.ok) throw new Error(show.error ?? `systemctl show ${unit} failed`)
  return { state: toUnitState(show.properties), show }
}

export interface RestartOutcome {
  ok: boolean
  /** Why it failed, one line. */
  reason?: string
  resetFailed: boolean
  commands: string[]
  after: UnitState | undefined
  /** MainPID before, or the last main process's pid (ExecMainPID) when the unit had none running. */
  oldMainPid: number
  newMainPid: number | undefined
  /** `systemctl restart` issued → first seen up. */
  restartMs?: number
  /** `systemctl restart` issued → up for confirmMs. */
  verifiedMs?: number
  /** The unit's last journal lines, on failure. */
  journal?: string[]
  problems: string[]
}

/**
 * reset-failed (when failed), restart, wait until up and confirmed, all bounded by `waitActiveSeconds` (plus the
 * confirmation window once up). Shared by service-restart and memory-relief. Never throws for an expected failure.
 */
export async function restartAndVerify(
  ctx: ExecutorContext,
  unit: string,
  before: UnitState,
  waitActiveSeconds: number,
  timing: Timing,
  audit: AuditEntry[],
): Promise<RestartOutcome> {
  const ms = () => ctx.now().getTime()
  const start = ms()
  const deadline = start + waitActiveSeconds * 1000
  const left = () => Math.max(1, deadline - ms())
  const out: RestartOutcome = {
    ok: false,
    resetFailed: false,
    commands: [],
    after: undefined,
    oldMainPid: before.mainPid || before.execMainPid,
    newMainPid: undefined,
    problems: [],
  }
  const fail = async (reason: string): Promise<RestartOutcome> => {
    out.ok = false
    out.reason = reason
    try {
      const j = await journalTail(ctx.run, unit, timing.journalLines)
      if (j.ok) out.journal = j.lines
      else out.problems.push(`journal: ${j.error}`)
    } catch (err) {
      out.problems.push(`journal: ${err instanceof Error ? err.message : String(err)}`)
    }
    audit.push({ action: 'restart-failed', target: unit, detail: reason })
    return out
  }

  if (before.activeState === 'failed') {
    const r = await resetFailedUnit(ctx.run, unit, { timeoutMs: Math.min(SYSTEMCTL_QUERY_TIMEOUT_MS, left()) })
    out.commands.push(r.argv.join(' '))
    if (r.ok) {
      out.resetFailed = true
      audit.push({ action: 'reset-failed', target: unit })
    } else {
      out.problems.push(r.error ?? 'reset-failed failed')
    }
  }

  ctx.log(`service-restart: systemctl restart ${unit}`)
  const issued = ms()
  const restart = await restartUnit(ctx.run, unit, { timeoutMs: left() })
  out.commands.push(restart.argv.join(' '))
  if (!restart.ok) out.problems.push(restart.error ?? 'systemctl restart failed')

  let upSince: number | undefined
  let upPid = 0
  let upRestarts: number | undefined
  for (;;) {
    let state: UnitState
    try {
      state = (await readUnitState(ctx, unit)).state
    } catch (err) {
      return fail(`cannot read the state of ${unit} after the restart: ${err instanceof Error ? err.message : err}`)
    }
    out.after = state
    out.newMainPid = state.mainPid
    const now = ms()
    if (isUp(unit, state)) {
      if (upSince === undefined || state.mainPid !== upPid || state.nRestarts !== upRestarts) {
        // first seen up, or up again with another process (it died and systemd restarted it meanwhile)
        upSince = now
        upPid = state.mainPid
        upRestarts = state.nRestarts
        out.restartMs = now - issued
      }
      if (now - upSince >= timing.confirmMs) {
        out.ok = true
        out.verifiedMs = now - issued
        audit.push({
          action: 'restart',
          target: unit,
          detail: `up in ${out.restartMs} ms, MainPID ${out.oldMainPid} -> ${state.mainPid}`,
        })
        return out
      }
      // once up, the confirmation window may run past the deadline, by confirmMs at most
      if (now >= deadline + timing.confirmMs) {
        return fail(
          `${unit} does not stay up: MainPID ${state.mainPid}, NRestarts=${state.nRestarts ?? '?'} after ${waitActiveSeconds} s`,
        )
      }
      await timing.sleep(Math.min(timing.pollMs, Math.max(1, timing.confirmMs - (now - upSince))))
      continue
    }
    upSince = undefined
    if (restart.ok && ranToCompletion(unit, state)) {
      out.ok = true
      out.restartMs = now - issued
      out.verifiedMs = out.restartMs
      audit.push({ action: 'restart', target: unit, detail: `oneshot ran to completion in ${out.restartMs} ms` })
      return out
    }
    if (state.activeState === 'failed' || state.activeState === 'inactive') {
      const why = restart.ok ? '' : ` (${restart.error})`
      return fail(`${unit} is ${describeState(state)} after the restart${why}`)
    }
    if (now >= deadline) {
      return fail(`${unit} is not up after ${waitActiveSeconds} s: ${describeState(state)}`)
    }
    await timing.sleep(Math.min(timing.pollMs, Math.max(1, deadline - now)))
  }
}

/** The state as evidence: compact, only what says something. */
export const stateEvidence = (s: UnitState | undefined) =>
  s === undefined
    ? undefined
    : {
        activeState: s.activeState,
        subState: s.subState,
        result: s.result,
        nRestarts: s.nRestarts,
        restart: s.restart,
        mainPid: s.mainPid,
        execMainStatus: s.execMainStatus,
        execMain: s.execMain,
        type: s.type || undefined,
      }

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err))

export function createServiceRestartExecutor(
  options: ServiceRestartOptions = {},
): RemediationExecutor<ServiceRestartParams> {
  const timing = timingOf(options)
  return {
    id: 'service-restart',
    async execute(params: ServiceRestartParams, ctx: ExecutorContext) {
      const started = ctx.now()
      const audit: AuditEntry[] = []
      const evidence: Record<string, unknown> = { unit: params.unit }
      const finish = (
        status: RemediationResultV1['status'],
        summary: string,
        error?: string,
      ): { result: RemediationResultV1; audit: AuditEntry[] } => {
        const finished = ctx.now()
        const result: RemediationResultV1 = {
          schema: 'ansai.remediation-result.v1',
          key: ctx.key,
          remediation: 'service-restart',
          status,
          dryRun: ctx.dryRun,
          startedAt: started.toISOString(),
          finishedAt: finished.toISOString(),
          durationMs: Math.max(0, finished.getTime() - started.getTime()),
          summary: shortenMiddle(summary, 2000),
          items: [params.unit],
          itemsTotal: 1,
          evidence,
        }
        if (error !== undefined) result.error = error
        return { result: boundResult(result), audit }
      }

      try {
        const unit = params.unit
        const { state: before } = await readUnitState(ctx, unit)
        evidence.before = stateEvidence(before)
        const notLoaded = notLoadedReason(unit, before)
        if (notLoaded) return finish('failed', `cannot restart: ${notLoaded}`, notLoaded)

        if (params.respectRestartPolicy && systemdIsRestarting(before)) {
          const why = `Restart=${before.restart} and systemd is restarting it (${describeState(before)}, NRestarts=${before.nRestarts ?? '?'})`
          evidence.plan = 'leave-to-systemd'
          evidence.reason = why
          audit.push({ action: ctx.dryRun ? 'would-skip' : 'skip', target: unit, detail: why })
          const text = `left ${unit} to systemd: ${why}; ANSAI restarts it only once systemd gives up (start limit)`
          return ctx.dryRun ? finish('dry-run', `dry-run: would have ${text}`) : finish('skipped', text)
        }
        if (before.restart !== '' && before.restart !== 'no' && before.activeState === 'failed') {
          evidence.systemdGaveUp = true // Restart= set, and still failed: its start limit (or policy) stopped it
        }

        const commands = [
          ...(before.activeState === 'failed' ? [`systemctl reset-failed ${unit}`] : []),
          `systemctl restart ${unit}`,
        ]
        if (ctx.dryRun) {
          evidence.plan = 'restart'
          evidence.commands = commands
          audit.push({ action: 'would-restart', target: unit, detail: commands.join('; ') })
          return finish(
            'dry-run',
            `dry-run: would run ${commands.join(', ')} and wait up to ${params.waitActiveSeconds} s for it to be up (now ${describeState(before)})`,
          )
        }

        const o = await restartAndVerify(ctx, unit, before, params.waitActiveSeconds, timing, audit)
        Object.assign(evidence, {
          after: stateEvidence(o.after),
          oldMainPid: o.oldMainPid,
          newMainPid: o.newMainPid,
          restartMs: o.restartMs,
          verifiedMs: o.verifiedMs,
          resetFailed: o.resetFailed,
          commands: o.commands,
        })
        if (o.journal) evidence.journal = o.journal
        if (o.problems.length > 0) evidence.problems = o.problems
        if (o.ok) {
          const after = o.after as UnitState
          const how = after.activeState === 'active' ? `${after.activeState} (${after.subState})` : 'ran to completion'
          return finish(
            'succeeded',
            `restarted ${unit}: ${how} in ${o.restartMs} ms, MainPID ${o.oldMainPid} -> ${o.newMainPid} (was ${describeState(before)})`,
          )
        }
        return finish('failed', `restart of ${unit} failed: ${o.reason}`, o.reason)
      } catch (err) {
        // systemctl missing, an unreadable state, a refused argument: still one result, never a throw
        const message = errorText(err)
        return finish('failed', `service-restart of ${params.unit} failed: ${message}`, message)
      }
    },
  }
}

/** The executor with the defaults (poll 100 ms, confirm 500 ms). */
export const serviceRestartExecutor: RemediationExecutor<ServiceRestartParams> = createServiceRestartExecutor()
