import type { z } from 'zod'
import type { RemediationDefinition } from './types.ts'

/**
 * The SSM Command documents of the remediations (`ANSAI-<Verb><Noun>`), generated from the registry, and the one
 * encoding of params into SSM parameters. Pure: the CDK app writes the documents from here, and the dispatch
 * function checks every parameter against the same patterns before SendCommand (moto does not check
 * `allowedPattern`, and a refusal by SSM would come back as an opaque InvalidParameters).
 *
 * The documents are thin (DESIGN.md, rule 12): schemaVersion 2.2, one `aws:runShellScript` step whose command text
 * is fixed (`ansai-agent remediate <type>`), every parameter `interpolationType: ENV_VAR` with an anchored
 * `allowedPattern`. With ENV_VAR, the SSM Agent (3.3.2746.0 or later) hands each parameter to the script as the
 * environment variable `SSM_<name>`; the command text never names a parameter (no `{{ }}`: that would still be
 * spliced in as text), and `ansai-agent` reads the `SSM_*` variables itself (agent/cli/ssm-env.ts).
 *
 * Encoding, one SSM String parameter per param: strings as they are, numbers in decimal, booleans as `true` or
 * `false`, arrays and objects as compact JSON; an empty string means "not given" (so the params schema's default
 * applies on the host). The patterns are derived from the zod schemas and are conservative: a value the schema
 * accepts may still be refused (a path with a space, a URL with a query string), and `checkSsmParameters` says so
 * plainly. Any value holding a shell metacharacter (`;`, `$(`, a backtick, a newline, `|`, `&`) is refused by every
 * pattern, although ENV_VAR interpolation would not let a shell see it anyway.
 */

export const SSM_SCHEMA_VERSION = '2.2'
export const SSM_DOCUMENT_PREFIX = 'ANSAI-'
/** Environment variables the SSM Agent sets for ENV_VAR parameters: `SSM_<parameter name>`. */
export const SSM_ENV_PREFIX = 'SSM_'
/** The longest value ANSAI sends in one SSM parameter (SSM documents and their parameters share a 64 KB budget). */
export const SSM_MAX_VALUE_CHARS = 4096
/** The minimum SSM Agent version that sets `SSM_<name>` variables for ENV_VAR parameters. */
export const SSM_AGENT_MIN_VERSION = '3.3.2746.0'

/** Document parameters every remediation document has besides the remediation's own params. */
export const SSM_KEY_PARAMETER = 'ansaiKey'
export const SSM_DRY_RUN_PARAMETER = 'ansaiDryRun'

/** How a param's value is written into its SSM string parameter. */
export type SsmParameterKind = 'string' | 'number' | 'boolean' | 'json'

export interface SsmParameterSpec {
  /** The document parameter name: the params key, or one of the two reserved ones. */
  name: string
  kind: SsmParameterKind
  /** Required params have no default in the document; the others default to '' ("not given"). */
  required: boolean
  /** The anchored `allowedPattern` (`^...$`). */
  pattern: string
  /** The longest value accepted (from the schema's max length, at most SSM_MAX_VALUE_CHARS). */
  maxChars: number
  /** `path`: a strict absolute-path pattern; `name`: an enum, number, boolean or a name-like regex; `text`: other. */
  strictness: 'path' | 'name' | 'text'
  description: string
}

export interface SsmCommandDocument {
  schemaVersion: string
  description: string
  parameters: Record<
    string,
    {
      type: 'String'
      description: string
      allowedPattern: string
      interpolationType: 'ENV_VAR'
      default?: string
    }
  >
  mainSteps: {
    action: 'aws:runShellScript'
    name: string
    precondition: { StringEquals: [string, string] }
    inputs: { runCommand: string[]; timeoutSeconds: number }
  }[]
}

export interface SsmParameterViolation {
  parameter: string
  message: string
}

// ---------------------------------------------------------------------------------------------------------------
// patterns

