import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REMEDIATIONS } from '../../shared/registry/remediations/index.ts'

const CLI = new URL('../../agent/cli/ansai.ts', import.meta.url).pathname

const ansai = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

const BAD = `apiVersion: ansai/v1
kind: Policy
metadata: { name: web-disk }
spec:
  observe: filesystem
  severity:
    critical: { when: "usedPercnt >= 90" }
  remediate:
    - run: disk-cleanup
      params: { roots: [/var/log], logsOlderThan: 30d }
`

const dir = (files: Record<string, string>) => {
  const d = mkdtempSync(join(tmpdir(), 'ansai-cli-'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text)
  return d
}

describe('ansai CLI', () => {
  it('--help lists the commands; no command is a usage error', () => {
    const help = ansai('--help')
    expect(help.code).toBe(0)
    expect(help.out).toMatch(/policy validate/)
    expect(help.out).toMatch(/simulate/)
    expect(ansai().code).toBe(2)
    const unknown = ansai('frobnicate')
    expect(unknown.code).toBe(2)
    expect(unknown.err).toMatch(/unknown command 'frobnicate'/)
  })

  it('policy validate: the shipped packs are valid (with planned remediations allowed)', () => {
    const r = ansai('policy', 'validate', 'shared/policies', '--allow-planned')
    expect(r.err).toBe('')
    expect(r.out).toMatch(/^ok: 9 policies in 1 file/)
    expect(r.code).toBe(0)
  })

  it('policy validate: every error with file, line, column, path and hint; exit 1', () => {
    const d = dir({ 'web.yaml': BAD })
    const r = ansai('policy', 'validate', d, '--allow-planned')
    expect(r.code).toBe(1)
    expect(r.err).toContain(
      `${join(d, 'web.yaml')}:7:23 spec.severity.critical.when: expression: Unknown variable: usedPercnt (did you mean 'usedPercent'?)`,
    )
    expect(r.err).toContain(
      `${join(d, 'web.yaml')}:9:12 spec.remediate[0].run: 'disk-cleanup' is destructive here (it deletes data) and needs an explicit opt-in (hint: add \`allowDestructive: true\` under spec)`,
    )
    expect(r.err).toMatch(/2 errors in 1 of 1 files/)
  })

  it('policy validate --json prints the errors as data', () => {
    const d = dir({ 'web.yaml': BAD })
    const r = ansai('policy', 'validate', d, '--allow-planned', '--json')
    expect(r.code).toBe(1)
    const json = JSON.parse(r.out)
    expect(json.ok).toBe(false)
    expect(json.errors.map((e: { line: number; path: string }) => [e.line, e.path])).toEqual([
      [7, 'spec.severity.critical.when'],
      [9, 'spec.remediate[0].run'],
    ])
  })

  it('policy validate refuses planned remediations unless asked, and names an unreadable path', () => {
    const planned = REMEDIATIONS.find((x) => x.status === 'planned')
    const example = planned ?? REMEDIATIONS[0]!
    const d = dir({ 'p.yaml': example.example })
    const r = ansai('policy', 'validate', d)
    if (planned) {
      expect(r.code).toBe(1)
      expect(r.err).toMatch(new RegExp(`remediation '${planned.id}' is planned: its executor is not built yet`))
      expect(ansai('policy', 'validate', d, '--allow-planned').code).toBe(0)
    } else {
      expect(r.code).toBe(0)
    }
    const missing = ansai('policy', 'validate', '/nonexistent/policies')
    expect(missing.code).toBe(2)
    expect(missing.err).toBe('ansai: /nonexistent/policies: cannot read (ENOENT)\n')
  })

  it('simulate replays the quickstart timeline: the story npm start tells', () => {
    const r = ansai(
      'simulate',
      '--policies',
      'shared/policies',
      '--observations',
      'test/fixtures/timelines/quickstart.jsonl',
      '--json',
    )
    expect(r.code).toBe(0)
    const { totals, events } = JSON.parse(r.out)
    expect(totals).toEqual({
      reports: 121,
      ticks: 0,
      incidentsOpened: 6,
      incidentsResolved: 6,
      fixes: 5,
      escalations: 0,
      notifications: 23,
    })
    const fixes = events.filter((e: { decision: { type: string } }) => e.decision.type === 'remediate')
    expect(fixes.map((e: { decision: { remediation: string } }) => e.decision.remediation).sort()).toEqual([
      'backup-retry',
      'certificate-renew',
      'disk-cleanup',
      'memory-relief',
      'service-restart',
    ])
    const table = ansai(
      'simulate',
      '--policies',
      'shared/policies',
      '--observations',
      'test/fixtures/timelines/quickstart.jsonl',
    )
    expect(table.out).toMatch(/fix disk-cleanup/)
    expect(table.out).toMatch(/6 incidents opened, 6 resolved, 5 fixes/)
  })

  it('simulate reports bad timeline lines with their numbers and still replays the rest', () => {
    const d = dir({
      'tl.jsonl':
        '{"tick":true,"time":"2026-11-23T00:00:00Z","host":"web-1"}\nnot json\n{"schema":"ansai.report.v1"}\n',
    })
    const r = ansai('simulate', '--policies', 'shared/policies', '--observations', join(d, 'tl.jsonl'))
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/tl\.jsonl:2: not JSON/)
    expect(r.err).toMatch(/tl\.jsonl:3: host: /)
    expect(r.out).toMatch(/0 reports, 1 ticks/)
  })

  it('simulate without its required options is a usage error that says what is missing', () => {
    const r = ansai('simulate', '--observations', 'x.jsonl')
    expect(r.code).toBe(2)
    expect(r.err).toBe('ansai: simulate needs --policies <file|dir>\n')
  })
})
