/**
 * Bundles each Lambda function at synth with esbuild, locally (no Docker): `functions/<name>/handler.ts` →
 * `<outRoot>/<name>/index.mjs` (+ `index.mjs.map`). The stack then writes `fleet-config.json` beside it and ships
 * the directory with `Code.fromAsset`, handler `index.handler`.
 *
 * ESM for Node 24, minified, with a linked source map in the asset (not enabled at run time: that would take
 * NODE_OPTIONS, and the CDK app sets no environment variable beyond names.ts and Powertools'). Everything is bundled,
 * the AWS SDK v3 included: the runtime's copy changes under us, the bundled one is the version the tests ran
 * against. Files our sources read beside themselves (the baseline pack) are embedded, and zod keeps only its
 * English messages, with the same esbuild plugins as the host bundles (agent/build/build.ts).
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'esbuild'
import { embedFilesPlugin, englishOnlyZodPlugin, REPO_ROOT } from '../agent/build/build.ts'
import type { FunctionName } from '../functions/platform/names.ts'

/** Returns the directory of one function's code (`index.mjs` exporting `handler`). */
export type FunctionBundler = (name: FunctionName) => string

/** Thrown when a function cannot be bundled; the message names the entry. */
export class BundleError extends Error {
  override name = 'BundleError'
}

/** `functions/<name>/handler.ts`, relative to the repository. */
export const functionEntry = (name: FunctionName): string => `functions/${name}/handler.ts`

const REQUIRE_SHIM =
  "import{createRequire as __ansaiCreateRequire}from'node:module';const require=__ansaiCreateRequire(import.meta.url);"

/**
 * Bundle the functions into `<outRoot>/<name>/` before the stacks are built (esbuild's plugins need its async API,
 * and constructs are synchronous), and return the bundler the stacks call. A missing entry fails at once, naming it.
 */
export const bundleFunctions = async (
  names: readonly FunctionName[],
  outRoot: string,
  root: string = REPO_ROOT,
): Promise<FunctionBundler> => {
  const missing = names.filter((n) => !existsSync(join(root, functionEntry(n))))
  if (missing.length) {
    throw new BundleError(
      `cannot bundle the Lambda functions: ${missing.map(functionEntry).join(', ')} ${missing.length === 1 ? 'does' : 'do'} not exist (each function is functions/<name>/handler.ts exporting \`handler\`)`,
    )
  }
  const dirs = new Map<FunctionName, string>()
  for (const name of names) {
    const dir = join(outRoot, name)
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    try {
      await build({
        absWorkingDir: root,
        entryPoints: [join(root, functionEntry(name))],
        outfile: join(dir, 'index.mjs'),
        bundle: true,
        format: 'esm',
        platform: 'node',
        target: 'node24',
        mainFields: ['module', 'main'],
        minify: true,
        sourcemap: 'linked',
        sourcesContent: false,
        legalComments: 'none',
        external: ['node:*'],
        banner: { js: REQUIRE_SHIM },
        plugins: [englishOnlyZodPlugin(root), embedFilesPlugin(root)],
        logLevel: 'silent',
      })
    } catch (err) {
      throw new BundleError(`cannot bundle ${functionEntry(name)}: ${(err as Error).message}`, { cause: err })
    }
    dirs.set(name, dir)
  }
  return (name) => {
    const dir = dirs.get(name)
    if (!dir) throw new BundleError(`${functionEntry(name)} was not bundled`)
    return dir
  }
}