/** One path segment: not `.` or `..`; letters, digits and `. _ @ % + = : , -` only (no spaces, quotes or `$`). */
const PATH_CHAR = '[A-Za-z0-9._@%+=:,-]'
const PATH_FIRST = '[A-Za-z0-9_@%+=:,-]'
const PATH_SEGMENT = `(?:${PATH_FIRST}${PATH_CHAR}*|\\.${PATH_FIRST}${PATH_CHAR}*|\\.\\.${PATH_CHAR}+)`
/** An absolute path in canonical form: no `//`, no trailing slash, no `.` or `..` segments. */
export const SSM_PATH_PATTERN_BODY = `(?:/${PATH_SEGMENT})+`
/** Free text without any shell metacharacter, quote, backslash or newline. */
const SAFE_TEXT_BODY = '[A-Za-z0-9 ._,:/=@%+-]*'
const URL_BODY = (scheme: string): string => `${scheme}://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%/+=,:@-]*)?`

const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

interface ZodDefLike {
  type: string
  innerType?: ZodLike
  element?: ZodLike
  shape?: Record<string, ZodLike>
  entries?: Record<string, string | number>
  values?: unknown[]
  format?: string
  protocol?: RegExp
  checks?: { _zod: { def: Record<string, unknown> } }[]
}
interface ZodLike {
  _zod: { def: ZodDefLike }
  description?: string
}

const defOf = (schema: unknown): ZodDefLike => (schema as ZodLike)._zod.def
const checksOf = (def: ZodDefLike): Record<string, unknown>[] => (def.checks ?? []).map((c) => c._zod.def)

interface Derived {
  kind: SsmParameterKind
  /** Regex body without anchors, a group or an alternation-safe atom. */
  body: string
  maxChars: number
  strictness: SsmParameterSpec['strictness']
}

/** Thrown when a params schema has a shape the pattern derivation does not know: fix ssm.ts, not the policy. */
export class SsmPatternError extends Error {
  override name = 'SsmPatternError'
}

const numberBody = (def: ZodDefLike): string => {
  const checks = checksOf(def)
  const isInt = checks.some((c) => c.check === 'number_format' && /int/.test(String(c.format)))
  const bounds = checks.flatMap((c) =>
    (c.check === 'greater_than' || c.check === 'less_than') && typeof c.value === 'number' ? [c.value] : [],
  )
  const lower = checks.find((c) => c.check === 'greater_than')?.value
  const largest = bounds.length === 2 ? Math.max(...bounds.map(Math.abs)) : Number.MAX_SAFE_INTEGER
  const digits = String(Math.floor(largest)).length
  const integer = `(?:0|[1-9][0-9]{0,${Math.max(digits - 1, 0)}})`
  const sign = typeof lower === 'number' && lower >= 0 ? '' : '-?'
  return isInt ? `${sign}${integer}` : `${sign}${integer}(?:\\.[0-9]{1,15})?`
}

const stringDerived = (def: ZodDefLike, where: string): Derived => {
  const checks = checksOf(def)
  const maxLength = checks.find((c) => c.check === 'max_length')?.maximum
  const maxChars = Math.min(typeof maxLength === 'number' ? maxLength : SSM_MAX_VALUE_CHARS, SSM_MAX_VALUE_CHARS)
  const regexes = checks.flatMap((c) =>
    c.check === 'string_format' && c.format === 'regex' && c.pattern instanceof RegExp ? [c.pattern] : [],
  )
  // AbsolutePathSchema (and anything built on it) says only "starts with /" as a regex; its refinements (no . or ..
  // segments, no //, no trailing slash) are what the strict path pattern spells out.
  if (regexes.some((r) => r.source === '^\\/'))
    return { kind: 'string', body: SSM_PATH_PATTERN_BODY, maxChars, strictness: 'path' }
  if (regexes.length > 1) throw new SsmPatternError(`${where}: more than one regex; give the param one anchored regex`)
  const regex = regexes[0]
  if (regex) {
    const src = regex.source
    if (regex.flags.replace(/[gy]/g, '') !== '' || !src.startsWith('^') || !src.endsWith('$') || src.endsWith('\\$')) {
      throw new SsmPatternError(`${where}: the regex /${src}/${regex.flags} is not anchored (^...$) without flags`)
    }
    return { kind: 'string', body: `(?:${src.slice(1, -1)})`, maxChars, strictness: 'name' }
  }
  if (def.format === 'url') {
    const scheme = def.protocol && !def.protocol.test('http') ? 'https' : 'https?'
    return { kind: 'string', body: URL_BODY(scheme), maxChars, strictness: 'text' }
  }
  if (def.format && def.format !== 'regex') {
    throw new SsmPatternError(`${where}: no SSM pattern for the string format '${def.format}'`)
  }
  return { kind: 'string', body: SAFE_TEXT_BODY, maxChars, strictness: 'text' }
}

