import { parseArgs } from 'node:util'
import { formatPolicyError, loadPolicies } from '../../../shared/policy/load.ts'
import { readPolicySources } from '../../policy/files.ts'
import { printJson, UsageError } from '../output.ts'

export const POLICY_HELP = `Usage: ansai policy <command> [options]

Commands:
  validate <file|dir>...   Check policy files: YAML syntax, schema and meaning (expressions type-checked,
                           remediation params, destructive opt-in, targets, dependency loops). Every error is
                           printed as file:line:column path: message (hint).
  schema                   Print the JSON Schema of policy files (the one committed in
                           shared/policies/policy.schema.json, for editors).

Options for validate:
  --allow-planned   Accept remediations whose executor is not built yet (check everything else).
  --json            Print {ok, files, policies, errors[]} as JSON.
  -h, --help        Show this help.

Exit codes: 0 valid, 1 errors found, 2 bad usage or unreadable path.`

export const runPolicy = async (argv: string[]): Promise<number> => {
  const [sub, ...rest] = argv
  if (!sub || sub === '-h' || sub === '--help') {
    console.log(POLICY_HELP)
    return sub ? 0 : 2
  }
  if (sub === 'schema') {
    const { policyJsonSchema } = await import('../../../shared/policy/json-schema.ts')
    printJson(policyJsonSchema())
    return 0
  }
  if (sub !== 'validate') throw new UsageError(`unknown policy command '${sub}' (try: validate, schema)`)
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      'allow-planned': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(POLICY_HELP)
    return 0
  }
  if (positionals.length === 0) throw new UsageError('policy validate needs at least one file or directory')
  const sources = readPolicySources(positionals)
  const { policies, errors } = loadPolicies(sources, { allowPlanned: values['allow-planned'] })
  if (values.json) {
    printJson({
      ok: errors.length === 0,
      files: sources.map((s) => s.file),
      policies: policies.map((p) => p.metadata.name),
      errors,
    })
  } else if (errors.length === 0) {
    console.log(
      `ok: ${policies.length} ${policies.length === 1 ? 'policy' : 'policies'} in ${sources.length} ${sources.length === 1 ? 'file' : 'files'}`,
    )
  } else {
    for (const e of errors) console.error(formatPolicyError(e))
    console.error(
      `\n${errors.length} ${errors.length === 1 ? 'error' : 'errors'} in ${new Set(errors.map((e) => e.file)).size} of ${sources.length} files`,
    )
  }
  return errors.length === 0 ? 0 : 1
}
