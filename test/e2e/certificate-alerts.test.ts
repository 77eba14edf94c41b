/**
 * Certificates end to end through the real CLI: four certificates made with `openssl` by a throwaway CA (expired two
 * days ago, 5 days left, 20 days left, 60 days left) sit in PEM files AND are served by a real TLS server on
 * 127.0.0.1 that picks the certificate by SNI. `ansai run --once` (the real collector, the shipped baseline pack's
 * `certificate-expiry` policy, the SQLite store, the webhook notifier) runs three times against them; a webhook
 * receiver in the test process verifies every Standard Webhooks signature and counts the alerts.
 *
 * Proves: each certificate gets the severity and the milestone (alert point) the baseline promises, expired →
 * emergency at the 1-day point, 5 days → critical at 7, 20 days → warning at 30, 60 days → nothing, for files and
 * for the served endpoints alike; one message per certificate in the first run, none in the second and third runs
 * (the state persists in SQLite), although those runs still see the same problems.
 *
 * No certbot: the baseline's `certificate-renewal` policy (which would run certbot for a file with ≤ 14 days) is
 * disabled in the test's config, and every run is checked to have made no fix at all.
 * Needs `openssl`: skipped loudly without, failing under ANSAI_REQUIRE_ALL=1.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSecureContext, createServer, type SecureContext, type Server } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NotificationV1 } from '../../shared/contracts/index.ts'
import { runAnsai, runOnce } from '../support/ansai-cli.ts'
import { newWebhookSecret, startWebhookReceiver, type WebhookReceiver } from '../support/notify-receivers.ts'
import { type IssuedCertificate, issueCertificate, makeTestCa } from '../support/openssl-certs.ts'
import { requireOrSkip } from '../support/require.ts'

const DAY_MS = 86_400_000
const hasOpenssl = spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0

type Case = 'expired' | 'in5' | 'in20' | 'in60'
const NAMES: Record<Case, string> = {
  expired: 'expired.ansai.test',
  in5: 'in-5-days.ansai.test',
  in20: 'in-20-days.ansai.test',
  in60: 'in-60-days.ansai.test',
}
/** What the baseline's certificate-expiry policy must say about each (undefined: nothing). */
const EXPECTED: Record<Case, { severity: string; point: number; daysLeft: [number, number] } | undefined> = {
  expired: { severity: 'emergency', point: 1, daysLeft: [-2.01, -1.9] },
  in5: { severity: 'critical', point: 7, daysLeft: [4.9, 5] },
  in20: { severity: 'warning', point: 30, daysLeft: [19.9, 20] },
  in60: undefined,
}
const CASES = Object.keys(NAMES) as Case[]

