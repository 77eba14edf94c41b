/**
 * The architecture scanner behind test/arch/purity.test.ts: finds what makes core code impure (I/O modules, the
 * AWS SDK, the environment, the clock, randomness) and imports that cross layers. No parser dependency: a small
 * lexer blanks comments and the contents of strings, templates and regular expressions (keeping offsets and line
 * breaks), so prose that mentions `Date.now()` is not a breach, and import specifiers are read from real string
 * tokens only.
 */
import { posix } from 'node:path'

export interface Breach {
  file: string
  line: number
  rule: string
  text: string
}

interface StringToken {
  start: number
  value: string
}

interface Lexed {
  /** The source with comments and string/template/regex contents replaced by spaces; line breaks kept. */
  code: string
  strings: StringToken[]
}

const REGEX_BEFORE = new Set('(,=:[!&|?{};+-*%<>~^')
const REGEX_AFTER_WORDS = new Set([
  'return',
  'typeof',
  'case',
  'do',
  'else',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'yield',
  'await',
])

const regexAllowed = (out: string[], at: number): boolean => {
  let k = at - 1
  while (k >= 0 && /\s/.test(out[k]!)) k--
  if (k < 0) return true
  const ch = out[k]!
  if (REGEX_BEFORE.has(ch)) return true
  if (!/[\w$]/.test(ch)) return false
  let w = k
  while (w >= 0 && /[\w$]/.test(out[w]!)) w--
  return REGEX_AFTER_WORDS.has(out.slice(w + 1, k + 1).join(''))
}

