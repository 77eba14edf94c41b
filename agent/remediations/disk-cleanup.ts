import { type BigIntStats, closeSync, lstatSync, statfsSync } from 'node:fs'
import type { RemediationResultV1 } from '../../shared/contracts/index.ts'
import { parseDuration } from '../../shared/engine/duration.ts'
import {
  DISK_CLEANUP_CATEGORIES,
  type DiskCleanupCategory,
  type DiskCleanupParams,
  selectedDiskCleanupCategories,
} from '../../shared/registry/remediations/disk-cleanup.ts'
import { type OpenFiles, readOpenFiles } from '../os/open-files.ts'
import { type ActOutcome, compressFile, type RecheckContext, removeFile, type SkipReason } from './disk-cleanup/act.ts'
import {
  type CommandOutcome,
  type CommandPaths,
  cleanPackageCache,
  pruneContainerImages,
  vacuumJournal,
} from './disk-cleanup/commands.ts'
import { type AgeBounds, classifyFile, type FileCategory, isTempRoot } from './disk-cleanup/patterns.ts'
import { boundResult, buildSummary, type CategoryLine, formatBytes } from './disk-cleanup/report.ts'
import { type Candidate, openDirChecked, type RootScan, readMountPoints, walkRoot } from './disk-cleanup/walk.ts'
import type { AuditEntry, ExecutorContext, RemediationExecutor } from './types.ts'

/**
 * disk-cleanup: frees disk space by category (shared/registry/remediations/disk-cleanup.ts documents each one).
 *
 * File categories (logs, compressed-logs, temp, core-dumps) in four steps:
 * 1. walk the roots (and systemd-coredump's store) with the confined walker (disk-cleanup/walk.ts): no symlink
 *    followed, no other filesystem or mount point entered, regular files only, names matched per category, age
 *    bounds checked;
 * 2. one snapshot of the files processes hold open or mapped (agent/os/open-files.ts); those are left alone, and
 *    so is everything when the snapshot is incomplete (fail safe);
 * 3. oldest first, up to maxFiles;
 * 4. each file rechecked right before it is removed or compressed (same inode, size, mtime; still old enough; one
 *    link; not open), through the descriptor of its verified directory.
 * Tool categories (package-cache, journal, container-images) run their tool via ctx.run.
 *
 * Bytes recovered are measured: st_blocks × 512 of each removed file (what df sees come back), blocks before minus
 * after for compression, directory sizes before and after for the tools. statfs() of each root's filesystem before
 * and after goes to the evidence as the filesystem-level check. Dry-run lists what it would do and changes nothing.
 */

export interface DiskCleanupOptions {
  /** systemd-coredump's store; default /var/lib/systemd/coredump. */
  coredumpDir?: string
  /** apt's download cache, measured around `apt-get clean`; default /var/cache/apt/archives. */
  aptArchivesDir?: string
  /** dnf's cache, measured around `dnf clean packages`; default /var/cache/dnf. */
  dnfCacheDir?: string
  /** The journal's directories, measured around `journalctl --vacuum-size`. */
  journalDirs?: readonly string[]
  /** Where to scan for open files; default /proc. */
  procDir?: string
  /** Mount points come from here; default /proc/self/mountinfo. */
  mountinfoPath?: string
  /**
   * What to do when some processes' open files cannot be read (see {@link judgeOpenFilesGap}); default
   * `allow-as-root`.
   */
  openFilesGap?: OpenFilesGapPolicy
  /** The effective uid the policy above judges by; default process.geteuid(). */
  euid?: number
}

/**
 * `refuse`: remove nothing when any process could not be inspected. `allow-as-root`: the same when the agent is not
 * root (it then cannot see other users' processes at all); as root, go on and say so in the result. A root agent
 * is refused only processes outside its user namespace or holding capabilities it lacks (a sandbox's or a
 * hypervisor agent's own supervisor, PID 1 of a microVM): refusing every cleanup for their sake would make ANSAI
 * useless on such hosts, while their count and pids go to the evidence and the problems.
 */
export type OpenFilesGapPolicy = 'refuse' | 'allow-as-root'

