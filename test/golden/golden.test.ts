/**
 * Golden cases: policy + observation timeline → expected decisions, compared as files.
 *
 * Each folder under test/golden/cases/<NN-name>/ holds
 *   policy.yaml     the policies (loaded with allowPlanned: true, as `ansai simulate` does)
 *   timeline.jsonl  one JSON per line: a ReportV1 or a tick {"tick":true,"time":"...","host":"<id>"}
 *   options.json    optional: {"fixOutcome":"failed"} and/or {"dryRun":true}
 *   expected.json   the stable projection of what `simulate` decided (see `project` below)
 *
 * Regenerate the expected files after an intended engine change with
 *   UPDATE_GOLDEN=1 npx vitest run test/golden
 * and then read every changed expected.json (git diff) and check it by hand against the policy language: a golden
 * file nobody checked proves nothing. The inputs are written by test/support/golden-cases.ts
 * (`npx tsx test/support/golden-cases.ts`); the committed files are what this test reads.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseTimeline, type SimulateOptions, type SimulationResult, simulate } from '../../shared/app/simulate.ts'
import { allResources } from '../../shared/engine/state.ts'
import { formatPolicyError, loadPolicies } from '../../shared/policy/load.ts'

const CASES = join(import.meta.dirname, 'cases')
const UPDATE = process.env.UPDATE_GOLDEN === '1'

interface ProjectedEvent {
  time: string
  host: string
  type: 'remediate' | 'notify'
  /** The event type without `ansai.` and `.v1` (notify), or the remediation id (remediate). */
  what: string
  policy: string
  resource: string
  severity: string
  escalateTo?: string
  params?: Record<string, unknown>
  dryRun?: boolean
  step?: number
  attempt?: number
  /** Milestone point reached. */
  point?: unknown
  /** Why a fix was held back or a human was paged. */
  reason?: unknown
  key: string
}

interface Projection {
  events: ProjectedEvent[]
  totals: SimulationResult['totals']
  /** Incidents still open at the end of the timeline, per host and resource. */
  open: { host: string; policy: string; resource: string; status: string; severity: string }[]
}

const project = (r: SimulationResult): Projection => ({
  events: r.events.map(({ time, host, decision: d }): ProjectedEvent => {
    const base = { time, host, type: d.type, policy: d.policy, resource: d.resource, severity: d.severity }
    if (d.type === 'remediate') {
      return {
        ...base,
        what: d.remediation,
        params: d.params,
        dryRun: d.dryRun,
        step: d.step,
        attempt: d.attempt,
        key: d.key,
      }
    }
    return {
      ...base,
      what: d.event.replace(/^ansai\./, '').replace(/\.v1$/, ''),
      ...(d.escalateTo !== undefined ? { escalateTo: d.escalateTo } : {}),
      ...(d.event === 'ansai.milestone.reached.v1' ? { point: d.evidence.point } : {}),
      ...(d.event === 'ansai.fix.skipped.v1' || d.event === 'ansai.incident.escalated.v1'
        ? { reason: d.evidence.reason }
        : {}),
      key: d.key,
    }
  }),
  totals: r.totals,
  open: Object.values(r.states).flatMap((s) =>
    [...allResources(s)]
      .filter((rs) => rs.incident)
      .map((rs) => ({
        host: s.host,
        policy: rs.policy,
        resource: rs.resource,
        status: rs.incident!.status,
        severity: rs.incident!.severity,
      })),
  ),
})

/** One event per line, so a diff shows which decision changed. */
const list = (items: readonly unknown[]): string =>
  items.length ? `[\n${items.map((i) => `    ${JSON.stringify(i)}`).join(',\n')}\n  ]` : '[]'

const format = (p: Projection): string =>
  `{\n  "events": ${list(p.events)},\n  "totals": ${JSON.stringify(p.totals)},\n  "open": ${list(p.open)}\n}\n`

const runCase = (dir: string): Projection => {
  const policyText = readFileSync(join(dir, 'policy.yaml'), 'utf8')
  const loaded = loadPolicies([{ file: join(dir, 'policy.yaml'), text: policyText }], { allowPlanned: true })
  if (loaded.errors.length) {
    throw new Error(`policy.yaml does not load:\n${loaded.errors.map(formatPolicyError).join('\n')}`)
  }
  const timeline = parseTimeline(readFileSync(join(dir, 'timeline.jsonl'), 'utf8'))
  if (timeline.errors.length) {
    throw new Error(timeline.errors.map((e) => `timeline.jsonl:${e.line}: ${e.message}`).join('\n'))
  }
  expect(timeline.entries.length).toBeGreaterThan(0)
  const optionsFile = join(dir, 'options.json')
  const options: SimulateOptions = existsSync(optionsFile) ? JSON.parse(readFileSync(optionsFile, 'utf8')) : {}
  expect(
    Object.keys(options).filter((k) => k !== 'fixOutcome' && k !== 'dryRun'),
    'options.json keys',
  ).toEqual([])
  return project(simulate(loaded.set, timeline.entries, options))
}

const cases = readdirSync(CASES, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort()

describe('golden cases', () => {
  it('there are at least 30, each with a policy and a timeline', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30)
    for (const name of cases) {
      expect(name).toMatch(/^\d\d-[a-z0-9-]+$/)
      expect(existsSync(join(CASES, name, 'policy.yaml')), name).toBe(true)
      expect(existsSync(join(CASES, name, 'timeline.jsonl')), name).toBe(true)
    }
  })

  it('a timeline line that does not parse fails its case', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ansai-golden-'))
    try {
      cpSync(join(CASES, cases[0]!), dir, { recursive: true })
      const lines = readFileSync(join(dir, 'timeline.jsonl'), 'utf8')
      writeFileSync(join(dir, 'timeline.jsonl'), `${lines}{"tick":true,"time":"yesterday","host":"web-1"}\n`)
      expect(() => runCase(dir)).toThrow(/timeline\.jsonl:3/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it.each(cases)('%s', (name) => {
    const dir = join(CASES, name)
    const actual = runCase(dir)
    const expectedFile = join(dir, 'expected.json')
    if (UPDATE) {
      writeFileSync(expectedFile, format(actual))
      return
    }
    expect(existsSync(expectedFile), `${expectedFile} is missing: run with UPDATE_GOLDEN=1`).toBe(true)
    expect(actual).toEqual(JSON.parse(readFileSync(expectedFile, 'utf8')))
  })
})
