/**
 * The single-host shape healing a service on a REAL systemd (test/support/systemd: Debian's systemd 252 as PID 1 of
 * a PID namespace), end to end: ANSAI is built (agent/build) and installed inside the machine by its own install.sh
 * (test/support/ansai-machine.ts), and nothing but systemd calls it.
 *
 * `demo.service` (Restart=no) has `OnFailure=ansai-report@%n.service`, the shipped hook: a oneshot that runs
 * `ansai run --once` (collect → evaluate → service-restart → collect again to verify → notify, state in SQLite in
 * /var/lib/ansai). The test only kills demo's main process from the host (SIGKILL), starts ansai-agent.service where
 * the timer would, and reads what happened with `ansai history --json` and `ansai status --json`, run inside.
 *
 * Cases: (1) one crash: the hook ran ANSAI, demo is active again with a new MainPID, the incident is resolved by a
 * verified fix; (2) a unit that keeps failing: two more crashes are fixed the same way; the 4th within the minute
 * finds the hook at its own start limit (3 reports per unit and minute), so the timer's next cycle sees it: ANSAI's
 * limit (max 3 fixes within 1h) is reached, the incident is escalated, and demo stays down: no 4th restart, not
 * even from a later cycle.
 */
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
  process.stderr.write(`[systemd-healing.test] ${message}\n`)
}

const REPORT_UNIT = 'ansai-report@demo.service.service'

/** Only what this test needs is observed: demo.service (and systemd's failed units, as on a host). */
const CONFIG_YAML = machineConfig({ hostId: 'e2e-systemd', services: ['demo.service'] })

/**
 * The baseline's service-failed policy, for demo.service only, with two guards set out of the way so that what is
 * tested is the limit: service-restart's default cooldown (2m) would hold back the fix of a crash that comes within
 * two minutes of the last one (the hook runs once per failure, so the unit would stay down until the next timer
 * tick), and flapping detection (default 4 changes within 1h) would hold the 3rd incident open for 5 healthy cycles,
 * so the 4th crash would escalate as a fix that did not hold.
 */
const POLICY_YAML = `apiVersion: ansai/v1
kind: Policy
metadata: { name: demo-failed, description: "Restart demo.service when it fails, at most 3 times an hour" }
spec:
  observe: service
  match: { unit: demo.service }
  severity:
    critical: { when: "activeState == 'failed' && !selfHealing" }
  remediate:
    - run: service-restart
    - escalate: page
  guards:
    limit: { max: 3, within: 1h, then: escalate }
    cooldown: 0s
    flapping: { changes: 100, within: 1h, stableFor: 1 }
  verify: { within: 2m }
`

const DEMO_UNIT = `[Unit]
Description=a demo service that ANSAI heals
OnFailure=ansai-report@%n.service

[Service]
ExecStart=/bin/sleep infinity
Restart=no
`

interface AuditEntry {
  kind: string
  at: string
  incidentId?: string
  key?: string
  data: Record<string, unknown>
}
interface Decision {
  type: 'remediate' | 'notify'
  remediation?: string
  event?: string
  resource: string
  incidentId: string
  summary?: string
}
interface Status {
  open: Record<string, unknown>[]
  summary: {
    verifiedFixes: { remediation: string; count: number }[]
    resolvedIncidents: number
    autoResolved: number
  }
}
interface Result {
  status: string
  summary: string
  remediation: string
  evidence: Record<string, unknown>
}

