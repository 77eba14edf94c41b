import { describe, expect, it } from 'vitest'
import { buildNotifications, MAX_TEXT, messageIdOf, toConsoleLine } from '../../../shared/app/notify/index.ts'
import { type Decision, NotificationV1Schema } from '../../../shared/contracts/index.ts'
import { Driver, fs, HOST, policiesFrom } from '../../support/builders.ts'
import {
  escalated,
  fix,
  fixFailed,
  HOSTS,
  notify,
  opened,
  resolved,
  result,
  started,
  T2,
  verified,
} from './fixtures.ts'

const byChannel = (channel: string, decisions: Parameters<typeof buildNotifications>[0]) =>
  buildNotifications(decisions).filter((m) => m.channel === channel)

describe('grouping', () => {
  it('makes one message per incident and channel of a cycle: opened + fix started', () => {
    const msgs = buildNotifications({ decisions: [opened, fix, started], results: [result], hosts: HOSTS })
    expect(msgs.map((m) => [m.channel, m.event, m.incidentId])).toEqual([
      ['ops-email', 'ansai.fix.started.v1', 'inc-disk'],
      ['slack', 'ansai.fix.started.v1', 'inc-disk'],
    ])
    expect(msgs[0]!.evidence.events).toEqual(['ansai.incident.opened.v1', 'ansai.fix.started.v1'])
    expect(msgs[0]!.evidence.decisions).toEqual(['n-opened', 'n-started'])
    for (const m of msgs) expect(NotificationV1Schema.parse(m)).toEqual(m)
  })

  it('groups fix verified + resolved into one RESOLVED message', () => {
    const [m] = byChannel('ops-email', {
      decisions: [verified, resolved],
      results: [{ incidentId: 'inc-disk', result }],
      hosts: HOSTS,
    })
    expect(m!.event).toBe('ansai.incident.resolved.v1')
    expect(m!.subject).toBe('[ANSAI] RESOLVED disk-pressure /var on web-1 — recovered 1.2 GiB by disk-cleanup')
    expect(m!.at).toBe(T2)
    expect(m!.evidence.bytesRecovered).toBe(1_288_490_189)
  })

  it('sends an escalation as a message of its own, with escalateTo, also to a channel named like the target', () => {
    const msgs = buildNotifications({
      decisions: [fixFailed, escalated],
      hosts: HOSTS,
      channels: ['ops-email', 'slack', 'page'],
    })
    expect(msgs.map((m) => [m.channel, m.event, m.escalateTo])).toEqual([
      ['ops-email', 'ansai.fix.failed.v1', undefined],
      ['slack', 'ansai.fix.failed.v1', undefined],
      ['ops-email', 'ansai.incident.escalated.v1', 'page'],
      ['slack', 'ansai.incident.escalated.v1', 'page'],
      ['page', 'ansai.incident.escalated.v1', 'page'],
    ])
    expect(msgs[2]!.subject).toBe('[ANSAI] ESCALATED disk-pressure /var on web-1 — needs a human (page)')
    expect(msgs[0]!.subject).toBe('[ANSAI] FIX FAILED disk-pressure /var on web-1 — disk-cleanup did not fix it')
  })

  it('does not route an escalation to its target when no channel has that name', () => {
    const msgs = buildNotifications({ decisions: [escalated], hosts: HOSTS, channels: ['ops-email', 'slack'] })
    expect(msgs.map((m) => m.channel)).toEqual(['ops-email', 'slack'])
  })

  it('puts the most severe incident first, and keeps the engine order among equals', () => {
    const warnA = notify(
      'n-a',
      'ansai.incident.opened.v1',
      'a is warning',
      { values: { usedPercent: 81 } },
      {
        incidentId: 'inc-a',
        resource: '/a',
        severity: 'warning',
        channels: ['ops-email'],
      },
    )
    const critB = notify(
      'n-b',
      'ansai.incident.opened.v1',
      'b is critical',
      { values: { usedPercent: 91 } },
      {
        incidentId: 'inc-b',
        resource: '/b',
        channels: ['ops-email'],
      },
    )
    const emergC = notify(
      'n-c',
      'ansai.incident.opened.v1',
      'c is emergency',
      { values: { usedPercent: 97 } },
      {
        incidentId: 'inc-c',
        resource: '/c',
        severity: 'emergency',
        channels: ['ops-email'],
      },
    )
    const critD = { ...critB, key: 'n-d', incidentId: 'inc-d', resource: '/d' }
    const msgs = buildNotifications({ decisions: [warnA, critB, emergC, critD], hosts: HOSTS })
    expect(msgs.map((m) => m.incidentId)).toEqual(['inc-c', 'inc-b', 'inc-d', 'inc-a'])
    expect(msgs.map((m) => m.subject)).toEqual([
      '[ANSAI] EMERGENCY disk-pressure /c on web-1 — usedPercent=97',
      '[ANSAI] CRITICAL disk-pressure /b on web-1 — usedPercent=91',
      '[ANSAI] CRITICAL disk-pressure /d on web-1 — usedPercent=91',
      '[ANSAI] WARNING disk-pressure /a on web-1 — usedPercent=81',
    ])
  })

  it('gives a message the highest severity of its decisions', () => {
    const worse = notify(
      'n-worse',
      'ansai.incident.worsened.v1',
      'now emergency',
      {
        values: { usedPercent: 96 },
        from: 'critical',
      },
      { severity: 'emergency' },
    )
    const [m] = byChannel('slack', { decisions: [opened, worse], hosts: HOSTS })
    expect(m!.severity).toBe('emergency')
    expect(m!.subject).toBe('[ANSAI] EMERGENCY disk-pressure /var on web-1 — worse, was critical (usedPercent=96)')
  })

  it('stays silent for decisions that name no channel, unless default channels are given', () => {
    const quiet = { ...opened, channels: [] }
    expect(buildNotifications({ decisions: [quiet] })).toEqual([])
    const msgs = buildNotifications({ decisions: [quiet], defaultChannels: ['console'] })
    expect(msgs.map((m) => m.channel)).toEqual(['console'])
  })

  it('ignores a decision given twice, and results it cannot link to an incident', () => {
    const stray = { ...result, key: 'r-unknown' }
    const once = buildNotifications({ decisions: [opened, fix, started], results: [result], hosts: HOSTS })
    const twice = buildNotifications({
      decisions: [opened, fix, started, opened, started],
      results: [result, stray],
      hosts: HOSTS,
    })
    expect(twice).toEqual(once)
  })

  it('shows a host by its id when no name is known', () => {
    const [m] = byChannel('slack', { decisions: [opened] })
    expect(m!.subject).toBe(
      '[ANSAI] CRITICAL disk-pressure /var on i-0123456789abcdef0 — usedPercent=92.5, hoursToFull=3.2',
    )
  })
})

