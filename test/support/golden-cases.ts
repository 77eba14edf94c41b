/**
 * Writes the inputs of the golden cases: test/golden/cases/<NN-name>/{policy.yaml, timeline.jsonl, options.json}.
 * The expected.json files are written by the golden test itself (UPDATE_GOLDEN=1 npx vitest run test/golden) and
 * must be read and checked by hand. Run: npx tsx test/support/golden-cases.ts [name-filter]
 *
 * Every case says in its policy.yaml header what it checks and what the engine must decide, so a reviewer can hold
 * expected.json against it.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  backup,
  cert,
  container,
  cron,
  custom,
  database,
  dns,
  fs,
  fsBytes,
  GiB,
  host,
  MiB,
  memory,
  packages,
  procMem,
  service,
  TimelineBuilder,
} from './golden-timeline.ts'

interface GoldenCase {
  name: string
  /** What the case checks and what the engine must decide (written as the policy file's header). */
  about: string
  policy: string
  start: string
  build: (b: TimelineBuilder) => void
  options?: { fixOutcome?: 'failed' | 'succeeded'; dryRun?: boolean }
  /** Where expected.json records engine behaviour that is suspected wrong (a reviewer must not take it as intended). */
  note?: string
}

const WEB = host('web-1', { role: 'web', env: 'prod' })
const START = '2026-11-23T00:00:00Z'

const DISK_TIERS = `apiVersion: ansai/v1
kind: Policy
metadata: { name: disk-tiers }
spec:
  observe: filesystem
  severity:
    warning: { when: "usedPercent >= 80" }
    critical: { when: "usedPercent >= 90" }
    emergency: { when: "usedPercent >= 95" }
  notify: [ops]
`

const APP_RESTART = (extra = '') => `apiVersion: ansai/v1
kind: Policy
metadata: { name: app-down }
spec:
  observe: service
  match: { unit: app.service }
  severity:
    critical: { when: "activeState == 'failed'" }
  remediate:
    - run: service-restart
      params: { unit: app.service }
    - escalate: page
${extra}  notify: [ops]
`

const DISK_CLEANUP = (extra = '') => `apiVersion: ansai/v1
kind: Policy
metadata: { name: var-disk }
spec:
  observe: filesystem
  match: { mount: /var }
  severity:
    warning: { when: "usedPercent >= 80" }
    critical: { when: "usedPercent >= 90" }
  remediate:
    - at: critical
      run: disk-cleanup
      params: { roots: [/var/log], logsOlderThan: 30d }
    - escalate: page
  allowDestructive: true
${extra}`

const CERT_EXPIRY = `apiVersion: ansai/v1
kind: Policy
metadata: { name: certificate-expiry }
spec:
  observe: certificate
  milestones: { field: daysLeft, at: [30, 14, 7, 3, 1] }
  severity:
    warning: { when: "daysLeft <= 30" }
    critical: { when: "daysLeft <= 7" }
    emergency: { when: "expired" }
`

const MEMORY_LEAK = `apiVersion: ansai/v1
kind: Policy
metadata: { name: memory-leak }
spec:
  observe: process-memory
  trend: { window: 30m, minSamples: 5 }
  severity:
    warning: { when: "usedPercentOfLimit >= 90" }
    critical: { when: "minutesToOom < 60", for: 2 cycles }
  remediate:
    - at: critical
      run: memory-relief
    - escalate: page
  guards:
    limit: { max: 2, within: 6h, then: escalate }
`

