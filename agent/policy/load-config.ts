import { readFileSync } from 'node:fs'
import type { Policy } from '../../shared/contracts/index.ts'
import { type CompiledPolicySet, compilePolicies } from '../../shared/engine/compile.ts'
import { formatPolicyError, loadPolicies, type PolicySource } from '../../shared/policy/load.ts'
import { findRemediation } from '../../shared/registry/remediations/index.ts'
import type { AgentConfig } from '../config/config.ts'
import { readPolicySources } from './files.ts'

/** The baseline pack shipped with ANSAI (next to the code in a checkout, embedded in the bundle). */
export const builtinPolicySources = (): PolicySource[] => [
  {
    file: 'baseline pack',
    text: readFileSync(new URL('../../shared/policies/baseline.yaml', import.meta.url), 'utf8'),
  },
]

export class PolicyLoadError extends Error {
  override name = 'PolicyLoadError'
}

export interface LoadedPolicies {
  set: CompiledPolicySet
  /** Policies left out: disabled by the config, or (when executing) using a remediation not built yet. */
  skipped: { name: string; reason: string }[]
}

const plannedIn = (p: Policy): string[] =>
  p.spec.remediate.flatMap((s) => ('run' in s && findRemediation(s.run)?.status === 'planned' ? [s.run] : []))

/**
 * The policies a host runs: the baseline pack (unless turned off) and the configured files, minus the disabled
 * ones. Any error fails the load, with file and line. A policy whose remediation is still `planned` is left out,
 * with a reason, when fixes will run (`forExecution`); a simulation or a check keeps it.
 */
export const loadHostPolicies = (config: AgentConfig, opts: { forExecution: boolean }): LoadedPolicies => {
  const sources = [
    ...(config.policies.builtin ? builtinPolicySources() : []),
    ...readPolicySources(config.policies.paths),
  ]
  const loaded = loadPolicies(sources, { allowPlanned: true })
  if (loaded.errors.length) {
    throw new PolicyLoadError(
      `the policies do not load:\n${loaded.errors.map((e) => `  ${formatPolicyError(e)}`).join('\n')}`,
    )
  }
  const skipped: LoadedPolicies['skipped'] = []
  const kept = loaded.policies.filter((p) => {
    if (config.policies.disable.includes(p.metadata.name)) {
      skipped.push({ name: p.metadata.name, reason: 'disabled in the configuration' })
      return false
    }
    const planned = plannedIn(p)
    if (opts.forExecution && planned.length) {
      skipped.push({ name: p.metadata.name, reason: `uses ${planned.join(', ')}, not built yet (planned)` })
      return false
    }
    return true
  })
  // A kept policy may depend on a dropped one: compile again and say so.
  const { set, errors } = compilePolicies(kept, { allowPlanned: !opts.forExecution })
  if (errors.length) {
    throw new PolicyLoadError(
      `the policies do not load once ${skipped.map((s) => s.name).join(', ')} are left out:\n${errors.map((e) => `  ${e.policy}: ${e.path.join('.')}: ${e.message}`).join('\n')}`,
    )
  }
  return { set, skipped }
}
