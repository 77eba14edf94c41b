import { spawn } from 'node:child_process'
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import {
  devInoKey,
  isPidName,
  makeDev,
  openFilesFrom,
  parseFdTarget,
  parseMapsFiles,
  readOpenFiles,
} from '../../../agent/os/open-files.ts'
import { parseMountPoints } from '../../../agent/remediations/disk-cleanup/walk.ts'
import { judgeOpenFilesGap } from '../../../agent/remediations/disk-cleanup.ts'

describe('parseFdTarget (readlink of /proc/<pid>/fd/<n>)', () => {
  it('classifies paths, deleted paths, sockets, pipes and anonymous inodes', () => {
    expect(parseFdTarget('/var/log/app.log')).toEqual({ kind: 'path', path: '/var/log/app.log', deleted: false })
    expect(parseFdTarget('/tmp/x y (deleted)')).toEqual({ kind: 'path', path: '/tmp/x y', deleted: true })
    expect(parseFdTarget('/dev/pts/0')).toMatchObject({ kind: 'path' })
    expect(parseFdTarget('socket:[123456]')).toEqual({ kind: 'socket', text: 'socket:[123456]' })
    expect(parseFdTarget('pipe:[98765]')).toEqual({ kind: 'pipe', text: 'pipe:[98765]' })
    expect(parseFdTarget('anon_inode:[eventfd]')).toMatchObject({ kind: 'anon-inode' })
    expect(parseFdTarget('anon_inode:inotify')).toMatchObject({ kind: 'anon-inode' })
    expect(parseFdTarget('net:[4026531840]')).toMatchObject({ kind: 'other' })
  })

  it('never throws (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(parseFdTarget(s).kind).toBeTypeOf('string')
      }),
    )
  })
})

describe('isPidName', () => {
  it('positive decimal pids only', () => {
    expect(['1', '42', '4194304'].every(isPidName)).toBe(true)
    expect(['0', 'self', 'thread-self', '01', '1a', '', 'sys', '-1'].some(isPidName)).toBe(false)
  })
})

describe('makeDev (glibc makedev, as stat reports st_dev)', () => {
  it('small and large numbers', () => {
    expect(makeDev(0xfen, 0n)).toBe(65024n) // fe:00, a virtio disk
    expect(makeDev(0n, 39n)).toBe(39n) // 00:27, a tmpfs
    expect(makeDev(8n, 1n)).toBe(0x801n)
    expect(makeDev(259n, 0x12345n)).toBe((0x123n << 20n) | (259n << 8n) | 0x45n)
    expect(makeDev(0x1234n, 0n)).toBe((0x1n << 44n) | (0x234n << 8n))
  })
})

describe('parseMapsFiles (/proc/<pid>/maps)', () => {
  const maps = [
    '55c4ff091000-55c4ff093000 r--p 00000000 fe:00 260386                     /usr/bin/head',
    '55c4ff093000-55c4ff099000 r-xp 00002000 fe:00 260386                     /usr/bin/head',
    '55c500a2d000-55c500a4e000 rw-p 00000000 00:00 0                          [heap]',
    '7f1c2a000000-7f1c2a021000 rw-s 00000000 00:27 1234                       /tmp/ansai/mapped file.log (deleted)',
    '7f1c2b000000-7f1c2b021000 r--p 00000000 103:02 99                        /data/x',
    '7ffd6c1e0000-7ffd6c201000 rw-p 00000000 00:00 0                          [stack]',
    '7f1c2c000000-7f1c2c021000 rw-p 00000000 00:00 0 ',
    'garbage line',
    '',
  ].join('\n')

  it('the mapped files, each once, anonymous memory left out', () => {
    expect(parseMapsFiles(maps)).toEqual([
      { dev: 65024n, ino: 260386n },
      { dev: 39n, ino: 1234n },
      { dev: makeDev(0x103n, 2n), ino: 99n },
    ])
  })

  it("matches stat() of this process's own executable", () => {
    const exe = statSync(process.execPath, { bigint: true })
    const files = parseMapsFiles(readFileSync('/proc/self/maps', 'utf8'))
    expect(files.map((f) => devInoKey(f.dev, f.ino))).toContain(devInoKey(exe.dev, exe.ino))
  })

  it('never throws (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(Array.isArray(parseMapsFiles(s))).toBe(true)
      }),
    )
  })
})

