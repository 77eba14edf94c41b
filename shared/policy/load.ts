import { type Document, isNode, LineCounter, parseAllDocuments } from 'yaml'
import type { z } from 'zod'
import { type Policy, PolicySchema } from '../contracts/index.ts'
import { type CompiledPolicySet, type CompileOptions, compilePolicies, type Path } from '../engine/compile.ts'

export interface PolicySource {
  /** Shown in errors; any label (a path, `<stdin>`, `baseline pack`). */
  file: string
  text: string
}

/** One problem in a policy file: where (file, line, column, path), what, and how to fix it. */
export interface PolicyError {
  file: string
  line: number
  column: number
  /** Dotted path inside the document, e.g. `spec.severity.critical.when`. */
  path: string
  policy?: string
  message: string
  hint?: string
}

export interface LoadResult {
  set: CompiledPolicySet
  policies: Policy[]
  errors: PolicyError[]
}

interface Located {
  file: string
  doc: Document
  counter: LineCounter
}

const formatPath = (path: Path): string =>
  path.reduce<string>((out, seg) => (typeof seg === 'number' ? `${out}[${seg}]` : out ? `${out}.${seg}` : seg), '')

/** The line of the deepest node on the path that exists (a missing key points at its parent). */
const locate = (at: Located, path: Path): { line: number; column: number } => {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? at.doc.contents : at.doc.getIn(path.slice(0, n), true)
    if (isNode(node) && node.range) {
      const pos = at.counter.linePos(node.range[0])
      return { line: pos.line, column: pos.col }
    }
  }
  return { line: 1, column: 1 }
}

const hintFor = (issue: z.core.$ZodIssue): string | undefined => {
  if (issue.code === 'unrecognized_keys') return 'remove it, or check its spelling and indentation'
  if (issue.code === 'invalid_union') return 'a step has either `run:` (with params) or `escalate:`'
  return undefined
}

/**
 * Load policy files (YAML, several documents per file allowed): syntax, schema and meaning, every error with file,
 * line, path and a hint. Pure: takes text, returns data.
 */
export const loadPolicies = (sources: readonly PolicySource[], opts: CompileOptions = {}): LoadResult => {
  const errors: PolicyError[] = []
  const policies: Policy[] = []
  const where: Located[] = []
  for (const source of sources) {
    const counter = new LineCounter()
    const docs = parseAllDocuments(source.text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true })
    const list = Array.isArray(docs) ? docs : [docs]
    for (const doc of list) {
      if (doc.errors.length) {
        for (const e of doc.errors) {
          const pos = e.linePos?.[0] ?? { line: 1, col: 1 }
          errors.push({
            file: source.file,
            line: pos.line,
            column: pos.col,
            path: '',
            message: `YAML: ${e.message.split('\n')[0]}`,
          })
        }
        continue
      }
      if (doc.contents === null) continue
      const at: Located = { file: source.file, doc, counter }
      let js: unknown
      try {
        js = doc.toJS({ maxAliasCount: 100 })
      } catch (err) {
        // Unresolved aliases, alias bombs: the YAML is well-formed but cannot be turned into data.
        errors.push({
          file: source.file,
          ...locate(at, []),
          path: '',
          message: `YAML: ${(err as Error).message.split('\n')[0]}`,
        })
        continue
      }
      const parsed = PolicySchema.safeParse(js)
      if (!parsed.success) {
        const name = (doc.getIn(['metadata', 'name']) as string | undefined) ?? undefined
        for (const issue of parsed.error.issues) {
          const path = issue.path as (string | number)[]
          const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined]
          for (const key of keys) {
            const full = key === undefined ? path : [...path, key]
            const message = key === undefined ? issue.message : `unknown key '${key}'`
            errors.push({
              file: source.file,
              ...locate(at, full),
              path: formatPath(full),
              ...(typeof name === 'string' ? { policy: name } : {}),
              message,
              ...(hintFor(issue) ? { hint: hintFor(issue) } : {}),
            })
          }
        }
        continue
      }
      policies.push(parsed.data)
      where.push(at)
    }
  }
  const { set, errors: meaning } = compilePolicies(policies, opts)
  for (const e of meaning) {
    const at = where[e.index]!
    errors.push({
      file: at.file,
      ...locate(at, e.path),
      path: formatPath(e.path),
      policy: e.policy,
      message: e.message,
      ...(e.hint ? { hint: e.hint } : {}),
    })
  }
  errors.sort((a, b) => (a.file === b.file ? a.line - b.line || a.column - b.column : a.file < b.file ? -1 : 1))
  return { set, policies, errors }
}

/** `file:line:column path: message (hint)` — the format editors and CI logs link. */
export const formatPolicyError = (e: PolicyError): string =>
  `${e.file}:${e.line}:${e.column}${e.path ? ` ${e.path}` : ''}: ${e.message}${e.hint ? ` (hint: ${e.hint})` : ''}`
