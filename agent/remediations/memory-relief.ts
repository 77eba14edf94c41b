import type { RemediationResultV1 } from '../../shared/contracts/index.ts'
import type { MemoryReliefParams } from '../../shared/registry/remediations/memory-relief.ts'
import { type CommandOutcome, killUnit, reloadUnit } from '../os/systemd.ts'
import { measureUnitMemory, type UnitMemory, type UnitMemoryOptions } from '../os/unit-memory.ts'
import { boundResult, formatBytes, shortenMiddle } from './disk-cleanup/report.ts'
import {
  describeState,
  isUp,
  notLoadedReason,
  type RestartOutcome,
  readUnitState,
  restartAndVerify,
  type ServiceRestartOptions,
  stateEvidence,
  timingOf,
  type UnitState,
} from './service-restart.ts'
import type { AuditEntry, ExecutorContext, RemediationExecutor } from './types.ts'

/**
 * memory-relief: relieves a service's memory, gently first (shared/registry/remediations/memory-relief.ts documents
 * the params).
 *
 * 1. Read the unit (`systemctl show`: state, ControlGroup, MemoryMax, MemoryLimit) and measure its memory the way the collector
 *    does (agent/os/unit-memory.ts: cgroup memory.current, else the summed VmRSS of the processes in its cgroup;
 *    the limit from the cgroup, MemoryMax= or the host's MemTotal). A unit that is not active is `skipped`: there
 *    is nothing to relieve.
 * 2. With `signal`: `systemctl kill --kill-whom=main --signal=<SIG> <unit>`; with `reload`: `systemctl reload
 *    <unit>` (both when both are set, the signal first).
 * 3. Then settle for up to {@link MemoryReliefOptions.settleMs} (default {@link DEFAULT_SETTLE_MS}), measuring every
 *    {@link MemoryReliefOptions.measureEveryMs}; with `restartIfStillAbovePercent` it stops early as soon as the
 *    memory is at or below that share of the limit.
 * 4. Restart (reset-failed when failed, restart, wait until up and confirmed: the same code as service-restart) when
 *    the memory is still above `restartIfStillAbovePercent`; at once when neither a signal nor a reload is
 *    configured (the cure for a leak); and also when the gentle step took the service down (a process without a
 *    handler dies of SIGHUP): ANSAI does not leave behind a service it stopped.
 * 5. Measure again after the restart.
 *
 * Evidence: the memory before, after the gentle step and after the restart (bytes, % of the limit, how measured),
 * the limit and where it comes from, what was done and each command's outcome. Dry-run measures and says what it
 * would do.
 */

/** How long memory gets to fall after the signal or reload before it is judged. */
export const DEFAULT_SETTLE_MS = 5000

export interface MemoryReliefOptions extends ServiceRestartOptions {
  /** Up to this long after the signal or reload before the memory is judged; default {@link DEFAULT_SETTLE_MS}. */
  settleMs?: number
  /** Measurement interval while settling; default 250 ms. */
  measureEveryMs?: number
  /** How long a restart may take to be up; default 30 s (as service-restart's waitActiveSeconds). */
  waitActiveSeconds?: number
  /** Where the memory is read (tests); the host's /sys/fs/cgroup, /proc and /proc/meminfo by default. */
  memory?: UnitMemoryOptions
}

const MEMORY_PROPERTIES = ['ControlGroup', 'MemoryMax', 'MemoryLimit'] as const

const memoryEvidence = (m: UnitMemory) => ({
  bytes: m.observation.memoryBytes,
  percentOfLimit: m.usedPercentOfLimit,
  source: m.observation.source,
  processes: m.processes ?? m.observation.pids?.length,
})

const memoryText = (m: UnitMemory): string =>
  `${formatBytes(m.observation.memoryBytes)}${m.usedPercentOfLimit === undefined ? '' : ` (${m.usedPercentOfLimit} % of ${formatBytes(m.observation.limitBytes ?? 0)})`}`

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err))