describe.runIf(requireOrSkip('openssl', hasOpenssl, 'openssl not found: apt-get install openssl'))(
  'ansai run --once: certificate expiry alerts, once each',
  () => {
    const base = mkdtempSync(join(tmpdir(), 'ansai-e2e-certs-'))
    const certDir = join(base, 'certs')
    const config = join(base, 'config.yaml')
    const secret = newWebhookSecret()
    const env = { ANSAI_E2E_WEBHOOK_SECRET: secret }
    const certs = {} as Record<Case, IssuedCertificate>
    const sniSeen = new Set<string>()
    let tls: Server
    let port = 0
    let hooks: WebhookReceiver

    /** The resources the observations name: the file path, and `servername@127.0.0.1:port` for the endpoint. */
    const fileOf = (c: Case) => certs[c].cert
    const endpointOf = (c: Case) => `${NAMES[c]}@127.0.0.1:${port}`
    const resources = () =>
      CASES.flatMap((c) => [
        { c, resource: fileOf(c) },
        { c, resource: endpointOf(c) },
      ])

    beforeAll(async () => {
      mkdirSync(certDir)
      const ca = makeTestCa(join(base, 'ca'))
      const now = Date.now()
      certs.expired = issueCertificate(
        ca,
        NAMES.expired,
        { notBefore: new Date(now - 40 * DAY_MS), notAfter: new Date(now - 2 * DAY_MS) },
        certDir,
      )
      certs.in5 = issueCertificate(ca, NAMES.in5, { days: 5 }, certDir)
      certs.in20 = issueCertificate(ca, NAMES.in20, { days: 20 }, certDir)
      certs.in60 = issueCertificate(ca, NAMES.in60, { days: 60 }, certDir)

      // One TLS server, one certificate per SNI name (the 60-day one without SNI).
      const contexts = new Map<string, SecureContext>(
        CASES.map((c) => [NAMES[c], createSecureContext({ cert: certs[c].certPem, key: certs[c].keyPem })]),
      )
      tls = createServer(
        {
          cert: certs.in60.certPem,
          key: certs.in60.keyPem,
          SNICallback: (servername, cb) => {
            sniSeen.add(servername)
            cb(null, contexts.get(servername))
          },
        },
        (socket) => socket.end(),
      )
      tls.on('tlsClientError', () => {}) // the probe closes right after the handshake
      await new Promise<void>((resolve, reject) => {
        tls.once('error', reject)
        tls.listen(0, '127.0.0.1', () => resolve())
      })
      port = (tls.address() as AddressInfo).port
      hooks = await startWebhookReceiver(secret)

      writeFileSync(
        config,
        `host: { id: e2e-certs }
policies:
  builtin: true
  # The baseline's certificate-renewal would run certbot on a file with <= 14 days left: not in this test.
  disable: [certificate-renewal]
probes:
  services: { units: [], failedAny: false }
  filesystems: { enabled: false }
  memory: { enabled: false }
  certificates:
    files: ["${certDir}/*.pem"]
    endpoints:
${CASES.map((c) => `      - { host: 127.0.0.1, port: ${port}, servername: ${NAMES[c]} }`).join('\n')}
    timeoutMs: 10000
  cron: { enabled: false }
  packages: { enabled: false }
  containers: { enabled: false }
  custom: { enabled: false }
notifications:
  channels:
    hooks: { type: webhook, url: "${hooks.url}", secret: env:ANSAI_E2E_WEBHOOK_SECRET, timeoutMs: 10000 }
  default: [hooks]
state: { dir: ${join(base, 'state')} }
`,
      )
    })

    afterAll(async () => {
      await hooks?.close()
      await new Promise<void>((resolve) => (tls ? tls.close(() => resolve()) : resolve()))
      rmSync(base, { recursive: true, force: true })
    })

    /** The problems a run saw, as resource → level, for the certificate-expiry policy. */
    const levels = (problems: { policy: string; resource: string; level: string }[]) =>
      Object.fromEntries(problems.filter((p) => p.policy === 'certificate-expiry').map((p) => [p.resource, p.level]))

    const expectedLevels = () =>
      Object.fromEntries(
        resources().flatMap(({ c, resource }) => (EXPECTED[c] ? [[resource, EXPECTED[c].severity]] : [])),
      )

    it('the first run raises one alert per certificate, with the right severity and alert point', async () => {
      const run = await runOnce(config, env)
      expect(run.cli.err).toMatch(/policy certificate-renewal left out: disabled in the configuration/)
      expect(run.fixes).toEqual([]) // nothing ran: no certbot, no other fix
      expect(levels(run.problems)).toEqual(expectedLevels())
      expect(run.notifications).toEqual({ sent: 6, failed: 0 })
      expect([...sniSeen].sort()).toEqual(Object.values(NAMES).sort())

      // Every request was signed correctly: nothing answered 400.
      expect(hooks.requests.map((r) => r.status)).toEqual(hooks.requests.map(() => 200))
      const messages = hooks.accepted()
      expect(messages).toHaveLength(6)
      const byResource = new Map<string, NotificationV1[]>()
      for (const m of messages) byResource.set(m.resource, [...(byResource.get(m.resource) ?? []), m])

      for (const { c, resource } of resources()) {
        const want = EXPECTED[c]
        const got = byResource.get(resource) ?? []
        if (!want) {
          expect(got, `${resource}: no alert`).toEqual([])
          continue
        }
        expect(got, resource).toHaveLength(1)
        const m = got[0]!
        expect(m.policy).toBe('certificate-expiry')
        expect(m.channel).toBe('hooks')
        expect(m.host).toBe('e2e-certs')
        expect(m.severity, resource).toBe(want.severity)
        expect(m.event).toBe('ansai.incident.opened.v1')
        // Opened and its milestone come as one message: the lowest alert point passed, once.
        expect(m.evidence.events).toEqual(['ansai.incident.opened.v1', 'ansai.milestone.reached.v1'])
        expect(m.evidence.field).toBe('daysLeft')
        expect(m.evidence.point, resource).toBe(want.point)
        const daysLeft = m.evidence.value as number
        expect(daysLeft, resource).toBeGreaterThanOrEqual(want.daysLeft[0])
        expect(daysLeft, resource).toBeLessThanOrEqual(want.daysLeft[1])
        expect(m.subject).toContain(`${want.severity.toUpperCase()} certificate-expiry ${resource} on `)
        expect(m.text).toContain(`daysLeft: ${daysLeft} (milestone ${want.point})`)
        const request = hooks.requests.find((r) => r.message?.id === m.id)!
        expect(request.headers['webhook-id']).toBe(m.id)
        expect(String(request.headers['webhook-signature'])).toMatch(/^v1,/)
      }
    })

    it('the second and third runs see the same problems and send nothing again', async () => {
      const before = hooks.requests.length
      for (const n of [2, 3]) {
        const run = await runOnce(config, env)
        expect(levels(run.problems), `run ${n}`).toEqual(expectedLevels())
        expect(run.fixes, `run ${n}`).toEqual([])
        expect(run.incidents, `run ${n}: no incident changed`).toEqual([])
        expect(run.notifications, `run ${n}`).toEqual({ sent: 0, failed: 0 })
      }
      expect(hooks.requests.length).toBe(before)
    })

    it('status lists the six open incidents by severity', async () => {
      const r = await runAnsai(['status', '--json', '--config', config])
      expect(r.code).toBe(0)
      const status = JSON.parse(r.out) as {
        summary: { openIncidents: { total: number; bySeverity: Record<string, number> } }
        open: { policy: string; resource: string; severity: string }[]
      }
      expect(status.summary.openIncidents.total).toBe(6)
      expect(status.summary.openIncidents.bySeverity).toMatchObject({ emergency: 2, critical: 2, warning: 2 })
      expect(Object.fromEntries(status.open.map((i) => [i.resource, i.severity]))).toEqual(expectedLevels())
    })

    it('the 60-day certificate is read (file and endpoint) and healthy: its silence is not a blind spot', async () => {
      // (Exit code not asserted: `check --json` exits 1 when something is critical even without --exit-code.)
      const r = await runAnsai(['check', '--json', '--all', '--config', config])
      expect(r.err).toBe('')
      const out = JSON.parse(r.out) as {
        findings: { policy: string; resource: string; level: string; values: { daysLeft?: number } }[]
        probeErrors: unknown[]
      }
      expect(out.probeErrors).toEqual([])
      for (const resource of [fileOf('in60'), endpointOf('in60')]) {
        const f = out.findings.find((x) => x.policy === 'certificate-expiry' && x.resource === resource)
        expect(f?.level, resource).toBe('ok')
        expect(f?.values.daysLeft, resource).toBeGreaterThan(59.9)
        expect(f?.values.daysLeft, resource).toBeLessThanOrEqual(60)
      }
    })
  },
)
