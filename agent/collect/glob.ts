import type { CollectFs } from './context.ts'
import { errnoOf, fsReason } from './context.ts'

/** Whether a string has glob characters (`*`, `?`, `[`). */
export const hasGlob = (s: string): boolean => /[*?[]/.test(s)

const escapeRegExp = (c: string): string => c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')

/**
 * A shell-style glob as an anchored RegExp: `*` any run of characters but `/`, `**` any run including `/` (when
 * `globstar`), `?` one character but `/`, `[abc]`, `[a-z]`, `[!x]`/`[^x]` a class; everything else literal.
 * An unclosed `[` is a literal `[`.
 */
export function globToRegExp(glob: string, opts: { globstar?: boolean } = {}): RegExp {
  let out = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (opts.globstar && c === '/' && glob.slice(i) === '/**') {
      out += '(?:/.*)?' // `/a/**` matches `/a` itself and everything under it
      break
    }
    if (c === '*') {
      if (opts.globstar && glob[i + 1] === '*') {
        i++
        // `/a/**` also matches `/a` itself; `/a/**/b` matches `/a/b`
        if (glob[i + 1] === '/') {
          i++
          out += '(?:.*/)?'
        } else out += '.*'
      } else out += '[^/]*'
    } else if (c === '?') out += '[^/]'
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2)
      if (close < 0) {
        out += '\\['
        continue
      }
      let body = glob.slice(i + 1, close)
      const negate = body.startsWith('!') || body.startsWith('^')
      if (negate) body = body.slice(1)
      out += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`
      i = close
    } else out += escapeRegExp(c)
  }
  return new RegExp(`^${out}$`)
}

/** Whether `text` matches any of the globs. */
export const matchesAny = (text: string, globs: readonly string[], opts: { globstar?: boolean } = {}): boolean =>
  globs.some((g) => globToRegExp(g, opts).test(text))

export interface GlobMatch {
  path: string
  /** The pattern had no glob characters: the path was named, not found. */
  literal: boolean
}

export interface GlobExpansion {
  matches: GlobMatch[]
  /** Directories that could not be read (other than missing ones), as ProbeError reasons. */
  problems: string[]
}

const MAX_MATCHES = 1_000

/**
 * Expands an absolute glob against `fs`, one directory level per glob segment (readdir, sorted). A path without
 * glob characters is returned as is (literal), without checking that it exists: the reader says so. A missing
 * directory on the way matches nothing; an unreadable one is a problem. Hidden entries match only a segment that
 * starts with `.`. At most 1000 matches.
 */
export async function expandGlob(pattern: string, fs: CollectFs): Promise<GlobExpansion> {
  if (!hasGlob(pattern)) return { matches: [{ path: pattern, literal: true }], problems: [] }
  const segments = pattern.split('/').filter((s) => s.length > 0)
  const problems: string[] = []
  let bases = ['']
  for (const segment of segments) {
    if (!hasGlob(segment)) {
      bases = bases.map((b) => `${b}/${segment}`)
      continue
    }
    const re = globToRegExp(segment)
    const next: string[] = []
    for (const base of bases) {
      const dir = base === '' ? '/' : base
      let names: string[]
      try {
        names = await fs.readdir(dir)
      } catch (err) {
        const code = errnoOf(err)
        if (code !== 'ENOENT' && code !== 'ENOTDIR') problems.push(fsReason(dir, err))
        continue
      }
      for (const name of [...names].sort()) {
        if (name.startsWith('.') && !segment.startsWith('.')) continue
        if (re.test(name)) next.push(`${base}/${name}`)
        if (next.length >= MAX_MATCHES) break
      }
    }
    bases = next
    if (bases.length === 0) break
  }
  return { matches: bases.slice(0, MAX_MATCHES).map((path) => ({ path, literal: false })), problems }
}
