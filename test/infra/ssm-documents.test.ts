/**
 * The SSM documents generated from the remediation registry (shared/registry/ssm.ts): their shape (schema 2.2,
 * ENV_VAR, anchored patterns, a fixed command), and the encoding the dispatch function uses, checked against the
 * same patterns. Property tests: every valid example encodes to values its own patterns accept; no value holding a
 * shell metacharacter gets through any pattern; what a pattern accepts never holds one.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { z } from 'zod'
import { type Policy, PolicySchema } from '../../shared/contracts/index.ts'
import { REMEDIATIONS } from '../../shared/registry/remediations/index.ts'
import {
  checkSsmParameters,
  decodeSsmParameters,
  encodeSsmParameters,
  SSM_DRY_RUN_PARAMETER,
  SSM_KEY_PARAMETER,
  SsmPatternError,
  ssmDocumentFor,
  ssmParameterSpecs,
  withSsmDocuments,
} from '../../shared/registry/ssm.ts'
import type { RemediationDefinition } from '../../shared/registry/types.ts'

const DOCUMENTED = withSsmDocuments(REMEDIATIONS)
const byId = (id: string): RemediationDefinition => {
  const def = REMEDIATIONS.find((r) => r.id === id)
  if (!def) throw new Error(`no remediation ${id}`)
  return def
}

/** Shell metacharacters that must never get through a pattern. */
const METACHARACTERS = [';', '$(', '`', '\n', '|', '&'] as const

const examplePolicy = (def: RemediationDefinition): Policy => {
  const docs = parseAllDocuments(def.example)
  const doc = Array.isArray(docs) ? docs[0] : docs
  return PolicySchema.parse(doc?.toJS())
}

/** The params of every step of a definition's example policy that runs it, as the params schema outputs them. */
const exampleParams = (def: RemediationDefinition): Record<string, unknown>[] =>
  examplePolicy(def).spec.remediate.flatMap((step) =>
    'run' in step && step.run === def.id ? [def.params.parse(step.params) as Record<string, unknown>] : [],
  )

const EXAMPLES = DOCUMENTED.flatMap((def) =>
  exampleParams(def).map((params) => ({
    def,
    params,
    encoded: encodeSsmParameters(def, params, { key: 'r-0123456789abcdef', dryRun: false }),
  })),
)

