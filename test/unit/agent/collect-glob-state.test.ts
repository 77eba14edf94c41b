import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { expandGlob, globToRegExp, matchesAny } from '../../../agent/collect/glob.ts'
import { hostIdentity, hostIdFromHostname } from '../../../agent/collect/host.ts'
import { nextSeq, readJson, withLockFile, writeJson } from '../../../agent/collect/state.ts'
import { HostSchema } from '../../../shared/contracts/index.ts'
import { fakeFs, tempDir } from '../../fixtures/collect/fakes.ts'

describe('globToRegExp', () => {
  it('* and ? stay within one level, [..] is a class, the rest is literal', () => {
    const re = globToRegExp('/etc/letsencrypt/live/*/cert.pem')
    expect(re.test('/etc/letsencrypt/live/example.com/cert.pem')).toBe(true)
    expect(re.test('/etc/letsencrypt/live/a/b/cert.pem')).toBe(false)
    expect(globToRegExp('app-?.service').test('app-1.service')).toBe(true)
    expect(globToRegExp('app-?.service').test('app-12.service')).toBe(false)
    expect(globToRegExp('db-[0-9].gz').test('db-7.gz')).toBe(true)
    expect(globToRegExp('db-[!0-9].gz').test('db-7.gz')).toBe(false)
    expect(globToRegExp('a.b+c(d)').test('a.b+c(d)')).toBe(true)
    expect(globToRegExp('a.b').test('axb')).toBe(false)
    expect(globToRegExp('weird[').test('weird[')).toBe(true)
  })

  it('** crosses levels with globstar, and /x/** covers /x itself', () => {
    const opts = { globstar: true }
    expect(matchesAny('/var/lib/docker/overlay2/abc/merged', ['/var/lib/docker/**'], opts)).toBe(true)
    expect(matchesAny('/var/lib/docker', ['/var/lib/docker/**'], opts)).toBe(true)
    expect(matchesAny('/var/lib/dockerd', ['/var/lib/docker/**'], opts)).toBe(false)
    expect(matchesAny('/mnt/a/b', ['/mnt/*'], opts)).toBe(false)
    expect(matchesAny('/mnt/a', ['/mnt/*'], opts)).toBe(true)
    expect(matchesAny('/srv/x/data', ['/srv/**/data'], opts)).toBe(true)
    expect(matchesAny('/srv/data', ['/srv/**/data'], opts)).toBe(true)
  })
})

describe('expandGlob', () => {
  const fs = fakeFs({
    files: {
      '/etc/letsencrypt/live/a.example/cert.pem': 'A',
      '/etc/letsencrypt/live/b.example/cert.pem': 'B',
      '/etc/letsencrypt/live/README': 'readme',
      '/etc/letsencrypt/live/.hidden/cert.pem': 'H',
    },
    dirs: { '/etc/private': { error: 'EACCES' } },
  })

  it('walks one level per glob segment, sorted, hidden entries only for a dotted segment', async () => {
    const out = await expandGlob('/etc/letsencrypt/live/*/cert.pem', fs)
    expect(out.problems).toEqual([])
    expect(out.matches).toEqual([
      { path: '/etc/letsencrypt/live/README/cert.pem', literal: false },
      { path: '/etc/letsencrypt/live/a.example/cert.pem', literal: false },
      { path: '/etc/letsencrypt/live/b.example/cert.pem', literal: false },
    ])
  })

  it('a path without glob characters is literal; a missing directory matches nothing; EACCES is a problem', async () => {
    expect((await expandGlob('/etc/x.pem', fs)).matches).toEqual([{ path: '/etc/x.pem', literal: true }])
    expect(await expandGlob('/nowhere/*/cert.pem', fs)).toEqual({ matches: [], problems: [] })
    const denied = await expandGlob('/etc/private/*.pem', fs)
    expect(denied.matches).toEqual([])
    expect(denied.problems).toEqual(['/etc/private: permission denied (EACCES)'])
  })
})

describe('state files', () => {
  it('writeJson is atomic (no temp file left) and readJson forgives a missing or broken file', async () => {
    const dir = tempDir()
    const file = join(dir, 'cache', 'x.json')
    expect(await readJson(file)).toBeUndefined()
    await writeJson(file, { a: 1 })
    expect(await readJson(file)).toEqual({ a: 1 })
    expect(readdirSync(join(dir, 'cache'))).toEqual(['x.json'])
    writeFileSync(file, '{not json')
    expect(await readJson(file)).toBeUndefined()
  })

  it('seq increases strictly, survives restarts, and is never below the clock in seconds', async () => {
    const dir = tempDir()
    const t = new Date('2026-11-23T10:00:00Z')
    const first = await nextSeq(dir, t)
    expect(first).toBe(t.getTime() / 1000)
    expect(await nextSeq(dir, t)).toBe(first + 1)
    expect(await nextSeq(dir, t)).toBe(first + 2)
    expect(readFileSync(join(dir, 'seq'), 'utf8')).toBe(`${first + 2}\n`)
    // an hour later the clock leads again
    expect(await nextSeq(dir, new Date(t.getTime() + 3_600_000))).toBe(first + 3600)
    // a clock that went back does not send seq back
    expect(await nextSeq(dir, new Date(t.getTime() - 86_400_000))).toBe(first + 3601)
    // a lost state directory: still ahead of everything sent before the loss (the clock is)
    const fresh = tempDir()
    expect(await nextSeq(fresh, new Date(t.getTime() + 7_200_000))).toBeGreaterThan(first + 3601)
  })

  it('concurrent collects get distinct sequence numbers (lock file)', async () => {
    const dir = tempDir()
    const t = new Date('2026-11-23T10:00:00Z')
    const seqs = await Promise.all(Array.from({ length: 20 }, () => nextSeq(dir, t)))
    expect(new Set(seqs).size).toBe(20)
    expect(Math.max(...seqs)).toBe(t.getTime() / 1000 + 19)
    expect(readdirSync(dir).sort()).toEqual(['seq'])
  })

  it('a stale lock left by a dead process is broken', async () => {
    const dir = tempDir()
    const lock = join(dir, 'x.lock')
    writeFileSync(lock, '99999')
    const { utimesSync } = await import('node:fs')
    utimesSync(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
    expect(await withLockFile(lock, async () => 'done')).toBe('done')
  })
})

describe('host identity', () => {
  it('is config.host.id, else the host name made into a valid id', () => {
    expect(hostIdentity({ id: 'i-0abc', tags: { role: 'web' } }, 'web-1')).toEqual({
      id: 'i-0abc',
      hostname: 'web-1',
      tags: { role: 'web' },
    })
    expect(hostIdentity(undefined, 'web-1.example.com')).toEqual({
      id: 'web-1.example.com',
      hostname: 'web-1.example.com',
      tags: {},
    })
    expect(hostIdFromHostname('-odd name!')).toBe('odd-name-')
    expect(hostIdFromHostname('')).toBe('localhost')
    for (const name of ['web 1', '_x', 'ü.example', 'a'.repeat(300)]) {
      expect(HostSchema.safeParse(hostIdentity(undefined, name)).success).toBe(true)
    }
  })
})
