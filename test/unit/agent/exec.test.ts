import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ExecError, runCommand } from '../../../agent/os/exec.ts'

const dir = mkdtempSync(join(tmpdir(), 'ansai-exec-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('runCommand', () => {
  it('runs a binary with an argv array and captures stdout', async () => {
    const r = await runCommand('/bin/echo', ['hello', 'world'], { timeoutMs: 5_000 })
    expect(r).toMatchObject({ exitCode: 0, signal: null, stdout: 'hello world\n', stderr: '', timedOut: false })
    expect(r.truncated).toBe(false)
    expect(r.durationMs).toBeGreaterThan(0)
  })

  it('finds a bare command name on PATH', async () => {
    const r = await runCommand('echo', ['on path'], { timeoutMs: 5_000 })
    expect(r.stdout).toBe('on path\n')
  })

  it('passes shell metacharacters verbatim: no shell ever sees the arguments', async () => {
    const marker = join(dir, 'x')
    const nasty = `$(touch ${marker}); rm -rf`
    const args = [nasty, '`touch', `${marker}\``, '&&', 'echo', 'pwned', '|', 'cat', '>', marker, "'quoted'", '*']
    const r = await runCommand('/bin/echo', args, { timeoutMs: 5_000 })
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe(`${args.join(' ')}\n`)
    expect(existsSync(marker)).toBe(false)
  })

  it('returns a non-zero exit and stderr without throwing', async () => {
    const r = await runCommand('sh', ['-c', 'echo oops >&2; exit 3'], { timeoutMs: 5_000 })
    expect(r).toMatchObject({ exitCode: 3, signal: null, stdout: '', stderr: 'oops\n', timedOut: false })
  })

  it('feeds input to stdin, and stdin is empty without input', async () => {
    const withInput = await runCommand('cat', [], { timeoutMs: 5_000, input: 'line 1\nline 2\n' })
    expect(withInput.stdout).toBe('line 1\nline 2\n')
    const without = await runCommand('cat', [], { timeoutMs: 5_000 })
    expect(without).toMatchObject({ exitCode: 0, stdout: '', timedOut: false })
  })

  it('uses the given env as the whole environment, and the given cwd', async () => {
    const env = await runCommand('/usr/bin/env', [], { timeoutMs: 5_000, env: { ANSAI_TEST: 'a b;c' } })
    expect(env.stdout).toBe('ANSAI_TEST=a b;c\n')
    const pwd = await runCommand('/bin/pwd', [], { timeoutMs: 5_000, cwd: dir })
    expect(pwd.stdout).toBe(`${dir}\n`)
  })

  it('kills a command that outlives its timeout (SIGTERM) and says so', async () => {
    const r = await runCommand('sh', ['-c', 'sleep 5'], { timeoutMs: 200 })
    expect(r.timedOut).toBe(true)
    expect(r.exitCode).toBeNull()
    expect(r.signal).toBe('SIGTERM')
    expect(r.durationMs).toBeLessThan(4_000)
  })

  it('escalates to SIGKILL when SIGTERM is ignored, and reaches the grandchildren', async () => {
    const r = await runCommand('sh', ['-c', 'trap "" TERM; sleep 5; echo survived'], {
      timeoutMs: 200,
      killGraceMs: 200,
    })
    expect(r.timedOut).toBe(true)
    expect(r.signal).toBe('SIGKILL')
    expect(r.stdout).toBe('')
    expect(r.durationMs).toBeLessThan(4_000)
  })

  it('does not hang when a background grandchild keeps the output pipe open', async () => {
    const r = await runCommand('sh', ['-c', 'sleep 3 & echo started'], { timeoutMs: 10_000, killGraceMs: 200 })
    expect(r).toMatchObject({ exitCode: 0, stdout: 'started\n', timedOut: false })
    expect(r.durationMs).toBeLessThan(2_500)
  })

  it('caps a big output and flags it as truncated, without blocking the child', async () => {
    // 3 MiB of output against a 64 KiB cap: the child must still run to completion.
    const r = await runCommand('head', ['-c', String(3 * 1024 * 1024), '/dev/zero'], {
      timeoutMs: 10_000,
      maxOutputBytes: 64 * 1024,
    })
    expect(r.exitCode).toBe(0)
    expect(r.timedOut).toBe(false)
    expect(r.truncated).toBe(true)
    expect(r.stdout.length).toBe(64 * 1024)
  })

  it('keeps a big output whole under the default 4 MiB cap', async () => {
    const r = await runCommand('head', ['-c', String(3 * 1024 * 1024), '/dev/zero'], { timeoutMs: 10_000 })
    expect(r.truncated).toBe(false)
    expect(r.stdout.length).toBe(3 * 1024 * 1024)
  })

  it('throws a typed ExecError with its cause when the binary does not exist', async () => {
    const err = await runCommand('/nonexistent/ansai-no-such-binary', [], { timeoutMs: 5_000 }).catch((e) => e)
    expect(err).toBeInstanceOf(ExecError)
    expect(err.code).toBe('spawn-failed')
    expect(err.errno).toBe('ENOENT')
    expect(err.file).toBe('/nonexistent/ansai-no-such-binary')
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOENT')

    const onPath = await runCommand('ansai-no-such-binary', [], { timeoutMs: 5_000 }).catch((e) => e)
    expect(onPath).toBeInstanceOf(ExecError)
    expect(onPath.errno).toBe('ENOENT')
  })

  it('throws spawn-failed for a file that is not executable', async () => {
    const file = join(dir, 'not-executable')
    writeFileSync(file, '#!/bin/sh\necho ran\n', { mode: 0o644 })
    const err = await runCommand(file, [], { timeoutMs: 5_000 }).catch((e) => e)
    expect(err).toBeInstanceOf(ExecError)
    expect(err.code).toBe('spawn-failed')
    expect(err.errno).toBe('EACCES')
  })

  it.each([
    ['relative path', 'bin/echo', []],
    ['dot-relative path', './echo', []],
    ['a shell string as file', 'echo hello', []],
    ['empty file', '', []],
    ['NUL in file', '/bin/ec\0ho', []],
    ['NUL in an argument', '/bin/echo', ['a\0b']],
    ['leading dash', '-rf', []],
  ])('refuses %s before spawning', async (_label, file, args) => {
    const err = await runCommand(file, args, { timeoutMs: 1_000 }).catch((e) => e)
    expect(err).toBeInstanceOf(ExecError)
    expect(err.code).toBe('invalid-command')
  })

  it('refuses a missing or non-positive timeout', async () => {
    for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, undefined]) {
      const err = await runCommand('/bin/echo', [], { timeoutMs } as { timeoutMs: number }).catch((e) => e)
      expect(err).toBeInstanceOf(ExecError)
      expect(err.code).toBe('invalid-command')
    }
  })
})
