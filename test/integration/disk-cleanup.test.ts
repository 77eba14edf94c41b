/**
 * disk-cleanup for real: a size-limited tmpfs (64 MiB) filled past 90 % with generated logs old and new, rotated
 * logs, temp files, core dumps, and everything that must survive: new files, a file held open by a live process, a
 * hard-linked file, an immutable file, files no category names, symlinks to outside files and directories, a fifo,
 * a nested tmpfs and a bind mount inside a root, names with spaces, newlines, `$(...)`, `;` and quotes.
 *
 * Dry-run first (nothing changes: every file hashed, atimes compared), then a real run: usage drops below 80 %
 * (statfs), the bytes recovered equal the change in used bytes that statfs sees with a tolerance of 0 bytes (on
 * tmpfs, st_blocks and statfs count the same pages, and directories take no blocks), and every file that must
 * survive is there, byte for byte.
 *
 * Needs root (mount, chown, chattr); skipped loudly without, failing under ANSAI_REQUIRE_ALL=1.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  statfsSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCommand } from '../../agent/os/exec.ts'
import { createDiskCleanupExecutor } from '../../agent/remediations/disk-cleanup.ts'
import type { AuditEntry, ExecutorContext } from '../../agent/remediations/types.ts'
import { RemediationResultV1Schema } from '../../shared/contracts/index.ts'
import { DiskCleanupParamsSchema } from '../../shared/registry/remediations/disk-cleanup.ts'
import { requireOrSkip } from '../support/require.ts'

const MiB = 1024 * 1024
const HOUR = 3_600_000
const DAY = 24 * HOUR

const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' })

/** Can this process mount a tmpfs? (root, mount(8), a kernel that lets us.) */
function canMountTmpfs(): { ok: boolean; why: string } {
  if (process.getuid?.() !== 0) return { ok: false, why: 'not root (mount, chown and chattr need root)' }
  const dir = mkdtempSync(join(tmpdir(), 'ansai-mount-probe-'))
  try {
    const m = run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir])
    if (m.status !== 0) return { ok: false, why: `mount -t tmpfs failed: ${m.stderr || m.error}` }
    run('umount', [dir])
    return { ok: true, why: '' }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const probe = canMountTmpfs()
const canMount = requireOrSkip('a tmpfs mount (root)', probe.ok, probe.why)

/** Writes `bytes` of content with mtime (and atime) set `ageMs` (`atimeAgeMs`) ago. */
function put(path: string, content: Buffer, ageMs: number, atimeAgeMs = ageMs): void {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, content)
  setAge(path, ageMs, atimeAgeMs)
}

function setAge(path: string, ageMs: number, atimeAgeMs = ageMs): void {
  const now = Date.now()
  // Whole seconds, so the times compression copies are exactly comparable.
  utimesSync(path, Math.floor((now - atimeAgeMs) / 1000), Math.floor((now - ageMs) / 1000))
}

const random = (n: number): Buffer => randomBytes(n)
const text = (n: number): Buffer => {
  const line = 'Nov  1 03:14:15 web1 app[4242]: GET /api/v1/items 200 12ms user=alice req=7f3a\n'
  return Buffer.from(line.repeat(Math.ceil(n / line.length)).slice(0, n))
}

interface Entry {
  type: 'file' | 'symlink' | 'fifo' | 'dir' | 'other'
  sha?: string
  target?: string
  mtimeNs?: bigint
  atimeNs?: bigint
  blocks?: bigint
  size?: bigint
}

/** sha256 of a file read with O_NOATIME, so hashing does not make an old temp file look recently used. */
function sha256(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOATIME | constants.O_NOFOLLOW)
  try {
    const h = createHash('sha256')
    const buf = Buffer.alloc(1 << 20)
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      h.update(buf.subarray(0, n))
    }
    return h.digest('hex')
  } finally {
    closeSync(fd)
  }
}

