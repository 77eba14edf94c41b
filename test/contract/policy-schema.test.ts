import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { OBSERVATION_KINDS } from '../../shared/contracts/index.ts'
import { POLICY_SCHEMA_PATH, policyJsonSchema, renderPolicyJsonSchema } from '../../shared/policy/json-schema.ts'

const committedPath = fileURLToPath(new URL(`../../${POLICY_SCHEMA_PATH}`, import.meta.url))

interface Node {
  type?: string | string[]
  properties?: Record<string, Node>
  required?: string[]
  enum?: unknown[]
  const?: unknown
  default?: unknown
  additionalProperties?: boolean | Node
  minProperties?: number
  items?: Node
  anyOf?: Node[]
  pattern?: string
}

const schema = policyJsonSchema() as Node & Record<string, unknown>
const prop = (node: Node | undefined, ...path: string[]): Node => {
  let at = node
  for (const key of path) at = at?.properties?.[key]
  if (!at) throw new Error(`no schema at ${path.join('.')}`)
  return at
}

describe('policy JSON Schema (shared/policies/policy.schema.json)', () => {
  it('the committed file is up to date with PolicySchema', () => {
    const committed = readFileSync(committedPath, 'utf8')
    expect(
      committed === renderPolicyJsonSchema(),
      `${POLICY_SCHEMA_PATH} is out of date: run \`npx tsx test/support/write-policy-schema.ts\` and commit the result`,
    ).toBe(true)
  })

  it('is draft-07 with an id, a title and a description', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#')
    expect(schema.$id).toBe('urn:ansai:schema:policy:v1')
    expect(schema.title).toMatch(/ANSAI policy/)
    expect(schema.description).toMatch(/do not edit by hand/)
  })

  it('requires the top-level keys and refuses unknown ones', () => {
    expect(schema.required).toEqual(['apiVersion', 'kind', 'metadata', 'spec'])
    expect(schema.additionalProperties).toBe(false)
    expect(prop(schema, 'apiVersion').const).toBe('ansai/v1')
    expect(prop(schema, 'kind').const).toBe('Policy')
    expect(prop(schema, 'metadata').required).toEqual(['name'])
    expect(prop(schema, 'spec').additionalProperties).toBe(false)
  })

  it('is the input side: fields with defaults are optional in a file', () => {
    const spec = prop(schema, 'spec')
    expect(spec.required).toEqual(['observe', 'severity'])
    expect(prop(spec, 'mode').default).toBe('active')
    expect(prop(spec, 'allowDestructive').default).toBe(false)
    expect(prop(spec, 'guards', 'limit').required).toEqual(['max', 'within'])
  })

  it('lists every observation kind, filesystem included, and host in the observe enum', () => {
    const observe = prop(schema, 'spec', 'observe').enum
    expect(observe).toContain('filesystem')
    expect(observe).toContain('host')
    expect(observe).toEqual(['host', ...OBSERVATION_KINDS])
  })

  it('carries the severity tiers, with at least one required', () => {
    const severity = prop(schema, 'spec', 'severity')
    expect(Object.keys(severity.properties ?? {})).toEqual(['warning', 'critical', 'emergency'])
    expect(severity.minProperties).toBe(1)
    expect(prop(severity, 'critical').required).toEqual(['when'])
  })

  it('checks durations and ladder steps', () => {
    const cooldown = prop(schema, 'spec', 'guards', 'cooldown')
    expect(new RegExp(cooldown.pattern ?? '').test('30m')).toBe(true)
    expect(new RegExp(cooldown.pattern ?? '').test('30 minutes')).toBe(false)
    const steps = prop(schema, 'spec', 'remediate').items?.anyOf ?? []
    expect(steps.map((s) => s.required)).toEqual([['run'], ['escalate']])
  })
})