/** The decision on an incomplete open-files snapshot; `text` is the problem line (absent when complete). Pure. */
export function judgeOpenFilesGap(
  openFiles: Pick<OpenFiles, 'unreadable' | 'unreadableSample'>,
  policy: OpenFilesGapPolicy,
  euid: number | undefined,
): { refuse: true; text: string } | { refuse: false; text?: string } {
  if (openFiles.unreadable === 0) return { refuse: false }
  const who = `${openFiles.unreadable} process${openFiles.unreadable === 1 ? '' : 'es'} (${openFiles.unreadableSample.join(', ')})`
  if (policy === 'refuse' || euid !== 0) {
    return {
      refuse: true,
      text: `cannot see the open files of ${who}: nothing removed${euid !== 0 ? '; run as root' : ''}`,
    }
  }
  return {
    refuse: false,
    text: `the open files of ${who} cannot be inspected even as root (another user namespace or more capabilities); files only they hold open cannot be seen`,
  }
}

const DEFAULTS = {
  coredumpDir: '/var/lib/systemd/coredump',
  aptArchivesDir: '/var/cache/apt/archives',
  dnfCacheDir: '/var/cache/dnf',
  journalDirs: ['/var/log/journal', '/run/log/journal'],
  procDir: '/proc',
  mountinfoPath: '/proc/self/mountinfo',
  openFilesGap: 'allow-as-root' as OpenFilesGapPolicy,
  euid: process.geteuid?.(),
}

const FILE_CATEGORIES: readonly FileCategory[] = ['logs', 'compressed-logs', 'temp', 'core-dumps']
const isFileCategory = (c: DiskCleanupCategory): c is FileCategory => (FILE_CATEGORIES as string[]).includes(c)
const PROGRESS_EVERY = 1000

interface Tally {
  files: number
  bytes: number
  /** Apparent sizes of the files (dry-run: what compression would read). */
  size: number
}

interface FsSnapshot {
  paths: string[]
  bsize: bigint
  blocks: bigint
  bfree: bigint
}

/** statfs() of the filesystems holding `paths`, one entry per filesystem (grouped by st_dev). */
function statfsPlaces(paths: readonly string[]): Map<string, FsSnapshot> {
  const out = new Map<string, FsSnapshot>()
  for (const p of paths) {
    try {
      const st = lstatSync(p, { bigint: true })
      if (st.isSymbolicLink()) continue // a refused root: its target is no place of ours
      const dev = String(st.dev)
      const s = statfsSync(p, { bigint: true })
      const seen = out.get(dev)
      if (seen) seen.paths.push(p)
      else out.set(dev, { paths: [p], bsize: s.bsize, blocks: s.blocks, bfree: s.bfree })
    } catch {
      // a missing place has no filesystem to report
    }
  }
  return out
}

const used = (s: FsSnapshot): number => Number((s.blocks - s.bfree) * s.bsize)
const percent = (s: FsSnapshot): number =>
  s.blocks === 0n ? 0 : Math.round((Number(s.blocks - s.bfree) / Number(s.blocks)) * 10_000) / 100

function filesystemEvidence(before: Map<string, FsSnapshot>, after: Map<string, FsSnapshot>) {
  return [...before.entries()].map(([dev, b]) => {
    const a = after.get(dev)
    return {
      paths: b.paths,
      sizeBytes: Number(b.blocks * b.bsize),
      usedBytesBefore: used(b),
      usedBytesAfter: a ? used(a) : undefined,
      freedBytes: a ? used(b) - used(a) : undefined,
      usedPercentBefore: percent(b),
      usedPercentAfter: a ? percent(a) : undefined,
    }
  })
}

const errnoOf = (err: unknown): string => (err as NodeJS.ErrnoException | undefined)?.code ?? String(err)

const scanEvidence = (s: RootScan) => ({ ...s })