const derive = (schema: unknown, where: string): Derived => {
  const def = defOf(schema)
  switch (def.type) {
    case 'optional':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
      return derive(def.innerType, where)
    case 'string':
      return stringDerived(def, where)
    case 'number':
      return { kind: 'number', body: numberBody(def), maxChars: 24, strictness: 'name' }
    case 'boolean':
      return { kind: 'boolean', body: '(?:true|false)', maxChars: 5, strictness: 'name' }
    case 'enum': {
      const values = Object.values(def.entries ?? {}).map(String)
      return {
        kind: 'string',
        body: `(?:${values.map(escapeRegex).join('|')})`,
        maxChars: Math.max(...values.map((v) => v.length)),
        strictness: 'name',
      }
    }
    case 'literal': {
      const values = (def.values ?? []).map(String)
      return {
        kind: 'string',
        body: `(?:${values.map(escapeRegex).join('|')})`,
        maxChars: Math.max(...values.map((v) => v.length)),
        strictness: 'name',
      }
    }
    case 'array': {
      const element = derive(def.element, `${where}[]`)
      if (element.kind === 'json') throw new SsmPatternError(`${where}: arrays of arrays or objects are not supported`)
      const item = element.kind === 'string' ? `"${element.body}"` : element.body
      return {
        kind: 'json',
        body: `\\[(?:${item}(?:,${item})*)?\\]`,
        maxChars: SSM_MAX_VALUE_CHARS,
        strictness: element.strictness,
      }
    }
    case 'object':
    case 'record':
      // Compact JSON of safe characters only: no spaces outside strings are produced by JSON.stringify.
      return {
        kind: 'json',
        body: '\\{[A-Za-z0-9 "._,:/=@%+{}\\[\\]-]*\\}',
        maxChars: SSM_MAX_VALUE_CHARS,
        strictness: 'text',
      }
    default:
      throw new SsmPatternError(`${where}: no SSM pattern for a zod ${def.type}`)
  }
}

const isRequired = (schema: unknown): boolean => {
  const type = defOf(schema).type
  return type !== 'optional' && type !== 'default' && type !== 'prefault'
}

/** The description of a field: on the outermost wrapper that has one. */
const describe = (schema: unknown): string => {
  let s: unknown = schema
  while (s) {
    const d = (s as ZodLike).description
    if (d) return d
    s = defOf(s).innerType
  }
  return ''
}

const shapeOf = (def: RemediationDefinition): Record<string, ZodLike> => {
  let s: unknown = def.params
  while (s && defOf(s).type !== 'object') s = defOf(s).innerType
  if (!s) throw new SsmPatternError(`${def.id}: the params schema is not an object`)
  return defOf(s).shape ?? {}
}

const RESERVED_SPECS: readonly SsmParameterSpec[] = [
  {
    name: SSM_KEY_PARAMETER,
    kind: 'string',
    required: false,
    pattern: '^(?:[A-Za-z0-9][A-Za-z0-9._:-]{0,127})?$',
    maxChars: 128,
    strictness: 'name',
    description: "ANSAI: the decision's idempotency key (ANSAI_KEY); empty for a manual run",
  },
  {
    name: SSM_DRY_RUN_PARAMETER,
    kind: 'boolean',
    required: false,
    pattern: '^(?:true|false)?$',
    maxChars: 5,
    strictness: 'name',
    description: 'ANSAI: true to decide and report without changing anything (ANSAI_DRY_RUN)',
  },
]

const specCache = new WeakMap<RemediationDefinition, SsmParameterSpec[]>()