describe('message ids (dedup keys)', () => {
  it('are derived from the channel and the decision keys, whatever their order', () => {
    const a = buildNotifications({ decisions: [opened, fix, started], hosts: HOSTS })
    const b = buildNotifications({ decisions: [started, fix, opened], hosts: HOSTS })
    expect(a.map((m) => m.id)).toEqual(b.map((m) => m.id))
    expect(a[0]!.id).toBe(messageIdOf('ops-email', ['n-opened', 'n-started']))
    expect(a[0]!.id).toMatch(/^m-[0-9a-f]{16}$/)
    expect(new Set(a.map((m) => m.id)).size).toBe(2)
  })

  it('do not depend on the results, the host names or anything but the decisions', () => {
    const a = buildNotifications({ decisions: [opened, fix, started] })
    const b = buildNotifications({ decisions: [opened, fix, started], results: [result], hosts: HOSTS })
    expect(a.map((m) => m.id)).toEqual(b.map((m) => m.id))
  })

  it('differ for different decisions', () => {
    const a = buildNotifications({ decisions: [opened] })
    const b = buildNotifications({ decisions: [opened, started] })
    expect(a[0]!.id).not.toBe(b[0]!.id)
  })
})

describe('subjects', () => {
  const subjectOf = (decisions: Decision[], extra: Partial<Parameters<typeof buildNotifications>[0]> = {}) =>
    byChannel('slack', { decisions, hosts: HOSTS, ...extra })[0]!.subject

  it('names what is happening, where, and the outcome', () => {
    expect(subjectOf([opened, started])).toBe('[ANSAI] CRITICAL disk-pressure /var on web-1 — running disk-cleanup')
    expect(subjectOf([opened, started], { decisions: [opened, fix, started], results: [result] })).toBe(
      '[ANSAI] CRITICAL disk-pressure /var on web-1 — recovered 1.2 GiB by disk-cleanup',
    )
    expect(subjectOf([verified], { results: [{ incidentId: 'inc-disk', result }] })).toBe(
      '[ANSAI] FIXED disk-pressure /var on web-1 — recovered 1.2 GiB by disk-cleanup',
    )
    expect(subjectOf([verified, resolved])).toBe('[ANSAI] RESOLVED disk-pressure /var on web-1 — fixed by disk-cleanup')
    const selfHealed = { ...resolved, evidence: { ...resolved.evidence, fixes: [] } }
    expect(subjectOf([selfHealed])).toBe('[ANSAI] RESOLVED disk-pressure /var on web-1 — healthy again')
  })

  it('says so for a dry run and a failed fix', () => {
    const dry = { ...started, evidence: { ...started.evidence, dryRun: true } }
    expect(subjectOf([opened, dry])).toBe(
      '[ANSAI] CRITICAL disk-pressure /var on web-1 — would run disk-cleanup (dry-run)',
    )
    const failed = { ...result, status: 'failed' as const, bytesRecovered: {}, error: 'EACCES' }
    expect(subjectOf([opened, fix, started], { decisions: [opened, fix, started], results: [failed] })).toBe(
      '[ANSAI] CRITICAL disk-pressure /var on web-1 — disk-cleanup failed',
    )
    const failedIncident = notify('n-failed', 'ansai.incident.failed.v1', 'every fix tried', {
      values: { usedPercent: 93 },
    })
    expect(subjectOf([failedIncident])).toBe(
      '[ANSAI] FAILED disk-pressure /var on web-1 — every fix was tried, still critical',
    )
  })

  it('tells held-back fixes and milestones', () => {
    const held = notify('n-held', 'ansai.fix.skipped.v1', 'held back', {
      reason: "outside the maintenance window '* 0-6 * * *' (UTC)",
    })
    expect(subjectOf([opened, held])).toBe(
      "[ANSAI] CRITICAL disk-pressure /var on web-1 — fix held back: outside the maintenance window '* 0-6 * * *' (UTC)",
    )
    const milestone = notify(
      'n-ms',
      'ansai.milestone.reached.v1',
      'certificate-expiry: /etc/ssl/site.pem on web-1: daysLeft 6.5 ≤ 7',
      { field: 'daysLeft', point: 7, value: 6.5 },
      { policy: 'certificate-expiry', resource: '/etc/ssl/site.pem', severity: 'warning' },
    )
    expect(subjectOf([milestone])).toBe(
      '[ANSAI] WARNING certificate-expiry /etc/ssl/site.pem on web-1 — daysLeft 6.5 reached 7',
    )
  })

  it('is at most 300 characters', () => {
    const long = { ...opened, resource: `/${'x'.repeat(400)}` }
    const [m] = byChannel('slack', { decisions: [long] })
    expect(m!.subject.length).toBeLessThanOrEqual(300)
    expect(m!.subject.endsWith('…')).toBe(true)
    expect(() => NotificationV1Schema.parse(m)).not.toThrow()
  })
})

