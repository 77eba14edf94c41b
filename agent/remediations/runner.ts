import type { RemediateDecision, RemediationResultV1 } from '../../shared/contracts/index.ts'
import { findRemediation } from '../../shared/registry/remediations/index.ts'
import { runCommand } from '../os/exec.ts'
import { EXECUTORS } from './index.ts'
import type { AuditEntry, ExecutorContext, RemediationExecutor } from './types.ts'

export interface RunRemediationInput {
  key: string
  remediation: string
  params: Record<string, unknown>
  dryRun: boolean
}

export interface RunnerOptions {
  now?: () => Date
  log?: (line: string) => void
  run?: ExecutorContext['run']
  /** Executors built with host options (e.g. backup commands from the config); the rest come from EXECUTORS. */
  overrides?: Readonly<Record<string, RemediationExecutor<never>>>
}

const failed = (input: RunRemediationInput, now: Date, summary: string, error: string): RemediationResultV1 => ({
  schema: 'ansai.remediation-result.v1',
  key: input.key,
  remediation: input.remediation,
  status: 'failed',
  dryRun: input.dryRun,
  startedAt: now.toISOString(),
  finishedAt: now.toISOString(),
  durationMs: 0,
  summary,
  error,
  evidence: {},
})

/**
 * Run one remediation on this host: the params are checked again against the registry's schema (whatever sent
 * them), the executor is loaded, and exactly one bounded result comes back; an unexpected exception becomes a
 * `failed` result, never a crash of the caller.
 */
export const runRemediation = async (
  input: RunRemediationInput,
  opts: RunnerOptions = {},
): Promise<{ result: RemediationResultV1; audit: AuditEntry[] }> => {
  const now = opts.now ?? (() => new Date())
  const def = findRemediation(input.remediation)
  const load = EXECUTORS[input.remediation]
  if (!def || !load) {
    return {
      result: failed(input, now(), `unknown remediation '${input.remediation}'`, 'no executor on this host'),
      audit: [],
    }
  }
  const parsed = def.params.safeParse(input.params)
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`).join('; ')
    return { result: failed(input, now(), `refused: invalid params for ${def.id}`, why), audit: [] }
  }
  const executor = opts.overrides?.[input.remediation] ?? (await load())
  const ctx: ExecutorContext = {
    key: input.key,
    dryRun: input.dryRun,
    now,
    run: opts.run ?? runCommand,
    log: opts.log ?? (() => {}),
  }
  try {
    return await executor.execute(parsed.data as never, ctx)
  } catch (err) {
    return {
      result: failed(
        input,
        now(),
        `${def.id} failed unexpectedly`,
        String((err as Error)?.stack ?? err).slice(0, 2000),
      ),
      audit: [],
    }
  }
}

/** The single-host runner: the engine's decisions, run here. */
export const localRunner = (opts: RunnerOptions = {}) => ({
  run: (d: RemediateDecision) =>
    runRemediation({ key: d.key, remediation: d.remediation, params: d.params, dryRun: d.dryRun }, opts),
})