/** Every document parameter of a remediation: its params (in schema order), then `ansaiKey` and `ansaiDryRun`. */
export const ssmParameterSpecs = (def: RemediationDefinition): SsmParameterSpec[] => {
  const cached = specCache.get(def)
  if (cached) return cached
  const specs: SsmParameterSpec[] = []
  for (const [name, field] of Object.entries(shapeOf(def))) {
    if (RESERVED_SPECS.some((r) => r.name === name)) {
      throw new SsmPatternError(`${def.id}.${name}: the name is reserved for ANSAI's own document parameters`)
    }
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) {
      throw new SsmPatternError(`${def.id}.${name}: a param name must be letters and digits (it becomes SSM_${name})`)
    }
    const derived = derive(field, `${def.id}.${name}`)
    const required = isRequired(field)
    specs.push({
      name,
      kind: derived.kind,
      required,
      pattern: required ? `^${derived.body}$` : `^(?:${derived.body})?$`,
      maxChars: derived.maxChars,
      strictness: derived.strictness,
      description: describe(field) || name,
    })
  }
  specs.push(...RESERVED_SPECS)
  specCache.set(def, specs)
  return specs
}

// ---------------------------------------------------------------------------------------------------------------
// documents

/** Remediations that get a document: an SSM document name and an executor on the host (`available`). */
export const withSsmDocuments = (registry: readonly RemediationDefinition[]): RemediationDefinition[] =>
  registry.filter((r) => r.ssmDocument !== null && r.status === 'available')

/** How long the script may run: the params' own timeout (plus 5 minutes), else one hour. */
const scriptTimeout = (def: RemediationDefinition): number => {
  const field = shapeOf(def).timeoutSeconds
  if (!field) return 3600
  let s: unknown = field
  while (defOf(s).innerType) s = defOf(s).innerType
  const max = checksOf(defOf(s)).find((c) => c.check === 'less_than')?.value
  return typeof max === 'number' ? Math.min(max + 300, 172_800) : 3600
}

/** The `ANSAI-*` Command document of one remediation. */
export const ssmDocumentFor = (def: RemediationDefinition): { name: string; content: SsmCommandDocument } => {
  if (def.ssmDocument === null) throw new SsmPatternError(`${def.id} has no SSM document (it runs nothing on a host)`)
  if (!def.ssmDocument.startsWith(SSM_DOCUMENT_PREFIX)) {
    throw new SsmPatternError(
      `${def.id}: its SSM document ${def.ssmDocument} does not start with ${SSM_DOCUMENT_PREFIX}`,
    )
  }
  if (!/^[a-z][a-z0-9-]*$/.test(def.id)) throw new SsmPatternError(`${def.id}: not a remediation id`)
  const parameters: SsmCommandDocument['parameters'] = {}
  for (const spec of ssmParameterSpecs(def)) {
    parameters[spec.name] = {
      type: 'String',
      description: spec.description.slice(0, 500),
      allowedPattern: spec.pattern,
      interpolationType: 'ENV_VAR',
      ...(spec.required ? {} : { default: '' }),
    }
  }
  return {
    name: def.ssmDocument,
    content: {
      schemaVersion: SSM_SCHEMA_VERSION,
      description: `ANSAI ${def.id}: ${def.title}. Runs \`ansai-agent remediate ${def.id}\`, which prints one JSON result line. The parameters reach it only as SSM_<name> environment variables (interpolationType ENV_VAR; SSM Agent ${SSM_AGENT_MIN_VERSION} or later), never through the command text.`,
      parameters,
      mainSteps: [
        {
          action: 'aws:runShellScript',
          name: 'remediate',
          precondition: { StringEquals: ['platformType', 'Linux'] },
          inputs: { runCommand: [`ansai-agent remediate ${def.id}`], timeoutSeconds: scriptTimeout(def) },
        },
      ],
    },
  }
}

// ---------------------------------------------------------------------------------------------------------------
// encoding

const encodeValue = (value: unknown): string => {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'bigint') return String(value)
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  return JSON.stringify(value) ?? ''
}

/**
 * Params (as the params schema outputs them) → SSM parameters: one string each, undefined ones left out; with the
 * decision key and dry-run flag when given. Encodes whatever it gets: `checkSsmParameters` judges the result.
 */
