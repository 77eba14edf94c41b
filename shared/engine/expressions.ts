import { Environment } from '@marcbachmann/cel-js'
import type { z } from 'zod'
import type { ProbeDefinition, VariableType } from '../registry/types.ts'
import { compileFast } from './fast-cel.ts'

/** A compiled policy expression: evaluates to a bool, or throws (the engine treats a throw as "no match"). */
export type CompiledExpression = (vars: Record<string, unknown>) => boolean

export interface VariableInfo {
  type: VariableType
  description: string
}

const celTypeOf = (schema: z.ZodType): VariableType => {
  let def = (schema as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def
  while ((def.type === 'optional' || def.type === 'default' || def.type === 'nullable') && def.innerType) {
    def = (def.innerType as unknown as { _zod: { def: typeof def } })._zod.def
  }
  switch (def.type) {
    case 'number':
      return 'double'
    case 'boolean':
      return 'bool'
    case 'array':
      return 'list'
    case 'object':
    case 'record':
      return 'map'
    default:
      return 'string'
  }
}

/** The variables a policy on this kind may use: the observation's own fields, derived values and trends. */
export const variablesOf = (probe: ProbeDefinition): Map<string, VariableInfo> => {
  const vars = new Map<string, VariableInfo>()
  const shape = (probe.schema as unknown as { shape: Record<string, z.ZodType> }).shape
  for (const [name, field] of Object.entries(shape)) {
    if (name === 'kind') continue
    vars.set(name, { type: celTypeOf(field), description: field.description ?? name })
  }
  for (const [name, doc] of Object.entries(probe.derived)) vars.set(name, doc)
  if (probe.trend) {
    vars.set(probe.trend.eta.name, { type: 'double', description: probe.trend.eta.description })
    vars.set(probe.trend.rate.name, { type: 'double', description: probe.trend.rate.description })
  }
  return vars
}

/** Variables of the engine's own `host` signal. */
export const HOST_SIGNAL_VARIABLES = new Map<string, VariableInfo>([
  ['silentMinutes', { type: 'double', description: 'minutes since the last report from the host (0 on a report)' }],
])

const NUMERIC_OPS = ['+', '-', '*', '/'] as const
const arith = (op: (typeof NUMERIC_OPS)[number]) => (a: unknown, b: unknown) => {
  const x = Number(a)
  const y = Number(b)
  switch (op) {
    case '+':
      return x + y
    case '-':
      return x - y
    case '*':
      return x * y
    case '/':
      return x / y
  }
}

/**
 * A CEL environment with the kind's variables declared, so a typo or a type error is caught at load time.
 * Observation numbers are CEL doubles; mixed int/double arithmetic is allowed so `bytesUsed / 1024` works.
 */
export const createEnvironment = (variables: Map<string, VariableInfo>): Environment => {
  let env = new Environment({ homogeneousAggregateLiterals: false })
  for (const [name, info] of variables) env = env.registerVariable(name, info.type)
  for (const op of NUMERIC_OPS) {
    env = env
      .registerOperator(`double ${op} int: double`, arith(op))
      .registerOperator(`int ${op} double: double`, arith(op))
  }
  return env
}

export type CompileResult = { ok: true; evaluate: CompiledExpression; uses: string[] } | { ok: false; error: string }

const firstLine = (message: string): string => message.split('\n')[0] ?? message

const stripStrings = (expr: string): string => expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')

/** Compile once at load: parse, type-check (must be bool), and list the variables it reads. */
export const compileExpression = (
  env: Environment,
  variables: Map<string, VariableInfo>,
  expr: string,
): CompileResult => {
  let parsed: ReturnType<Environment['parse']>
  try {
    parsed = env.parse(expr)
  } catch (err) {
    return { ok: false, error: firstLine((err as Error).message) }
  }
  const checked = parsed.check()
  if (!checked.valid) {
    const message = firstLine(checked.error?.message ?? 'type error')
    const unknown = /Unknown variable: (\w+)/.exec(message)
    if (unknown?.[1]) {
      const hint = closest(unknown[1], [...variables.keys()])
      return {
        ok: false,
        error: `${message}${hint ? ` (did you mean '${hint}'?)` : ''}; known: ${[...variables.keys()].join(', ')}`,
      }
    }
    return { ok: false, error: message }
  }
  if (checked.type !== 'bool') return { ok: false, error: `must be a bool expression, this one is ${checked.type}` }
  const body = stripStrings(expr)
  const uses = [...variables.keys()].filter((name) => new RegExp(`\\b${name}\\b`).test(body))
  const fast = compileFast(parsed.ast, variables)
  return { ok: true, evaluate: fast ?? ((vars) => parsed(vars) === true), uses }
}

const distance = (a: string, b: string): number => {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return row[b.length] as number
}

/** The closest known name, if it is close enough to be a typo. */
export const closest = (word: string, known: readonly string[]): string | undefined => {
  let best: string | undefined
  let bestD = Number.POSITIVE_INFINITY
  for (const k of known) {
    const d = distance(word.toLowerCase(), k.toLowerCase())
    if (d < bestD) {
      bestD = d
      best = k
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}
