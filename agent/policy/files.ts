import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { PolicySource } from '../../shared/policy/load.ts'

/** Thrown for a path that cannot be read: the message names it. */
export class PolicyFileError extends Error {
  override name = 'PolicyFileError'
}

const isPolicyFile = (name: string): boolean => /\.ya?ml$/i.test(name)

/** Read policy files: each path is a YAML file or a directory of them (not recursive, sorted by name). */
export const readPolicySources = (paths: readonly string[]): PolicySource[] => {
  const sources: PolicySource[] = []
  for (const path of paths) {
    let stat: ReturnType<typeof statSync>
    try {
      stat = statSync(path)
    } catch (err) {
      throw new PolicyFileError(
        `${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        { cause: err },
      )
    }
    const files = stat.isDirectory()
      ? readdirSync(path)
          .filter(isPolicyFile)
          .sort()
          .map((f) => join(path, f))
      : [path]
    if (stat.isDirectory() && files.length === 0) throw new PolicyFileError(`${path}: no .yaml or .yml files in it`)
    for (const file of files) sources.push({ file, text: readFileSync(file, 'utf8') })
  }
  return sources
}
