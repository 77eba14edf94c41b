import type { VariableInfo } from './expressions.ts'

/**
 * A compiler from a CEL AST (as @marcbachmann/cel-js parses it) to a plain JavaScript closure, for the subset that
 * thresholds and states are written in: identifiers, number/string/bool literals, comparisons, arithmetic, `!`,
 * unary minus, `&&` and `||`. Anything else returns undefined and the expression runs on the CEL interpreter.
 * Semantics follow CEL: `&&` and `||` are commutative over errors (`error || true` is true), a missing value is an
 * error, numbers compare across int and double. Only expressions that already type-checked reach here, so operand
 * types are known. A property test checks this against the interpreter on random expressions and values.
 */

interface Node {
  op: string
  args: unknown
}

type Fn = (vars: Record<string, unknown>) => unknown
/** `int` is a CEL int (literals); `num` a double. Int-only arithmetic is left to the interpreter (overflow, ÷0). */
type Kind = 'num' | 'int' | 'str' | 'bool'
const numeric = (k: Kind | undefined): boolean => k === 'num' || k === 'int'

const unknownVariable = (name: string): Error => new Error(`Unknown variable: ${name}`)

/** A variable's value; a missing one is an error, as in CEL. */
const read = (v: Record<string, unknown>, name: string): unknown => {
  const x = v[name]
  if (x === undefined) throw unknownVariable(name)
  return x
}

interface Compiled {
  fn: Fn
  kind: Kind
  /** Set when the node is a variable. */
  variable?: string
  /** Set when the node is a literal: its value. */
  literal?: { value: unknown }
}

/**
 * A variable compared with a literal (`usedPercent >= 80`, `activeState == 'failed'`), the shape of nearly every
 * threshold, as one closure: the general form calls a closure for each side. Same operators and order as there.
 */
const compareVariable = (op: string, name: string, k: unknown, variableFirst: boolean): Fn => {
  if (variableFirst) {
    switch (op) {
      case '<':
        return (v) => (read(v, name) as number) < (k as number)
      case '<=':
        return (v) => (read(v, name) as number) <= (k as number)
      case '>':
        return (v) => (read(v, name) as number) > (k as number)
      case '>=':
        return (v) => (read(v, name) as number) >= (k as number)
      case '==':
        return (v) => read(v, name) === k
      default:
        return (v) => read(v, name) !== k
    }
  }
  switch (op) {
    case '<':
      return (v) => (k as number) < (read(v, name) as number)
    case '<=':
      return (v) => (k as number) <= (read(v, name) as number)
    case '>':
      return (v) => (k as number) > (read(v, name) as number)
    case '>=':
      return (v) => (k as number) >= (read(v, name) as number)
    case '==':
      return (v) => k === read(v, name)
    default:
      return (v) => k !== read(v, name)
  }
}