describe('the email text', () => {
  it('tells what happened, the evidence, the fix and its result, what comes next, and the incident', () => {
    const [m] = byChannel('ops-email', { decisions: [opened, fix, started], results: [result], hosts: HOSTS })
    expect(m!.text).toBe(`CRITICAL disk-pressure /var on web-1 — recovered 1.2 GiB by disk-cleanup

When: 2026-11-23 10:00:00 UTC
Severity: critical

What happened
- disk-pressure: /var on web-1 is critical (usedPercent=92.5, hoursToFull=3.2) [incident opened]
- disk-pressure: running disk-cleanup on /var on web-1 [fix started]

Evidence
- Values that triggered it: usedPercent=92.5, hoursToFull=3.2
- Parameters: {"roots":["/var/log","/var/tmp"],"logsOlderThan":"30d"}

Fix: disk-cleanup — succeeded in 12.0 s
  recovered 1.2 GiB on /var: old logs 1 GiB, temp files 205 MiB
  Space recovered: 1.2 GiB
    logs  1 GiB
    temp  205 MiB
  First files (3 of 212):
    /var/log/app/app.log.3.gz
    /var/log/app/app.log.4.gz
    /var/tmp/build-1234
  Evidence: usedPercentBefore=92.5, usedPercentAfter=61.2

What ANSAI will do next
ANSAI checks /var again on the next observation (by 2026-11-23 10:10:00 UTC) to verify the fix. If it did not help, ANSAI takes the next step of the policy; either way it tells you.

Incident: inc-disk
Policy: disk-pressure · resource: /var · host: web-1 (i-0123456789abcdef0)
Message: ${m!.id} (incident opened, fix started)
`)
  })

  it('for a resolved incident: the values now, how long it was open, the fixes, and that nothing more will happen', () => {
    const [m] = byChannel('ops-email', {
      decisions: [verified, resolved],
      results: [{ incidentId: 'inc-disk', result }],
      hosts: HOSTS,
    })
    expect(m!.text).toContain('Severity: critical (now resolved)')
    expect(m!.text).toContain(`Evidence
- Values now: usedPercent=61.2, hoursToFull=Infinity
- Open for: 5 min
- Fixes:
    disk-cleanup: verified — recovered 1.2 GiB on /var: old logs 1 GiB, temp files 205 MiB
`)
    expect(m!.text).toContain('  Space recovered: 1.2 GiB\n    logs  1 GiB\n    temp  205 MiB\n')
    expect(m!.text).toContain(
      'What ANSAI will do next\nNothing more: the incident is closed. ANSAI keeps watching /var and opens a new incident if the problem comes back.',
    )
  })

  it('for an escalation: the target, the reason, the fixes tried', () => {
    const [m] = byChannel('ops-email', { decisions: [escalated], hosts: HOSTS })
    expect(m!.text).toContain('Escalated to: page\n')
    expect(m!.text).toContain(`Evidence
- Reason: the fixes did not clear it
- Fixes tried:
    disk-cleanup: unverified — recovered 12 MiB
`)
    expect(m!.text).toContain('A human is needed: this is handed to page.')
  })

  it('lists at most 10 files of a fix, and shows the fix summary the engine carried when no result is given', () => {
    const many = { ...result, items: Array.from({ length: 50 }, (_, i) => `/var/log/old-${i}.log`), itemsTotal: 5000 }
    const [m] = byChannel('ops-email', { decisions: [opened, fix, started], results: [many], hosts: HOSTS })
    expect(m!.text).toContain('  First files (10 of 5000):\n    /var/log/old-0.log\n')
    expect(m!.text).toContain('    /var/log/old-9.log\n')
    expect(m!.text).not.toContain('/var/log/old-10.log')
    const [f] = byChannel('ops-email', { decisions: [fixFailed], hosts: HOSTS })
    expect(f!.text).toContain('- Fix result: recovered 12 MiB\n')
    expect(f!.text).toContain('- Values that triggered it: usedPercent=93.1\n')
  })

  it('stays within 20,000 characters, and keeps the incident id when it is cut', () => {
    const huge = notify('n-huge', 'ansai.incident.opened.v1', 'x'.repeat(5000), {
      values: { usedPercent: 99 },
      ...Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'y'.repeat(400)])),
    })
    const [m] = byChannel('slack', { decisions: [huge], hosts: HOSTS })
    expect(m!.text.length).toBeLessThanOrEqual(MAX_TEXT)
    expect(m!.text).toContain('… (message cut: the full evidence is in the audit trail)')
    expect(m!.text).toContain('Incident: inc-disk')
    expect(() => NotificationV1Schema.parse(m)).not.toThrow()
  })
})

