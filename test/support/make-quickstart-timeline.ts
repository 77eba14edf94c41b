/**
 * Writes test/fixtures/timelines/quickstart.jsonl: two hours of one web server, a report a minute, with the
 * troubles ANSAI is built for — /var filling up, nginx crashing, a leaking app, a certificate nearing expiry and a
 * stale backup. The host is simulated and ANSAI's baseline pack acts on it while the timeline is recorded: each fix
 * the engine decides changes what the next reports show, as it would on a real host. `npm start` replays it.
 * Run: npx tsx test/support/make-quickstart-timeline.ts
 */
import { readFileSync, writeFileSync } from 'node:fs'
import type { Observation, RemediationResultV1, ReportV1 } from '../../shared/contracts/index.ts'
import { evaluate } from '../../shared/engine/evaluate.ts'
import type { HostState } from '../../shared/engine/state.ts'
import { loadPolicies } from '../../shared/policy/load.ts'

const GiB = 2 ** 30
const MiB = 2 ** 20
const start = Date.parse('2026-11-20T08:00:00Z')
const host = { id: 'i-0a1b2c3d4e5f60718', hostname: 'web-1', tags: { role: 'web', env: 'prod' } }
const baseline = readFileSync(new URL('../../shared/policies/baseline.yaml', import.meta.url), 'utf8')
const { set } = loadPolicies([{ file: 'baseline.yaml', text: baseline }], { allowPlanned: true })

// The simulated host.
const world = {
  varUsed: 28 * GiB,
  varGrowth: 0.25 * GiB, // a runaway debug log
  appMem: 300 * MiB,
  appLeaks: true,
  nginxFailed: false,
  certNotAfter: '2026-12-02T08:00:00Z',
  certFingerprint: '3F:1A:7C:22:9B:04:E1:5D:88:C0:4E:93:21:AB:77:10:6E:2F:D9:38:B5:4C:01:EE:92:7A:5B:C8:13:F6:0D:44',
  backupAt: '2026-11-19T02:00:00Z',
}
const effects: Record<string, (t: number) => void> = {
  'disk-cleanup': () => {
    world.varUsed -= 12 * GiB // old logs and caches
    world.varGrowth = 0.01 * GiB // and the runaway log was rotated away
  },
  'service-restart': () => {
    world.nginxFailed = false
  },
  'memory-relief': () => {
    world.appMem = 280 * MiB
    world.appLeaks = false // the restart cleared the leak for this run
  },
  'certificate-renew': (t) => {
    world.certNotAfter = new Date(t + 90 * 86_400_000).toISOString()
    world.certFingerprint = world.certFingerprint.split(':').reverse().join(':')
  },
  'backup-retry': (t) => {
    world.backupAt = new Date(t + 30_000).toISOString()
  },
}

const lines: string[] = []
let state: HostState | undefined
let results: RemediationResultV1[] = []
for (let minute = 0; minute <= 120; minute++) {
  const t = start + minute * 60_000
  world.varUsed += world.varGrowth
  if (world.appLeaks) world.appMem += 9 * MiB
  if (minute === 30) world.nginxFailed = true
  const observations: Observation[] = [
    {
      kind: 'filesystem',
      mount: '/',
      fsType: 'ext4',
      bytesTotal: 20 * GiB,
      bytesUsed: 9 * GiB,
      bytesAvailable: 10 * GiB,
      inodesTotal: 1_310_720,
      inodesUsed: 210_000,
    },
    {
      kind: 'filesystem',
      mount: '/var',
      fsType: 'xfs',
      bytesTotal: 40 * GiB,
      bytesUsed: Math.round(world.varUsed),
      bytesAvailable: Math.round(40 * GiB - world.varUsed),
      inodesTotal: 20_971_520,
      inodesUsed: 150_000,
    },
    { kind: 'memory', totalBytes: 8 * GiB, availableBytes: 5 * GiB, swapTotalBytes: 0, swapFreeBytes: 0 },
    world.nginxFailed
      ? {
          kind: 'service',
          unit: 'nginx.service',
          activeState: 'failed',
          subState: 'failed',
          restarts: 0,
          mainPid: 0,
          restartPolicy: 'no',
          result: 'signal',
        }
      : {
          kind: 'service',
          unit: 'nginx.service',
          activeState: 'active',
          subState: 'running',
          restarts: 0,
          mainPid: 812,
          restartPolicy: 'no',
        },
    {
      kind: 'service',
      unit: 'app.service',
      activeState: 'active',
      subState: 'running',
      restarts: 0,
      mainPid: 901,
      restartPolicy: 'on-failure',
    },
    {
      kind: 'process-memory',
      unit: 'app.service',
      memoryBytes: Math.round(world.appMem),
      limitBytes: 1024 * MiB,
      source: 'cgroup-v2',
    },
    {
      kind: 'certificate',
      source: '/etc/letsencrypt/live/web-1.example.com/cert.pem',
      sourceType: 'file',
      subject: 'CN=web-1.example.com',
      sans: ['web-1.example.com'],
      issuer: "CN=R11,O=Let's Encrypt,C=US",
      notAfter: world.certNotAfter,
      fingerprint: world.certFingerprint,
    },
    {
      kind: 'backup',
      job: 'nightly-db',
      newestArtifactAt: world.backupAt,
      newestArtifactPath: '/var/backups/db.sql.gz',
      sizeBytes: 512 * MiB,
      integrity: 'ok',
      lastExitStatus: 0,
    },
  ]
  const report: ReportV1 = {
    schema: 'ansai.report.v1',
    host,
    agent: { version: '0.1.0' },
    time: new Date(t).toISOString(),
    seq: minute + 1,
    observations,
    probeErrors: [],
  }
  lines.push(JSON.stringify(report))
  const out = evaluate({ policies: set, host, observations, seq: report.seq, results, state, now: t })
  state = out.nextState
  results = []
  for (const d of out.decisions) {
    if (d.type !== 'remediate') continue
    effects[d.remediation]?.(t)
    const iso = new Date(t).toISOString()
    results.push({
      schema: 'ansai.remediation-result.v1',
      key: d.key,
      remediation: d.remediation,
      status: 'succeeded',
      dryRun: false,
      startedAt: iso,
      finishedAt: iso,
      durationMs: 1,
      summary: 'simulated host',
      evidence: {},
    })
  }
}
writeFileSync(new URL('../fixtures/timelines/quickstart.jsonl', import.meta.url), `${lines.join('\n')}\n`)
console.log(`wrote ${lines.length} reports`)
