import { readFileSync } from 'node:fs'
import type { CompiledPolicySet } from '../../shared/engine/compile.ts'
import type { PolicySource } from '../../shared/policy/load.ts'
import { selectPolicies } from '../../shared/policy/select.ts'
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
  const selected = selectPolicies(sources, { disable: config.policies.disable, forExecution: opts.forExecution })
  if (selected.errors.length) {
    throw new PolicyLoadError(`the policies do not load:\n${selected.errors.map((e) => `  ${e}`).join('\n')}`)
  }
  return { set: selected.set, skipped: selected.skipped }
}