describe('from real engine decisions', () => {
  const yaml = `
apiVersion: ansai/v1
kind: Policy
metadata: { name: disk-pressure }
spec:
  observe: filesystem
  severity:
    warning: { when: "usedPercent >= 80" }
    critical: { when: "usedPercent >= 90" }
  remediate:
    - at: critical
      run: disk-cleanup
      params: { roots: [/var/log], logsOlderThan: 30d }
  allowDestructive: true
  notify: [ops-email]
`

  it('one message when a fix starts, one when it is resolved, with the bytes of the fix', () => {
    const d = new Driver(policiesFrom(yaml))
    const first = d.report([fs('/var', 92)])
    const ran = d.pendingResults.map((r) => ({ ...r, bytesRecovered: { logs: 3 * 2 ** 30 } }))
    d.pendingResults = ran
    const m1 = buildNotifications({ decisions: first.decisions, results: ran, hosts: [HOST] })
    expect(m1.map((m) => m.subject)).toEqual([
      '[ANSAI] CRITICAL disk-pressure /var on web-1 — recovered 3 GiB by disk-cleanup',
    ])
    const incidentId = first.decisions[0]!.incidentId
    d.clock.advance(60_000)
    const second = d.report([fs('/var', 60)])
    const m2 = buildNotifications({
      decisions: second.decisions,
      results: ran.map((result) => ({ incidentId, result })),
      hosts: [HOST],
    })
    expect(m2.map((m) => [m.event, m.subject])).toEqual([
      ['ansai.incident.resolved.v1', '[ANSAI] RESOLVED disk-pressure /var on web-1 — recovered 3 GiB by disk-cleanup'],
    ])
    expect(m2[0]!.text).toContain('- Values now: usedPercent=60\n')
  })
})

describe('console line', () => {
  it('is one compact line', () => {
    const [m] = byChannel('slack', { decisions: [verified, resolved], hosts: HOSTS })
    expect(toConsoleLine(m!)).toBe(
      '2026-11-23 10:05:00 UTC ansai critical  RESOLVED disk-pressure /var on web-1 — fixed by disk-cleanup (incident inc-disk)',
    )
  })
})