const baselinePack = (): string => {
  const text = readFileSync(new URL('../../shared/policies/baseline.yaml', import.meta.url), 'utf8')
  return text.replace(/^# yaml-language-server:.*\n/, '')
}

const CASES: GoldenCase[] = [
  {
    name: '01-severity-tiers',
    about: `Each severity tier on its own resource. /a at 85 % opens a warning, /b at 92 % a critical, /c at 97 % an
emergency; /d at 50 % opens nothing. A minute later all are at 50 %: three resolved events. No ladder, no fixes.`,
    policy: DISK_TIERS,
    start: START,
    build: (b) => {
      b.report(WEB, [fs('/a', 85), fs('/b', 92), fs('/c', 97), fs('/d', 50)]).advance('1m')
      b.report(WEB, [fs('/a', 50), fs('/b', 50), fs('/c', 50), fs('/d', 50)])
    },
  },
  {
    name: '02-severity-rising-worsened',
    about: `One mount rising 50 → 85 → 91 → 96 → 96 → 70 %: opened (warning), worsened (critical), worsened
(emergency), nothing while it stays, resolved (the resolved event carries the last severity, emergency).`,
    policy: DISK_TIERS,
    start: START,
    build: (b) => {
      for (const p of [50, 85, 91, 96, 96, 70]) b.report(WEB, [fs('/var', p)]).advance('1m')
    },
  },
  {
    name: '03-debounce-cycles',
    about: `'for: 3 cycles' needs three matching evaluations in a row. Failed, failed, active (streak broken), then
failed ×4: the incident opens on the third failed in a row (05:00 is the 3rd), nothing more while it stays failed,
and it resolves on the first active. No ladder.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: app-down-debounced }
spec:
  observe: service
  severity:
    critical: { when: "activeState == 'failed'", for: 3 cycles }
`,
    start: START,
    build: (b) => {
      const states = ['failed', 'failed', 'active', 'failed', 'failed', 'failed', 'failed', 'active'] as const
      for (const s of states) b.report(WEB, [service('app.service', s)]).advance('1m')
    },
  },
  {
    name: '04-debounce-times-within',
    about: `'3 times within 5 cycles' on DNS: failures at cycles 1, 3, 5 open a critical at cycle 5 (3 of the last 5);
cycle 6 resolves (2 of 5: 3,5); cycle 7 fails again (3,5,7 = 3 of 5) and opens a new incident; cycle 8 resolves.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: dns-flaky }
spec:
  observe: dns
  severity:
    critical: { when: "!resolved", for: 3 times within 5 cycles }
`,
    start: START,
    build: (b) => {
      for (const ok of [false, true, false, true, false, true, false, true]) {
        b.report(WEB, [dns('db.internal', ok)]).advance('1m')
      }
    },
  },
  {
    name: '05-incident-lifecycle',
    about: `open → fix → verified → resolved. app.service fails: opened (critical), service-restart with the policy's
params (plus the schema defaults waitActiveSeconds 30, respectRestartPolicy true), fix.started. The fix is assumed
to succeed; the next report shows the unit active: fix.verified, incident.resolved. The last report changes nothing.`,
    policy: APP_RESTART('  verify: { within: 5m }\n'),
    start: START,
    build: (b) => {
      for (const s of ['active', 'failed', 'active', 'active'] as const) {
        b.report(WEB, [service('app.service', s)]).advance('1m')
      }
    },
  },
  {
    name: '06-fix-failed-next-step-escalate',
    about: `Every fix fails (options: fixOutcome failed). 00:00 opened + step 0 (restart, wait 30 s). 00:02 its result
failed → fix.failed, and the ladder moves to step 1 (restart, wait 120 s; the 1m cooldown has passed). 00:04 that
fails too → fix.failed, then step 2 escalates to oncall. 00:06 nothing new (escalated, no page again). 00:08 the unit
is active → resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: app-down }
spec:
  observe: service
  match: { unit: app.service }
  severity:
    critical: { when: "activeState == 'failed'" }
  remediate:
    - run: service-restart
      params: { unit: app.service, waitActiveSeconds: 30 }
    - run: service-restart
      params: { unit: app.service, waitActiveSeconds: 120 }
    - escalate: oncall
  guards:
    cooldown: 1m
`,
    start: START,
    options: { fixOutcome: 'failed' },
    build: (b) => {
      for (const s of ['failed', 'failed', 'failed', 'failed', 'active'] as const) {
        b.report(WEB, [service('app.service', s)]).advance('2m')
      }
    },
  },
  {
    name: '07-unverified-fix-escalation',
    about: `The cleanup "succeeds" but /var stays at 92 %: at 00:01 the result arrives and the same report shows it
still critical → fix.failed (unverified), and the next ladder step escalates to page. 00:02, 00:03 nothing more.
00:04 /var at 60 % → resolved.`,
    policy: DISK_CLEANUP(),
    start: START,
    build: (b) => {
      for (const p of [92, 92, 92, 92, 60]) b.report(WEB, [fs('/var', p)]).advance('1m')
    },
  },
  {
    name: '08-limit-then-escalate',
    about: `limit max 2 within 2h, then escalate. The unit crashes and recovers (2 minutes later) at 00:00, 00:40,
01:20 and 02:05 (far enough apart that the default flapping guard, 4 changes within 1h, does not hold incidents
open). 00:00 and 00:40: fixed, verified, resolved. 01:20: 2 fixes in the last 2 h → no fix; escalated to oncall (the
ladder's escalation target) with the limit as reason; resolved at 01:22 when it recovers by itself. 02:05: the fix
of 00:00 is more than 2 h old, 1 fix in the window: fixed again, verified, resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: app-down }
spec:
  observe: service
  match: { unit: app.service }
  severity:
    critical: { when: "activeState == 'failed'" }
  remediate:
    - run: service-restart
      params: { unit: app.service }
    - escalate: oncall
  guards:
    limit: { max: 2, within: 2h, then: escalate }
    cooldown: 1m
`,
    start: START,
    build: (b) => {
      for (const at of ['00:00', '00:40', '01:20', '02:05']) {
        b.at(`2026-11-23T${at}:00Z`).report(WEB, [service('app.service', 'failed')])
        b.advance('2m').report(WEB, [service('app.service', 'active')])
      }
    },
  },
  {
    name: '09-limit-then-stop',
    about: `limit max 2 within 2h, then stop (no escalation step). Fixed at 00:00 and 00:40. The crash at 01:20:
fix.skipped with the limit as reason, told once although it stays failed at 01:22 and 01:24; no escalation.
Recovers at 01:26 → resolved. At 02:05 the fix of 00:00 has left the window: fixed again.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: app-down }
spec:
  observe: service
  match: { unit: app.service }
  severity:
    critical: { when: "activeState == 'failed'" }
  remediate:
    - run: service-restart
      params: { unit: app.service }
  guards:
    limit: { max: 2, within: 2h, then: stop }
    cooldown: 1m
`,
    start: START,
    build: (b) => {
      for (const at of ['00:00', '00:40']) {
        b.at(`2026-11-23T${at}:00Z`).report(WEB, [service('app.service', 'failed')])
        b.advance('2m').report(WEB, [service('app.service', 'active')])
      }
      b.at('2026-11-23T01:20:00Z')
      for (const s of ['failed', 'failed', 'failed', 'active'] as const) {
        b.report(WEB, [service('app.service', s)]).advance('2m')
      }
      b.at('2026-11-23T02:05:00Z').report(WEB, [service('app.service', 'failed')])
      b.advance('2m').report(WEB, [service('app.service', 'active')])
    },
  },
  {
    name: '10-cooldown',
    about: `cooldown 30m per resource. Fixed at 00:00, verified and resolved at 00:01. It fails again at 00:05: a new
incident opens but no fix (cooling down, a note only, no event) at 00:05 … 00:25; at 00:30 the cooldown has passed
(30 min since the last fix): fixed; 00:31 verified and resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: app-down }
spec:
  observe: service
  match: { unit: app.service }
  severity:
    critical: { when: "activeState == 'failed'" }
  remediate:
    - run: service-restart
      params: { unit: app.service }
  guards:
    cooldown: 30m
    limit: { max: 10, within: 1h }
`,
    start: START,
    build: (b) => {
      b.report(WEB, [service('app.service', 'failed')]).advance('1m')
      b.report(WEB, [service('app.service', 'active')])
      b.at('2026-11-23T00:05:00Z').repeat(6, '5m', () => b.report(WEB, [service('app.service', 'failed')]))
      b.at('2026-11-23T00:31:00Z').report(WEB, [service('app.service', 'active')])
    },
  },
  {
    name: '11-maintenance-window-tz',
    about: `Fixes only in the window '* 2-4 * * *' Europe/Berlin (CET, UTC+1 in November: 01:00–03:59 UTC); alerts
any time. 00:30Z (01:30 Berlin): opened + fix.skipped (outside the window), told once (00:45 silent). 01:00Z (02:00
Berlin; outside the window if it were read as UTC): fixed; 01:05Z verified, resolved. A new failure at 04:30Z (05:30
Berlin; inside if read as UTC): opened + fix.skipped; 05:00Z still failed, nothing new.`,
    policy: APP_RESTART(`  guards:
    window: { cron: "* 2-4 * * *", tz: Europe/Berlin }
`),
    start: '2026-11-23T00:30:00Z',
    build: (b) => {
      for (const s of ['failed', 'failed', 'failed'] as const) b.report(WEB, [service('app.service', s)]).advance('15m')
      b.at('2026-11-23T01:05:00Z').report(WEB, [service('app.service', 'active')])
      b.at('2026-11-23T04:30:00Z').report(WEB, [service('app.service', 'failed')])
      b.at('2026-11-23T05:00:00Z').report(WEB, [service('app.service', 'failed')])
    },
  },
  {
    name: '12-depends-on-parent',
    about: `app-down depends on db-down (passive). 00:00 both failed: db-down opened (no fix: passive), app-down
opened + fix.skipped (depends on db-down, which is down). 00:01 same: nothing new. 00:02 db active: db-down resolved
first (parents are evaluated first), then app-down is fixed in the same cycle. 00:03 app active: verified, resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: app-down }
spec:
  observe: service
  match: { unit: app.service }
  severity: { critical: { when: "activeState == 'failed'" } }
  remediate: [{ run: service-restart, params: { unit: app.service } }]
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
  remediate: [{ run: service-restart, params: { unit: db.service } }]
`,
    start: START,
    build: (b) => {
      const steps = [
        ['failed', 'failed'],
        ['failed', 'failed'],
        ['failed', 'active'],
        ['active', 'active'],
      ] as const
      for (const [app, db] of steps)
        b.report(WEB, [service('app.service', app), service('db.service', db)]).advance('1m')
    },
  },
  {
    name: '13-passive-mode',
    about: `mode: passive alerts and never fixes: opened (critical) and, its fix step passed over, escalated to page at
once; worsened at 96 %, resolved at 50 %. No remediate decision anywhere.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: var-disk }
spec:
  observe: filesystem
  mode: passive
  severity:
    critical: { when: "usedPercent >= 90" }
    emergency: { when: "usedPercent >= 95" }
  remediate:
    - run: disk-cleanup
      params: { roots: [/var/log], logsOlderThan: 30d }
    - escalate: page
  allowDestructive: true
`,
    start: START,
    build: (b) => {
      for (const p of [92, 92, 96, 50]) b.report(WEB, [fs('/var', p)]).advance('1m')
    },
  },
  {
    name: '14-dry-run',
    about: `Dry-run (options: dryRun): the fix is decided as usual but marked dryRun: true. Nothing ran, so nothing is
verified: the ladder holds at 00:01 (no failure, no page). Recovered at 00:02 → resolved.`,
    policy: APP_RESTART(),
    start: START,
    options: { dryRun: true },
    build: (b) => {
      for (const s of ['failed', 'failed', 'active'] as const) b.report(WEB, [service('app.service', s)]).advance('1m')
    },
  },
  {
    name: '15-certificate-milestones',
    about: `A certificate expiring 2026-12-04T06:00Z, reported daily at 06:00 for 35 days from 2026-11-01 (33 days
left). Day 3 (30 left): opened (warning) + milestone 30. Day 19 (14 left): milestone 14. Day 26 (7 left): worsened
(critical) + milestone 7. Day 30: milestone 3. Day 32: milestone 1. Day 33 the report shows a renewed certificate:
resolved. Each milestone exactly once.`,
    policy: CERT_EXPIRY,
    start: '2026-11-01T06:00:00Z',
    build: (b) => {
      b.repeat(35, '1d', (day) => {
        const notAfter = day < 33 ? '2026-12-04T06:00:00Z' : '2027-03-03T06:00:00Z'
        b.report(WEB, [cert('/etc/ssl/web.pem', notAfter)])
      })
    },
  },
  {
    name: '16-certificate-expired',
    about: `A certificate that expired two days ago: opened at emergency (expired), and one milestone notification,
the most urgent point crossed (1), with every point marked so none fires later. Daily ticks for 3 days: nothing new.
A renewed certificate → resolved.`,
    policy: CERT_EXPIRY,
    start: '2026-11-23T06:00:00Z',
    build: (b) => {
      b.report(WEB, [cert('/etc/ssl/old.pem', '2026-11-21T06:00:00Z')]).advance('1d')
      b.repeat(3, '1d', () => b.tick(WEB))
      b.report(WEB, [cert('/etc/ssl/old.pem', '2027-02-21T06:00:00Z')])
    },
  },
  {
    name: '17-backup-stale-ticks',
    about: `The baseline backup policy, driven by hourly ticks. The report at 08:00 shows the newest backup from 02:00
(6 h). Ticks re-evaluate its age: at 2026-11-24T04:00 it is exactly 26 h (not > 26), at 05:00 27 h: opened
(critical) + backup-retry with job bound from the observation (nightly) and the default timeout, fix.started. The
next report (05:30) shows a fresh artifact: verified, resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: backup-stale }
spec:
  observe: backup
  severity:
    critical: { when: "ageHours > 26 || integrityFailed" }
  remediate:
    - run: backup-retry
    - escalate: page
  guards:
    limit: { max: 1, within: 12h, then: escalate }
  verify: { within: 2h }
`,
    start: '2026-11-23T08:00:00Z',
    build: (b) => {
      b.report(WEB, [backup('nightly', '2026-11-23T02:00:00Z')]).advance('1h')
      b.repeat(21, '1h', () => b.tick(WEB))
      b.at('2026-11-24T05:30:00Z').report(WEB, [backup('nightly', '2026-11-24T05:20:00Z')])
    },
  },
  {
    name: '18-cron-heartbeat-missed',
    about: `A cron heartbeat (logrotate), last run 03:00, checked by ticks. Ticks at 09, 15, 21, 03 (24 h) and 04 (25 h,
not > 25) are fine; at 05:00 (26 h) opened (critical). 06:00 a report: it ran at 05:55 but exited 1 → level warning,
the incident stays open (no event for a lower severity). 07:00 it ran fine → resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: logrotate-heartbeat }
spec:
  observe: cron
  match: { job: logrotate }
  severity:
    warning: { when: "failed" }
    critical: { when: "hoursSinceRun > 25" }
`,
    start: '2026-11-23T03:00:00Z',
    build: (b) => {
      b.report(WEB, [cron('logrotate', '2026-11-23T03:00:00Z')])
      for (const t of [
        '2026-11-23T09',
        '2026-11-23T15',
        '2026-11-23T21',
        '2026-11-24T03',
        '2026-11-24T04',
        '2026-11-24T05',
      ]) {
        b.at(`${t}:00:00Z`).tick(WEB)
      }
      b.at('2026-11-24T06:00:00Z').report(WEB, [cron('logrotate', '2026-11-24T05:55:00Z', 1)])
      b.at('2026-11-24T07:00:00Z').report(WEB, [cron('logrotate', '2026-11-24T06:55:00Z', 0)])
    },
  },
  {
    name: '19-trend-disk-hours-to-full',
    about: `/data (100 GiB) grows 2 GiB every 10 minutes from 60 %: 12 GiB/h. From the 4th sample (00:30, 66 %, 34 GiB
free → 2.8 h) hoursToFull < 6 holds; 'for: 2 cycles' makes it critical at 00:40 (68 %): opened (critical) + cleanup,
long before the 90 % threshold. 00:50 the cleanup brought it to 50 %: the fit turns negative, verified, resolved. It
stays flat: nothing more.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: data-disk }
spec:
  observe: filesystem
  trend: { window: 1h, minSamples: 4 }
  severity:
    warning: { when: "usedPercent >= 80" }
    critical: { when: "usedPercent >= 90 || hoursToFull < 6", for: 2 cycles }
  remediate:
    - at: critical
      run: disk-cleanup
      params: { roots: [/data/logs], logsOlderThan: 7d }
    - escalate: page
  allowDestructive: true
`,
    start: START,
    build: (b) => {
      b.repeat(5, '10m', (i) => b.report(WEB, [fsBytes('/data', (60 + 2 * i) * GiB, 100 * GiB)]))
      b.repeat(6, '10m', () => b.report(WEB, [fsBytes('/data', 50 * GiB, 100 * GiB)]))
    },
  },
  {
    name: '20-memory-leak-relief',
    about: `app.service leaks 10 MiB a minute from 300 MiB towards its 1 GiB limit (reports every minute). From 00:13
(430 MiB, 594 MiB left → 59.4 min) minutesToOom < 60; 'for: 2 cycles' makes it critical at 00:14 at 43 % of the
limit, far below the 90 % warning: opened (critical) + memory-relief with unit bound from the observation. 00:15
the restart brought it to 200 MiB: verified, resolved; it stays flat for 20 minutes and is never touched again.`,
    policy: MEMORY_LEAK,
    start: START,
    build: (b) => {
      b.repeat(15, '1m', (i) => b.report(WEB, [procMem('app.service', (300 + 10 * i) * MiB, 1024 * MiB)]))
      b.repeat(20, '1m', () => b.report(WEB, [procMem('app.service', 200 * MiB, 1024 * MiB)]))
    },
  },
  {
    name: '21-memory-flat',
    about: `Two hours of a flat service (500 MiB ± 2 MiB noise) and a slowly growing one (+0.1 MiB a minute, days from
its limit) under the memory-leak policy: no incident, no fix, no event at all.`,
    policy: MEMORY_LEAK,
    start: START,
    build: (b) => {
      b.repeat(120, '1m', (i) =>
        b.report(WEB, [
          procMem('app.service', (500 + ((i * 7) % 5) - 2) * MiB, 1024 * MiB),
          procMem('slow.service', Math.round((300 + 0.1 * i) * MiB), 1024 * MiB),
        ]),
      )
    },
  },
  {
    name: '22-flapping-damped',
    about: `flapping: 4 changes within 1h, stable for 3. The unit alternates failed/active every 2 minutes. Opened
00:00, resolved 00:02, opened 00:04, resolved 00:06 (4 changes), so the incident opened at 00:08 is flagged
flapping and held open: the active at 00:10 does not resolve it, the failure at 00:12 opens nothing new; it resolves
only after 3 healthy cycles in a row (00:14, 00:16, 00:18 → resolved at 00:18).`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: flappy }
spec:
  observe: service
  match: { unit: app.service }
  severity: { critical: { when: "activeState == 'failed'" } }
  guards: { flapping: { changes: 4, within: 1h, stableFor: 3 } }
`,
    start: START,
    build: (b) => {
      const states = [
        'failed',
        'active',
        'failed',
        'active',
        'failed',
        'active',
        'failed',
        'active',
        'active',
        'active',
      ]
      for (const s of states) b.report(WEB, [service('app.service', s as 'failed' | 'active')]).advance('2m')
    },
  },
  {
    name: '23-flapping-with-fix',
    about: `Flapping with a one-step ladder. Incidents at 00:00 and 00:04 are fixed, verified and resolved. The third
(00:08) is flagged flapping and fixed (2 fixes in the last hour, the default limit is 3); at 00:10 verified but held
open; at 00:12 it fails again: the ladder has no step left and no escalation, so the incident is failed. It resolves
after 3 healthy cycles (00:14, 00:16, 00:18).`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: flappy }
spec:
  observe: service
  match: { unit: app.service }
  severity: { critical: { when: "activeState == 'failed'" } }
  remediate: [{ run: service-restart, params: { unit: app.service } }]
  guards: { flapping: { changes: 4, within: 1h, stableFor: 3 }, cooldown: 1m }
`,
    start: START,
    build: (b) => {
      const states = [
        'failed',
        'active',
        'failed',
        'active',
        'failed',
        'active',
        'failed',
        'active',
        'active',
        'active',
      ]
      for (const s of states) b.report(WEB, [service('app.service', s as 'failed' | 'active')]).advance('2m')
    },
  },
  {
    name: '24-host-silent-and-back',
    about: `The host reports at 00:00 and 00:01, then only ticks come. Tick 00:05 (4 min silent): ok. 00:08 (7 min):
opened (warning). 00:12 (11): nothing new. 00:17 (16): worsened (critical). A report at 00:20: resolved. Tick 00:22
(2 min): ok.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: host-silent }
spec:
  observe: host
  severity:
    warning: { when: "silentMinutes > 5" }
    critical: { when: "silentMinutes > 15" }
`,
    start: START,
    build: (b) => {
      b.report(WEB, [fs('/', 40)]).advance('1m')
      b.report(WEB, [fs('/', 40)])
      for (const m of ['05', '08', '12', '17']) b.at(`2026-11-23T00:${m}:00Z`).tick(WEB)
      b.at('2026-11-23T00:20:00Z').report(WEB, [fs('/', 40)])
      b.at('2026-11-23T00:22:00Z').tick(WEB)
    },
  },
  {
    name: '25-duplicate-out-of-order',
    about: `At-least-once delivery. seq 1 (50 %), seq 2 (92 %: warning, critical needs 2 cycles) opens a warning.
seq 2 again (same report) and seq 1 again (old): nothing, and they do not count as cycles. seq 3 (92 %) is the second
critical cycle: worsened + cleanup. seq 3 again with different content (99 %): nothing. seq 4 (60 %): verified,
resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: var-disk }
spec:
  observe: filesystem
  match: { mount: /var }
  severity:
    warning: { when: "usedPercent >= 80" }
    critical: { when: "usedPercent >= 90", for: 2 cycles }
  remediate:
    - at: critical
      run: disk-cleanup
      params: { roots: [/var/log], logsOlderThan: 30d }
  allowDestructive: true
`,
    start: START,
    build: (b) => {
      b.report(WEB, [fs('/var', 50)], { seq: 1 }).advance('1m')
      const t2 = b.iso()
      b.report(WEB, [fs('/var', 92)], { seq: 2 }).advance('30s')
      b.report(WEB, [fs('/var', 92)], { seq: 2, time: t2 })
      b.report(WEB, [fs('/var', 50)], { seq: 1, time: '2026-11-23T00:00:00.000Z' }).advance('30s')
      const t3 = b.iso()
      b.report(WEB, [fs('/var', 92)], { seq: 3 }).advance('30s')
      b.report(WEB, [fs('/var', 99)], { seq: 3, time: t3 }).advance('30s')
      b.report(WEB, [fs('/var', 60)], { seq: 4 })
    },
  },
  {
    name: '26-targets-by-tag',
    about: `Targets. db-prod-disk targets tags role=db AND env=prod: only db-1 (db, prod) — not db-2 (db, staging) and
not web-1. web-only-disk targets the host id web-1. All three hosts report /var at 95 %: exactly two incidents,
db-prod-disk on db-1 and web-only-disk on web-1; nothing for db-2.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: db-prod-disk }
spec:
  targets: { tags: { role: [db], env: [prod] } }
  observe: filesystem
  severity: { critical: { when: "usedPercent >= 90" } }
---
apiVersion: ansai/v1
kind: Policy
metadata: { name: web-only-disk }
spec:
  targets: { hosts: [web-1] }
  observe: filesystem
  severity: { critical: { when: "usedPercent >= 90" } }
`,
    start: START,
    build: (b) => {
      b.report(host('db-1', { role: 'db', env: 'prod' }), [fs('/var', 95)]).advance('10s')
      b.report(host('db-2', { role: 'db', env: 'staging' }), [fs('/var', 95)]).advance('10s')
      b.report(WEB, [fs('/var', 95)])
    },
  },
  {
    name: '27-multi-host-interleaved',
    about: `Three hosts interleaved, each with its own state. 00:00 h1 app failed → opened + restart; h3 nginx failed →
opened + restart. 00:01 h1 active → verified, resolved; h2 app failed → opened + restart; h3 still failed →
fix.failed (unverified) → escalated (page). 00:01:30 a tick for h2 changes nothing. 00:02 h2 active → verified,
resolved; h3 active → resolved. Keys differ between hosts.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: service-failed }
spec:
  observe: service
  severity:
    critical: { when: "activeState == 'failed'" }
  remediate:
    - run: service-restart
    - escalate: page
`,
    start: START,
    build: (b) => {
      const h1 = host('h1', { role: 'web' })
      const h2 = host('h2', { role: 'web' })
      const h3 = host('h3', { role: 'lb' })
      const rounds = [
        ['failed', 'active', 'failed'],
        ['active', 'failed', 'failed'],
        ['active', 'active', 'active'],
      ] as const
      rounds.forEach(([a, c, n], i) => {
        b.at(`2026-11-23T00:0${i}:00Z`).report(h1, [service('app.service', a)])
        b.advance('10s').report(h2, [service('app.service', c)])
        b.advance('10s').report(h3, [service('nginx.service', n)])
        if (i === 1) b.at('2026-11-23T00:01:30Z').tick(h2)
      })
    },
  },
  {
    name: '28-match-glob',
    about: `match { unit: "app-*.service" }: app-api.service and app-web.service (failed) are fixed, with unit bound
from each observation; apps.service and other.service (also failed) are not matched: no finding, no event.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: app-units }
spec:
  observe: service
  match: { unit: "app-*.service" }
  severity:
    critical: { when: "activeState == 'failed'" }
  remediate:
    - run: service-restart
`,
    start: START,
    build: (b) => {
      b.report(WEB, [
        service('app-api.service', 'failed'),
        service('apps.service', 'failed'),
        service('app-web.service', 'failed'),
        service('other.service', 'failed'),
      ])
    },
  },
  {
    name: '29-self-healing-restart-policy',
    about: `The baseline service-failed policy leaves units with Restart= to systemd until their start limit.
00:00 worker.service (Restart=on-failure) failed: selfHealing, nothing. legacy.service (Restart=no) failed: opened +
restart at once. 00:01 worker still failed, still self-healing: nothing; legacy active: verified, resolved. 00:02
worker failed with startLimitHit: opened + restart (unit bound). 00:03 worker active: verified, resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: service-failed }
spec:
  observe: service
  severity:
    critical: { when: "activeState == 'failed' && !selfHealing" }
  remediate:
    - run: service-restart
    - escalate: page
  guards:
    limit: { max: 3, within: 1h, then: escalate }
  verify: { within: 2m }
`,
    start: START,
    build: (b) => {
      const worker = (s: 'failed' | 'active', startLimitHit = false) =>
        service('worker.service', s, { restartPolicy: 'on-failure', ...(startLimitHit ? { startLimitHit } : {}) })
      const legacy = (s: 'failed' | 'active') => service('legacy.service', s, { restartPolicy: 'no' })
      b.report(WEB, [worker('failed'), legacy('failed')]).advance('1m')
      b.report(WEB, [worker('failed'), legacy('active')]).advance('1m')
      b.report(WEB, [worker('failed', true), legacy('active')]).advance('1m')
      b.report(WEB, [worker('active'), legacy('active')])
    },
  },
  {
    name: '30-bind-unit',
    about: `service-restart with params that leave out unit: the unit is bound from each observation and validated.
nginx.service and worker@2.service get a restart with unit bound plus the given waitActiveSeconds 60 (and the default
respectRestartPolicy). 'bad unit.service' is not a valid unit name: opened + fix.skipped with the reason, no fix.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: any-failed }
spec:
  observe: service
  severity: { critical: { when: "activeState == 'failed'" } }
  remediate:
    - run: service-restart
      params: { waitActiveSeconds: 60 }
`,
    start: START,
    build: (b) => {
      b.report(WEB, [
        service('nginx.service', 'failed'),
        service('bad unit.service', 'failed'),
        service('worker@2.service', 'failed'),
      ])
    },
  },
  {
    name: '31-baseline-pack',
    about: `The baseline pack (shared/policies/baseline.yaml) on a host with several problems at once, reports every
minute. 00:00: /var at 96 % (disk-pressure: emergency at once, critical needs 2 cycles) → opened (emergency) +
disk-cleanup with the pack's params; the certificate has 10 days left → certificate-expiry opened (warning) + one
milestone (14: the most urgent point crossed); certificate-renewal opened (critical) + certificate-renew (certPath
bound from the observation); nginx (Restart=no) failed → opened + service-restart (unit bound); the nightly backup
is 30 h old → opened + backup-retry (job bound). app.service (Restart=on-failure) failed is left to systemd.
00:01: /var at 60 %, renewed certificate and fresh backup → those fixes verified and incidents resolved (both
certificate policies resolve); nginx still failed → fix.failed (unverified) + escalated (page). 00:02: nginx
active → resolved; nothing else.`,
    policy: baselinePack(),
    start: START,
    build: (b) => {
      const base = (varPct: number, notAfter: string, backupAt: string, nginx: 'failed' | 'active') => [
        fs('/', 40),
        fs('/var', varPct),
        memory(8, 50),
        service('nginx.service', nginx, { restartPolicy: 'no' }),
        service('app.service', 'failed', { restartPolicy: 'on-failure' }),
        procMem('app.service', 300 * MiB, 1024 * MiB),
        cert('/etc/ssl/web.pem', notAfter),
        backup('nightly', backupAt),
      ]
      b.report(WEB, base(96, '2026-12-03T00:00:00Z', '2026-11-21T18:00:00Z', 'failed')).advance('1m')
      b.report(WEB, base(60, '2027-02-21T00:00:00Z', '2026-11-23T00:00:30Z', 'failed')).advance('1m')
      b.report(WEB, base(60, '2027-02-21T00:00:00Z', '2026-11-23T00:00:30Z', 'active'))
    },
  },
  {
    name: '32-expression-error-on-missing-field',
    about: `Expressions over optional fields that are absent. warning 'bloatRatio > 0.3' cannot be evaluated without
bloatRatio: no match (a note, no error). critical '!reachable || replicationLagSeconds > 60.0': while reachable the
right side errors → no match; when unreachable CEL's commutative || is true despite the error → opened (critical).
Then reachable with bloatRatio 0.5 → level warning (the incident stays open, no event); bloatRatio 0.1 → resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: pg-health }
spec:
  observe: database
  severity:
    warning: { when: "bloatRatio > 0.3" }
    critical: { when: "!reachable || replicationLagSeconds > 60.0" }
`,
    start: START,
    build: (b) => {
      b.report(WEB, [database('main')]).advance('1m')
      b.report(WEB, [database('main', { reachable: false, error: 'connection refused' })]).advance('1m')
      b.report(WEB, [database('main', { bloatRatio: 0.5 })]).advance('1m')
      b.report(WEB, [database('main', { bloatRatio: 0.1 })])
    },
  },
  {
    name: '33-verify-deadline-on-ticks',
    about: `A fix that no observation confirms in time. 00:00 /var at 92 % → cleanup (verify within 5m). Then only
ticks: 00:01 the result arrives (verifying), 00:03 nothing, 00:06 the deadline (00:05) has passed → escalated to page
with the reason. 00:10 a report at 60 % → resolved.`,
    policy: DISK_CLEANUP('  verify: { within: 5m }\n'),
    start: START,
    build: (b) => {
      b.report(WEB, [fs('/var', 92)])
      for (const m of ['01', '03', '06']) b.at(`2026-11-23T00:${m}:00Z`).tick(WEB)
      b.at('2026-11-23T00:10:00Z').report(WEB, [fs('/var', 60)])
    },
  },
  {
    name: '34-ladder-by-tier',
    about: `An escalation ladder by tier: cleanup logs at critical, cleanup images at emergency, then page (inherits
emergency). 00:00 91 %: opened (critical) + step 0. 00:02 93 %: unverified → fix.failed; the next steps need
emergency, so nothing more. 00:04 96 %: worsened (emergency) + step 1 (attempt 2). 00:06 96 %: unverified → fix.failed
→ escalated (page). 00:08 70 % → resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: root-disk }
spec:
  observe: filesystem
  match: { mount: / }
  severity:
    critical: { when: "usedPercent >= 90" }
    emergency: { when: "usedPercent >= 95" }
  remediate:
    - at: critical
      run: disk-cleanup
      params: { roots: [/var/log, /tmp], logsOlderThan: 30d, tempOlderThan: 7d }
    - at: emergency
      run: disk-cleanup
      params: { containerImages: unused, coreDumps: 3d }
    - escalate: page
  guards:
    limit: { max: 3, within: 1h }
    cooldown: 1m
  allowDestructive: true
`,
    start: START,
    build: (b) => {
      for (const p of [91, 93, 96, 96, 70]) b.report(WEB, [fs('/', p)]).advance('2m')
    },
  },
  {
    name: '35-verified-below-tier',
    about: `A fix is verified when the level falls below its step's tier, even if not to ok. 00:00 92 %: opened
(critical) + cleanup. 00:01 85 % (warning): fix.verified, but the incident stays open at warning (no resolved, no
escalation: the escalate step inherits critical). 00:02 70 % → resolved.`,
    policy: DISK_CLEANUP(),
    start: START,
    build: (b) => {
      for (const p of [92, 85, 70]) b.report(WEB, [fs('/var', p)]).advance('1m')
    },
  },
  {
    name: '36-ladder-exhausted-failed',
    about: `A ladder with one fix and no escalation. 00:00 opened + cleanup; 00:01 still 92 % → fix.failed (unverified)
and, with no step left, incident.failed. 00:02 nothing more. 00:03 60 % → resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: var-disk }
spec:
  observe: filesystem
  match: { mount: /var }
  severity:
    critical: { when: "usedPercent >= 90" }
  remediate:
    - run: disk-cleanup
      params: { roots: [/var/log], logsOlderThan: 30d }
  allowDestructive: true
`,
    start: START,
    build: (b) => {
      for (const p of [92, 92, 92, 60]) b.report(WEB, [fs('/var', p)]).advance('1m')
    },
  },
  {
    name: '37-container-custom-script',
    about: `A container unhealthy 'for: 3 cycles' runs an operator script (custom-script, risk from params, defaults
filled: timeoutSeconds 300). Unhealthy at 00:00, 00:01, 00:02: opened (critical) at 00:02 + custom-script. Healthy at
00:03: verified, resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: web-container }
spec:
  observe: container
  match: { name: web }
  severity:
    critical: { when: "unhealthy", for: 3 cycles }
  remediate:
    - run: custom-script
      params: { script: restart-container, args: [name=web], risk: disruptive }
`,
    start: START,
    build: (b) => {
      for (const h of ['unhealthy', 'unhealthy', 'unhealthy', 'healthy'] as const) {
        b.report(WEB, [container('web', h), container('db', 'unhealthy')]).advance('1m')
      }
    },
  },
  {
    name: '38-passive-escalate-first',
    about: `A passive policy whose ladder starts with an escalation: alerts and pages, never fixes. Queue depth 1,500
for 3 cycles → opened (warning) at 00:02. 12,000 at 00:03 and 00:04 → critical (for 2 cycles) at 00:04: worsened +
escalated to ops-lead. Back to 10 → resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: queue-backlog }
spec:
  observe: custom
  match: { name: queue_depth }
  mode: passive
  severity:
    warning: { when: "value > 1000.0", for: 3 cycles }
    critical: { when: "value > 10000.0", for: 2 cycles }
  remediate:
    - at: critical
      escalate: ops-lead
  notify: [ops]
`,
    start: START,
    build: (b) => {
      for (const v of [1500, 1500, 1500, 12000, 12000, 10]) b.report(WEB, [custom('queue_depth', v)]).advance('1m')
    },
  },
  {
    name: '39-notify-only-then-escalate',
    about: `notify-only as a ladder step: a remediate decision that changes nothing on the host. 00:00 12 security
updates → opened (critical) + notify-only with the message. 00:01 still 12: fix.failed (nothing changed) →
escalated (page). 00:02 0 pending → resolved.`,
    policy: `apiVersion: ansai/v1
kind: Policy
metadata: { name: security-updates }
spec:
  observe: packages
  severity:
    critical: { when: "security > 10 || rebootRequired" }
  remediate:
    - run: notify-only
      params: { message: "Security updates are waiting: plan a maintenance window" }
    - escalate: page
`,
    start: START,
    build: (b) => {
      for (const s of [12, 12, 0]) b.report(WEB, [packages(s, s)]).advance('1m')
    },
  },
  {
    name: '40-window-across-dst',
    about: `Window '* 2 * * *' America/New_York across the end of daylight saving time (2026-11-01). 2026-10-31
06:30Z is 02:30 EDT: fixed. After the change, 2026-11-02 06:30Z is 01:30 EST: opened + fix.skipped; 07:00Z is
02:00 EST: fixed; 07:10Z verified, resolved.`,
    policy: APP_RESTART(`  guards:
    window: { cron: "* 2 * * *", tz: America/New_York }
`),
    start: '2026-10-31T06:30:00Z',
    build: (b) => {
      b.report(WEB, [service('app.service', 'failed')]).advance('10m')
      b.report(WEB, [service('app.service', 'active')])
      b.at('2026-11-02T06:30:00Z').report(WEB, [service('app.service', 'failed')])
      b.at('2026-11-02T07:00:00Z').report(WEB, [service('app.service', 'failed')])
      b.at('2026-11-02T07:10:00Z').report(WEB, [service('app.service', 'active')])
    },
  },
]

const CASES_DIR = new URL('../golden/cases/', import.meta.url).pathname

const header = (c: GoldenCase): string =>
  `${[c.about, ...(c.note ? ['', c.note] : [])]
    .join('\n')
    .split('\n')
    .map((l) => `# ${l}`.trimEnd())
    .join('\n')}\n`

const filter = process.argv[2]
for (const c of CASES) {
  if (filter && !c.name.includes(filter)) continue
  const dir = join(CASES_DIR, c.name)
  rmSync(join(dir, 'options.json'), { force: true })
  mkdirSync(dir, { recursive: true })
  const b = new TimelineBuilder(c.start)
  c.build(b)
  writeFileSync(join(dir, 'policy.yaml'), `${header(c)}${c.policy}`)
  writeFileSync(join(dir, 'timeline.jsonl'), b.toJsonl())
  if (c.options) writeFileSync(join(dir, 'options.json'), `${JSON.stringify(c.options)}\n`)
}
console.log(
  `wrote ${filter ? CASES.filter((c) => c.name.includes(filter)).length : CASES.length} cases to ${CASES_DIR}`,
)
