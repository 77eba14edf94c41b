import { closeSync, linkSync, lstatSync, mkdtempSync, openSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { openFilesFrom } from '../../../agent/os/open-files.ts'
import { judge, type RecheckContext } from '../../../agent/remediations/disk-cleanup/act.ts'
import {
  type AgeBounds,
  classifyFile,
  compressedName,
  type FileFacts,
  isCoreName,
  isLogName,
  isOlderThan,
  isRotatedUncompressedLogName,
  isTempRoot,
  TEMP_FILE_PREFIX,
} from '../../../agent/remediations/disk-cleanup/patterns.ts'
import type { Candidate } from '../../../agent/remediations/disk-cleanup/walk.ts'

const DAY = 86_400_000
const NOW = Date.parse('2026-11-20T12:00:00Z')
const nsAgo = (ms: number): bigint => BigInt(NOW - ms) * 1_000_000n

describe('log names (registry: *.log, *.log.1, *.log-20261101, and their .gz/.xz/.zst forms)', () => {
  it.each([
    'app.log',
    'app.log.1',
    'app.log.12',
    'app.log-20261101',
    'app.log.gz',
    'app.log.1.gz',
    'app.log.3.xz',
    'app.log-20261101.zst',
    'nginx.access.log',
    'x.log',
    'with space.log',
    'new\nline.log',
    '$(touch PWNED).log',
    'a;rm -rf b.log',
    '-rf.log',
    '..log',
  ])('%j is a log', (name) => {
    expect(isLogName(name)).toBe(true)
  })

  it.each([
    '.log',
    'log',
    'app.log.bak',
    'app.log.1.bz2',
    'app.log.gz.1',
    'app.log-2026',
    'app.log-202611011',
    'app.log.',
    'app.logs',
    'app.LOG',
    'app.txt',
    'syslog',
    'syslog.1',
    'app.log.1.gz.tmp',
    'app.log\n',
    `${TEMP_FILE_PREFIX}123-abcdef.log`,
  ])('%j is not a log', (name) => {
    expect(isLogName(name)).toBe(false)
  })

  it('rotated and uncompressed: numbered or dated, no compression suffix', () => {
    expect(['app.log.1', 'app.log.7', 'app.log-20261101', 'a b.log.2'].every(isRotatedUncompressedLogName)).toBe(true)
    expect(
      ['app.log', 'app.log.1.gz', 'app.log-20261101.xz', 'app.log.bak', 'app.log.1.zst'].some(
        isRotatedUncompressedLogName,
      ),
    ).toBe(false)
    expect(compressedName('app.log.1')).toBe('app.log.1.gz')
  })

  it('every rotated uncompressed log is a log, and its compressed name is a log too (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (name) => {
        if (isRotatedUncompressedLogName(name)) {
          expect(isLogName(name)).toBe(true)
          expect(isLogName(compressedName(name))).toBe(true)
          expect(isRotatedUncompressedLogName(compressedName(name))).toBe(false)
        }
      }),
    )
  })
})

describe('core dump names', () => {
  it('core and core.<pid> only', () => {
    expect(['core', 'core.1', 'core.4242'].every(isCoreName)).toBe(true)
    expect(['core.abc', 'core.', 'mycore', 'core.1.gz', 'Core', 'core-1', 'core.1 '].some(isCoreName)).toBe(false)
  })
})

describe('temporary roots', () => {
  it('/tmp, /var/tmp, and roots whose last segment is tmp or temp', () => {
    expect(['/tmp', '/var/tmp', '/srv/app/tmp', '/home/u/temp'].every(isTempRoot)).toBe(true)
    expect(['/var/log', '/srv/Temp', '/srv/tmpfiles', '/tmp2', '/var/tmp/x', '/temporary'].some(isTempRoot)).toBe(false)
  })
})

