/**
 * Notifications end to end through the real CLI: `ansai run --once` (collector, engine, SQLite store and outbox,
 * the backup-retry executor, the SMTP and webhook notifiers) against a real SMTP server and a real HTTP receiver in
 * the test process, on 127.0.0.1. The receiver verifies every Standard Webhooks signature with the
 * `standardwebhooks` package; the channel secrets come from the environment (`env:` in the config).
 *
 * Two real problems, no root needed:
 * - a stale backup (the newest artifact of job `nightly` is 40 hours old): the shipped baseline policy
 *   `backup-stale` runs `backup-retry`, which runs the job's configured command (`tar -czf …`, an argv, no shell);
 *   the re-collection in the same run sees the fresh archive (integrity-tested with `tar -tf`) and resolves it;
 * - a custom metric above its limit (a policy written by the test, alert only), which the test itself brings back
 *   to normal before a later run.
 *
 * Proves: the email carries a readable report of the fix (what ran, its result and evidence, the values that
 * triggered it), the webhook carries the same message with valid webhook-id/timestamp/signature headers; one message
 * per incident step per channel (opened with its fix, then RESOLVED), never resent by later runs; a RESOLVED message
 * when the problem goes away by itself; a receiver that answers 500 once is served by the notifier's own retry in the
 * same run; and a receiver that is down for a whole run gets the message from the outbox in a later run, once.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SqliteStore } from '../../agent/store/sqlite.ts'
import type { NotificationV1 } from '../../shared/contracts/index.ts'
import { runOnce } from '../support/ansai-cli.ts'
import {
  type Mail,
  mailBody,
  mailHeader,
  newWebhookSecret,
  type SmtpSink,
  startSmtpSink,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../support/notify-receivers.ts'
import { requireOrSkip } from '../support/require.ts'

const HOUR = 3600
const hasTar = spawnSync('tar', ['--version'], { encoding: 'utf8' }).status === 0

const SMTP_USER = 'ansai'
const SMTP_PASS = 'e2e correct horse battery staple'

describe.runIf(requireOrSkip('tar', hasTar, 'tar not found: apt-get install tar'))(
  'ansai run --once: email and signed webhooks, once per incident step',
  () => {
    const base = mkdtempSync(join(tmpdir(), 'ansai-e2e-notify-'))
    const source = join(base, 'app-data')
    const backups = join(base, 'backups')
    const metrics = join(base, 'metrics')
    const policies = join(base, 'policies')
    const stateDir = join(base, 'state')
    const config = join(base, 'config.yaml')
    const secret = newWebhookSecret()
    const env = { ANSAI_E2E_SMTP_PASS: SMTP_PASS, ANSAI_E2E_WEBHOOK_SECRET: secret }
    let smtp: SmtpSink
    let hooks: WebhookReceiver

    const setMetric = (name: string, value: number) => writeFileSync(join(metrics, `${name}.value`), `${value}\n`)
    const subjects = (mails: readonly Mail[]) => mails.map((m) => mailHeader(m.raw, 'Subject'))
    /** The email and the webhook message of one incident event. */
    const pair = (incidentId: string, event: string, mails: readonly Mail[], messages: readonly NotificationV1[]) => {
      const hook = messages.filter((m) => m.incidentId === incidentId && m.event === event)
      const mail = mails.filter(
        (m) => mailHeader(m.raw, 'X-ANSAI-Incident') === incidentId && mailHeader(m.raw, 'X-ANSAI-Event') === event,
      )
      expect(hook, `${incidentId} ${event}: one webhook`).toHaveLength(1)
      expect(mail, `${incidentId} ${event}: one email`).toHaveLength(1)
      const text = mailBody(mail[0]!.raw)
      // The same message on both channels: subject and text as built once.
      expect(mailHeader(mail[0]!.raw, 'Subject')).toBe(hook[0]!.subject)
      // Each channel's message has its own id, named in the text: the rest is the same.
      expect(text.trim()).toBe(
        hook[0]!.text.replaceAll(hook[0]!.id, mailHeader(mail[0]!.raw, 'X-ANSAI-Message')!).trim(),
      )
      return { hook: hook[0]!, mail: mail[0]!, text }
    }

    beforeAll(async () => {
      for (const d of [source, backups, metrics, policies]) mkdirSync(d)
      for (let i = 0; i < 5; i++) writeFileSync(join(source, `record-${i}.csv`), `id,value\n${i},${i * 7}\n`)
      // Yesterday's backup did not run: the newest archive is 40 hours old (and intact).
      const old = join(backups, 'app-old.tar.gz')
      const made = spawnSync('tar', ['-czf', old, '-C', source, '.'], { encoding: 'utf8' })
      if (made.status !== 0) throw new Error(`tar: ${made.stderr}`)
      const then = Date.now() / 1000 - 40 * HOUR
      utimesSync(old, then, then)
      setMetric('queue_depth', 5000)

      smtp = await startSmtpSink({ user: SMTP_USER, pass: SMTP_PASS })
      hooks = await startWebhookReceiver(secret)

      writeFileSync(
        join(policies, 'metrics.yaml'),
        `apiVersion: ansai/v1
kind: Policy
metadata: { name: metric-too-high, description: Tell people when a custom metric passes 1000 (alert only). }
spec:
  observe: custom
  severity:
    critical: { when: "value > 1000.0" }
`,
      )
      writeFileSync(
        config,
        `host: { id: e2e-notify }
policies:
  builtin: true # backup-stale comes from the baseline pack
  paths: [${policies}]
probes:
  services: { units: [], failedAny: false }
  filesystems: { enabled: false }
  memory: { enabled: false }
  certificates: { files: [] }
  backups:
    - { job: nightly, dir: ${backups}, pattern: "app-*.tar.gz", integrity: tar, settleSeconds: 0 }
  cron: { enabled: false }
  packages: { enabled: false }
  containers: { enabled: false }
  custom: { dir: ${metrics} }
notifications:
  channels:
    ops-email:
      type: email
      host: 127.0.0.1
      port: ${smtp.port}
      starttls: never
      auth: { user: ${SMTP_USER}, pass: env:ANSAI_E2E_SMTP_PASS }
      from: ANSAI <ansai@e2e.example>
      to: [ops@e2e.example]
      timeoutMs: 10000
    hooks: { type: webhook, url: "${hooks.url}", secret: env:ANSAI_E2E_WEBHOOK_SECRET, timeoutMs: 10000, maxAttempts: 2 }
  default: [ops-email, hooks]
remediation:
  backupCommands:
    nightly: [tar, -czf, ${join(backups, 'app-retry.tar.gz')}, -C, ${source}, .]
state: { dir: ${stateDir} }
`,
      )
    })

    afterAll(async () => {
      await smtp?.close()
      await hooks?.close()
      rmSync(base, { recursive: true, force: true })
    })

    let backupIncident = ''
    let metricIncident = ''

    it('run 1: backup-retry fixes the stale backup; email and signed webhook report it, once per step', async () => {
      hooks.failNext(1) // the receiver's first answer is a 500: the notifier tries again at once
      const run = await runOnce(config, env)

      expect(run.fixes).toEqual([
        expect.objectContaining({ remediation: 'backup-retry', resource: 'nightly', status: 'succeeded' }),
      ])
      const tarList = spawnSync('tar', ['-tzf', join(backups, 'app-retry.tar.gz')], { encoding: 'utf8' })
      expect(tarList.stdout).toContain('./record-4.csv')
      expect(run.incidents.map((i) => [i.policy, i.resource, i.status, i.severity]).sort()).toEqual([
        ['backup-stale', 'nightly', 'resolved', 'critical'],
        ['metric-too-high', 'queue_depth', 'open', 'critical'],
      ])
      backupIncident = run.incidents.find((i) => i.policy === 'backup-stale')!.id
      metricIncident = run.incidents.find((i) => i.policy === 'metric-too-high')!.id
      expect(run.notifications).toEqual({ sent: 6, failed: 0 })
      expect(smtp.authFailures).toBe(0)

      // Webhooks: the 500, its retry with the same webhook-id, then the rest; every signature valid.
      expect(hooks.requests.map((r) => r.status)).toEqual([500, 200, 200, 200])
      expect(hooks.requests[0]!.headers['webhook-id']).toBe(hooks.requests[1]!.headers['webhook-id'])
      const messages = hooks.accepted()
      expect(new Set(messages.map((m) => m.id)).size).toBe(3)
      for (const r of hooks.requests.slice(1)) {
        expect(r.headers['webhook-id']).toBe(r.message!.id)
        expect(String(r.headers['webhook-timestamp'])).toMatch(/^\d{10}$/)
        expect(String(r.headers['webhook-signature'])).toMatch(/^v1,[A-Za-z0-9+/]+=*$/)
      }

      // Email: three, From/To as configured, the same three messages.
      expect(smtp.mails).toHaveLength(3)
      for (const m of smtp.mails) {
        expect(m.from).toBe('ansai@e2e.example')
        expect(m.to).toEqual(['ops@e2e.example'])
      }
      const hostname = String(messages[0]!.evidence.hostname)
      expect(subjects(smtp.mails).sort()).toEqual(
        [
          `[ANSAI] CRITICAL backup-stale nightly on ${hostname} — running backup-retry`,
          `[ANSAI] CRITICAL metric-too-high queue_depth on ${hostname} — value=5000`,
          `[ANSAI] RESOLVED backup-stale nightly on ${hostname} — fixed by backup-retry`,
        ].sort(),
      )

      // The stale backup: opened with its fix in one message, then RESOLVED; both carry the fix's report.
      const opened = pair(backupIncident, 'ansai.fix.started.v1', smtp.mails, messages)
      expect(opened.hook.evidence.events).toEqual(['ansai.incident.opened.v1', 'ansai.fix.started.v1'])
      expect(opened.text).toMatch(/^- Values that triggered it: ageHours=40(\.\d+)?, integrityFailed=false$/m)
      expect(opened.text).toMatch(/^Fix: backup-retry — succeeded in /m)
      expect(opened.text).toMatch(/^ {2}backup job 'nightly' ran again \(\d+(\.\d)? s\)$/m)
      expect(opened.text).toMatch(/^ {2}Evidence: argv=\["tar","-czf",.*, exitCode=0, timedOut=false, /m)
      expect(opened.text).toContain('- Parameters: {"job":"nightly","timeoutSeconds":3600}')
      expect(opened.hook.evidence.results).toEqual([
        expect.objectContaining({ remediation: 'backup-retry', status: 'succeeded', dryRun: false }),
      ])
      const resolved = pair(backupIncident, 'ansai.incident.resolved.v1', smtp.mails, messages)
      expect(resolved.hook.evidence.events).toEqual(['ansai.fix.verified.v1', 'ansai.incident.resolved.v1'])
      expect(resolved.text).toContain('Severity: critical (now resolved)')
      expect(resolved.text).toMatch(/^- Values now: ageHours=0(\.\d+)?, integrityFailed=false$/m)
      expect(resolved.text).toMatch(/^ {4}backup-retry: verified — backup job 'nightly' ran again/m)
      expect(resolved.text).toMatch(/^Fix: backup-retry — succeeded in /m)
      // Opened before resolved, on both channels.
      const order = (list: string[]) => [list.indexOf(opened.hook.id), list.indexOf(resolved.hook.id)]
      const [o, r] = order(messages.map((m) => m.id))
      expect(o).toBeLessThan(r!)
      const mailIds = smtp.mails.map((m) => mailHeader(m.raw, 'X-ANSAI-Incident') + mailHeader(m.raw, 'X-ANSAI-Event')!)
      expect(mailIds.indexOf(`${backupIncident}ansai.fix.started.v1`)).toBeLessThan(
        mailIds.indexOf(`${backupIncident}ansai.incident.resolved.v1`),
      )

      // The metric: opened, alert only.
      const metric = pair(metricIncident, 'ansai.incident.opened.v1', smtp.mails, messages)
      expect(metric.hook.severity).toBe('critical')
      expect(metric.text).toContain('- Values that triggered it: value=5000')
    })

    it('run 2: nothing new, nothing resent', async () => {
      const mails = smtp.mails.length
      const requests = hooks.requests.length
      const run = await runOnce(config, env)
      expect(run.problems).toEqual([{ policy: 'metric-too-high', resource: 'queue_depth', level: 'critical' }])
      expect(run.fixes).toEqual([])
      expect(run.incidents).toEqual([])
      expect(run.notifications).toEqual({ sent: 0, failed: 0 })
      expect(smtp.mails).toHaveLength(mails)
      expect(hooks.requests).toHaveLength(requests)
    })

    it('the problem goes away: one RESOLVED message per channel, then silence', async () => {
      const mails = smtp.mails.length
      const requests = hooks.requests.length
      setMetric('queue_depth', 12)
      const run = await runOnce(config, env)
      expect(run.problems).toEqual([])
      expect(run.incidents).toEqual([expect.objectContaining({ id: metricIncident, status: 'resolved' })])
      expect(run.notifications).toEqual({ sent: 2, failed: 0 })
      const newMails = smtp.mails.slice(mails)
      const newMessages = hooks.requests.slice(requests).map((r) => r.message!)
      expect(hooks.requests.slice(requests).map((r) => r.status)).toEqual([200])
      const resolved = pair(metricIncident, 'ansai.incident.resolved.v1', newMails, newMessages)
      expect(resolved.hook.subject).toBe(
        `[ANSAI] RESOLVED metric-too-high queue_depth on ${String(resolved.hook.evidence.hostname)} — healthy again`,
      )
      expect(resolved.text).toContain('- Values now: value=12')

      const again = await runOnce(config, env)
      expect(again.notifications).toEqual({ sent: 0, failed: 0 })
      expect(smtp.mails).toHaveLength(mails + 1)
      expect(hooks.requests).toHaveLength(requests + 1)
    })

    it('a receiver down for a whole run gets the message from the outbox on a later run, once', async () => {
      const mails = smtp.mails.length
      const requests = hooks.requests.length
      setMetric('jobs_waiting', 4000)
      hooks.failNext(2) // both of the notifier's attempts in this run get a 500
      const down = await runOnce(config, env)
      expect(down.notifications).toEqual({ sent: 1, failed: 1 })
      expect(down.cli.err).toMatch(/notification m-[0-9a-f]+ to hooks failed: /)
      expect(smtp.mails).toHaveLength(mails + 1) // the email channel is not held up
      const failed = hooks.requests.slice(requests)
      expect(failed.map((r) => r.status)).toEqual([500, 500])
      const id = String(failed[0]!.headers['webhook-id'])
      expect(failed[1]!.headers['webhook-id']).toBe(id)

      const db = join(stateDir, 'state.db')
      const pending = await withStore(db, (s) => s.getNotification(id))
      expect(pending).toMatchObject({ status: 'pending', attempts: 1 })
      expect(pending!.message.subject).toMatch(/^\[ANSAI\] CRITICAL metric-too-high jobs_waiting on /)
      const retryAt = Date.parse(pending!.retryAt!)
      expect(retryAt - Date.parse(pending!.lastAttemptAt!)).toBe(60_000) // the outbox's first backoff

      // Before the backoff is over, a run leaves it alone. (Only a machine slower than the backoff itself could
      // reach the due time here: then that run is the later one that delivers it.)
      let later = await runOnce(config, env)
      if (Date.now() < retryAt) {
        expect(later.notifications).toEqual({ sent: 0, failed: 0 })
        expect(hooks.requests).toHaveLength(requests + 2)

        // The outbox's first retry comes 60 s later; rather than wait, the test moves that due time to now.
        const sql = new DatabaseSync(db)
        try {
          const now = Date.now() - 1000
          const moved = sql
            .prepare("UPDATE outbox SET retry_at = ?, retry_at_iso = ? WHERE id = ? AND status = 'pending'")
            .run(now, new Date(now).toISOString(), id)
          expect(moved.changes).toBe(1)
        } finally {
          sql.close()
        }
        later = await runOnce(config, env)
      } else console.warn('the run after the failed delivery came after the 60 s backoff: it is the later run')
      expect(later.notifications).toEqual({ sent: 1, failed: 0 })
      const delivered = hooks.requests.slice(requests + 2)
      expect(delivered.map((r) => [r.status, r.headers['webhook-id']])).toEqual([[200, id]])
      expect(delivered[0]!.message!.subject).toBe(pending!.message.subject)
      expect(await withStore(db, (s) => s.getNotification(id))).toMatchObject({ status: 'sent' })
      expect(smtp.mails).toHaveLength(mails + 1) // the email was not sent again

      const after = await runOnce(config, env)
      expect(after.notifications).toEqual({ sent: 0, failed: 0 })
      expect(hooks.requests).toHaveLength(requests + 3)
    })
  },
)

async function withStore<T>(path: string, f: (s: SqliteStore) => Promise<T>): Promise<T> {
  const store = SqliteStore.open(path)
  try {
    return await f(store)
  } finally {
    store.close()
  }
}
