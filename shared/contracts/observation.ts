import { z } from 'zod'
import { BytesSchema, NonNegativeIntSchema, NonNegativeNumberSchema, TimestampSchema } from './common.ts'

/**
 * Observations, one strict schema per kind. Every observation names its resource through the kind's identifying
 * field (unit, mount, path, ...); the probe registry says which field that is.
 */

export const ServiceObservationSchema = z
  .object({
    kind: z.literal('service'),
    unit: z.string().min(1),
    loadState: z.string().optional(),
    activeState: z.enum(['active', 'reloading', 'inactive', 'failed', 'activating', 'deactivating', 'maintenance']),
    subState: z.string(),
    restarts: NonNegativeIntSchema,
    mainPid: NonNegativeIntSchema,
    memoryBytes: BytesSchema.optional(),
    /** systemd's Restart= setting; units that restart themselves are left to systemd until their start limit. */
    restartPolicy: z.string().optional(),
    /** true once systemd gave up on the unit (Result=start-limit-hit). */
    startLimitHit: z.boolean().optional(),
    result: z.string().optional(),
  })
  .strict()

export const FilesystemObservationSchema = z
  .object({
    kind: z.literal('filesystem'),
    mount: z.string().min(1),
    fsType: z.string(),
    device: z.string().optional(),
    bytesTotal: BytesSchema,
    bytesUsed: BytesSchema,
    bytesAvailable: BytesSchema,
    inodesTotal: BytesSchema,
    inodesUsed: BytesSchema,
  })
  .strict()

export const PsiSchema = z
  .object({
    someAvg10: NonNegativeNumberSchema,
    someAvg60: NonNegativeNumberSchema,
    someAvg300: NonNegativeNumberSchema,
    fullAvg10: NonNegativeNumberSchema.optional(),
    fullAvg60: NonNegativeNumberSchema.optional(),
    fullAvg300: NonNegativeNumberSchema.optional(),
  })
  .strict()

export const MemoryObservationSchema = z
  .object({
    kind: z.literal('memory'),
    totalBytes: BytesSchema,
    availableBytes: BytesSchema,
    swapTotalBytes: BytesSchema,
    swapFreeBytes: BytesSchema,
    psi: PsiSchema.optional(),
  })
  .strict()

export const ProcessMemoryObservationSchema = z
  .object({
    kind: z.literal('process-memory'),
    /** The systemd unit (or process name when the process has no unit). */
    unit: z.string().min(1),
    pids: z.array(NonNegativeIntSchema).optional(),
    memoryBytes: BytesSchema,
    /** The memory the process may reach: cgroup memory.max, MemoryMax=, or the host's total memory. */
    limitBytes: BytesSchema.optional(),
    source: z.enum(['cgroup-v2', 'cgroup-v1', 'rss']),
  })
  .strict()

export const CertificateObservationSchema = z
  .object({
    kind: z.literal('certificate'),
    /** A file path or `host:port` of a TLS endpoint. */
    source: z.string().min(1),
    sourceType: z.enum(['file', 'endpoint']),
    subject: z.string(),
    sans: z.array(z.string()),
    issuer: z.string(),
    notBefore: TimestampSchema.optional(),
    notAfter: TimestampSchema,
    fingerprint: z.string().regex(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/, 'SHA-256 fingerprint, colon-separated hex'),
  })
  .strict()

export const DatabaseObservationSchema = z
  .object({
    kind: z.literal('database'),
    engine: z.enum(['postgresql', 'mariadb', 'mysql', 'sqlite']),
    /** Instance or file name, e.g. `main`, `127.0.0.1:5432/app` or `/var/lib/app/app.db`. */
    name: z.string().min(1),
    reachable: z.boolean(),
    connections: NonNegativeIntSchema.optional(),
    maxConnections: NonNegativeIntSchema.optional(),
    idleInTransaction: NonNegativeIntSchema.optional(),
    longestLockWaitSeconds: NonNegativeNumberSchema.optional(),
    deadTuples: NonNegativeIntSchema.optional(),
    /** Estimated share of wasted space, 0..1. */
    bloatRatio: z.number().min(0).max(1).optional(),
    replicationLagSeconds: NonNegativeNumberSchema.optional(),
    integrity: z.enum(['ok', 'failed', 'unknown']).optional(),
    error: z.string().optional(),
  })
  .strict()

export const BackupObservationSchema = z
  .object({
    kind: z.literal('backup'),
    job: z.string().min(1),
    newestArtifactAt: TimestampSchema.optional(),
    newestArtifactPath: z.string().optional(),
    sizeBytes: BytesSchema.optional(),
    integrity: z.enum(['ok', 'failed', 'unknown']).optional(),
    lastExitStatus: z.number().int().optional(),
  })
  .strict()

export const CronObservationSchema = z
  .object({
    kind: z.literal('cron'),
    job: z.string().min(1),
    lastRunAt: TimestampSchema.optional(),
    lastExitStatus: z.number().int().optional(),
    durationSeconds: NonNegativeNumberSchema.optional(),
  })
  .strict()

export const DnsObservationSchema = z
  .object({
    kind: z.literal('dns'),
    name: z.string().min(1),
    resolved: z.boolean(),
    addresses: z.array(z.string()),
    latencyMs: NonNegativeNumberSchema.optional(),
    error: z.string().optional(),
  })
  .strict()

export const PackagesObservationSchema = z
  .object({
    kind: z.literal('packages'),
    manager: z.enum(['apt', 'dnf', 'yum', 'zypper']),
    pending: NonNegativeIntSchema,
    security: NonNegativeIntSchema,
    rebootRequired: z.boolean().optional(),
  })
  .strict()

export const ContainerObservationSchema = z
  .object({
    kind: z.literal('container'),
    runtime: z.enum(['docker', 'podman']),
    name: z.string().min(1),
    image: z.string().optional(),
    state: z.enum(['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead']),
    health: z.enum(['healthy', 'unhealthy', 'starting', 'none']),
    restarts: NonNegativeIntSchema,
  })
  .strict()

export const CustomObservationSchema = z
  .object({
    kind: z.literal('custom'),
    name: z.string().min(1),
    value: z.number(),
    unit: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
  })
  .strict()

export const ObservationSchema = z.discriminatedUnion('kind', [
  ServiceObservationSchema,
  FilesystemObservationSchema,
  MemoryObservationSchema,
  ProcessMemoryObservationSchema,
  CertificateObservationSchema,
  DatabaseObservationSchema,
  BackupObservationSchema,
  CronObservationSchema,
  DnsObservationSchema,
  PackagesObservationSchema,
  ContainerObservationSchema,
  CustomObservationSchema,
])
export type Observation = z.infer<typeof ObservationSchema>
export type ObservationKind = Observation['kind']
export type ObservationOf<K extends ObservationKind> = Extract<Observation, { kind: K }>

export const OBSERVATION_KINDS = ObservationSchema.options.map((o) => o.shape.kind.value) as ObservationKind[]

/** The agent says why a probe could not run instead of failing the whole report. */
export const ProbeErrorSchema = z
  .object({
    probe: z.string().min(1),
    reason: z.string().min(1),
  })
  .strict()
export type ProbeError = z.infer<typeof ProbeErrorSchema>