describe('parseMountPoints (/proc/self/mountinfo)', () => {
  it('field 5, decoded', () => {
    const text = [
      '22 27 0:21 / /proc rw,relatime - proc proc rw',
      '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
      '90 27 0:40 / /srv/My\\040Data rw,relatime shared:5 - tmpfs tmpfs rw,size=4096k',
      '91 27 254:0 /srv/elsewhere /var/log/bound rw,relatime - ext4 /dev/vda rw',
      'short line',
    ].join('\n')
    expect([...parseMountPoints(text)]).toEqual(['/proc', '/', '/srv/My Data', '/var/log/bound'])
  })
})

describe('readOpenFiles (the real /proc)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ansai-open-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('sees a file this process holds open, and one a child process holds after we closed ours', async () => {
    const mine = join(dir, 'mine.log')
    const theirs = join(dir, 'theirs.log')
    const never = join(dir, 'never.log')
    for (const f of [mine, theirs, never]) writeFileSync(f, 'x')
    const id = (p: string) => statSync(p, { bigint: true })

    const myFd = openSync(mine, 'r')
    const fd = openSync(theirs, 'r')
    const child = spawn('sleep', ['30'], { stdio: [fd, 'ignore', 'ignore'] })
    await new Promise((resolve) => child.once('spawn', resolve))
    closeSync(fd)
    try {
      const open = readOpenFiles()
      expect(open.processes).toBeGreaterThan(1)
      expect(open.has(id(mine).dev, id(mine).ino)).toBe(true)
      expect(open.has(id(theirs).dev, id(theirs).ino)).toBe(true)
      expect(open.has(id(never).dev, id(never).ino)).toBe(false)
    } finally {
      child.kill('SIGKILL')
      await new Promise((resolve) => child.once('exit', resolve))
      closeSync(myFd)
    }
    expect(readOpenFiles().has(id(theirs).dev, id(theirs).ino)).toBe(false)
  })

  it('reads a /proc-shaped tree: descriptors and maps, pids only', () => {
    const proc = join(dir, 'proc')
    const target = join(dir, 'target.log')
    writeFileSync(target, 'x')
    mkdirSync(join(proc, '123', 'fd'), { recursive: true })
    symlinkSync(target, join(proc, '123', 'fd', '3'))
    symlinkSync('/nonexistent/closed-meanwhile', join(proc, '123', 'fd', '4'))
    writeFileSync(join(proc, '123', 'maps'), '7f1c2b000000-7f1c2b021000 r--p 00000000 103:02 99  /data/x\n')
    mkdirSync(join(proc, 'self', 'fd'), { recursive: true })
    symlinkSync(join(dir, 'not-counted'), join(proc, 'self', 'fd', '0'))
    mkdirSync(join(proc, '456')) // exited: no fd directory
    const st = statSync(target, { bigint: true })
    const open = readOpenFiles(proc)
    expect(open.has(st.dev, st.ino)).toBe(true)
    expect(open.has(makeDev(0x103n, 2n), 99n)).toBe(true)
    expect(open).toMatchObject({ processes: 1, descriptors: 2, files: 2, unreadable: 0 })
  })

  it('throws only when there is no /proc to read', () => {
    expect(() => readOpenFiles(join(dir, 'no-proc'))).toThrow(/ENOENT/)
  })
})

describe('judgeOpenFilesGap', () => {
  const complete = openFilesFrom([])
  const gap = openFilesFrom([], { unreadable: 1, unreadableSample: ['1 fd 0: EACCES'] })

  it('a complete snapshot is no problem', () => {
    expect(judgeOpenFilesGap(complete, 'refuse', 1000)).toEqual({ refuse: false })
  })

  it('refuses when not root, or when told to', () => {
    expect(judgeOpenFilesGap(gap, 'allow-as-root', 1000)).toMatchObject({ refuse: true, text: /run as root/ })
    expect(judgeOpenFilesGap(gap, 'refuse', 0)).toMatchObject({ refuse: true, text: /1 process \(1 fd 0: EACCES\)/ })
  })

  it('as root, goes on and says which processes it could not see', () => {
    expect(judgeOpenFilesGap(gap, 'allow-as-root', 0)).toMatchObject({ refuse: false, text: /even as root/ })
  })
})