describe.skipIf(!canBoot)('ansai heals a service on a real systemd (OnFailure hook → ansai run --once)', () => {
  let machine: SystemdMachine
  let release: AnsaiRelease | undefined
  /** ExecMainExitTimestampMonotonic of the hook's last finished run, to tell runs apart. */
  let lastHookExit = '0'

  beforeAll(async () => {
    release = await buildAnsaiForMachine()
    note(`ansai built in ${release.buildMs} ms`)
    machine = await SystemdMachine.boot({ name: 'e2e-healing', binds: release.binds })
    note(`machine booted in ${machine.bootMs} ms (${machine.bootState})`)
    const t0 = performance.now()
    await installAnsai(machine, { config: CONFIG_YAML, policies: { 'demo.yaml': POLICY_YAML } })
    note(`installed by install.sh in ${Math.round(performance.now() - t0)} ms`)
    await machine.installUnit('demo.service', DEMO_UNIT)
    await machine.run(['systemctl', 'start', 'demo.service'])
  }, 1_800_000) // the first run on a machine builds the rootfs

  afterAll(async () => {
    if (machine) await machine.shutdown()
    release?.cleanup()
  })

  /** `ansai <args> --json` inside the machine, parsed. */
  const ansaiJson = async <T>(...args: string[]): Promise<T> => {
    const r = await ansai(machine, ...args, '--json')
    if (r.exitCode !== 0) throw new Error(`ansai ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`)
    return JSON.parse(r.stdout) as T
  }
  const history = () => ansaiJson<AuditEntry[]>('history', '--limit', '1000')
  /** One cycle where the timer would run it: the shipped ansai-agent.service (a oneshot: returns when it is done). */
  const timerTick = async () => {
    const r = await machine.exec(['systemctl', 'start', 'ansai-agent.service'], { timeoutMs: 120_000 })
    const journal = await machine.exec(['journalctl', '-u', 'ansai-agent.service', '--no-pager', '-o', 'cat'])
    expect(r.exitCode, `${r.stderr}\n${journal.stdout}`).toBe(0)
  }
  const decisionsOf = (entries: AuditEntry[]): Decision[] =>
    entries.filter((e) => e.kind === 'decision').map((e) => e.data.decision as Decision)
  const resultsOf = (entries: AuditEntry[]): Result[] =>
    entries.filter((e) => e.kind === 'result').map((e) => e.data.result as Result)

  const demo = () => machine.show('demo.service', ['ActiveState', 'SubState', 'Result', 'MainPID'])

  /** machine.waitFor, typed: the first value the probe returns, with the last lines of the journal on a timeout. */
  const until = async <T>(probe: () => Promise<T | undefined>, ms: number, what: string): Promise<T> =>
    (await machine.waitFor(probe, ms, what).catch(async (err: Error) => {
      const journal = await machine.exec(['journalctl', '--no-pager', '-n', '60', '-o', 'short-monotonic'])
      throw new Error(`${err.message}\njournal:\n${journal.stdout}`)
    })) as T

  /** Waits until the OnFailure hook has run (again) and finished; returns how it ended. */
  const hookFinished = async (what: string) => {
    const ended = await until(
      async () => {
        const s = await machine.show(REPORT_UNIT, ['ActiveState', 'Result', 'ExecMainExitTimestampMonotonic'])
        const done = s.ActiveState === 'inactive' || s.ActiveState === 'failed'
        return done && s.ExecMainExitTimestampMonotonic !== lastHookExit ? s : undefined
      },
      30_000,
      `${REPORT_UNIT} to run and finish (${what})`,
    )
    lastHookExit = ended.ExecMainExitTimestampMonotonic
    return ended
  }

  /** SIGKILL demo's main process from the host; returns the pid inside the machine. */
  const crash = async (): Promise<number> => {
    const pid = await machine.mainPid('demo.service')
    expect(pid).toBeGreaterThan(0)
    const hostPid = machine.hostPid(pid)
    expect(hostPid).toBeGreaterThan(0)
    process.kill(hostPid as number, 'SIGKILL')
    return pid
  }

  /** Crash demo and wait until ANSAI (the only thing that restarts it here) brought it back. */
  const crashAndHeal = async (n: number) => {
    const old = await crash()
    const t0 = performance.now()
    const back = await until(
      async () => {
        const s = await demo()
        return s.ActiveState === 'active' && Number(s.MainPID) > 0 && Number(s.MainPID) !== old ? s : undefined
      },
      20_000,
      `demo.service active again after crash ${n}`,
    )
    const ms = Math.round(performance.now() - t0)
    const hook = await hookFinished(`crash ${n}`)
    note(`crash ${n}: pid ${old} killed → active again as pid ${back.MainPID} in ${ms} ms; hook ${hook.Result}`)
    return { old, newPid: Number(back.MainPID), ms, hook }
  }

  it('a killed unit is reported by its OnFailure hook, restarted by ANSAI and verified active', async () => {
    const { old, newPid, hook } = await crashAndHeal(1)
    expect(hook.Result).toBe('success')
    expect((await demo()).SubState).toBe('running')

    const entries = await history()
    // the observation that saw it failed
    const seen = entries.filter(
      (e) =>
        e.kind === 'observation' &&
        (e.data.problems as { policy: string; resource: string; level: string }[]).some(
          (p) => p.policy === 'demo-failed' && p.resource === 'demo.service' && p.level === 'critical',
        ),
    )
    expect(seen).toHaveLength(1)
    // the decision, the action and its verified result
    const decisions = decisionsOf(entries)
    const fixes = decisions.filter((d) => d.type === 'remediate')
    expect(fixes).toEqual([
      expect.objectContaining({ remediation: 'service-restart', resource: 'demo.service', policy: 'demo-failed' }),
    ])
    expect(entries.filter((e) => e.kind === 'action')).toHaveLength(1)
    const results = resultsOf(entries)
    expect(results).toHaveLength(1)
    expect(results[0]).toMatchObject({
      remediation: 'service-restart',
      status: 'succeeded',
      evidence: {
        before: { activeState: 'failed', result: 'signal', execMain: 'killed by signal 9' },
        after: { activeState: 'active', subState: 'running' },
        oldMainPid: old,
        newMainPid: newPid,
      },
    })
    const incidentId = fixes[0]?.incidentId
    const events = decisions.filter((d) => d.incidentId === incidentId).map((d) => d.event ?? d.type)
    for (const e of [
      'ansai.incident.opened.v1',
      'remediate',
      'ansai.fix.started.v1',
      'ansai.fix.verified.v1',
      'ansai.incident.resolved.v1',
    ]) {
      expect(events, e).toContain(e)
    }

    const st = await ansaiJson<Status>('status')
    expect(st.open).toEqual([])
    expect(st.summary.verifiedFixes).toEqual([{ remediation: 'service-restart', count: 1 }])
    expect(st.summary.resolvedIncidents).toBe(1)
    expect(st.summary.autoResolved).toBe(1)

    // what the hook printed went to the journal of its instance
    const journal = await machine.exec(['journalctl', '-u', REPORT_UNIT, '--no-pager', '-o', 'cat'])
    note(`hook journal (last lines):\n${journal.stdout.trim().split('\n').slice(-6).join('\n')}`)
  }, 60_000)

  it('a unit that keeps failing is restarted 3 times within the hour, then escalated, not restarted a 4th time', async () => {
    await crashAndHeal(2)
    await crashAndHeal(3)

    // 4th crash within the minute: the hook is at its own start limit (StartLimitBurst=3 per 60 s) ...
    const old = await crash()
    const refused = await until(
      async () => {
        const s = await machine.show(REPORT_UNIT, ['ActiveState', 'Result'])
        return s.Result === 'start-limit-hit' ? s : undefined
      },
      10_000,
      `${REPORT_UNIT} refused by its start limit`,
    )
    note(`crash 4: pid ${old} killed; hook ${refused.ActiveState}/${refused.Result}`)
    // ... so the timer's next cycle sees it, and ANSAI's own limit (max 3 within 1h) is reached
    await timerTick()
    const after = await demo()
    note(`after the timer's cycle: demo ${after.ActiveState}/${after.SubState}`)
    expect(after.ActiveState).toBe('failed')
    expect(after.Result).toBe('signal')
    expect(Number(after.MainPID)).toBe(0)

    const entries = await history()
    const results = resultsOf(entries)
    expect(results.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded'])
    const decisions = decisionsOf(entries)
    expect(decisions.filter((d) => d.type === 'remediate')).toHaveLength(3)
    const escalated = decisions.filter((d) => d.event === 'ansai.incident.escalated.v1')
    expect(escalated).toHaveLength(1)
    expect(escalated[0]?.summary).toMatch(/demo\.service .*needs a human: limit reached: 3 fixes within 1h/)

    const st = await ansaiJson<Status>('status')
    expect(st.open).toEqual([
      expect.objectContaining({
        policy: 'demo-failed',
        resource: 'demo.service',
        status: 'escalated',
        escalatedTo: 'page',
      }),
    ])
    expect(st.summary.verifiedFixes).toEqual([{ remediation: 'service-restart', count: 3 }])
    expect(st.summary.resolvedIncidents).toBe(3)

    // a later cycle leaves it to the human: no restart, no second page
    await timerTick()
    expect((await demo()).ActiveState).toBe('failed')
    const later = decisionsOf(await history())
    expect(later.filter((d) => d.type === 'remediate')).toHaveLength(3)
    expect(later.filter((d) => d.event === 'ansai.incident.escalated.v1')).toHaveLength(1)
  }, 60_000)
})