/** Every entry under `dir` (entering mounts, never following symlinks), by path. */
function snapshot(dir: string, into = new Map<string, Entry>()): Map<string, Entry> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const st = lstatSync(p, { bigint: true })
    if (st.isSymbolicLink()) into.set(p, { type: 'symlink', target: readlinkSync(p) })
    else if (st.isFIFO()) into.set(p, { type: 'fifo', mtimeNs: st.mtimeNs })
    else if (st.isDirectory()) {
      into.set(p, { type: 'dir' })
      snapshot(p, into)
    } else if (st.isFile()) {
      into.set(p, {
        type: 'file',
        sha: sha256(p),
        mtimeNs: st.mtimeNs,
        atimeNs: st.atimeNs,
        blocks: st.blocks,
        size: st.size,
      })
    } else into.set(p, { type: 'other' })
  }
  return into
}

const usedBytes = (path: string): number => {
  const s = statfsSync(path, { bigint: true })
  return Number((s.blocks - s.bfree) * s.bsize)
}
const usedPercent = (path: string): number => {
  const s = statfsSync(path, { bigint: true })
  return (Number(s.blocks - s.bfree) / Number(s.blocks)) * 100
}

function makeCtx(dryRun: boolean, logs: string[] = []): ExecutorContext {
  return { key: 'disk-cleanup-test', dryRun, now: () => new Date(), run: runCommand, log: (l) => logs.push(l) }
}

const byAction = (audit: AuditEntry[], action: string): string[] =>
  audit
    .filter((a) => a.action === action)
    .map((a) => a.target)
    .sort()

