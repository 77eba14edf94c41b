import { z } from 'zod'
import { PolicySchema, SeverityTiersSchema } from '../contracts/index.ts'

/** The `$id` of the policy JSON Schema; a name, not a download address (editors load the committed file). */
export const POLICY_SCHEMA_ID = 'urn:ansai:schema:policy:v1'

/** Where the generated schema is committed, relative to the repository root. */
export const POLICY_SCHEMA_PATH = 'shared/policies/policy.schema.json'

/**
 * The JSON Schema of a policy file, generated from `PolicySchema` so that editors autocomplete and check policies
 * (`# yaml-language-server: $schema=...`). The input side: fields with defaults are optional, as in a YAML file.
 * Draft-07, the draft the YAML language server (VS Code's YAML extension) supports fully.
 * Meaning checks (CEL compiles, remediation exists, no dependency loops) stay with `ansai policy validate`.
 */
export const policyJsonSchema = (): Record<string, unknown> => {
  const generated = z.toJSONSchema(PolicySchema, {
    io: 'input',
    target: 'draft-07',
    unrepresentable: 'throw',
    override: ({ zodSchema, jsonSchema }) => {
      // `.refine()` has no JSON Schema form; this is the structural part of it: at least one tier.
      if (zodSchema === SeverityTiersSchema) jsonSchema.minProperties = 1
    },
  }) as Record<string, unknown>
  const { $schema, ...body } = generated
  return {
    $schema,
    $id: POLICY_SCHEMA_ID,
    title: 'ANSAI policy (ansai/v1)',
    description:
      'One ANSAI policy: what to observe, when it is a warning, critical or an emergency, how to fix it, and the guards around the fix. Generated from the zod PolicySchema in shared/contracts/policy.ts; do not edit by hand.',
    ...body,
  }
}

/** The schema as committed: pretty-printed with two spaces and a trailing newline. */
export const renderPolicyJsonSchema = (): string => `${JSON.stringify(policyJsonSchema(), null, 2)}\n`
