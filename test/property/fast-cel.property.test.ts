import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileExpression, createEnvironment, type VariableInfo } from '../../shared/engine/expressions.ts'
import { compileFast } from '../../shared/engine/fast-cel.ts'

const VARS = new Map<string, VariableInfo>([
  ['a', { type: 'double', description: 'a' }],
  ['b', { type: 'double', description: 'b' }],
  ['s', { type: 'string', description: 's' }],
  ['f', { type: 'bool', description: 'f' }],
  ['l', { type: 'list', description: 'l' }],
])
const ENV = createEnvironment(VARS)

// Expressions of the fast subset, and some outside it (which must fall back to the interpreter).
const num: fc.Arbitrary<string> = fc.letrec((tie) => ({
  n: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('a', 'b', '0', '1', '80', '2.5', '-3', '1e300', '0.0'),
    fc.tuple(tie('n'), fc.constantFrom('+', '-', '*', '/'), tie('n')).map(([x, op, y]) => `(${x} ${op} ${y})`),
    tie('n').map((x) => `-(${x})`),
  ),
})).n as fc.Arbitrary<string>
const bool: fc.Arbitrary<string> = fc.letrec((tie) => ({
  b: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('f', 'true', 'false', 's == "x"', 's != "y"', '"x" in l', 'size(l) > 1'),
    fc.tuple(num, fc.constantFrom('<', '<=', '>', '>=', '==', '!='), num).map(([x, op, y]) => `${x} ${op} ${y}`),
    fc.tuple(tie('b'), fc.constantFrom('&&', '||'), tie('b')).map(([x, op, y]) => `(${x} ${op} ${y})`),
    tie('b').map((x) => `!(${x})`),
  ),
})).b as fc.Arbitrary<string>

const context = fc.record(
  {
    a: fc.oneof(fc.double({ noNaN: false }), fc.constantFrom(0, 80, Number.POSITIVE_INFINITY)),
    b: fc.double(),
    s: fc.constantFrom('x', 'y', ''),
    f: fc.boolean(),
    l: fc.constantFrom(['x'], [], ['x', 'y']),
  },
  { requiredKeys: ['s', 'l'] },
)

const outcome = (f: () => boolean): { value?: boolean; threw?: boolean } => {
  try {
    return { value: f() }
  } catch {
    return { threw: true }
  }
}

describe('fast CEL subset', () => {
  it('gives the same result as the CEL interpreter (or both fail) on random expressions and values', () => {
    let fastUsed = 0
    fc.assert(
      fc.property(bool, context, (expr, vars) => {
        const parsed = ENV.parse(expr)
        if (!parsed.check().valid) return
        const fast = compileFast(parsed.ast, VARS)
        if (!fast) return
        fastUsed++
        const interp = outcome(() => parsed(vars) === true)
        const mine = outcome(() => fast(vars))
        expect(mine, `${expr} with ${JSON.stringify(vars)}`).toEqual(interp)
      }),
      { numRuns: 3000 },
    )
    expect(fastUsed).toBeGreaterThan(1000)
  })

  it('is used for thresholds and states, and not for functions, lists or macros', () => {
    const compiled = (expr: string) => compileFast(ENV.parse(expr).ast, VARS) !== undefined
    expect(compiled('a >= 80 || b < 6')).toBe(true)
    expect(compiled('s == "failed" && !f')).toBe(true)
    expect(compiled('"x" in l')).toBe(false)
    expect(compiled('size(l) > 1')).toBe(false)
    expect(compiled('s.startsWith("x")')).toBe(false)
  })

  it('reports a missing value as the interpreter does', () => {
    const c = compileExpression(ENV, VARS, 'a > 1.0')
    expect(c.ok).toBe(true)
    if (c.ok) expect(() => c.evaluate({ s: 'x', l: [] })).toThrow(/Unknown variable: a/)
  })
})
