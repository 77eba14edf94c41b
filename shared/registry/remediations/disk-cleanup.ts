import { z } from 'zod'
import type { RemediationDefinition } from '../types.ts'
import { AbsolutePathSchema, limitThenEscalate, PositiveDurationSchema } from './params.ts'

/**
 * What disk-cleanup can clean, one name per category (the keys of `bytesRecovered` in its result):
 * - `logs`: log files under the roots (`*.log`, rotated `*.log.1`, `*.log-20261101`, and their `.gz`, `.xz`, `.zst`
 *   forms) last modified more than `logsOlderThan` ago are deleted; a file a process holds open is left alone.
 * - `compressed-logs`: rotated, still uncompressed log files under the roots last modified more than
 *   `compressLogsOlderThan` ago are compressed in place (gzip); nothing is deleted.
 * - `temp`: regular files in the temporary directories among the roots (`/tmp`, `/var/tmp`, or a root whose last
 *   segment is `tmp` or `temp`) neither modified nor accessed for `tempOlderThan`; sockets, pipes and files a
 *   process holds open are left alone.
 * - `package-cache`: the package manager's download cache (`apt-get clean`, `dnf clean packages`).
 * - `journal`: archived systemd journal files, until the journal fits in `journalMaxSize` (`journalctl --vacuum-size`).
 * - `container-images`: images no container uses (`docker image prune --all`, `podman image prune --all`).
 * - `core-dumps`: core dumps older than `coreDumps`, in systemd-coredump's store (/var/lib/systemd/coredump) and
 *   files named `core` or `core.<pid>` under the roots.
 */
export const DISK_CLEANUP_CATEGORIES = [
  'logs',
  'compressed-logs',
  'temp',
  'package-cache',
  'journal',
  'container-images',
  'core-dumps',
] as const
export type DiskCleanupCategory = (typeof DISK_CLEANUP_CATEGORIES)[number]

/** Categories that only look inside the roots, so they need at least one. */
export const ROOTED_DISK_CLEANUP_CATEGORIES: readonly DiskCleanupCategory[] = ['logs', 'compressed-logs', 'temp']

/** Paths that are never a place to delete files from: kernel and device pseudo filesystems. */
const FORBIDDEN_ROOTS = ['/proc', '/sys', '/dev']

interface CategoryFields {
  logsOlderThan?: string | undefined
  compressLogsOlderThan?: string | undefined
  tempOlderThan?: string | undefined
  packageCache?: boolean | undefined
  journalMaxSize?: string | undefined
  containerImages?: 'unused' | undefined
  coreDumps?: string | undefined
}

/** The categories a params object selects, in the order of `DISK_CLEANUP_CATEGORIES`. */
export const selectedDiskCleanupCategories = (p: CategoryFields): DiskCleanupCategory[] => {
  const selected: Record<DiskCleanupCategory, boolean> = {
    logs: p.logsOlderThan !== undefined,
    'compressed-logs': p.compressLogsOlderThan !== undefined,
    temp: p.tempOlderThan !== undefined,
    'package-cache': p.packageCache === true,
    journal: p.journalMaxSize !== undefined,
    'container-images': p.containerImages !== undefined,
    'core-dumps': p.coreDumps !== undefined,
  }
  return DISK_CLEANUP_CATEGORIES.filter((c) => selected[c])
}

const RootSchema = AbsolutePathSchema.refine(
  (p) => !FORBIDDEN_ROOTS.some((f) => p === f || p.startsWith(`${f}/`)),
  `not under ${FORBIDDEN_ROOTS.join(', ')} (pseudo filesystems)`,
)

