/**
 * The single-host shape end to end on a real filesystem: a 64 MiB tmpfs filled past 90 % with old and new logs,
 * then `ansai run --once` (the real CLI, the real collector, the engine, the SQLite store, the disk-cleanup
 * executor) brings it below the warning level, verifies the fix in the same run, and `ansai status` reports the
 * bytes recovered, equal to the measured change. New files are untouched, byte for byte.
 * Needs root to mount a tmpfs: skipped loudly without, failing under ANSAI_REQUIRE_ALL=1.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireOrSkip } from '../support/require.ts'

const CLI = new URL('../../agent/cli/ansai.ts', import.meta.url).pathname
const MiB = 2 ** 20
const DAY = 86_400

const canMount = (): { ok: boolean; why: string } => {
  if (process.getuid?.() !== 0) return { ok: false, why: 'not root: mounting a tmpfs needs root' }
  const probe = mkdtempSync(join(tmpdir(), 'ansai-e2e-probe-'))
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { encoding: 'utf8' })
  if (m.status === 0) spawnSync('umount', [probe])
  rmSync(probe, { recursive: true, force: true })
  return m.status === 0 ? { ok: true, why: '' } : { ok: false, why: `mount -t tmpfs failed: ${m.stderr}` }
}

const mount = canMount()
const used = (path: string) => {
  const s = statfsSync(path)
  return (s.blocks - s.bfree) * s.bsize
}
const usedPercent = (path: string) => {
  const s = statfsSync(path)
  return ((s.blocks - s.bfree) / (s.blocks - s.bfree + s.bavail)) * 100
}
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

describe.runIf(requireOrSkip('tmpfs (root)', mount.ok, mount.why))('ansai run --once heals a full disk', () => {
  const base = mkdtempSync(join(tmpdir(), 'ansai-e2e-'))
  const disk = join(base, 'disk')
  const config = join(base, 'config.yaml')
  const policies = join(base, 'policies')
  const kept: Record<string, string> = {}

  const ansai = (...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args, '--config', config], { encoding: 'utf8', timeout: 120_000 })
    return { code: r.status, out: r.stdout, err: r.stderr }
  }

  beforeAll(() => {
    mkdirSync(disk)
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', disk], { encoding: 'utf8' })
    if (m.status !== 0) throw new Error(`mount: ${m.stderr}`)
    mkdirSync(join(disk, 'log'))
    const now = Date.now() / 1000
    // 52 MiB of logs older than 30 days, 8 MiB of new ones: 94 % used.
    for (let i = 0; i < 13; i++) {
      const f = join(disk, 'log', `app-${i}.log`)
      writeFileSync(f, Buffer.alloc(4 * MiB, 97 + (i % 20)))
      utimesSync(f, now - 40 * DAY, now - 40 * DAY)
    }
    for (let i = 0; i < 4; i++) {
      const f = join(disk, 'log', `current-${i}.log`)
      writeFileSync(f, Buffer.alloc(2 * MiB, 65 + i))
      kept[f] = sha(f)
    }
    const notALog = join(disk, 'data.bin')
    writeFileSync(notALog, Buffer.alloc(512 * 1024, 7))
    utimesSync(notALog, now - 90 * DAY, now - 90 * DAY)
    kept[notALog] = sha(notALog)

    mkdirSync(policies)
    writeFileSync(
      join(policies, 'disk.yaml'),
      `apiVersion: ansai/v1
kind: Policy
metadata: { name: test-disk }
spec:
  observe: filesystem
  match: { mount: ${disk} }
  severity:
    warning: { when: "usedPercent >= 80" }
    critical: { when: "usedPercent >= 90" }
  remediate:
    - at: critical
      run: disk-cleanup
      params: { roots: [${disk}/log], logsOlderThan: 30d }
    - escalate: page
  allowDestructive: true
`,
    )
    writeFileSync(
      config,
      `host: { id: e2e-host, tags: { role: test } }
policies: { builtin: false, paths: [${policies}] }
probes:
  filesystems: { include: ["${disk}"], includeTmpfs: true }
  services: { units: [], failedAny: false }
  certificates: { files: [] }
  packages: { enabled: false }
state: { dir: ${join(base, 'state')} }
`,
    )
  })

  afterAll(() => {
    spawnSync('umount', [disk])
    rmSync(base, { recursive: true, force: true })
  })

  it('check sees the problem and the fix it would make, and changes nothing', () => {
    expect(usedPercent(disk)).toBeGreaterThan(90)
    const before = used(disk)
    const r = ansai('check', '--json', '--exit-code')
    expect(r.code).toBe(1)
    const out = JSON.parse(r.out)
    expect(out.findings.find((f: { policy: string }) => f.policy === 'test-disk').level).toBe('critical')
    expect(out.wouldFix.map((d: { remediation: string }) => d.remediation)).toEqual(['disk-cleanup'])
    expect(used(disk)).toBe(before)
  })

  it('run --once cleans up, verifies the fix in the same run, and keeps every file it must', () => {
    const before = used(disk)
    const r = ansai('run', '--once', '--json')
    expect(r.err).not.toMatch(/Error|failed/)
    expect(r.code).toBe(0)
    const outcome = JSON.parse(r.out.trim().split('\n').at(-1) ?? '{}')
    expect(outcome.fixes).toEqual([expect.objectContaining({ remediation: 'disk-cleanup', status: 'succeeded' })])
    expect(outcome.incidents.map((i: { status: string }) => i.status)).toContain('resolved')
    expect(usedPercent(disk)).toBeLessThan(80)
    const recovered = before - used(disk)
    expect(recovered).toBe(13 * 4 * MiB)
    for (const [f, hash] of Object.entries(kept)) expect(sha(f), f).toBe(hash)

    const status = JSON.parse(ansai('status', '--json').out)
    expect(status.summary.bytesRecovered).toBe(recovered)
    expect(status.summary.verifiedFixes).toEqual([{ remediation: 'disk-cleanup', count: 1 }])
    expect(status.open).toEqual([])
  })

  it('a second run finds nothing to do, and history tells the whole story', () => {
    const r = ansai('run', '--once', '--json')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out.trim()).fixes).toEqual([])
    const history = JSON.parse(ansai('history', '--json', '--limit', '100').out) as { kind: string }[]
    const kinds = new Set(history.map((e) => e.kind))
    for (const k of ['observation', 'decision', 'action', 'result']) expect(kinds.has(k), k).toBe(true)
  })
})
