import { findRemediation } from '../../shared/registry/remediations/index.ts'
import { decodeSsmParameters, SSM_ENV_PREFIX, ssmParameterSpecs } from '../../shared/registry/ssm.ts'

/**
 * `ansai-agent remediate <type>` run by an `ANSAI-*` SSM document: the document's parameters arrive as `SSM_<name>`
 * environment variables (interpolationType ENV_VAR), encoded by shared/registry/ssm.ts. This turns them into the
 * variables the CLI already reads: `ANSAI_PARAMS` (JSON), `ANSAI_KEY` and `ANSAI_DRY_RUN`.
 *
 * Only the parameters of `<type>`'s own document are read (other `SSM_*` variables are ignored); empty ones are "not
 * given", so the params schema's defaults apply. Returns {} when none is set (not run by SSM, or by an SSM Agent older
 * than 3.3.2746.0, which sets no such variables): the CLI then uses --params, ANSAI_PARAMS or ANSAI_PARAM_*.
 * The params schema judges the result in the runner, as it does for every other source.
 */
export const ansaiEnvFromSsm = (
  env: Readonly<Record<string, string | undefined>>,
  type: string,
): Record<string, string> => {
  const def = findRemediation(type)
  if (!def || def.ssmDocument === null) return {}
  const encoded: Record<string, string> = {}
  for (const spec of ssmParameterSpecs(def)) {
    const value = env[`${SSM_ENV_PREFIX}${spec.name}`]
    if (value !== undefined) encoded[spec.name] = value
  }
  if (Object.keys(encoded).length === 0) return {}
  const { params, key, dryRun } = decodeSsmParameters(def, encoded)
  return {
    ANSAI_PARAMS: JSON.stringify(params),
    ...(key !== undefined ? { ANSAI_KEY: key } : {}),
    ...(dryRun !== undefined ? { ANSAI_DRY_RUN: dryRun ? 'true' : 'false' } : {}),
  }
}