export function createDiskCleanupExecutor(options: DiskCleanupOptions = {}): RemediationExecutor<DiskCleanupParams> {
  const cfg = { ...DEFAULTS, ...options }
  const commandPaths: CommandPaths = {
    aptArchivesDir: cfg.aptArchivesDir,
    dnfCacheDir: cfg.dnfCacheDir,
    journalDirs: cfg.journalDirs,
  }

  return {
    id: 'disk-cleanup',
    async execute(params: DiskCleanupParams, ctx: ExecutorContext) {
      const started = ctx.now()
      const audit: AuditEntry[] = []
      try {
        return await cleanup(params, ctx, started, audit)
      } catch (err) {
        // Not an expected failure (those are in the result already): still one result, never a throw.
        const finished = ctx.now()
        const message = err instanceof Error ? err.message : String(err)
        const result: RemediationResultV1 = {
          schema: 'ansai.remediation-result.v1',
          key: ctx.key,
          remediation: 'disk-cleanup',
          status: 'failed',
          dryRun: ctx.dryRun,
          startedAt: started.toISOString(),
          finishedAt: finished.toISOString(),
          durationMs: Math.max(0, finished.getTime() - started.getTime()),
          summary: `disk-cleanup stopped by an unexpected error after ${audit.length} audit entries`,
          evidence: {},
          error: message,
        }
        return { result: boundResult(result), audit }
      }
    },
  }

  async function cleanup(
    params: DiskCleanupParams,
    ctx: ExecutorContext,
    started: Date,
    audit: AuditEntry[],
  ): Promise<{ result: RemediationResultV1; audit: AuditEntry[] }> {
    const nowMs = started.getTime()
    const selected = selectedDiskCleanupCategories(params)
    const roots = params.roots ?? []
    const problems: string[] = []
    const lines = new Map<DiskCleanupCategory, CategoryLine>()
    const categoryEvidence: Record<string, unknown> = {}
    const evidence: Record<string, unknown> = { categories: categoryEvidence }
    const items: string[] = []
    let itemsTotal = 0
    const skipped: Record<string, number> = {}
    const errors: Record<string, number> = {}
    let maxFilesInfo: { limit: number; left: number } | undefined

    const bounds: AgeBounds = {}
    if (params.logsOlderThan) bounds.logs = parseDuration(params.logsOlderThan)
    if (params.compressLogsOlderThan) bounds['compressed-logs'] = parseDuration(params.compressLogsOlderThan)
    if (params.tempOlderThan) bounds.temp = parseDuration(params.tempOlderThan)
    if (params.coreDumps) bounds['core-dumps'] = parseDuration(params.coreDumps)

    const fileCats = selected.filter(isFileCategory)
    const places = [...roots]
    if (selected.includes('core-dumps')) places.push(cfg.coredumpDir)
    if (selected.includes('package-cache')) places.push(cfg.aptArchivesDir, cfg.dnfCacheDir)
    if (selected.includes('journal')) places.push(...cfg.journalDirs)
    const fsBefore = statfsPlaces(places)

    if (fileCats.length > 0) {
      const fileResult = await cleanFiles()
      for (const c of fileCats) lines.set(c, fileResult.lines[c] as CategoryLine)
    }

    const commands: [DiskCleanupCategory, () => Promise<CommandOutcome>][] = [
      ['package-cache', () => cleanPackageCache(ctx, commandPaths)],
      ['journal', () => vacuumJournal(ctx, params.journalMaxSize ?? '', commandPaths)],
      ['container-images', () => pruneContainerImages(ctx)],
    ]
    for (const [category, run] of commands) {
      if (!selected.includes(category)) continue
      ctx.log(`disk-cleanup: ${category}`)
      const o = await run()
      audit.push(...o.audit)
      categoryEvidence[category] = { status: o.status, bytes: o.bytes, reason: o.reason, ...o.evidence }
      lines.set(category, {
        category,
        status: o.status,
        bytes: o.status === 'dry-run' && category !== 'package-cache' ? 0 : o.bytes,
        reason: o.reason,
      })
    }

    const fsAfter = ctx.dryRun ? fsBefore : statfsPlaces(places)
    evidence.filesystems = filesystemEvidence(fsBefore, fsAfter)
    evidence.skipped = skipped
    if (Object.keys(errors).length > 0) evidence.errors = errors
    if (maxFilesInfo) evidence.maxFiles = maxFilesInfo
    evidence.problems = problems

    const ordered = DISK_CLEANUP_CATEGORIES.filter((c) => lines.has(c)).map((c) => lines.get(c) as CategoryLine)
    const failedLines = ordered.filter((l) => l.status === 'failed')
    const status: RemediationResultV1['status'] = ctx.dryRun
      ? 'dry-run'
      : failedLines.length > 0
        ? 'failed'
        : ordered.every((l) => l.status === 'skipped')
          ? 'skipped'
          : 'succeeded'
    const finished = ctx.now()
    const result: RemediationResultV1 = {
      schema: 'ansai.remediation-result.v1',
      key: ctx.key,
      remediation: 'disk-cleanup',
      status,
      dryRun: ctx.dryRun,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationMs: Math.max(0, finished.getTime() - started.getTime()),
      summary: buildSummary({ dryRun: ctx.dryRun, lines: ordered, skipped, maxFiles: maxFilesInfo }),
      items,
      itemsTotal,
      evidence,
    }
    if (!ctx.dryRun) {
      result.bytesRecovered = Object.fromEntries(ordered.map((l) => [l.category, Math.max(0, Math.round(l.bytes))]))
    } else {
      evidence.wouldRecover = Object.fromEntries(ordered.map((l) => [l.category, l.bytes]))
    }
    if (failedLines.length > 0) {
      result.error = failedLines.map((l) => `${l.category}: ${l.reason ?? 'failed'}`).join('; ')
    }
    return { result: boundResult(result), audit }

    /** The file categories: walk, snapshot open files, select, act. */
    async function cleanFiles(): Promise<{ lines: Partial<Record<FileCategory, CategoryLine>> }> {
      const out: Partial<Record<FileCategory, CategoryLine>> = {}
      const fail = (reason: string) => {
        problems.push(reason)
        for (const c of fileCats) out[c] = { category: c, status: 'failed', bytes: 0, files: 0, reason }
        return { lines: out }
      }

      let mountPoints: Set<string>
      try {
        mountPoints = readMountPoints(cfg.mountinfoPath)
      } catch (err) {
        return fail(`cannot read ${cfg.mountinfoPath} (${errnoOf(err)}): mount points unknown, nothing removed`)
      }

      // 1. Walk.
      const flags = new Map<Candidate, { inTempRoot: boolean; inCoredumpStore: boolean }>()
      const byId = new Map<string, Candidate>()
      let scanned = 0
      const onFile = () => {
        scanned++
        if (scanned % PROGRESS_EVERY === 0) ctx.log(`disk-cleanup: scanned ${scanned} files`)
      }
      const onProblem = (text: string) => problems.push(text)
      const walk = (root: string, inTempRoot: boolean, inCoredumpStore: boolean): RootScan => {
        const classify = (name: string, st: BigIntStats) =>
          classifyFile({ name, mtimeNs: st.mtimeNs, atimeNs: st.atimeNs, inTempRoot, inCoredumpStore }, bounds, nowMs)
        const { scan, candidates } = walkRoot(root, { classify, mountPoints, onFile, onProblem })
        for (const c of candidates) {
          const id = `${c.dev}:${c.ino}`
          if (byId.has(id)) continue // the same file through two roots (or two names)
          byId.set(id, c)
          flags.set(c, { inTempRoot, inCoredumpStore })
        }
        if (scan.reason) audit.push({ action: 'problem', target: root, detail: scan.reason })
        return scan
      }

      let storeScan: RootScan | undefined
      if (fileCats.includes('core-dumps')) {
        try {
          lstatSync(cfg.coredumpDir)
          storeScan = walk(cfg.coredumpDir, false, true)
        } catch {
          storeScan = undefined // no systemd-coredump on this host: nothing to clean there
        }
      }
      const rootScans = roots.map((r) => walk(r, isTempRoot(r), false))
      evidence.roots = rootScans.map(scanEvidence)
      if (fileCats.includes('core-dumps')) {
        evidence.coredumpStore = storeScan ? scanEvidence(storeScan) : { root: cfg.coredumpDir, status: 'missing' }
      }
      const usableRoots = rootScans.filter((s) => s.status === 'scanned')

      // 2. Open files, once, after the walk and before any change.
      let openFiles: OpenFiles
      try {
        openFiles = readOpenFiles(cfg.procDir)
      } catch (err) {
        return fail(`cannot list ${cfg.procDir} (${errnoOf(err)}): open files unknown, nothing removed`)
      }
      evidence.openFiles = {
        processes: openFiles.processes,
        descriptors: openFiles.descriptors,
        files: openFiles.files,
        unreadable: openFiles.unreadable,
      }
      const gap = judgeOpenFilesGap(openFiles, cfg.openFilesGap, cfg.euid)
      if (gap.refuse) return fail(gap.text)
      if (gap.text) problems.push(gap.text)

      // 3. Select: not open, one link, oldest first, up to maxFiles.
      const tallies = new Map<FileCategory, Tally>(fileCats.map((c) => [c, { files: 0, bytes: 0, size: 0 }]))
      const skip = (c: Candidate, reason: SkipReason, detail?: string) => {
        skipped[reason] = (skipped[reason] ?? 0) + 1
        if (reason === 'error' && detail) errors[detail] = (errors[detail] ?? 0) + 1
        audit.push({
          action: 'skip',
          target: c.path,
          category: c.category,
          detail: detail ? `${reason}: ${detail}` : reason,
        })
      }
      const eligible: Candidate[] = []
      for (const c of byId.values()) {
        if (openFiles.has(c.dev, c.ino)) skip(c, 'open', 'held open by a process')
        else if (c.nlink !== 1n) skip(c, 'hard-linked', `${c.nlink} links`)
        else eligible.push(c)
      }
      eligible.sort((a, b) => (a.mtimeNs < b.mtimeNs ? -1 : a.mtimeNs > b.mtimeNs ? 1 : a.path < b.path ? -1 : 1))
      const chosen = eligible.slice(0, params.maxFiles)
      if (eligible.length > params.maxFiles) {
        maxFilesInfo = { limit: params.maxFiles, left: eligible.length - params.maxFiles }
        problems.push(
          `stopped at maxFiles ${params.maxFiles}: ${eligible.length - params.maxFiles} more files eligible`,
        )
      }

      // 4. Act, directory by directory, each file rechecked.
      const rc: RecheckContext = {
        openFiles,
        stillEligible: (c, st) => {
          const f = flags.get(c)
          if (!f) return false
          return (
            classifyFile({ name: c.name, mtimeNs: st.mtimeNs, atimeNs: st.atimeNs, ...f }, bounds, nowMs) === c.category
          )
        },
      }
      const groups = new Map<string, Candidate[]>()
      for (const c of chosen) {
        const key = `${c.dir.dev}:${c.dir.ino}:${c.dir.path}`
        const g = groups.get(key)
        if (g) g.push(c)
        else groups.set(key, [c])
      }
      let done = 0
      let doneBytes = 0
      const verb = ctx.dryRun ? 'checked' : 'cleaned'
      const record = (c: Candidate, o: ActOutcome) => {
        done++
        if (done % PROGRESS_EVERY === 0) {
          ctx.log(`disk-cleanup: ${verb} ${done}/${chosen.length} files (${formatBytes(doneBytes)} recovered)`)
        }
        if (o.kind === 'skipped') {
          skip(c, o.reason, o.detail)
          return
        }
        const t = tallies.get(c.category) as Tally
        t.files++
        t.size += o.size
        // dry-run: deletions would recover the blocks; compression's gain is only known after.
        const bytes = ctx.dryRun ? (o.kind === 'removed' ? o.bytes : 0) : o.bytes
        t.bytes += bytes
        doneBytes += bytes
        const action = (ctx.dryRun ? 'would-' : '') + (o.kind === 'removed' ? 'delete' : 'compress')
        audit.push({
          action,
          target: c.path,
          bytes: ctx.dryRun && o.kind === 'compressed' ? Number(c.blocks * 512n) : bytes,
          category: c.category,
          detail: `size ${o.size}`,
        })
        itemsTotal++
        if (items.length < 50) items.push(c.path)
      }
      for (const group of groups.values()) {
        const dir = (group[0] as Candidate).dir
        const opened = openDirChecked(dir)
        if (!opened.ok) {
          for (const c of group) record(c, { kind: 'skipped', reason: 'changed', detail: `directory ${opened.reason}` })
          continue
        }
        try {
          for (const c of group) {
            const o =
              c.category === 'compressed-logs'
                ? await compressFile(opened.anchor, c, rc, ctx.dryRun)
                : removeFile(opened.anchor, c, rc, ctx.dryRun)
            record(c, o)
          }
        } finally {
          closeDir(opened.fd)
        }
      }
      if (chosen.length >= PROGRESS_EVERY) {
        ctx.log(`disk-cleanup: ${verb} ${done} files (${formatBytes(doneBytes)} recovered)`)
      }

      const noRoot = roots.length > 0 && usableRoots.length === 0
      const hasTempRoot = usableRoots.some((s) => isTempRoot(s.root))
      for (const c of fileCats) {
        const t = tallies.get(c) as Tally
        const line: CategoryLine = {
          category: c,
          status: ctx.dryRun ? 'dry-run' : 'done',
          bytes: t.bytes,
          files: t.files,
        }
        if (c === 'compressed-logs' && ctx.dryRun) line.compressBytes = t.size
        const rooted = c !== 'core-dumps'
        if (rooted && noRoot) {
          line.status = 'failed'
          line.reason = 'no usable root'
        } else if (c === 'temp' && !hasTempRoot) {
          line.status = 'skipped'
          line.reason = 'no temporary directory among the roots'
        }
        out[c] = line
        categoryEvidence[c] = {
          status: line.status,
          files: t.files,
          bytes: t.bytes,
          sizeBytes: t.size,
          reason: line.reason,
        }
      }
      return { lines: out }
    }
  }
}

const closeDir = (fd: number): void => {
  try {
    closeSync(fd)
  } catch {
    // nothing to do
  }
}

/** The executor with the host's real paths. */
export const diskCleanupExecutor: RemediationExecutor<DiskCleanupParams> = createDiskCleanupExecutor()
