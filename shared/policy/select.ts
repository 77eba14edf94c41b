import type { Policy } from '../contracts/index.ts'
import { type CompiledPolicySet, compilePolicies } from '../engine/compile.ts'
import { findRemediation } from '../registry/remediations/index.ts'
import { formatPolicyError, loadPolicies, type PolicySource } from './load.ts'

export interface SelectedPolicies {
  set: CompiledPolicySet
  /** Policies left out: disabled by the config, or (when executing) using a remediation not built yet. */
  skipped: { name: string; reason: string }[]
  /** Every load or compile error, formatted (file:line:col path: message); empty when the set is usable. */
  errors: string[]
}

const plannedIn = (p: Policy): string[] =>
  p.spec.remediate.flatMap((s) => ('run' in s && findRemediation(s.run)?.status === 'planned' ? [s.run] : []))

/**
 * The policies a host or a fleet runs: the sources loaded, minus the disabled ones. A policy whose remediation is
 * still `planned` is left out, with a reason, when fixes will run (`forExecution`); a simulation or a check keeps it.
 * One function for both shapes, so a policy means the same on one host and in the fleet.
 */
export const selectPolicies = (
  sources: readonly PolicySource[],
  opts: { disable: readonly string[]; forExecution: boolean },
): SelectedPolicies => {
  const loaded = loadPolicies(sources, { allowPlanned: true })
  if (loaded.errors.length) {
    return { set: loaded.set, skipped: [], errors: loaded.errors.map(formatPolicyError) }
  }
  const skipped: SelectedPolicies['skipped'] = []
  const kept = loaded.policies.filter((p) => {
    if (opts.disable.includes(p.metadata.name)) {
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
  const left = skipped.length ? ` once ${skipped.map((s) => s.name).join(', ')} are left out` : ''
  return { set, skipped, errors: errors.map((e) => `${e.policy}: ${e.path.join('.')}: ${e.message}${left}`) }
}
