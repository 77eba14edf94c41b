/**
 * The local esbuild bundling of the functions (infra/bundle.ts): a missing entry fails with its name; an entry
 * becomes <out>/<name>/index.mjs, an ES module for Node 24 with a linked source map, its dependencies bundled.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { BundleError, bundleFunctions } from '../../infra/bundle.ts'

const REPO = join(import.meta.dirname, '../..')

describe('bundleFunctions', () => {
  it('fails with the entry it cannot find', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ansai-bundle-'))
    await expect(bundleFunctions(['ingest-reports', 'send-digest'], join(root, 'out'), root)).rejects.toThrow(
      BundleError,
    )
    await expect(bundleFunctions(['ingest-reports'], join(root, 'out'), root)).rejects.toThrow(
      /functions\/ingest-reports\/handler\.ts does not exist/,
    )
  })

  it('bundles an entry into index.mjs (ESM, minified, source map), zod and the repo code included', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ansai-bundle-'))
    mkdirSync(join(root, 'functions', 'send-digest'), { recursive: true })
    // an entry that imports repository code (with zod) from the real checkout
    writeFileSync(
      join(root, 'functions', 'send-digest', 'handler.ts'),
      [
        `import { FleetRuntimeConfigSchema } from ${JSON.stringify(join(REPO, 'functions/platform/runtime-config.ts'))}`,
        'export const handler = async (event: unknown) =>',
        '  FleetRuntimeConfigSchema.safeParse({ version: 1, policies: [] }).success ? { ok: true, event } : { ok: false }',
      ].join('\n'),
    )
    const bundler = await bundleFunctions(['send-digest'], join(root, 'out'), root)
    const dir = bundler('send-digest')
    expect(dir).toBe(join(root, 'out', 'send-digest'))
    const code = readFileSync(join(dir, 'index.mjs'), 'utf8')
    expect(code).toMatch(/^import\{createRequire as __ansaiCreateRequire\}from'node:module'/)
    expect(code).toMatch(/export\s*\{/)
    expect(code).toContain('//# sourceMappingURL=index.mjs.map')
    expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true)
    expect(code).not.toMatch(/from\s*["']zod["']/)
    const mod = (await import(pathToFileURL(join(dir, 'index.mjs')).href)) as {
      handler: (e: unknown) => Promise<unknown>
    }
    await expect(mod.handler('ping')).resolves.toEqual({ ok: true, event: 'ping' })
    expect(() => bundler('ingest-reports')).toThrow(/was not bundled/)
  })
})
