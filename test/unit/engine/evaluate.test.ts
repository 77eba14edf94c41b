import { describe, expect, it } from 'vitest'
import { evaluate } from '../../../shared/engine/evaluate.ts'
import { resourceState } from '../../../shared/engine/state.ts'
import { cert, Driver, FakeClock, fs, HOST, policiesFrom, procMem, service, summarize } from '../../support/builders.ts'

const MIN = 60_000
const HOUR = 60 * MIN

const DISK = `
apiVersion: ansai/v1
kind: Policy
metadata: { name: disk }
spec:
  observe: filesystem
  match: { mount: /var }
  severity:
    warning: { when: "usedPercent >= 80" }
    critical: { when: "usedPercent >= 90", for: 2 cycles }
    emergency: { when: "usedPercent >= 95" }
  remediate:
    - at: critical
      run: disk-cleanup
      params: { roots: [/var/log], logsOlderThan: 30d }
    - escalate: page
  allowDestructive: true
  notify: [ops]
`

describe('severity tiers and debounce', () => {
  it('picks the highest tier whose condition holds', () => {
    const d = new Driver(policiesFrom(DISK))
    expect(d.report([fs('/var', 50)]).findings[0]?.level).toBe('ok')
    expect(d.report([fs('/var', 85)]).findings[0]?.level).toBe('warning')
    expect(d.report([fs('/var', 96)]).findings[0]?.level).toBe('emergency')
  })

  it("'for: 2 cycles' needs two matching evaluations in a row", () => {
    const d = new Driver(policiesFrom(DISK))
    expect(d.report([fs('/var', 91)]).findings[0]?.level).toBe('warning')
    expect(d.report([fs('/var', 91)]).findings[0]?.level).toBe('critical')
  })

  it("'N times within M cycles' counts matches in a sliding window", () => {
    const set = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: flaky-dns }
spec:
  observe: dns
  severity:
    critical: { when: "!resolved", for: 3 times within 5 cycles }
`)
    const d = new Driver(set)
    const dns = (resolved: boolean) => ({ kind: 'dns' as const, name: 'db.internal', resolved, addresses: [] })
    const levels = [false, true, false, true, false].map((ok) => d.report([dns(ok)]).findings[0]?.level)
    expect(levels).toEqual(['ok', 'ok', 'ok', 'ok', 'critical'])
    // the oldest failure slides out of the window: 2 of the last 5
    expect(d.report([dns(true)]).findings[0]?.level).toBe('ok')
    expect(d.report([dns(false)]).findings[0]?.level).toBe('critical')
  })

  it('only evaluates resources the match selects', () => {
    const d = new Driver(policiesFrom(DISK))
    const out = d.report([fs('/', 99), fs('/var', 10)])
    expect(out.findings.map((f) => f.resource)).toEqual(['/var'])
  })
})

describe('incident lifecycle', () => {
  it('open → remediating → verifying → resolved, with one notification per event', () => {
    const clock = new FakeClock()
    const d = new Driver(policiesFrom(DISK), clock)
    expect(summarize(d.report([fs('/var', 92)]))).toEqual(['incident.opened'])
    clock.advance(MIN)
    const fix = d.report([fs('/var', 92)])
    expect(summarize(fix)).toEqual(['incident.worsened', 'fix:disk-cleanup', 'fix.started'])
    const decision = fix.decisions.find((x) => x.type === 'remediate')
    expect(decision).toMatchObject({
      remediation: 'disk-cleanup',
      params: { roots: ['/var/log'], logsOlderThan: '30d' },
      risk: 'destructive',
      dryRun: false,
    })
    expect(resourceState(d.state, 'disk', '/var')?.incident?.status).toBe('remediating')
    clock.advance(MIN)
    const after = d.report([fs('/var', 60)])
    expect(summarize(after)).toEqual(['fix.verified', 'incident.resolved'])
    expect(resourceState(d.state, 'disk', '/var')?.incident).toBeUndefined()
    const resolved = after.decisions.at(-1)
    expect(resolved?.type === 'notify' && resolved.channels).toEqual(['ops'])
  })

  it('a fix that did not help moves the ladder on to the next step (escalation)', () => {
    const clock = new FakeClock()
    const d = new Driver(policiesFrom(DISK), clock)
    d.report([fs('/var', 92)])
    d.report([fs('/var', 92)])
    clock.advance(MIN)
    const still = d.report([fs('/var', 92)])
    expect(summarize(still)).toEqual(['fix.failed', 'incident.escalated'])
    const esc = still.decisions.at(-1)
    expect(esc?.type === 'notify' && esc.escalateTo).toBe('page')
    expect(resourceState(d.state, 'disk', '/var')?.incident?.status).toBe('escalated')
    // nothing more to do: no repeated pages
    expect(summarize(d.report([fs('/var', 92)]))).toEqual([])
  })

  it('a failed result is told and the ladder moves on', () => {
    const d = new Driver(policiesFrom(DISK), new FakeClock(), HOST, 'failed')
    d.report([fs('/var', 92)])
    d.report([fs('/var', 92)])
    const next = d.report([fs('/var', 92)])
    expect(summarize(next)).toEqual(['fix.failed', 'incident.escalated'])
  })

  it('a fix with no result before its deadline counts as failed', () => {
    const clock = new FakeClock()
    const set = policiesFrom(DISK)
    const d = new Driver(set, clock)
    d.report([fs('/var', 92)])
    d.report([fs('/var', 92)])
    d.pendingResults = [] // the result never arrives
    clock.advance(11 * MIN)
    const out = d.report([fs('/var', 92)])
    expect(summarize(out)).toEqual(['fix.failed', 'incident.escalated'])
  })

  it('a fix not confirmed by any observation in time is escalated on a tick', () => {
    const clock = new FakeClock()
    const d = new Driver(policiesFrom(DISK), clock)
    d.report([fs('/var', 92)])
    d.report([fs('/var', 92)])
    clock.advance(MIN)
    d.tick() // the result arrives; no observation yet
    expect(resourceState(d.state, 'disk', '/var')?.incident?.status).toBe('verifying')
    clock.advance(15 * MIN)
    expect(summarize(d.tick())).toEqual(['incident.escalated'])
  })

  it('passive mode alerts and never fixes, but its escalations still page', () => {
    const set = policiesFrom(DISK.replace('notify: [ops]', 'mode: passive'))
    const d = new Driver(set)
    d.report([fs('/var', 92)])
    const out = d.report([fs('/var', 92)])
    expect(out.decisions.filter((x) => x.type === 'remediate')).toEqual([])
    expect(summarize(out)).toEqual(['incident.worsened', 'incident.escalated'])
  })

  it('a dry run shows the first fix it would make, then holds instead of escalating', () => {
    const d = new Driver(policiesFrom(DISK))
    d.report([fs('/var', 92)], { dryRun: true })
    expect(summarize(d.report([fs('/var', 92)], { dryRun: true }))).toContain('fix:disk-cleanup')
    d.pendingResults = d.pendingResults.map((r) => ({ ...r, status: 'dry-run' }))
    const held = d.report([fs('/var', 92)], { dryRun: true })
    expect(summarize(held)).toEqual([])
    expect(held.findings[0]?.notes.join()).toMatch(/dry-run: would have run disk-cleanup/)
  })

  it('dry-run marks the fix and changes nothing else', () => {
    const d = new Driver(policiesFrom(DISK))
    d.report([fs('/var', 92)], { dryRun: true })
    const out = d.report([fs('/var', 92)], { dryRun: true })
    const fix = out.decisions.find((x) => x.type === 'remediate')
    expect(fix?.type === 'remediate' && fix.dryRun).toBe(true)
  })
})

describe('guards', () => {
  const SERVICE = `
apiVersion: ansai/v1
kind: Policy
metadata: { name: svc }
spec:
  observe: service
  severity:
    critical: { when: "activeState == 'failed'" }
  remediate:
    - run: service-restart
      params: { unit: app.service }
    - escalate: page
  guards:
    limit: { max: 2, within: 1h, then: escalate }
`
  const crashAndRecover = (d: Driver, clock: FakeClock) => {
    const opened = d.report([service('app.service', 'failed')])
    clock.advance(MIN)
    const healed = d.report([service('app.service', 'active')])
    clock.advance(MIN)
    return [...summarize(opened), ...summarize(healed)]
  }

  it('limit: after max fixes within the window the next incident is escalated, not fixed', () => {
    const clock = new FakeClock()
    const d = new Driver(policiesFrom(SERVICE), clock)
    expect(crashAndRecover(d, clock)).toContain('fix:service-restart')
    expect(crashAndRecover(d, clock)).toContain('fix:service-restart')
    const third = crashAndRecover(d, clock)
    expect(third).not.toContain('fix:service-restart')
    expect(third).toContain('incident.escalated')
    // an hour later the window has passed
    clock.advance(HOUR)
    expect(crashAndRecover(d, clock)).toContain('fix:service-restart')
  })

  it('cooldown: no second fix on the resource until it has passed', () => {
    const clock = new FakeClock()
    const set = policiesFrom(SERVICE.replace('limit: { max: 2, within: 1h, then: escalate }', 'cooldown: 30m'))
    const d = new Driver(set, clock)
    expect(crashAndRecover(d, clock)).toContain('fix:service-restart')
    const second = d.report([service('app.service', 'failed')])
    expect(summarize(second)).toEqual(['incident.opened'])
    expect(second.findings[0]?.notes.join()).toMatch(/cooling down: 2\dm/)
    clock.advance(30 * MIN)
    expect(summarize(d.report([service('app.service', 'failed')]))).toContain('fix:service-restart')
  })

  it('window: fixes only inside the maintenance window, alerts any time', () => {
    const set = policiesFrom(
      SERVICE.replace('limit: { max: 2, within: 1h, then: escalate }', "window: { cron: '* 2-4 * * *', tz: UTC }"),
    )
    const clock = new FakeClock(Date.parse('2026-11-23T12:00:00Z'))
    const d = new Driver(set, clock)
    const out = d.report([service('app.service', 'failed')])
    expect(summarize(out)).toEqual(['incident.opened', 'fix.skipped'])
    expect(summarize(d.report([service('app.service', 'failed')]))).toEqual([]) // told once
    clock.advance(15 * HOUR) // 03:00 next day
    expect(summarize(d.report([service('app.service', 'failed')]))).toContain('fix:service-restart')
  })

  it('window honours the time zone', () => {
    const set = policiesFrom(
      SERVICE.replace(
        'limit: { max: 2, within: 1h, then: escalate }',
        "window: { cron: '* 2-4 * * *', tz: Asia/Tokyo }",
      ),
    )
    // 18:30 UTC is 03:30 in Tokyo
    const d = new Driver(set, new FakeClock(Date.parse('2026-11-23T18:30:00Z')))
    expect(summarize(d.report([service('app.service', 'failed')]))).toContain('fix:service-restart')
  })

  it('dependsOn: no fix on a child while its parent is down', () => {
    const set = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: app-down }
spec:
  observe: service
  match: { unit: app.service }
  severity: { critical: { when: "activeState == 'failed'" } }
  remediate: [ { run: service-restart, params: { unit: app.service } } ]
  guards: { dependsOn: [db-down] }
---
apiVersion: ansai/v1
kind: Policy
metadata: { name: db-down }
spec:
  observe: service
  match: { unit: db.service }
  mode: passive
  severity: { critical: { when: "activeState == 'failed'" } }
`)
    const d = new Driver(set)
    const out = d.report([service('app.service', 'failed'), service('db.service', 'failed')])
    expect(out.decisions.some((x) => x.type === 'remediate')).toBe(false)
    expect(out.findings.find((f) => f.policy === 'app-down')?.notes.join()).toMatch(/depends on db-down/)
    const healed = d.report([service('app.service', 'failed'), service('db.service', 'active')])
    expect(healed.decisions.some((x) => x.type === 'remediate')).toBe(true)
  })

  it('binds the unit from the observation when params leave it out, and validates it', () => {
    const set = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: any-failed }
spec:
  observe: service
  severity: { critical: { when: "activeState == 'failed'" } }
  remediate: [ { run: service-restart } ]
`)
    const d = new Driver(set)
    const out = d.report([service('nginx.service', 'failed'), service('evil;rm -rf.service', 'failed')])
    const fixes = out.decisions.filter((x) => x.type === 'remediate')
    expect(fixes.map((f) => f.type === 'remediate' && f.params.unit)).toEqual(['nginx.service'])
    expect(out.findings.find((f) => f.resource.startsWith('evil'))?.notes.join()).toMatch(
      /not a valid service-restart unit/,
    )
  })
})

describe('expiry milestones', () => {
  it('each alert point fires once, the most urgent crossed one', () => {
    const set = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: tls }
spec:
  observe: certificate
  milestones: { field: daysLeft, at: [30, 14, 7, 3, 1] }
  severity:
    warning: { when: "daysLeft <= 30" }
`)
    const clock = new FakeClock(Date.parse('2026-11-01T00:00:00Z'))
    const d = new Driver(set, clock)
    const c = cert('/etc/ssl/a.pem', '2026-11-21T00:00:00Z') // 20 days
    const points: number[] = []
    for (let day = 0; day < 22; day++) {
      for (const x of d.report([c]).decisions) {
        if (x.type === 'notify' && x.event === 'ansai.milestone.reached.v1') points.push(x.evidence.point as number)
      }
      clock.advance(24 * HOUR)
    }
    expect(points).toEqual([30, 14, 7, 3, 1])
  })

  it('ticks re-evaluate the last certificate as time passes', () => {
    const set = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: tls }
spec:
  observe: certificate
  severity:
    critical: { when: "daysLeft <= 7" }
`)
    const clock = new FakeClock(Date.parse('2026-11-01T00:00:00Z'))
    const d = new Driver(set, clock)
    expect(d.report([cert('/etc/ssl/a.pem', '2026-11-10T00:00:00Z')]).findings[0]?.level).toBe('ok')
    clock.advance(3 * 24 * HOUR)
    expect(summarize(d.tick())).toEqual(['incident.opened'])
  })
})

describe('trends', () => {
  const LEAK = `
apiVersion: ansai/v1
kind: Policy
metadata: { name: leak }
spec:
  observe: process-memory
  trend: { window: 30m, minSamples: 5 }
  severity:
    critical: { when: "minutesToOom < 60 || usedPercentOfLimit >= 95" }
  remediate:
    - run: memory-relief
      params: { unit: app.service }
`
  it('forecasts time to OOM and fixes before the static threshold is crossed', () => {
    const clock = new FakeClock()
    const d = new Driver(policiesFrom(LEAK), clock)
    const limit = 1000 * 2 ** 20
    let fixedAtPercent = -1
    for (let i = 0; i < 60 && fixedAtPercent < 0; i++) {
      const used = 300 * 2 ** 20 + i * 10 * 2 ** 20 // +10 MiB a minute: ~70 min of headroom at start
      const out = d.report([procMem('app.service', used, limit)])
      if (out.decisions.some((x) => x.type === 'remediate')) fixedAtPercent = (used / limit) * 100
      clock.advance(MIN)
    }
    expect(fixedAtPercent).toBeGreaterThan(0)
    expect(fixedAtPercent).toBeLessThan(95)
  })

  it('never touches a flat process', () => {
    const clock = new FakeClock()
    const d = new Driver(policiesFrom(LEAK), clock)
    for (let i = 0; i < 120; i++) {
      const out = d.report([procMem('app.service', 500 * 2 ** 20 + (i % 3) * 2 ** 20, 1000 * 2 ** 20)])
      expect(out.decisions).toEqual([])
      clock.advance(MIN)
    }
  })
})

describe('flapping', () => {
  it('a flapping resource is held open until it is stable', () => {
    const set = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: flappy }
spec:
  observe: service
  severity: { critical: { when: "activeState == 'failed'" } }
  guards: { flapping: { changes: 4, within: 1h, stableFor: 3 } }
`)
    const clock = new FakeClock()
    const d = new Driver(set, clock)
    const events: string[] = []
    for (let i = 0; i < 6; i++) {
      // i = 5 is the first healthy cycle of the held incident
      events.push(...summarize(d.report([service('app.service', i % 2 === 0 ? 'failed' : 'active')])))
      clock.advance(MIN)
    }
    // two full open/resolve cycles, then the third open is flagged and held
    expect(events).toEqual([
      'incident.opened',
      'incident.resolved',
      'incident.opened',
      'incident.resolved',
      'incident.opened',
    ])
    expect(resourceState(d.state, 'flappy', 'app.service')?.incident?.flapping).toBe(true)
    expect(summarize(d.report([service('app.service', 'active')]))).toEqual([])
    expect(summarize(d.report([service('app.service', 'active')]))).toEqual(['incident.resolved'])
  })
})