export const DiskCleanupParamsSchema = z
  .object({
    roots: z
      .array(RootSchema)
      .min(1)
      .max(20)
      .optional()
      .describe(
        'Absolute directories the file categories (logs, compressed-logs, temp, core files) are confined to, 1..20; never /, never with .. segments',
      ),
    logsOlderThan: PositiveDurationSchema.optional().describe(
      'logs: delete log files under the roots last modified longer ago than this, e.g. 30d',
    ),
    compressLogsOlderThan: PositiveDurationSchema.optional().describe(
      'compressed-logs: gzip rotated log files under the roots last modified longer ago than this, e.g. 2d',
    ),
    tempOlderThan: PositiveDurationSchema.optional().describe(
      'temp: delete files in the temporary directories among the roots unused for longer than this, e.g. 7d',
    ),
    packageCache: z
      .boolean()
      .default(false)
      .describe("package-cache: empty the package manager's download cache (apt-get clean, dnf clean packages)"),
    journalMaxSize: z
      .string()
      .regex(/^[1-9]\d{0,6}[KMG]$/, 'a size such as 500M or 1G (K, M or G; not zero)')
      .optional()
      .describe('journal: vacuum archived journal files until the journal fits in this size, e.g. 100M or 1G'),
    containerImages: z
      .enum(['unused'])
      .optional()
      .describe('container-images: `unused` removes images no container uses (docker/podman image prune --all)'),
    coreDumps: PositiveDurationSchema.optional().describe('core-dumps: delete core dumps older than this, e.g. 3d'),
    maxFiles: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(100_000)
      .describe('The most files one run deletes or compresses; the run stops there and reports what it left'),
  })
  .strict()
  .superRefine((p, ctx) => {
    const selected = selectedDiskCleanupCategories(p)
    if (selected.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `select at least one category: logsOlderThan, compressLogsOlderThan, tempOlderThan, packageCache: true, journalMaxSize, containerImages or coreDumps (${DISK_CLEANUP_CATEGORIES.join(', ')})`,
      })
    }
    const rooted = selected.filter((c) => ROOTED_DISK_CLEANUP_CATEGORIES.includes(c))
    if (rooted.length > 0 && p.roots === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['roots'],
        message: `${rooted.join(', ')} need roots: the directories to clean, e.g. [/var/log, /tmp]`,
      })
    }
    if (p.roots !== undefined && new Set(p.roots).size !== p.roots.length) {
      ctx.addIssue({ code: 'custom', path: ['roots'], message: 'each root once' })
    }
  })
export type DiskCleanupParams = z.infer<typeof DiskCleanupParamsSchema>

export const diskCleanupRemediation: RemediationDefinition<typeof DiskCleanupParamsSchema> = {
  id: 'disk-cleanup',
  title: 'Free disk space',
  description: `Deletes or compresses what a host can lose without harm, by category (${DISK_CLEANUP_CATEGORIES.join(', ')}), confined to the named roots, oldest first, up to maxFiles; measures the bytes recovered per category. Destructive: a policy must opt in with allowDestructive.`,
  params: DiskCleanupParamsSchema,
  risk: 'destructive',
  status: 'available',
  appliesTo: ['filesystem'],
  defaultGuards: { limit: limitThenEscalate(2, '1h'), cooldown: '30m' },
  ssmDocument: 'ANSAI-CleanupDisk',
  permissions: [
    'read and delete files under the named roots (logs, temp, core files)',
    'compress files in place under the named roots (compressed-logs)',
    'apt-get clean or dnf clean packages (package-cache)',
    'journalctl --vacuum-size (journal)',
    'docker or podman image prune --all (container-images)',
    'delete files in /var/lib/systemd/coredump (core-dumps)',
    'read /proc/*/fd to skip files a process holds open',
  ],
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: root-disk-pressure, description: Keep / below 90 % }
spec:
  observe: filesystem
  match: { mount: / }
  severity:
    warning: { when: "usedPercent >= 80.0" }
    critical: { when: "usedPercent >= 90.0 || hoursToFull < 6.0", for: 2 cycles }
    emergency: { when: "usedPercent >= 95.0" }
  remediate:
    - at: critical
      run: disk-cleanup
      params:
        roots: [/var/log, /tmp]
        logsOlderThan: 30d
        compressLogsOlderThan: 2d
        tempOlderThan: 7d
        journalMaxSize: 100M
        packageCache: true
    - at: emergency
      run: disk-cleanup
      params: { containerImages: unused, coreDumps: 3d }
    - escalate: page
  guards:
    limit: { max: 2, within: 1h, then: escalate }
    cooldown: 30m
  allowDestructive: true
`,
}