describe.skipIf(!canMount)('disk-cleanup on a real 64 MiB tmpfs', () => {
  let M = ''
  let OUT = ''
  let LOG = ''
  let TMP = ''
  let STORE = ''
  let holder: ChildProcess | undefined
  const mounted: string[] = []
  const immutable: string[] = []

  // What the run must remove, compress and keep (paths under M unless said otherwise).
  const remove: Record<string, string[]> = { logs: [], temp: [], 'core-dumps': [] }
  const compress: string[] = []
  let keep: string[] = []
  let before = new Map<string, Entry>()

  const executor = () => createDiskCleanupExecutor({ coredumpDir: STORE })
  const params = () =>
    DiskCleanupParamsSchema.parse({
      roots: [LOG, TMP, join(M, 'rootlink'), join(M, 'missing')],
      logsOlderThan: '30d',
      compressLogsOlderThan: '2d',
      tempOlderThan: '7d',
      coreDumps: '3d',
    })

  beforeAll(async () => {
    M = mkdtempSync(join(tmpdir(), 'ansai-disk-'))
    OUT = mkdtempSync(join(tmpdir(), 'ansai-disk-outside-'))
    expect(run('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', M]).status).toBe(0)
    mounted.push(M)
    LOG = join(M, 'log')
    TMP = join(M, 'tmp')
    STORE = join(M, 'coredump')
    for (const d of [LOG, TMP, STORE]) mkdirSync(d)

    const old = 40 * DAY
    // logs: old, deleted
    const oldLogs: [string, Buffer][] = [
      ['old.log', random(11 * MiB)],
      ['app.log.1', random(6 * MiB)],
      ['app.log-20240101', random(6 * MiB)],
      ['app.log.2.gz', random(4 * MiB)],
      ['sub/deep/worker.log', random(3 * MiB)],
      ['with space.log', random(64 * 1024)],
      ['new\nline.log', random(64 * 1024)],
      ['$(touch PWNED).log', random(64 * 1024)],
      ['semi;rm -rf nothing.log', random(64 * 1024)],
      ['`id`.log', random(64 * 1024)],
      ['quote\'".log', random(64 * 1024)],
      ['-rf.log', random(64 * 1024)],
      ['rotated.log.7.zst', random(256 * 1024)],
      ['rotated.log-20250101.xz', random(256 * 1024)],
    ]
    for (const [name, content] of oldLogs) {
      put(join(LOG, name), content, old)
      remove.logs?.push(join(LOG, name))
    }
    put(join(TMP, 'old.log'), random(MiB), old)
    remove.logs?.push(join(TMP, 'old.log'))

    // compressed-logs: rotated, uncompressed, 5 days old (younger than 30d, older than 2d), owner and mode kept
    put(join(LOG, 'app.log.3'), text(4 * MiB), 5 * DAY)
    chownSync(join(LOG, 'app.log.3'), 4242, 4343)
    chmodSync(join(LOG, 'app.log.3'), 0o640)
    setAge(join(LOG, 'app.log.3'), 5 * DAY)
    compress.push(join(LOG, 'app.log.3'))

    // core dumps: in the store (any name) and `core.<pid>` under the roots
    put(join(STORE, 'core.sleep.0.8c3e.4242.1700000000000000.zst'), random(2 * MiB), 10 * DAY)
    put(join(LOG, 'core.4242'), random(MiB), 10 * DAY)
    remove['core-dumps']?.push(join(STORE, 'core.sleep.0.8c3e.4242.1700000000000000.zst'), join(LOG, 'core.4242'))

    // temp: neither modified nor accessed for 7 days
    put(join(TMP, 'old1.dat'), random(3 * MiB), 10 * DAY)
    put(join(TMP, 'sub/old2.dat'), random(MiB), 10 * DAY)
    put(join(TMP, 'spaced name.tmp'), random(512 * 1024), 10 * DAY)
    remove.temp?.push(join(TMP, 'old1.dat'), join(TMP, 'sub/old2.dat'), join(TMP, 'spaced name.tmp'))

    // everything below must survive, byte for byte
    put(join(LOG, 'app.log'), text(3 * MiB), HOUR) // new
    put(join(LOG, 'recent.log.1'), text(MiB), DAY) // rotated, but younger than 2d
    put(join(LOG, 'held.log'), random(4 * MiB), old) // old, but held open by a process
    put(join(LOG, 'hl.log'), random(MiB), old) // old, but hard-linked from outside the roots
    mkdirSync(join(M, 'elsewhere'))
    linkSync(join(LOG, 'hl.log'), join(M, 'elsewhere', 'hl-copy.log'))
    put(join(LOG, 'immutable.log'), random(MiB), old) // old, but unlink fails (EPERM)
    put(join(LOG, 'data.bin'), random(2 * MiB), old) // no category names it
    put(join(LOG, 'notes.txt'), random(512 * 1024), old)
    put(join(LOG, 'app.log.bak'), random(512 * 1024), old)
    put(join(LOG, 'app.log.1.bz2'), random(512 * 1024), old) // .bz2 is not one of the documented forms
    put(join(LOG, 'core.77'), random(256 * 1024), HOUR) // a young core
    put(join(LOG, 'core.abc'), random(256 * 1024), 10 * DAY) // not core.<pid>
    put(join(STORE, 'core.new.zst'), random(512 * 1024), HOUR)
    put(join(TMP, 'recent-atime.dat'), random(MiB), 10 * DAY, HOUR) // old mtime, read an hour ago
    put(join(TMP, 'fresh.dat'), random(MiB), HOUR)
    put(join(M, 'elsewhere', 'old.log'), random(MiB), old) // outside the roots, reached by a bind mount below
    put(join(M, 'unnamed', 'old.log'), random(256 * 1024), old) // under M but under no root

    // fifo: never opened (that would block), never removed
    expect(run('mkfifo', [join(LOG, 'pipe.log')]).status).toBe(0)
    setAge(join(LOG, 'pipe.log'), old)

    // symlinks: to a file and a directory outside, to a file inside, dangling
    put(join(OUT, 'target.log'), random(MiB), old)
    put(join(OUT, 'dir', 'old.log'), random(MiB), old)
    symlinkSync(join(OUT, 'target.log'), join(LOG, 'outside.log'))
    symlinkSync(join(OUT, 'dir'), join(LOG, 'linkdir'))
    symlinkSync(join(LOG, 'data.bin'), join(LOG, 'alias.log'))
    symlinkSync('/nonexistent/x.log', join(LOG, 'dangling.log'))
    symlinkSync(LOG, join(M, 'rootlink')) // a root that is a symlink: refused

    // mounts inside a root: another tmpfs, and a bind mount of the same filesystem (same st_dev)
    mkdirSync(join(LOG, 'nested'))
    expect(run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', join(LOG, 'nested')]).status).toBe(0)
    mounted.push(join(LOG, 'nested'))
    put(join(LOG, 'nested', 'old.log'), random(MiB), old)
    mkdirSync(join(LOG, 'bound'))
    expect(run('mount', ['--bind', join(M, 'elsewhere'), join(LOG, 'bound')]).status).toBe(0)
    mounted.push(join(LOG, 'bound'))

    expect(run('chattr', ['+i', join(LOG, 'immutable.log')]).status).toBe(0)
    immutable.push(join(LOG, 'immutable.log'))

    // a real process holding held.log open (as its stdin); our own descriptor is closed right after
    const fd = openSync(join(LOG, 'held.log'), 'r')
    holder = spawn('sleep', ['600'], { stdio: [fd, 'ignore', 'ignore'] })
    await new Promise<void>((resolve, reject) => {
      holder?.once('spawn', resolve)
      holder?.once('error', reject)
    })
    closeSync(fd)

    before = snapshot(M)
    for (const [p, e] of snapshot(OUT)) before.set(p, e)
    const removed = new Set([...Object.values(remove).flat(), ...compress])
    keep = [...before.keys()].filter((p) => !removed.has(p))
  })

  afterAll(() => {
    holder?.kill('SIGKILL')
    for (const f of immutable) run('chattr', ['-i', f])
    for (const m of mounted.reverse()) {
      if (run('umount', [m]).status !== 0) run('umount', ['-l', m])
    }
    if (M) rmSync(M, { recursive: true, force: true })
    if (OUT) rmSync(OUT, { recursive: true, force: true })
  })

  it('starts past 90 %', () => {
    expect(usedPercent(M)).toBeGreaterThan(90)
  })

  it('dry-run lists every file it would remove or compress, with sizes, and changes nothing', async () => {
    const { result, audit } = await executor().execute(params(), makeCtx(true))
    expect(RemediationResultV1Schema.parse(result)).toEqual(result)
    expect(result.status).toBe('dry-run')
    expect(result.bytesRecovered).toBeUndefined()

    // The immutable file is listed: only the unlink itself can tell.
    expect(byAction(audit, 'would-delete')).toEqual(
      [...Object.values(remove).flat(), join(LOG, 'immutable.log')].sort(),
    )
    expect(byAction(audit, 'would-compress')).toEqual(compress)
    for (const a of audit.filter((x) => x.action.startsWith('would-'))) {
      const e = before.get(a.target)
      expect(a.detail).toBe(`size ${e?.size}`)
      if (a.action === 'would-delete') expect(a.bytes).toBe(Number((e?.blocks ?? 0n) * 512n))
    }
    expect(result.itemsTotal).toBe(Object.values(remove).flat().length + 1 + compress.length)
    expect(result.summary).toMatch(/^dry-run: would recover \d+\.\d MiB: logs .*\(16 files\)/)

    const after = snapshot(M)
    for (const [p, e] of snapshot(OUT)) after.set(p, e)
    expect(after).toEqual(before) // contents, atimes and mtimes: not even read
  })

  it('a real run brings usage below 80 %, recovers exactly what statfs sees, and keeps what it must', async () => {
    const usedBefore = usedBytes(M)
    const logs: string[] = []
    const { result, audit } = await executor().execute(params(), makeCtx(false, logs))
    const usedAfter = usedBytes(M)
    expect(RemediationResultV1Schema.parse(result)).toEqual(result)
    expect(JSON.stringify(result).length).toBeLessThan(24_000)
    expect(result.status).toBe('succeeded')

    // usage
    expect(usedPercent(M)).toBeLessThan(80)

    // bytes recovered, per category, from the files' own blocks
    const blocksOf = (paths: string[]) => paths.reduce((s, p) => s + Number((before.get(p)?.blocks ?? 0n) * 512n), 0)
    const gz = lstatSync(join(LOG, 'app.log.3.gz'), { bigint: true })
    expect(result.bytesRecovered).toEqual({
      logs: blocksOf(remove.logs ?? []),
      'compressed-logs': blocksOf(compress) - Number(gz.blocks * 512n),
      temp: blocksOf(remove.temp ?? []),
      'core-dumps': blocksOf(remove['core-dumps'] ?? []),
    })
    // ... equal to the change statfs sees, with a tolerance of 0 bytes: tmpfs counts whole pages in both
    const recovered = Object.values(result.bytesRecovered ?? {}).reduce((a, b) => a + b, 0)
    console.info(
      `disk-cleanup on tmpfs: recovered ${recovered} B (${JSON.stringify(result.bytesRecovered)}), statfs used ` +
        `${usedBefore} -> ${usedAfter} B (delta ${usedBefore - usedAfter} B, ${usedPercent(M).toFixed(1)} % used after)\n` +
        `summary: ${result.summary}`,
    )
    expect(recovered).toBe(usedBefore - usedAfter)
    const fsEvidence = (result.evidence.filesystems as { paths: string[]; freedBytes: number }[]).find((f) =>
      f.paths.includes(LOG),
    )
    expect(fsEvidence?.freedBytes).toBe(recovered)
    expect(fsEvidence?.paths).toEqual(expect.arrayContaining([LOG, TMP, STORE]))

    // removed and compressed
    for (const p of Object.values(remove).flat()) expect(existsSync(p), p).toBe(false)
    expect(existsSync(join(LOG, 'app.log.3'))).toBe(false)
    const original = before.get(join(LOG, 'app.log.3'))
    expect(
      createHash('sha256')
        .update(gunzipSync(readFileSync(join(LOG, 'app.log.3.gz'))))
        .digest('hex'),
    ).toBe(original?.sha)
    expect(Number(gz.mode) & 0o7777).toBe(0o640)
    expect([Number(gz.uid), Number(gz.gid)]).toEqual([4242, 4343])
    expect(gz.mtimeNs).toBe(original?.mtimeNs)
    expect(byAction(audit, 'delete')).toEqual(Object.values(remove).flat().sort())
    expect(byAction(audit, 'compress')).toEqual(compress)

    // kept, byte for byte (contents; the symlinks keep their targets)
    const after = snapshot(M)
    for (const [p, e] of snapshot(OUT)) after.set(p, e)
    for (const p of keep) {
      const b = before.get(p) as Entry
      const a = after.get(p)
      expect(a?.type, p).toBe(b.type)
      expect(a?.sha, p).toBe(b.sha)
      expect(a?.target, p).toBe(b.target)
    }
    expect([...after.keys()].filter((p) => !before.has(p))).toEqual([join(LOG, 'app.log.3.gz')])

    // names were data: nothing ran
    expect(existsSync(join(LOG, 'PWNED'))).toBe(false)
    expect(existsSync('PWNED')).toBe(false)
    expect(existsSync(join(LOG, 'nothing.log'))).toBe(false)

    // the process still holds its file; the skips are counted
    expect(holder?.exitCode).toBeNull()
    expect(result.evidence.skipped).toMatchObject({ open: 1, 'hard-linked': 1, error: 1 })
    expect(result.evidence.errors).toEqual({ EPERM: 1 })
    const roots = result.evidence.roots as { root: string; status: string; mountPoints: number; symlinks: number }[]
    expect(roots.map((r) => [r.root, r.status])).toEqual([
      [LOG, 'scanned'],
      [TMP, 'scanned'],
      [join(M, 'rootlink'), 'refused'],
      [join(M, 'missing'), 'missing'],
    ])
    expect(roots[0]?.mountPoints).toBe(2) // nested tmpfs + bind mount
    expect(roots[0]?.symlinks).toBe(4) // outside.log, linkdir, alias.log, dangling.log
    const problems = result.evidence.problems as string[]
    expect(problems.some((p) => p.includes('rootlink') && p.includes('symlink'))).toBe(true)
    expect(problems.some((p) => p.includes('missing') && p.includes('does not exist'))).toBe(true)
    expect(result.summary).toMatch(/^recovered \d+\.\d MiB: logs \d+\.\d MiB \(15 files\), compressed-logs/)
    expect(result.summary).toContain('left alone (open 1, hard-linked 1, error 1)')
  })

  it('a second run finds nothing more to do', async () => {
    const usedBefore = usedBytes(M)
    const { result } = await executor().execute(params(), makeCtx(false))
    expect(result.status).toBe('succeeded')
    expect(result.bytesRecovered).toEqual({ logs: 0, 'compressed-logs': 0, temp: 0, 'core-dumps': 0 })
    expect(usedBytes(M)).toBe(usedBefore)
  })

  it('fails, without throwing, when no root is usable', async () => {
    const p = DiskCleanupParamsSchema.parse({ roots: [join(M, 'rootlink'), join(M, 'missing')], logsOlderThan: '1d' })
    const { result } = await executor().execute(p, makeCtx(false))
    expect(result.status).toBe('failed')
    expect(result.error).toBe('logs: no usable root')
    expect(existsSync(join(LOG, 'held.log'))).toBe(true)
  })

  it('stays bounded for 100,000 files: first 50 paths in the result, all of them in the audit, progress logged', async () => {
    const many = join(M, 'many')
    mkdirSync(many)
    const t = Math.floor((Date.now() - 40 * DAY) / 1000)
    const long = 'x'.repeat(150)
    for (let i = 0; i < 100_000; i++) {
      const p = join(many, `${long}-${i}\n;$(id).log`)
      writeFileSync(p, '')
      utimesSync(p, t, t + (i % 1000))
    }
    const logs: string[] = []
    const p = DiskCleanupParamsSchema.parse({ roots: [many], logsOlderThan: '30d', maxFiles: 99_000 })
    const { result, audit } = await executor().execute(p, makeCtx(false, logs))
    const line = JSON.stringify(result)
    expect(line.length).toBeLessThan(16_001)
    expect(RemediationResultV1Schema.parse(result)).toEqual(result)
    expect(result.itemsTotal).toBe(99_000)
    expect(result.items?.length).toBeGreaterThan(0)
    expect(result.items?.length).toBeLessThanOrEqual(50)
    expect(audit.filter((a) => a.action === 'delete')).toHaveLength(99_000)
    // oldest first: the 1,000 left are the newest (mtime offsets 990..999, 100 files each)
    const left = readdirSync(many)
    expect(left).toHaveLength(1000)
    expect(left.every((n) => lstatSync(join(many, n)).mtimeMs >= (t + 990) * 1000)).toBe(true)
    expect(result.summary).toContain('stopped at maxFiles 99000: 1000 files more eligible')
    expect(result.evidence.maxFiles).toEqual({ limit: 99_000, left: 1000 })
    expect(logs).toContain('disk-cleanup: scanned 100000 files')
    expect(logs).toContain('disk-cleanup: cleaned 99000/99000 files (0 B recovered)')
    rmSync(many, { recursive: true })
  }, 120_000)
})
