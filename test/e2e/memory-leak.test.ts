/**
 * A memory leak forecast and cured before it hits the limit, end to end on a REAL systemd
 * (test/support/systemd): ANSAI is built and installed inside the machine by its own install.sh
 * (test/support/ansai-machine.ts), and `ansai run --once` runs there every ~2 s, as the timer runs it every minute on
 * a host.
 *
 * Two units with `MemoryMax=128M`: leak.service, a shell that keeps 128 KiB more every 50 ms (about 2.5 MiB/s, so it
 * would reach its limit after about 50 s), and flat.service, a shell holding a steady 8 MiB. The nested cgroup2 here
 * has no memory controller, so the per-service memory probe measures the summed RSS of each unit's processes and
 * takes the limit from MemoryMax= (on a host with the controller: memory.current and memory.max). The policy
 * forecasts from the trend (least squares over a 1-minute window, at least 4 samples) and calls it critical when
 * the unit would reach its limit within 30 s, two cycles in a row; the cure is memory-relief (a restart).
 *
 * What must hold: ANSAI restarted leak.service while its memory was still well below the limit (the RSS measured at
 * the fix is in the result's evidence; the test also samples it itself, and it never reached the limit), the fix was
 * verified and the incident resolved, and flat.service was observed every cycle but never touched.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AnsaiRelease,
  ansai,
  buildAnsaiForMachine,
  installAnsai,
  machineConfig,
} from '../support/ansai-machine.ts'
import { requireOrSkip } from '../support/require.ts'
import { SystemdMachine } from '../support/systemd/machine.ts'

const status = await SystemdMachine.available()
const canBoot = requireOrSkip(
  'a real systemd (PID 1 of a new PID namespace, needs root)',
  status.ok,
  status.reason ?? 'unknown',
)

const note = (message: string): void => {
  process.stderr.write(`[memory-leak.test] ${message}\n`)
}

const MiB = 1024 * 1024
const LIMIT = 128 * MiB
const CYCLE_MS = 2000

const CONFIG_YAML = machineConfig({
  hostId: 'e2e-memory',
  failedAny: false,
  processMemory: ['leak.service', 'flat.service'],
})

/** The baseline's memory-leak policy, scaled from hours to seconds: a 1 min window, critical under 30 s to OOM. */
const POLICY_YAML = `apiVersion: ansai/v1
kind: Policy
metadata: { name: leak-forecast, description: Restart a service the trend says will reach its memory limit within 30 s }
spec:
  observe: process-memory
  trend: { window: 1m, minSamples: 4 }
  severity:
    warning: { when: "usedPercentOfLimit >= 90.0" }
    critical: { when: "minutesToOom < 0.5", for: 2 cycles }
  remediate:
    - at: critical
      run: memory-relief
    - escalate: page
  guards:
    limit: { max: 1, within: 1h, then: escalate }
`

/** 128 KiB more every 50 ms, each chunk in a variable of its own (never freed, never copied again). */
const LEAK_SH = `chunk=$(head -c 131072 /dev/zero | tr '\\0' x)
i=0
while :; do i=$((i + 1)); eval "v$i=\\$chunk"; sleep 0.05; done
`
/** 8 MiB once, then nothing changes (one long sleep at a time, so not even a short-lived child comes and goes). */
const FLAT_SH = `keep=$(head -c 8388608 /dev/zero | tr '\\0' y)
while :; do sleep 3600; done
`

const unit = (description: string, script: string) => `[Unit]
Description=${description}

[Service]
ExecStart=/bin/sh ${script}
MemoryMax=128M
`

interface AuditEntry {
  kind: string
  data: Record<string, unknown>
}
interface Decision {
  type: 'remediate' | 'notify'
  remediation?: string
  event?: string
  resource: string
  incidentId: string
  reason?: string
}
interface CycleOutcome {
  problems: { policy: string; resource: string; level: string }[]
  fixes: { remediation: string; resource: string; status: string; summary: string }[]
}

