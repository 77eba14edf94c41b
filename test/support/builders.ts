import type { Host, Observation, RemediationResultV1 } from '../../shared/contracts/index.ts'
import type { CompiledPolicySet } from '../../shared/engine/compile.ts'
import { type EvaluateOutput, evaluate } from '../../shared/engine/evaluate.ts'
import type { HostState } from '../../shared/engine/state.ts'
import { formatPolicyError, loadPolicies } from '../../shared/policy/load.ts'

/** Compile policies from YAML text; throws with every error when they do not load. */
export const policiesFrom = (
  yaml: string,
  opts: { allowPlanned?: boolean } = { allowPlanned: true },
): CompiledPolicySet => {
  const { set, errors } = loadPolicies([{ file: 'test.yaml', text: yaml }], opts)
  if (errors.length) throw new Error(errors.map(formatPolicyError).join('\n'))
  return set
}

export const HOST: Host = { id: 'i-0123456789abcdef0', hostname: 'web-1', tags: { role: 'web' } }

/** A fake clock: starts at a fixed time and moves only when told. */
export class FakeClock {
  private ms: number
  constructor(ms = Date.parse('2026-11-23T00:00:00Z')) {
    this.ms = ms
  }
  now(): number {
    return this.ms
  }
  iso(): string {
    return new Date(this.ms).toISOString()
  }
  advance(ms: number): this {
    this.ms += ms
    return this
  }
}

export const fs = (mount: string, usedPercent: number, totalGiB = 100): Observation => {
  const total = totalGiB * 2 ** 30
  const used = Math.round((total * usedPercent) / 100)
  return {
    kind: 'filesystem',
    mount,
    fsType: 'ext4',
    bytesTotal: total,
    bytesUsed: used,
    bytesAvailable: total - used,
    inodesTotal: 1_000_000,
    inodesUsed: 10_000,
  }
}

export const service = (
  unit: string,
  activeState: 'active' | 'failed' | 'inactive',
  extra: Partial<Observation> = {},
): Observation =>
  ({
    kind: 'service',
    unit,
    activeState,
    subState: activeState === 'active' ? 'running' : activeState,
    restarts: 0,
    mainPid: activeState === 'active' ? 1234 : 0,
    ...extra,
  }) as Observation

export const cert = (source: string, notAfter: string): Observation => ({
  kind: 'certificate',
  source,
  sourceType: 'file',
  subject: 'CN=example.test',
  sans: ['example.test'],
  issuer: 'CN=Test CA',
  notAfter,
  fingerprint: Array.from({ length: 32 }, () => 'AB').join(':'),
})

export const procMem = (unit: string, memoryBytes: number, limitBytes: number): Observation => ({
  kind: 'process-memory',
  unit,
  memoryBytes,
  limitBytes,
  source: 'rss',
})

/** Drives the engine through cycles like a runner would: carries state, feeds fix results back. */
export class Driver {
  state: HostState | undefined
  seq = 0
  pendingResults: RemediationResultV1[] = []
  all: EvaluateOutput[] = []
  readonly policies: CompiledPolicySet
  readonly clock: FakeClock
  readonly host: Host
  readonly fixOutcome: 'succeeded' | 'failed'
  constructor(
    policies: CompiledPolicySet,
    clock = new FakeClock(),
    host: Host = HOST,
    fixOutcome: 'succeeded' | 'failed' = 'succeeded',
  ) {
    this.policies = policies
    this.clock = clock
    this.host = host
    this.fixOutcome = fixOutcome
  }

  report(observations: Observation[], opts: { dryRun?: boolean; seq?: number } = {}): EvaluateOutput {
    const out = evaluate({
      policies: this.policies,
      host: this.host,
      observations,
      seq: opts.seq ?? ++this.seq,
      results: this.takeResults(),
      state: this.state,
      now: this.clock.now(),
      dryRun: opts.dryRun ?? false,
    })
    return this.keep(out)
  }

  tick(): EvaluateOutput {
    return this.keep(
      evaluate({
        policies: this.policies,
        host: this.host,
        results: this.takeResults(),
        state: this.state,
        now: this.clock.now(),
      }),
    )
  }

  private takeResults(): RemediationResultV1[] {
    const r = this.pendingResults
    this.pendingResults = []
    return r
  }

  private keep(out: EvaluateOutput): EvaluateOutput {
    this.state = out.nextState
    this.all.push(out)
    for (const d of out.decisions) {
      if (d.type !== 'remediate') continue
      this.pendingResults.push({
        schema: 'ansai.remediation-result.v1',
        key: d.key,
        remediation: d.remediation,
        status: this.fixOutcome,
        dryRun: d.dryRun,
        startedAt: this.clock.iso(),
        finishedAt: this.clock.iso(),
        durationMs: 5,
        summary: `test: ${this.fixOutcome}`,
        evidence: {},
      })
    }
    return out
  }
}

/** Short names of what a cycle decided: `fix:disk-cleanup`, `incident.opened`, ... */
export const summarize = (out: EvaluateOutput): string[] =>
  out.decisions.map((d) =>
    d.type === 'remediate' ? `fix:${d.remediation}` : d.event.replace(/^ansai\./, '').replace(/\.v1$/, ''),
  )