export function createMemoryReliefExecutor(options: MemoryReliefOptions = {}): RemediationExecutor<MemoryReliefParams> {
  const timing = timingOf(options)
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS
  const measureEveryMs = options.measureEveryMs ?? 250
  const waitActiveSeconds = options.waitActiveSeconds ?? 30

  return {
    id: 'memory-relief',
    async execute(params: MemoryReliefParams, ctx: ExecutorContext) {
      const started = ctx.now()
      const audit: AuditEntry[] = []
      const unit = params.unit
      const evidence: Record<string, unknown> = { unit }
      const problems: string[] = []
      const finish = (status: RemediationResultV1['status'], summary: string, error?: string) => {
        const finished = ctx.now()
        if (problems.length > 0) evidence.problems = problems
        const result: RemediationResultV1 = {
          schema: 'ansai.remediation-result.v1',
          key: ctx.key,
          remediation: 'memory-relief',
          status,
          dryRun: ctx.dryRun,
          startedAt: started.toISOString(),
          finishedAt: finished.toISOString(),
          durationMs: Math.max(0, finished.getTime() - started.getTime()),
          summary: shortenMiddle(summary, 2000),
          items: [unit],
          itemsTotal: 1,
          evidence,
        }
        if (error !== undefined) result.error = shortenMiddle(error, 4000)
        return { result: boundResult(result), audit }
      }

      try {
        const read = await readUnitState(ctx, unit, MEMORY_PROPERTIES)
        const before = read.state
        const controlGroup = read.show.properties.ControlGroup ?? ''
        const memoryMax = read.show.properties.MemoryMax ?? ''
        const memoryLimit = read.show.properties.MemoryLimit ?? ''
        evidence.before = stateEvidence(before)
        const notLoaded = notLoadedReason(unit, before)
        if (notLoaded) return finish('failed', `cannot relieve memory: ${notLoaded}`, notLoaded)
        if (before.activeState !== 'active') {
          return finish('skipped', `${unit} is ${describeState(before)}: no running service whose memory to relieve`)
        }
        const measure = (): UnitMemory => {
          const m = measureUnitMemory({ unit, controlGroup, memoryMax, memoryLimit }, options.memory)
          for (const p of m.problems) if (!problems.includes(p) && problems.length < 20) problems.push(p)
          return m
        }

        const memBefore = measure()
        const memory: Record<string, unknown> = {
          source: memBefore.observation.source,
          limitBytes: memBefore.observation.limitBytes,
          limitSource: memBefore.limitSource,
          before: memoryEvidence(memBefore),
        }
        evidence.memory = memory
        const threshold = params.restartIfStillAbovePercent
        const gentle = [
          ...(params.signal ? [`systemctl kill --kill-whom=main --signal=${params.signal} ${unit}`] : []),
          ...(params.reload ? [`systemctl reload ${unit}`] : []),
        ]
        evidence.restartIfStillAbovePercent = threshold

        if (ctx.dryRun) {
          const then =
            gentle.length === 0
              ? `systemctl restart ${unit} (no signal or reload configured)`
              : threshold === undefined
                ? 'no restart (no restartIfStillAbovePercent)'
                : `a restart if still above ${threshold} % of the limit after up to ${settleMs} ms`
          evidence.plan = [...gentle, then]
          audit.push({ action: 'would-relieve', target: unit, detail: [...gentle, then].join('; ') })
          return finish(
            'dry-run',
            `dry-run: ${unit} uses ${memoryText(memBefore)}; would run ${[...gentle, then].join(', then ')}`,
          )
        }

        // 2. gentle first
        const done: string[] = []
        const gentleFailures: string[] = []
        const record = (what: string, o: CommandOutcome) => {
          evidence[what] = { command: o.argv.join(' '), ok: o.ok, error: o.error }
          if (o.ok) {
            done.push(what === 'signal' ? `sent ${params.signal}` : 'reloaded')
            audit.push({ action: what, target: unit, detail: o.argv.join(' ') })
          } else {
            gentleFailures.push(o.error ?? `${what} failed`)
            audit.push({ action: `${what}-failed`, target: unit, detail: o.error })
          }
        }
        if (params.signal) record('signal', await killUnit(ctx.run, unit, params.signal, 'main'))
        if (params.reload) record('reload', await reloadUnit(ctx.run, unit))

        // 3. settle and judge
        let restartReason: string | undefined
        let memRelief: UnitMemory | undefined
        let now: UnitState = before
        if (gentle.length === 0) {
          restartReason = 'no signal or reload configured: restart at once'
        } else {
          const t0 = ctx.now().getTime()
          for (;;) {
            memRelief = measure()
            const p = memRelief.usedPercentOfLimit
            const elapsed = ctx.now().getTime() - t0
            if ((threshold !== undefined && p !== undefined && p <= threshold) || elapsed >= settleMs) break
            await timing.sleep(Math.min(measureEveryMs, settleMs - elapsed))
          }
          memory.afterRelief = { ...memoryEvidence(memRelief), settledMs: ctx.now().getTime() - t0 }
          now = (await readUnitState(ctx, unit)).state
          evidence.afterRelief = stateEvidence(now)
          const p = memRelief.usedPercentOfLimit
          if (!isUp(unit, now)) {
            restartReason = `${unit} is ${describeState(now)} after ${done.join(' and ') || 'the attempt'}: restarting it`
          } else if (threshold !== undefined) {
            if (p === undefined) {
              const why = `the memory limit of ${unit} is unknown: cannot tell whether it is above ${threshold} %`
              return finish('failed', why, why)
            }
            if (p > threshold) restartReason = `still at ${p} % of the limit, above ${threshold} %`
          }
        }

        // 4. restart when needed
        let restart: RestartOutcome | undefined
        let restartText: string | undefined
        if (restartReason !== undefined) {
          ctx.log(`memory-relief: ${restartReason}`)
          evidence.restartReason = restartReason
          restart = await restartAndVerify(ctx, unit, now, waitActiveSeconds, timing, audit)
          evidence.restart = {
            ok: restart.ok,
            reason: restart.reason,
            restartMs: restart.restartMs,
            verifiedMs: restart.verifiedMs,
            oldMainPid: restart.oldMainPid,
            newMainPid: restart.newMainPid,
            resetFailed: restart.resetFailed,
            commands: restart.commands,
          }
          evidence.after = stateEvidence(restart.after)
          if (restart.journal) evidence.journal = restart.journal
          problems.push(...restart.problems)
          if (restart.ok) {
            const memAfter = measure()
            memory.afterRestart = memoryEvidence(memAfter)
            restartText = `restarted (${restartReason}) in ${restart.restartMs} ms, MainPID ${restart.oldMainPid} -> ${restart.newMainPid}, memory now ${memoryText(memAfter)}`
          }
        }
        evidence.actions = [...done, ...(restart?.ok ? ['restarted'] : [])]
        problems.push(...gentleFailures)

        const parts = [`${unit} used ${memoryText(memBefore)}`]
        if (done.length > 0) parts.push(done.join(' and '))
        if (gentleFailures.length > 0) parts.push(gentleFailures.join('; '))
        if (memRelief) {
          const settled = (memory.afterRelief as { settledMs: number }).settledMs
          parts.push(`${memoryText(memRelief)} after ${settled} ms`)
        }
        if (restart && !restart.ok) {
          const why = `restart failed: ${restart.reason}`
          parts.push(why)
          return finish('failed', parts.join('; '), [...gentleFailures, why].join('; '))
        }
        if (restartText) parts.push(restartText)
        else if (threshold !== undefined) parts.push(`at or below ${threshold} % of the limit: no restart`)
        if (!restart && gentleFailures.length > 0) return finish('failed', parts.join('; '), gentleFailures.join('; '))
        return finish('succeeded', parts.join('; '))
      } catch (err) {
        const message = errorText(err)
        return finish('failed', `memory-relief of ${unit} failed: ${message}`, message)
      }
    },
  }
}

/** The executor with the defaults (settle up to 5 s, the host's cgroup and /proc). */
export const memoryReliefExecutor: RemediationExecutor<MemoryReliefParams> = createMemoryReliefExecutor()
