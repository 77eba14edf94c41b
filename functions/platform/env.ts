import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { formatIssues } from '../../shared/contracts/issue-path.ts'
import type { CompiledPolicySet } from '../../shared/engine/compile.ts'
import { selectPolicies } from '../../shared/policy/select.ts'
import { CONFIG_FILE_NAME, ENV } from './names.ts'
import { type FleetRuntimeConfig, FleetRuntimeConfigSchema } from './runtime-config.ts'

/** A bad environment or config: thrown at cold start, so the function fails loudly before it takes any message. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

type EnvKey = keyof typeof ENV

/** The variables a function needs, read once; a missing one names itself. */
export const readEnv = <K extends EnvKey>(
  keys: readonly K[],
  env: NodeJS.ProcessEnv = process.env,
): Record<K, string> => {
  const out = {} as Record<K, string>
  const missing: string[] = []
  for (const k of keys) {
    const v = env[ENV[k]]
    if (v === undefined || v === '') missing.push(ENV[k])
    else out[k] = v
  }
  if (missing.length > 0) {
    throw new ConfigError(`missing environment variable(s): ${missing.join(', ')} (set by the CDK app)`)
  }
  return out
}

/** The runtime config file: `ANSAI_CONFIG_FILE`, else `fleet-config.json` beside the function's code (cwd). */
export const loadRuntimeConfig = (env: NodeJS.ProcessEnv = process.env): FleetRuntimeConfig => {
  const file = resolve(env[ENV.config] || CONFIG_FILE_NAME)
  let json: unknown
  try {
    json = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new ConfigError(`cannot read the fleet config ${file}: ${(err as Error).message}`)
  }
  const parsed = FleetRuntimeConfigSchema.safeParse(json)
  if (!parsed.success) throw new ConfigError(`${file}: ${formatIssues('config', parsed.error.issues, 10)}`)
  return parsed.data
}

/**
 * The policies of the fleet, compiled once per cold start (they were validated at synth; this checks again). A policy
 * whose remediation is not built yet is left out, as on a single host.
 */
export const compileFleetPolicies = (config: FleetRuntimeConfig): CompiledPolicySet => {
  const selected = selectPolicies(config.policies, { disable: config.disable, forExecution: true })
  if (selected.errors.length > 0) throw new ConfigError(`fleet policies:\n${selected.errors.slice(0, 10).join('\n')}`)
  return selected.set
}