export const encodeSsmParameters = (
  _def: RemediationDefinition,
  params: Readonly<Record<string, unknown>>,
  meta: { key?: string; dryRun?: boolean } = {},
): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) out[name] = encodeValue(value)
  }
  if (meta.key !== undefined) out[SSM_KEY_PARAMETER] = meta.key
  if (meta.dryRun !== undefined) out[SSM_DRY_RUN_PARAMETER] = meta.dryRun ? 'true' : 'false'
  return out
}

const decodeValue = (kind: SsmParameterKind, text: string): unknown => {
  switch (kind) {
    case 'string':
      return text
    case 'number':
      return /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$/.test(text) ? Number(text) : text
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : text
    case 'json':
      try {
        return JSON.parse(text) as unknown
      } catch {
        return text
      }
  }
}

/**
 * SSM parameters → params, the decision key and the dry-run flag: the inverse of `encodeSsmParameters` (the host
 * side). Empty values are "not given"; names the document does not have are ignored. The params schema still
 * judges the result.
 */
export const decodeSsmParameters = (
  def: RemediationDefinition,
  encoded: Readonly<Record<string, string>>,
): { params: Record<string, unknown>; key?: string; dryRun?: boolean } => {
  const params: Record<string, unknown> = {}
  let key: string | undefined
  let dryRun: boolean | undefined
  for (const spec of ssmParameterSpecs(def)) {
    const text = encoded[spec.name]
    if (text === undefined || text === '') continue
    if (spec.name === SSM_KEY_PARAMETER) key = text
    else if (spec.name === SSM_DRY_RUN_PARAMETER) dryRun = text === 'true'
    else params[spec.name] = decodeValue(spec.kind, text)
  }
  return { params, ...(key !== undefined ? { key } : {}), ...(dryRun !== undefined ? { dryRun } : {}) }
}

const shown = (text: string): string => {
  const json = JSON.stringify(text)
  return json.length > 80 ? `${json.slice(0, 77)}..."` : json
}

/**
 * What SSM would refuse (and a little more): unknown names, required parameters left empty, values too long, and
 * values that do not match the anchored pattern. A value the params schema accepts but the pattern refuses is named
 * as such: ANSAI's patterns are stricter than its schemas, and such a fix cannot go through SSM as it is.
 */
export const checkSsmParameters = (
  def: RemediationDefinition,
  encoded: Readonly<Record<string, string>>,
): SsmParameterViolation[] => {
  const specs = ssmParameterSpecs(def)
  const byName = new Map(specs.map((s) => [s.name, s]))
  const shape = shapeOf(def)
  const violations: SsmParameterViolation[] = []
  for (const [name, value] of Object.entries(encoded)) {
    const spec = byName.get(name)
    if (!spec) {
      violations.push({
        parameter: name,
        message: `unknown parameter for ${def.ssmDocument ?? def.id}; it takes ${specs.map((s) => s.name).join(', ')}`,
      })
      continue
    }
    if (typeof value !== 'string') {
      violations.push({ parameter: name, message: `must be a string, not ${typeof value}` })
      continue
    }
    if (value.length > spec.maxChars) {
      violations.push({ parameter: name, message: `${value.length} characters; at most ${spec.maxChars}` })
      continue
    }
    if (!new RegExp(spec.pattern).test(value)) {
      const field = shape[name] as unknown as z.ZodType | undefined
      const schemaAccepts =
        field !== undefined && value !== '' && field.safeParse(decodeValue(spec.kind, value)).success
      violations.push({
        parameter: name,
        message: schemaAccepts
          ? `${shown(value)} is valid for ${def.id} but refused by the document's allowedPattern ${spec.pattern} (ANSAI's SSM patterns are stricter than the params schema: no spaces, quotes, shell metacharacters or URL queries)`
          : `${shown(value)} does not match the document's allowedPattern ${spec.pattern}`,
      })
    }
  }
  for (const spec of specs) {
    if (spec.required && (encoded[spec.name] === undefined || encoded[spec.name] === '')) {
      violations.push({ parameter: spec.name, message: `required by ${def.ssmDocument ?? def.id}` })
    }
  }
  return violations
}