const compileNode = (node: Node, vars: Map<string, VariableInfo>): Compiled | undefined => {
  switch (node.op) {
    case 'id': {
      const name = node.args as string
      const type = vars.get(name)?.type
      const kind: Kind | undefined =
        type === 'double' ? 'num' : type === 'string' ? 'str' : type === 'bool' ? 'bool' : undefined
      if (!kind) return undefined
      return { kind, fn: (v) => read(v, name), variable: name }
    }
    case 'value': {
      const x = node.args
      if (typeof x === 'bigint') {
        const n = Number(x)
        return { kind: 'int', fn: () => n, literal: { value: n } }
      }
      if (typeof x === 'number') return { kind: 'num', fn: () => x, literal: { value: x } }
      if (typeof x === 'string') return { kind: 'str', fn: () => x, literal: { value: x } }
      if (typeof x === 'boolean') return { kind: 'bool', fn: () => x, literal: { value: x } }
      return undefined
    }
    case '!_': {
      const a = compileNode(node.args as Node, vars)
      if (a?.kind !== 'bool') return undefined
      return { kind: 'bool', fn: (v) => !a.fn(v) }
    }
    case '-_': {
      const a = compileNode(node.args as Node, vars)
      if (!a || !numeric(a.kind)) return undefined
      // An int has no negative zero: -(0) is 0, as CEL's 64-bit ints (and the interpreter's BigInts) have it.
      if (a.kind === 'int') return { kind: 'int', fn: (v) => 0 - (a.fn(v) as number) }
      return { kind: 'num', fn: (v) => -(a.fn(v) as number) }
    }
    case '&&':
    case '||': {
      const [l, r] = (node.args as Node[]).map((n) => compileNode(n, vars))
      if (l?.kind !== 'bool' || r?.kind !== 'bool') return undefined
      const short = node.op === '||'
      return {
        kind: 'bool',
        fn: (v) => {
          let err: unknown
          try {
            if (l.fn(v) === short) return short
          } catch (e) {
            err = e
          }
          if (r.fn(v) === short) return short
          if (err !== undefined) throw err
          return !short
        },
      }
    }
    case '<':
    case '<=':
    case '>':
    case '>=':
    case '==':
    case '!=': {
      const [l, r] = (node.args as Node[]).map((n) => compileNode(n, vars))
      if (!l || !r) return undefined
      const bothNumeric = numeric(l.kind) && numeric(r.kind)
      if (!bothNumeric && l.kind !== r.kind) return undefined
      if (!bothNumeric && node.op !== '==' && node.op !== '!=') return undefined
      if (l.variable !== undefined && r.literal) {
        return { kind: 'bool', fn: compareVariable(node.op, l.variable, r.literal.value, true) }
      }
      if (r.variable !== undefined && l.literal) {
        return { kind: 'bool', fn: compareVariable(node.op, r.variable, l.literal.value, false) }
      }
      const a = l.fn
      const b = r.fn
      switch (node.op) {
        case '<':
          return { kind: 'bool', fn: (v) => (a(v) as number) < (b(v) as number) }
        case '<=':
          return { kind: 'bool', fn: (v) => (a(v) as number) <= (b(v) as number) }
        case '>':
          return { kind: 'bool', fn: (v) => (a(v) as number) > (b(v) as number) }
        case '>=':
          return { kind: 'bool', fn: (v) => (a(v) as number) >= (b(v) as number) }
        case '==':
          return { kind: 'bool', fn: (v) => a(v) === b(v) }
        default:
          return { kind: 'bool', fn: (v) => a(v) !== b(v) }
      }
    }
    case '+':
    case '-':
    case '*':
    case '/': {
      const [l, r] = (node.args as Node[]).map((n) => compileNode(n, vars))
      if (!l || !r || !numeric(l.kind) || !numeric(r.kind) || (l.kind === 'int' && r.kind === 'int')) return undefined
      const a = l.fn
      const b = r.fn
      switch (node.op) {
        case '+':
          return { kind: 'num', fn: (v) => (a(v) as number) + (b(v) as number) }
        case '-':
          return { kind: 'num', fn: (v) => (a(v) as number) - (b(v) as number) }
        case '*':
          return { kind: 'num', fn: (v) => (a(v) as number) * (b(v) as number) }
        default:
          return { kind: 'num', fn: (v) => (a(v) as number) / (b(v) as number) }
      }
    }
    default:
      return undefined
  }
}

/** A closure for a type-checked bool expression, or undefined when it uses more than the subset. */
export const compileFast = (
  ast: unknown,
  vars: Map<string, VariableInfo>,
): ((v: Record<string, unknown>) => boolean) | undefined => {
  const c = compileNode(ast as Node, vars)
  if (c?.kind !== 'bool') return undefined
  const fn = c.fn
  // Operators always give a bool; only a bare variable or literal needs the check.
  if (c.variable === undefined && !c.literal) return fn as (v: Record<string, unknown>) => boolean
  return (v) => fn(v) === true
}
