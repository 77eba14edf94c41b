import type { ObservationKind, ObservationOf } from '../../shared/contracts/index.ts'

/** The evaluation time the samples are written against: 2026-11-23T10:00:00Z. */
export const SAMPLE_NOW = Date.parse('2026-11-23T10:00:00Z')

/**
 * One realistic observation per kind, each passing `ObservationSchema`, with round numbers so that tests can assert
 * the exact derived values (e.g. the filesystem is 90 % used, the certificate has 7 days left at `SAMPLE_NOW`).
 * The mapped type is a `Record<ObservationKind, Observation>` that also keeps each entry's own kind.
 */
export const sampleObservations: { [K in ObservationKind]: ObservationOf<K> } = {
  service: {
    kind: 'service',
    unit: 'nginx.service',
    loadState: 'loaded',
    activeState: 'failed',
    subState: 'failed',
    restarts: 5,
    mainPid: 0,
    restartPolicy: 'on-failure',
    startLimitHit: true,
    result: 'start-limit-hit',
  },
  filesystem: {
    kind: 'filesystem',
    mount: '/var',
    fsType: 'ext4',
    device: '/dev/nvme0n1p2',
    bytesTotal: 21_000_000_000,
    bytesUsed: 18_000_000_000,
    bytesAvailable: 2_000_000_000,
    inodesTotal: 1_000_000,
    inodesUsed: 250_000,
  },
  memory: {
    kind: 'memory',
    totalBytes: 4_000_000_000,
    availableBytes: 400_000_000,
    swapTotalBytes: 1_000_000_000,
    swapFreeBytes: 750_000_000,
    psi: { someAvg10: 12.5, someAvg60: 8, someAvg300: 3, fullAvg10: 4, fullAvg60: 2, fullAvg300: 1 },
  },
  'process-memory': {
    kind: 'process-memory',
    unit: 'app.service',
    pids: [2101, 2102],
    memoryBytes: 1_500_000_000,
    limitBytes: 2_000_000_000,
    source: 'cgroup-v2',
  },
  certificate: {
    kind: 'certificate',
    source: '/etc/letsencrypt/live/example.org/fullchain.pem',
    sourceType: 'file',
    subject: 'CN=example.org',
    sans: ['example.org', 'www.example.org'],
    issuer: "CN=R11,O=Let's Encrypt,C=US",
    notBefore: '2026-09-01T10:00:00Z',
    notAfter: '2026-11-30T10:00:00Z',
    fingerprint: '3A:5F:9C:01:7B:22:E4:D0:11:8A:6C:F3:42:90:BE:7D:05:C8:1E:66:A9:3B:F0:24:D7:58:0C:E1:93:4F:B2:6A',
  },
  database: {
    kind: 'database',
    engine: 'postgresql',
    name: '127.0.0.1:5432/app',
    reachable: true,
    connections: 80,
    maxConnections: 100,
    idleInTransaction: 3,
    longestLockWaitSeconds: 42.5,
    deadTuples: 1_250_000,
    bloatRatio: 0.31,
    integrity: 'ok',
  },
  backup: {
    kind: 'backup',
    job: 'pg-nightly',
    newestArtifactAt: '2026-11-22T22:00:00Z',
    newestArtifactPath: '/var/backups/pg/app-2026-11-22.dump',
    sizeBytes: 734_003_200,
    integrity: 'failed',
    lastExitStatus: 0,
  },
  cron: {
    kind: 'cron',
    job: 'logrotate',
    lastRunAt: '2026-11-23T04:00:00Z',
    lastExitStatus: 1,
    durationSeconds: 4.2,
  },
  dns: {
    kind: 'dns',
    name: 'api.example.org',
    resolved: true,
    addresses: ['203.0.113.10', '2001:db8::10'],
    latencyMs: 12.3,
  },
  packages: {
    kind: 'packages',
    manager: 'apt',
    pending: 14,
    security: 3,
    rebootRequired: false,
  },
  container: {
    kind: 'container',
    runtime: 'docker',
    name: 'web',
    image: 'nginx:1.27',
    state: 'running',
    health: 'unhealthy',
    restarts: 2,
  },
  custom: {
    kind: 'custom',
    name: 'queue_depth',
    value: 1234,
    unit: 'messages',
    labels: { queue: 'default' },
  },
}