describe('age checks', () => {
  it('strictly older than the bound', () => {
    expect(isOlderThan(nsAgo(30 * DAY + 1), NOW, 30 * DAY)).toBe(true)
    expect(isOlderThan(nsAgo(30 * DAY), NOW, 30 * DAY)).toBe(false)
    expect(isOlderThan(nsAgo(30 * DAY) + 1n, NOW, 30 * DAY)).toBe(false)
    expect(isOlderThan(nsAgo(30 * DAY) - 1n, NOW, 30 * DAY)).toBe(true)
  })

  it('a time in the future is never old', () => {
    expect(isOlderThan(nsAgo(-365 * DAY), NOW, 1)).toBe(false)
  })

  it('is exact in nanoseconds far from the epoch (no float rounding)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 4_000_000_000_000_000_000n }),
        fc.integer({ min: 1, max: 400 * DAY }),
        (t, bound) => {
          const nowNs = BigInt(NOW) * 1_000_000n
          expect(isOlderThan(t, NOW, bound)).toBe(nowNs - t > BigInt(bound) * 1_000_000n)
        },
      ),
    )
  })
})

describe('classifyFile', () => {
  const bounds: AgeBounds = { logs: 30 * DAY, 'compressed-logs': 2 * DAY, temp: 7 * DAY, 'core-dumps': 3 * DAY }
  const facts = (name: string, mAgo: number, aAgo = mAgo, more: Partial<FileFacts> = {}): FileFacts => ({
    name,
    mtimeNs: nsAgo(mAgo),
    atimeNs: nsAgo(aAgo),
    inTempRoot: false,
    inCoredumpStore: false,
    ...more,
  })

  it('logs by mtime; a younger rotated log is compressed; a young log is left', () => {
    expect(classifyFile(facts('app.log', 31 * DAY), bounds, NOW)).toBe('logs')
    expect(classifyFile(facts('app.log.1', 31 * DAY), bounds, NOW)).toBe('logs')
    expect(classifyFile(facts('app.log.1', 5 * DAY), bounds, NOW)).toBe('compressed-logs')
    expect(classifyFile(facts('app.log.1.gz', 5 * DAY), bounds, NOW)).toBeUndefined()
    expect(classifyFile(facts('app.log', 5 * DAY), bounds, NOW)).toBeUndefined()
    expect(classifyFile(facts('app.log.1', DAY), bounds, NOW)).toBeUndefined()
    // access time does not make a log young
    expect(classifyFile(facts('app.log', 31 * DAY, 0), bounds, NOW)).toBe('logs')
  })

  it('only the selected categories', () => {
    expect(classifyFile(facts('app.log', 31 * DAY), { temp: DAY }, NOW)).toBeUndefined()
    expect(classifyFile(facts('app.log.1', 31 * DAY), { 'compressed-logs': DAY }, NOW)).toBe('compressed-logs')
    expect(classifyFile(facts('x.dat', 31 * DAY, 31 * DAY, { inTempRoot: true }), { logs: DAY }, NOW)).toBeUndefined()
  })

  it('temp: in a temporary root, neither modified nor accessed for the bound', () => {
    const t = { inTempRoot: true }
    expect(classifyFile(facts('x.dat', 8 * DAY, 8 * DAY, t), bounds, NOW)).toBe('temp')
    expect(classifyFile(facts('x.dat', 8 * DAY, DAY, t), bounds, NOW)).toBeUndefined()
    expect(classifyFile(facts('x.dat', DAY, 8 * DAY, t), bounds, NOW)).toBeUndefined()
    expect(classifyFile(facts('x.dat', 8 * DAY, 8 * DAY), bounds, NOW)).toBeUndefined()
    // a log in /tmp spared by logsOlderThan is still temp by its own rule
    expect(classifyFile(facts('y.log', 8 * DAY, 8 * DAY, t), bounds, NOW)).toBe('temp')
  })

  it('core dumps: core / core.<pid> under the roots, anything in the store, by mtime', () => {
    expect(classifyFile(facts('core.4242', 4 * DAY), bounds, NOW)).toBe('core-dumps')
    expect(classifyFile(facts('core', 4 * DAY), bounds, NOW)).toBe('core-dumps')
    expect(classifyFile(facts('core.4242', DAY), bounds, NOW)).toBeUndefined()
    expect(classifyFile(facts('core.abc', 4 * DAY), bounds, NOW)).toBeUndefined()
    const store = { inCoredumpStore: true }
    expect(classifyFile(facts('core.sleep.0.abc.1.zst', 4 * DAY, 4 * DAY, store), bounds, NOW)).toBe('core-dumps')
    expect(classifyFile(facts('core.sleep.0.abc.1.zst', DAY, DAY, store), bounds, NOW)).toBeUndefined()
    // in the store, nothing but core dumps: an old *.log there stays
    expect(classifyFile(facts('x.log', 40 * DAY, 40 * DAY, store), bounds, NOW)).toBe('core-dumps')
    expect(classifyFile(facts('x.log', 40 * DAY, 40 * DAY, store), { logs: DAY }, NOW)).toBeUndefined()
  })

  it("never the executor's own temporary files", () => {
    const t = { inTempRoot: true }
    expect(classifyFile(facts(`${TEMP_FILE_PREFIX}1-ab`, 40 * DAY, 40 * DAY, t), bounds, NOW)).toBeUndefined()
  })

  it('never throws, whatever the name and times (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n }),
        fc.boolean(),
        fc.boolean(),
        (name, m, a, inTempRoot, inCoredumpStore) => {
          const c = classifyFile({ name, mtimeNs: m, atimeNs: a, inTempRoot, inCoredumpStore }, bounds, NOW)
          expect([undefined, 'logs', 'compressed-logs', 'temp', 'core-dumps']).toContain(c)
        },
      ),
    )
  })
})