export const lexSource = (src: string): Lexed => {
  const n = src.length
  const out = src.split('')
  const strings: StringToken[] = []
  /** One counter of open braces per `${` we are inside. */
  const braces: number[] = []
  const blank = (from: number, to: number): void => {
    for (let k = from; k < to && k < n; k++) if (out[k] !== '\n') out[k] = ' '
  }
  let i = 0
  /** From just inside a template (after '`' or after the '}' of an expression) to its end or next '${'. */
  const scanTemplate = (): void => {
    const start = i
    while (i < n) {
      const c = src[i]
      if (c === '\\') {
        i += 2
        continue
      }
      if (c === '`') {
        blank(start, i)
        i++
        return
      }
      if (c === '$' && src[i + 1] === '{') {
        blank(start, i)
        braces.push(0)
        i += 2
        return
      }
      i++
    }
    blank(start, n)
  }
  while (i < n) {
    const c = src[i]
    const d = src[i + 1]
    if (c === '/' && d === '/') {
      const e = src.indexOf('\n', i)
      const end = e < 0 ? n : e
      blank(i, end)
      i = end
    } else if (c === '/' && d === '*') {
      const e = src.indexOf('*/', i + 2)
      const end = e < 0 ? n : e + 2
      blank(i, end)
      i = end
    } else if (c === "'" || c === '"') {
      let j = i + 1
      while (j < n && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1
      strings.push({ start: i, value: src.slice(i + 1, j) })
      blank(i + 1, j)
      i = j + 1
    } else if (c === '`') {
      i++
      scanTemplate()
    } else if (c === '{' && braces.length > 0) {
      braces[braces.length - 1]!++
      i++
    } else if (c === '}' && braces.length > 0) {
      i++
      if (braces[braces.length - 1] === 0) {
        braces.pop()
        scanTemplate()
      } else braces[braces.length - 1]!--
    } else if (c === '/' && regexAllowed(out, i)) {
      let j = i + 1
      let inClass = false
      while (j < n && src[j] !== '\n') {
        const r = src[j]
        if (r === '\\') {
          j += 2
          continue
        }
        if (r === '[') inClass = true
        else if (r === ']') inClass = false
        else if (r === '/' && !inClass) break
        j++
      }
      if (j < n && src[j] === '/') {
        blank(i + 1, j)
        i = j + 1
      } else i++
    } else i++
  }
  return { code: out.join(''), strings }
}

/** Node built-ins that do I/O or read the environment (with or without `node:`; subpaths such as fs/promises too). */
const IMPURE_BUILTINS = new Set([
  'fs',
  'child_process',
  'net',
  'http',
  'https',
  'http2',
  'tls',
  'dgram',
  'dns',
  'os',
  'process',
  'cluster',
  'worker_threads',
  'sqlite',
])

export const impureModule = (spec: string): string | undefined => {
  if (spec.startsWith('@aws-sdk/')) return 'AWS SDK import'
  if (spec === 'aws-cdk-lib' || spec.startsWith('aws-cdk-lib/')) return 'aws-cdk-lib import'
  const bare = spec.startsWith('node:') ? spec.slice(5) : spec
  const root = bare.split('/')[0]!
  if (IMPURE_BUILTINS.has(root)) return `impure Node built-in (${root})`
  return undefined
}

/** Folders the core must not import from (the shells and the shared adapters). */
const OUTER_LAYERS = ['shared/adapters/', 'agent/', 'functions/', 'infra/']

const crossesLayer = (file: string, spec: string): string | undefined => {
  if (!spec.startsWith('.')) return undefined
  const target = posix.normalize(posix.join(posix.dirname(file), spec))
  const layer = OUTER_LAYERS.find((l) => target.startsWith(l) || `${target}/` === l)
  return layer ? `core imports ${layer.slice(0, -1)}` : undefined
}

const IMPURE_CALLS: { rule: string; re: RegExp }[] = [
  { rule: 'process.env (config is parsed in the shell)', re: /\bprocess\s*(?:\.\s*env\b|\[)/g },
  { rule: 'Date.now() (time comes in as an argument)', re: /\bDate\s*\.\s*now\s*\(/g },
  { rule: 'new Date() without arguments (the clock)', re: /\bnew\s+Date\b(?:\s*\(\s*\)|(?!\s*\())/g },
  { rule: 'Date() (the clock)', re: /(?<!\bnew\s+)(?<![\w$.])\bDate\s*\(/g },
  { rule: 'performance.now() (the clock)', re: /\bperformance\s*\.\s*now\s*\(/g },
  { rule: 'Math.random() (ids come in as arguments or ports)', re: /\bMath\s*\.\s*random\s*\(/g },
  {
    rule: 'random ids (ids come in as arguments or ports)',
    re: /\b(?:randomUUID|randomBytes|randomInt|getRandomValues)\s*\(/g,
  },
]

const IMPORT_BEFORE = /(?:\bfrom|\bimport|\bimport\s*\(|\brequire\s*\()\s*$/

/**
 * Every breach of the functional core in one source file. `file` is the path relative to the repository root,
 * with forward slashes (it resolves relative imports).
 */
export const scanSource = (file: string, source: string): Breach[] => {
  const { code, strings } = lexSource(source)
  const lineStarts = [0]
  for (let k = 0; k < source.length; k++) if (source[k] === '\n') lineStarts.push(k + 1)
  const lineOf = (offset: number): number => {
    let lo = 0
    let hi = lineStarts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (lineStarts[mid]! <= offset) lo = mid
      else hi = mid - 1
    }
    return lo + 1
  }
  const textOf = (line: number): string => source.split('\n')[line - 1]?.trim() ?? ''
  const breaches: Breach[] = []
  const add = (offset: number, rule: string): void => {
    const line = lineOf(offset)
    breaches.push({ file, line, rule, text: textOf(line) })
  }
  for (const token of strings) {
    if (!IMPORT_BEFORE.test(code.slice(Math.max(0, token.start - 40), token.start))) continue
    const rule = impureModule(token.value) ?? crossesLayer(file, token.value)
    if (rule) add(token.start, `${rule}: '${token.value}'`)
  }
  for (const { rule, re } of IMPURE_CALLS) {
    for (const m of code.matchAll(re)) add(m.index, rule)
  }
  return breaches.sort((a, b) => a.line - b.line || a.rule.localeCompare(b.rule))
}

export const formatBreaches = (breaches: readonly Breach[]): string =>
  breaches.map((b) => `${b.file}:${b.line}: ${b.rule}\n    ${b.text}`).join('\n')
