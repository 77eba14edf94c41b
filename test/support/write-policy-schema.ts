/**
 * Writes shared/policies/policy.schema.json from the zod PolicySchema.
 * Run after changing shared/contracts/policy.ts: `npx tsx test/support/write-policy-schema.ts`
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { POLICY_SCHEMA_PATH, renderPolicyJsonSchema } from '../../shared/policy/json-schema.ts'

const target = fileURLToPath(new URL(`../../${POLICY_SCHEMA_PATH}`, import.meta.url))
writeFileSync(target, renderPolicyJsonSchema())
console.log(`wrote ${POLICY_SCHEMA_PATH}`)