describe('reports and state', () => {
  it('an old or repeated report changes no state and decides nothing', () => {
    const d = new Driver(policiesFrom(DISK))
    d.report([fs('/var', 92)], { seq: 10 })
    const before = JSON.stringify(d.state)
    const again = evaluate({
      policies: d.policies,
      host: HOST,
      observations: [fs('/var', 99)],
      seq: 10,
      state: d.state,
      now: Date.now(),
    })
    expect(again.decisions).toEqual([])
    expect(JSON.stringify(again.nextState)).toBe(before)
  })

  it('never mutates its input and is deterministic', () => {
    const d = new Driver(policiesFrom(DISK))
    d.report([fs('/var', 92)])
    const frozen = JSON.stringify(d.state)
    const input = {
      policies: d.policies,
      host: HOST,
      observations: [fs('/var', 92)],
      seq: 5,
      state: d.state,
      now: '2026-11-23T01:00:00Z',
    }
    const a = evaluate(input)
    const b = evaluate(input)
    expect(JSON.stringify(d.state)).toBe(frozen)
    expect(JSON.stringify(a)).toBe(JSON.stringify(b))
  })

  it('targets select hosts by tag; a policy without targets applies everywhere', () => {
    const set = policiesFrom(
      DISK.replace('observe: filesystem', 'targets: { tags: { role: [db] } }\n  observe: filesystem'),
    )
    expect(new Driver(set).report([fs('/var', 99)]).findings).toEqual([])
    const db = { ...HOST, tags: { role: 'db' } }
    expect(new Driver(set, new FakeClock(), db).report([fs('/var', 99)]).findings).toHaveLength(1)
  })

  it('a host that stops reporting is found silent on ticks', () => {
    const set = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: silent }
spec:
  observe: host
  severity:
    critical: { when: "silentMinutes > 15" }
`)
    const clock = new FakeClock()
    const d = new Driver(set, clock)
    d.report([])
    clock.advance(10 * MIN)
    expect(d.tick().findings[0]?.level).toBe('ok')
    clock.advance(10 * MIN)
    expect(summarize(d.tick())).toEqual(['incident.opened'])
    expect(summarize(d.report([]))).toEqual(['incident.resolved'])
  })

  it('an expression that cannot be evaluated does not match and says why', () => {
    const set = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: pg }
spec:
  observe: database
  severity:
    critical: { when: "bloatRatio > 0.5" }
`)
    const out = new Driver(set).report([{ kind: 'database', engine: 'postgresql', name: 'main', reachable: true }])
    expect(out.findings[0]?.level).toBe('ok')
    expect(out.findings[0]?.notes.join()).toMatch(/bloatRatio/)
  })
})