describe.skipIf(!canBoot)('ansai forecasts a memory leak on a real systemd and restarts it before its limit', () => {
  let machine: SystemdMachine
  let release: AnsaiRelease | undefined

  beforeAll(async () => {
    release = await buildAnsaiForMachine()
    note(`ansai built in ${release.buildMs} ms`)
    machine = await SystemdMachine.boot({ name: 'e2e-memory', binds: release.binds })
    note(`machine booted in ${machine.bootMs} ms (${machine.bootState})`)
    await installAnsai(machine, { config: CONFIG_YAML, policies: { 'leak.yaml': POLICY_YAML } })
    await machine.writeFile('/opt/leak.sh', LEAK_SH)
    await machine.writeFile('/opt/flat.sh', FLAT_SH)
    await machine.installUnit('leak.service', unit('keeps more memory all the time', '/opt/leak.sh'))
    await machine.installUnit('flat.service', unit('holds a steady 8 MiB', '/opt/flat.sh'))
    await machine.run(['systemctl', 'start', 'leak.service', 'flat.service'])
  }, 1_800_000) // the first run on a machine builds the rootfs

  afterAll(async () => {
    if (machine) await machine.shutdown()
    release?.cleanup()
  })

  /** `ansai <args> --json` inside the machine; its stdout (the last line for `run`). */
  const ansaiJson = async (...args: string[]): Promise<string> => {
    const r = await ansai(machine, ...args, '--json')
    if (r.exitCode !== 0) throw new Error(`ansai ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`)
    return r.stdout
  }

  /** The summed VmRSS of a unit's processes, read inside the machine (as the probe does without a controller). */
  const unitRss = async (name: string): Promise<number> => {
    const procs = await machine.exec(['cat', `/sys/fs/cgroup/system.slice/${name}/cgroup.procs`])
    let sum = 0
    for (const pid of procs.stdout.split('\n').filter(Boolean)) {
      const st = await machine.exec(['cat', `/proc/${pid}/status`])
      const m = /VmRSS:\s+(\d+) kB/.exec(st.stdout)
      if (m) sum += Number(m[1]) * 1024
    }
    return sum
  }

  it('restarts the leaking unit on the forecast, well before its limit, and never touches the flat one', async () => {
    const hasController = (await machine.cgroupControllers()).includes('memory')
    const leakPid = await machine.mainPid('leak.service')
    const flatPid = await machine.mainPid('flat.service')
    const t0 = performance.now()
    const outcomes: CycleOutcome[] = []
    const rssSeen: number[] = []
    let fixedAt: number | undefined
    while (performance.now() - t0 < 45_000) {
      const started = performance.now()
      rssSeen.push(await unitRss('leak.service'))
      const out = await ansaiJson('run', '--once')
      const outcome = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as CycleOutcome
      outcomes.push(outcome)
      const s = ((performance.now() - t0) / 1000).toFixed(1)
      const rss = ((rssSeen.at(-1) ?? 0) / MiB).toFixed(1)
      note(
        `${s} s: leak RSS ${rss} MiB; problems ${JSON.stringify(outcome.problems.map((p) => `${p.resource}:${p.level}`))}`,
      )
      if (outcome.fixes.length) {
        fixedAt = performance.now() - t0
        break
      }
      await sleep(Math.max(0, CYCLE_MS - (performance.now() - started)))
    }
    expect(fixedAt, 'a fix within 45 s').toBeDefined()
    await machine.run(['systemctl', 'stop', 'leak.service'])

    // the fix: memory-relief restarted leak.service, measured well below its limit
    const last = outcomes.at(-1) as CycleOutcome
    expect(last.fixes).toEqual([
      expect.objectContaining({ remediation: 'memory-relief', resource: 'leak.service', status: 'succeeded' }),
    ])
    const history = JSON.parse(await ansaiJson('history', '--limit', '1000')) as AuditEntry[]
    const results = history
      .filter((e) => e.kind === 'result')
      .map((e) => e.data.result as { remediation: string; evidence: Record<string, unknown> })
    expect(results).toHaveLength(1)
    const evidence = results[0]?.evidence as {
      actions: string[]
      restart: { ok: boolean; oldMainPid: number; newMainPid: number }
      memory: {
        source: string
        limitBytes: number
        limitSource: string
        before: { bytes: number; percentOfLimit: number }
        afterRestart: { bytes: number }
      }
    }
    expect(evidence.actions).toEqual(['restarted'])
    expect(evidence.restart).toMatchObject({ ok: true, oldMainPid: leakPid })
    expect(evidence.memory).toMatchObject({
      source: hasController ? 'cgroup-v2' : 'rss',
      limitBytes: LIMIT,
      limitSource: hasController ? 'cgroup' : 'MemoryMax',
    })
    const atFix = evidence.memory.before
    note(
      `fixed after ${((fixedAt as number) / 1000).toFixed(1)} s at ${(atFix.bytes / MiB).toFixed(1)} MiB ` +
        `(${atFix.percentOfLimit.toFixed(0)} % of ${LIMIT / MiB} MiB); after the restart ${(evidence.memory.afterRestart.bytes / MiB).toFixed(1)} MiB`,
    )
    expect(atFix.bytes).toBeLessThan(0.9 * LIMIT) // before, not after: not even at the warning level
    expect(atFix.bytes).toBeGreaterThan(16 * MiB) // and it had really grown
    expect(Math.max(...rssSeen)).toBeLessThan(LIMIT)
    expect(evidence.memory.afterRestart.bytes).toBeLessThan(atFix.bytes / 2)
    expect(await machine.mainPid('leak.service')).toBe(0) // stopped by the test after the fix

    // the reason is the forecast, not the level: minutesToOom under 0.5 with the memory far from the limit
    const decisions = history.filter((e) => e.kind === 'decision').map((e) => e.data.decision as Decision)
    const fix = decisions.find((d) => d.type === 'remediate')
    expect(fix).toMatchObject({ remediation: 'memory-relief', resource: 'leak.service', policy: 'leak-forecast' })
    note(`decision: ${fix?.reason}`)
    const minutes = Number(/minutesToOom=([0-9.e-]+)/.exec(fix?.reason ?? '')?.[1])
    expect(minutes).toBeGreaterThanOrEqual(0)
    expect(minutes).toBeLessThan(0.5)
    // warnings come at 90 % of the limit: none was ever seen
    expect(outcomes.flatMap((o) => o.problems).every((p) => p.level === 'critical')).toBe(true)
    const events = decisions.filter((d) => d.incidentId === fix?.incidentId).map((d) => d.event ?? d.type)
    expect(events).toEqual(
      expect.arrayContaining([
        'ansai.incident.opened.v1',
        'remediate',
        'ansai.fix.verified.v1',
        'ansai.incident.resolved.v1',
      ]),
    )

    // flat.service: observed every cycle (2 observations per report), never a problem, never touched
    const observations = history.filter((e) => e.kind === 'observation')
    expect(observations.length).toBeGreaterThanOrEqual(outcomes.length)
    expect(observations.every((e) => e.data.observations === 2)).toBe(true)
    expect(outcomes.flatMap((o) => o.problems).some((p) => p.resource === 'flat.service')).toBe(false)
    expect(decisions.some((d) => d.resource === 'flat.service')).toBe(false)
    const flat = await machine.show('flat.service', ['ActiveState', 'MainPID', 'NRestarts'])
    expect(flat).toEqual({ ActiveState: 'active', MainPID: String(flatPid), NRestarts: '0' })
  }, 90_000)
})