describe('the SSM documents', () => {
  it('exist for every available remediation with a document name, and only for those', () => {
    expect(DOCUMENTED.map((d) => d.ssmDocument)).toEqual([
      'ANSAI-RestartService',
      'ANSAI-CleanupDisk',
      'ANSAI-RelieveMemory',
      'ANSAI-RenewCertificate',
      'ANSAI-MaintainDatabase',
      'ANSAI-RetryBackup',
    ])
    for (const def of REMEDIATIONS.filter((r) => !DOCUMENTED.includes(r))) {
      expect(def.ssmDocument === null || def.status === 'planned', def.id).toBe(true)
    }
  })

  describe.each(DOCUMENTED.map((d) => [d.ssmDocument, d] as const))('%s', (_name, def) => {
    const { name, content } = ssmDocumentFor(def)

    it('is a schema 2.2 Command document with one aws:runShellScript step running ansai-agent remediate <type>', () => {
      expect(name).toBe(def.ssmDocument)
      expect(content.schemaVersion).toBe('2.2')
      expect(content.mainSteps).toHaveLength(1)
      const [step] = content.mainSteps
      expect(step?.action).toBe('aws:runShellScript')
      expect(step?.precondition).toEqual({ StringEquals: ['platformType', 'Linux'] })
      expect(step?.inputs.runCommand).toEqual([`ansai-agent remediate ${def.id}`])
    })

    it('never splices a parameter into the command text (no {{ }}, no $SSM_ anywhere in the steps)', () => {
      const steps = JSON.stringify(content.mainSteps)
      expect(steps).not.toMatch(/\{\{|\$SSM_|\$\{?[A-Za-z]/)
    })

    it('passes every params key, plus the key and dry-run flag, as an ENV_VAR parameter with an anchored pattern', () => {
      const shape = (def.params as unknown as { _zod: { def: { shape: Record<string, unknown> } } })._zod.def.shape
      expect(Object.keys(content.parameters)).toEqual([...Object.keys(shape), SSM_KEY_PARAMETER, SSM_DRY_RUN_PARAMETER])
      for (const [param, spec] of Object.entries(content.parameters)) {
        expect(spec.type, param).toBe('String')
        expect(spec.interpolationType, param).toBe('ENV_VAR')
        expect(spec.allowedPattern, param).toMatch(/^\^.*\$$/)
        expect(() => new RegExp(spec.allowedPattern), param).not.toThrow()
      }
    })

    it('makes required params required (no default) and the others optional with the empty default', () => {
      const shape = (def.params as unknown as { _zod: { def: { shape?: Record<string, z.ZodType> } } })._zod.def.shape
      for (const [param, spec] of Object.entries(content.parameters)) {
        const field = shape?.[param]
        const optional = field === undefined || field.safeParse(undefined).success
        if (optional) {
          expect(spec.default, param).toBe('')
          expect(new RegExp(spec.allowedPattern).test(''), `${param}: '' must pass an optional parameter`).toBe(true)
        } else {
          expect(spec.default, param).toBeUndefined()
          expect(new RegExp(spec.allowedPattern).test(''), `${param}: '' must not pass a required parameter`).toBe(
            false,
          )
        }
      }
    })
  })

  it('refuses a params schema it cannot turn into patterns, naming the param', () => {
    const odd: RemediationDefinition = {
      ...byId('service-restart'),
      id: 'odd-thing',
      ssmDocument: 'ANSAI-DoOddThing',
      params: z.object({ target: z.union([z.string(), z.number()]) }).strict(),
    }
    expect(() => ssmDocumentFor(odd)).toThrow(SsmPatternError)
    expect(() => ssmDocumentFor(odd)).toThrow(/odd-thing\.target: no SSM pattern for a zod union/)
  })

  it('refuses a definition without a document', () => {
    expect(() => ssmDocumentFor(byId('notify-only'))).toThrow(/no SSM document/)
  })
})

describe('encoding and checking SSM parameters', () => {
  it('encodes strings as they are, numbers and booleans as text, arrays as compact JSON, and leaves undefined out', () => {
    const def = byId('disk-cleanup')
    expect(
      encodeSsmParameters(
        def,
        { roots: ['/var/log', '/tmp'], logsOlderThan: '30d', packageCache: true, maxFiles: 500, coreDumps: undefined },
        { key: 'r-00ff', dryRun: true },
      ),
    ).toEqual({
      roots: '["/var/log","/tmp"]',
      logsOlderThan: '30d',
      packageCache: 'true',
      maxFiles: '500',
      ansaiKey: 'r-00ff',
      ansaiDryRun: 'true',
    })
  })

  it('decodes what it encodes (by the kind of each param, so a numeric-looking name stays a string)', () => {
    const def = byId('certificate-renew')
    const params = { certName: '123', reloadUnit: 'nginx.service', verifyEndpoint: 'example.org:443' }
    const encoded = encodeSsmParameters(def, params, { key: 'r-1', dryRun: false })
    expect(decodeSsmParameters(def, encoded)).toEqual({ params, key: 'r-1', dryRun: false })
    expect(decodeSsmParameters(def, { ...encoded, certPath: '', ansaiKey: '' })).toEqual({ params, dryRun: false })
  })

  it.each(EXAMPLES.map((e) => [e.def.id, e] as const))(
    'the example policy of %s encodes to accepted parameters',
    (_id, e) => {
      expect(checkSsmParameters(e.def, e.encoded)).toEqual([])
      const { content } = ssmDocumentFor(e.def)
      for (const [name, value] of Object.entries(e.encoded)) {
        expect(new RegExp(content.parameters[name]!.allowedPattern).test(value), `${name}=${value}`).toBe(true)
      }
      expect(e.def.params.parse(decodeSsmParameters(e.def, e.encoded).params)).toEqual(e.params)
    },
  )

  it('reports unknown names, missing required parameters and pattern mismatches', () => {
    const def = byId('service-restart')
    expect(checkSsmParameters(def, { waitActiveSeconds: '30', bogus: 'x' })).toEqual([
      {
        parameter: 'bogus',
        message: expect.stringMatching(/^unknown parameter for ANSAI-RestartService; it takes unit, /),
      },
      { parameter: 'unit', message: 'required by ANSAI-RestartService' },
    ])
    expect(checkSsmParameters(def, { unit: 'nginx.service; reboot' })).toEqual([
      { parameter: 'unit', message: expect.stringMatching(/does not match the document's allowedPattern \^/) },
    ])
    expect(checkSsmParameters(def, { unit: 'nginx.service', waitActiveSeconds: '30', ansaiDryRun: 'yes' })).toEqual([
      { parameter: 'ansaiDryRun', message: expect.stringContaining('does not match') },
    ])
  })

  it('says plainly when the params schema accepts a value that the stricter pattern refuses', () => {
    const def = byId('disk-cleanup')
    const params = { roots: ['/var/my logs'], logsOlderThan: '30d' }
    expect(def.params.safeParse(params).success).toBe(true)
    const violations = checkSsmParameters(def, encodeSsmParameters(def, params))
    expect(violations).toHaveLength(1)
    expect(violations[0]?.parameter).toBe('roots')
    expect(violations[0]?.message).toMatch(/is valid for disk-cleanup but refused by the document's allowedPattern/)
  })

  it('refuses values longer than the schema allows', () => {
    const def = byId('backup-retry')
    const violations = checkSsmParameters(def, { job: 'j'.repeat(129) })
    expect(violations).toEqual([{ parameter: 'job', message: '129 characters; at most 128' }])
  })
})

describe('properties', () => {
  const specs = DOCUMENTED.flatMap((def) => ssmParameterSpecs(def).map((spec) => ({ def, spec })))
  const encodedValues = EXAMPLES.flatMap((e) =>
    Object.entries(e.encoded)
      .filter(([, v]) => v !== '')
      .map(([name, value]) => ({ def: e.def, name, value })),
  )

  it('a shell metacharacter anywhere in a valid value makes every pattern refuse it', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...encodedValues),
        fc.constantFrom(...METACHARACTERS),
        fc.nat(),
        ({ def, name, value }, meta, at) => {
          const i = at % (value.length + 1)
          const bad = `${value.slice(0, i)}${meta}${value.slice(i)}`
          const violations = checkSsmParameters(def, { ...encodeSsmParameters(def, {}), [name]: bad })
          expect(violations.some((v) => v.parameter === name)).toBe(true)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('arbitrary text holding a shell metacharacter passes no pattern', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...specs),
        fc.string({ maxLength: 40 }),
        fc.constantFrom(...METACHARACTERS),
        fc.string({ maxLength: 40 }),
        ({ spec }, before, meta, after) => {
          expect(new RegExp(spec.pattern).test(`${before}${meta}${after}`)).toBe(false)
        },
      ),
      { numRuns: 1000 },
    )
  })

  it('whatever a pattern accepts holds no shell metacharacter', () => {
    for (const { def, spec } of specs) {
      fc.assert(
        fc.property(fc.stringMatching(new RegExp(spec.pattern)), (value) => {
          for (const meta of METACHARACTERS)
            expect(value.includes(meta), `${def.id}.${spec.name}: ${JSON.stringify(value)}`).toBe(false)
        }),
        { numRuns: 100 },
      )
    }
  })

  it('valid service-restart params encode to accepted parameters and decode to the same params', () => {
    const def = byId('service-restart')
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z][a-z0-9_-]{0,30}(@[a-z0-9]{1,8})?\.(service|socket|timer)$/),
        fc.integer({ min: 1, max: 300 }),
        fc.boolean(),
        (unit, waitActiveSeconds, respectRestartPolicy) => {
          const params = def.params.parse({ unit, waitActiveSeconds, respectRestartPolicy })
          const encoded = encodeSsmParameters(def, params as Record<string, unknown>, { key: 'r-1', dryRun: true })
          expect(checkSsmParameters(def, encoded)).toEqual([])
          expect(def.params.parse(decodeSsmParameters(def, encoded).params)).toEqual(params)
        },
      ),
    )
  })

  it('valid disk-cleanup roots (canonical absolute paths) encode to accepted parameters', () => {
    const def = byId('disk-cleanup')
    const segment = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,12}$/)
    const path = fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => `/${s.join('/')}`)
    fc.assert(
      fc.property(fc.uniqueArray(path, { minLength: 1, maxLength: 20 }), (roots) => {
        const parsed = def.params.safeParse({ roots, logsOlderThan: '30d' })
        fc.pre(parsed.success)
        const encoded = encodeSsmParameters(def, parsed.data as Record<string, unknown>)
        expect(checkSsmParameters(def, encoded)).toEqual([])
        expect(decodeSsmParameters(def, encoded).params.roots).toEqual(roots)
      }),
    )
  })
})