describe('the last check before a change (judge)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ansai-judge-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const candidateOf = (path: string): Candidate => {
    const st = lstatSync(path, { bigint: true })
    return {
      category: 'logs',
      path,
      dir: { path: dir, dev: 0n, ino: 0n },
      name: path.slice(dir.length + 1),
      dev: st.dev,
      ino: st.ino,
      size: st.size,
      blocks: st.blocks,
      mtimeNs: st.mtimeNs,
      atimeNs: st.atimeNs,
      nlink: st.nlink,
      mode: Number(st.mode),
      uid: Number(st.uid),
      gid: Number(st.gid),
    }
  }
  const rc = (over: Partial<RecheckContext> = {}): RecheckContext => ({
    openFiles: openFilesFrom([]),
    stillEligible: () => true,
    ...over,
  })
  const fresh = (p: string) => lstatSync(p, { bigint: true })

  it('passes an unchanged file, refuses a changed, re-linked, younger or open one', () => {
    const p = join(dir, 'a.log')
    writeFileSync(p, 'hello\n')
    utimesSync(p, 1_000_000, 1_000_000)
    const c = candidateOf(p)
    expect(judge(c, fresh(p), rc()).ok).toBe(true)

    expect(judge(c, fresh(p), rc({ stillEligible: () => false }))).toMatchObject({ ok: false, reason: 'young' })
    expect(judge(c, fresh(p), rc({ openFiles: openFilesFrom([{ dev: c.dev, ino: c.ino }]) }))).toMatchObject({
      ok: false,
      reason: 'open',
    })

    writeFileSync(p, 'hello, world\n')
    utimesSync(p, 1_000_000, 1_000_000)
    expect(judge(c, fresh(p), rc())).toMatchObject({ ok: false, reason: 'changed' })

    const c2 = candidateOf(p)
    utimesSync(p, 1_000_000, 1_000_001)
    expect(judge(c2, fresh(p), rc())).toMatchObject({ ok: false, reason: 'changed' })

    const c3 = candidateOf(p)
    linkSync(p, join(dir, 'b.log'))
    expect(judge(c3, fresh(p), rc())).toMatchObject({ ok: false, reason: 'hard-linked' })

    // replaced by another file under the same name
    rmSync(join(dir, 'b.log'))
    const c4 = candidateOf(p)
    const held = openSync(p, 'r') // keeps the old inode from being reused by the new file
    rmSync(p)
    writeFileSync(p, 'hello, world\n')
    utimesSync(p, 1_000_000, 1_000_001)
    expect(judge(c4, fresh(p), rc())).toMatchObject({ ok: false, reason: 'changed', detail: 'replaced (other inode)' })
    closeSync(held)
  })
})
