/**
 * The bundled CLIs as a host gets them (agent/build/build.ts): built into a temp dir, run from a directory far from
 * the checkout, so the baseline pack can only come from the bundle itself. `ansai-agent collect --json` prints a
 * valid ReportV1, and without a config file loads neither YAML, zod nor the engine. Its start cost (CPU with child
 * processes, peak RSS) is measured by `npm run bench -- --collect-only` (test/bench/collect.ts), never asserted here
 * (DESIGN.md: benchmarks are not timed assertions).
 */
import { spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { type BuildResult, buildBundles, embedFilesPlugin, REPO_ROOT } from '../../agent/build/build.ts'
import { DEFAULT_CONFIG_PATH } from '../../agent/config/load.ts'
import { ReportV1Schema } from '../../shared/contracts/index.ts'

const note = (message: string): void => {
  process.stderr.write(`[bundle.test] ${message}\n`)
}

const baselineNames = (): string[] =>
  readFileSync(join(REPO_ROOT, 'shared/policies/baseline.yaml'), 'utf8')
    .split(/^---\s*$/m)
    .map((doc) => parseYaml(doc) as { metadata?: { name?: string } } | null)
    .flatMap((doc) => (doc?.metadata?.name ? [doc.metadata.name] : []))

describe('the bundled CLIs (npm run build)', () => {
  let root: string
  let built: BuildResult
  let dist: string
  let work: string
  let config: string

  /** Runs a bundle on the Node that runs the tests, from `work` (nowhere near the checkout). */
  const run = (bundle: string, args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [join(dist, bundle), ...args], {
      cwd: work,
      encoding: 'utf8',
      timeout: 120_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', ...env },
    })
    return { code: r.status, stdout: r.stdout, stderr: r.stderr }
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ansai-bundle-'))
    dist = join(root, 'dist')
    work = join(root, 'work')
    mkdirSync(join(work, 'state'), { recursive: true })
    config = join(work, 'config.yaml')
    writeFileSync(config, `state:\n  dir: ${join(work, 'state')}\n`)
    const t0 = performance.now()
    built = await buildBundles({ outDir: dist, quiet: true })
    note(`built in ${Math.round(performance.now() - t0)} ms`)
  }, 180_000)

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true })
  })

  it('writes two small entry points with a shebang, lazy chunks, and the release tarball', () => {
    const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`
    const entries = built.outputs.filter((o) => !o.file.includes('/chunks/'))
    const chunks = built.outputs.filter((o) => o.file.includes('/chunks/'))
    for (const o of entries) note(`${o.file.slice(dist.length + 1)}: ${kib(o.bytes)}`)
    note(
      `chunks/: ${chunks.length} files, ${kib(chunks.reduce((s, o) => s + o.bytes, 0))} ` +
        `(largest ${[...chunks]
          .sort((a, b) => b.bytes - a.bytes)
          .slice(0, 4)
          .map((o) => `${o.file.split('/').pop()} ${kib(o.bytes)}`)
          .join(', ')})`,
    )
    note(`${built.tarball?.file.split('/').pop()}: ${kib(built.tarball?.bytes ?? 0)}`)

    expect(entries.map((o) => o.file.split('/').pop()).sort()).toEqual(['ansai-agent.mjs', 'ansai.mjs'])
    for (const name of ['ansai.mjs', 'ansai-agent.mjs']) {
      const file = join(dist, name)
      expect(readFileSync(file, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
      expect(statSync(file).mode & 0o777).toBe(0o755)
    }
    expect(chunks.length).toBeGreaterThan(5)
    // the baseline pack is inside, and nothing points back at the source tree
    const all = readdirSync(join(dist, 'chunks'))
      .map((f) => readFileSync(join(dist, 'chunks', f), 'utf8'))
      .join('\n')
    expect(all).toContain('apiVersion: ansai/v1')
    expect(all).not.toMatch(/shared\/policies\/baseline\.yaml/)
    expect(all).not.toContain(REPO_ROOT)
    // node: builtins stay imports, never bundled
    expect(all).toMatch(/from\s*"node:sqlite"/)

    const tar = spawnSync('tar', ['-tzf', built.tarball!.file], { encoding: 'utf8' })
    expect(tar.status).toBe(0)
    const listed = tar.stdout.split('\n').filter(Boolean)
    const top = `ansai-${built.version}/`
    for (const f of [
      'lib/ansai.mjs',
      'lib/ansai-agent.mjs',
      'install.sh',
      'uninstall.sh',
      'ansai-agent.service',
      'ansai-agent.timer',
      'ansai-report@.service',
      'config.example.yaml',
      'README.md',
      'VERSION',
    ]) {
      expect(listed).toContain(top + f)
    }
    expect(listed.filter((f) => f.startsWith(`${top}lib/chunks/`) && f.endsWith('.mjs'))).toHaveLength(chunks.length)
  })

  it('the build is reproducible: the same sources give the same tarball', async () => {
    const again = await buildBundles({ outDir: join(root, 'dist2'), quiet: true })
    expect(readFileSync(again.tarball!.file).equals(readFileSync(built.tarball!.file))).toBe(true)
  }, 120_000)

  it('embeds files read next to the source, and refuses any other use of the source location', async () => {
    const { build } = await import('esbuild')
    const src = join(root, 'embed-src')
    mkdirSync(join(src, 'data'), { recursive: true })
    writeFileSync(join(src, 'data', 'pack.yaml'), 'kind: Policy\n')
    writeFileSync(
      join(src, 'ok.ts'),
      "import { readFileSync } from 'node:fs'\nexport const text = readFileSync(new URL('./data/pack.yaml', import.meta.url), 'utf8')\n",
    )
    writeFileSync(join(src, 'bad.ts'), 'export const here: string = import.meta.dirname\n')
    const common = {
      bundle: true,
      format: 'esm' as const,
      platform: 'node' as const,
      write: false,
      logLevel: 'silent' as const,
    }
    const ok = await build({ ...common, entryPoints: [join(src, 'ok.ts')], plugins: [embedFilesPlugin(src)] })
    const code = ok.outputFiles?.[0]?.text ?? ''
    expect(code).toContain('"kind: Policy\\n"')
    expect(code).not.toContain('import.meta')
    await expect(
      build({ ...common, entryPoints: [join(src, 'bad.ts')], plugins: [embedFilesPlugin(src)] }),
    ).rejects.toThrow(/bad\.ts:1 uses import\.meta\.dirname/)
  })

  it('ansai --help and ansai-agent --help', () => {
    const a = run('ansai.mjs', ['--help'])
    expect(a.code, a.stderr).toBe(0)
    expect(a.stdout).toMatch(/^Usage: ansai <command>/m)
    const b = run('ansai-agent.mjs', ['--help'])
    expect(b.code, b.stderr).toBe(0)
    expect(b.stdout).toMatch(/^Usage: ansai-agent <command>/m)
    expect(run('ansai.mjs', ['version']).stdout.trim()).toBe(built.version)
  })

  it('ansai policy validate: a directory of policies, and a broken one with its file and line', () => {
    const policies = join(work, 'policies')
    mkdirSync(policies, { recursive: true })
    writeFileSync(join(policies, 'baseline.yaml'), readFileSync(join(REPO_ROOT, 'shared/policies/baseline.yaml')))
    const ok = run('ansai.mjs', ['policy', 'validate', policies])
    expect(ok.code, ok.stderr + ok.stdout).toBe(0)
    expect(ok.stdout).toMatch(new RegExp(`ok: ${baselineNames().length} policies`))

    const broken = join(work, 'broken')
    mkdirSync(broken, { recursive: true })
    writeFileSync(
      join(broken, 'bad.yaml'),
      'apiVersion: ansai/v1\nkind: Policy\nmetadata: { name: bad }\nspec:\n  observe: filesystem\n  nonsense: 1\n',
    )
    const bad = run('ansai.mjs', ['policy', 'validate', broken])
    expect(bad.code).not.toBe(0)
    expect(bad.stdout + bad.stderr).toMatch(/bad\.yaml:\d+/)
  })

  it('ansai check --json uses the embedded baseline pack', () => {
    const r = run('ansai.mjs', ['check', '--json', '--config', config])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as {
      findings: { policy: string }[]
      skippedPolicies: { name: string }[]
    }
    const names = baselineNames()
    const seen = new Set([...out.findings.map((f) => f.policy), ...out.skippedPolicies.map((s) => s.name)])
    note(`check --json: findings of ${[...seen].join(', ')} (baseline: ${names.join(', ')})`)
    expect(seen.size).toBeGreaterThan(0)
    for (const p of seen) expect(names).toContain(p)
    expect(seen).toContain('disk-pressure') // every host has a filesystem
  })

  it('ansai run --once --dry-run opens the SQLite state (node:sqlite) from the bundle', () => {
    const r = run('ansai.mjs', ['run', '--once', '--dry-run', '--json', '--config', config])
    expect([0, 1], r.stderr).toContain(r.code)
    expect(existsSync(join(work, 'state', 'state.db'))).toBe(true)
  })

  it('ansai-agent remediate disk-cleanup --dry-run prints exactly one JSON line and removes nothing', () => {
    const logs = join(work, 'logs')
    mkdirSync(logs, { recursive: true })
    const old = join(logs, 'app.log.1')
    writeFileSync(old, 'x'.repeat(4096))
    const past = new Date(Date.now() - 40 * 86_400_000)
    utimesSync(old, past, past)
    writeFileSync(join(logs, 'new.log'), 'fresh\n')
    const r = run('ansai-agent.mjs', [
      'remediate',
      'disk-cleanup',
      '--dry-run',
      '--params',
      JSON.stringify({ roots: [logs], logsOlderThan: '30d' }),
    ])
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.split('\n').filter(Boolean)
    expect(lines).toHaveLength(1)
    const result = JSON.parse(lines[0]!) as { schema: string; status: string; summary: string }
    expect(result).toMatchObject({ schema: 'ansai.remediation-result.v1', status: 'dry-run' })
    expect(lines[0]).toContain('app.log.1')
    expect(lines[0]).not.toContain('new.log')
    expect(existsSync(old)).toBe(true)
  })

  it('ansai-agent collect --json prints a valid ReportV1 (the command skips its own zod check: this is it)', () => {
    const r = run('ansai-agent.mjs', ['collect', '--json', '--config', config])
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.split('\n').filter(Boolean)
    expect(lines).toHaveLength(1)
    const report = ReportV1Schema.parse(JSON.parse(lines[0]!))
    expect(report.observations.some((o) => o.kind === 'filesystem')).toBe(true) // every host has one
    expect(report.observations.some((o) => o.kind === 'memory')).toBe(true)
    const again = ReportV1Schema.parse(
      JSON.parse(run('ansai-agent.mjs', ['collect', '--json', '--config', config]).stdout),
    )
    expect(again.seq).toBeGreaterThan(report.seq)
  })

  // Without a config file, as a host runs it: defaults, state in /var/lib/ansai (a probe error says so when it is not
  // writable). The start cost of this path is `npm run bench -- --collect-only` (test/bench/collect.ts).
  it.skipIf(existsSync(DEFAULT_CONFIG_PATH))(
    'ansai-agent collect --json without a config file: a valid ReportV1, and neither YAML, zod nor the engine loaded',
    () => {
      const hooks = join(root, 'hooks.mjs')
      const list = join(root, 'loaded.txt')
      writeFileSync(
        hooks,
        [
          "import { appendFileSync } from 'node:fs'",
          "import { registerHooks } from 'node:module'",
          'registerHooks({ load(url, context, nextLoad) {',
          "  if (url.startsWith('file:')) appendFileSync(process.env.ANSAI_LOADED_OUT, url + '\\n')",
          '  return nextLoad(url, context)',
          '} })',
        ].join('\n'),
      )
      const r = spawnSync(
        process.execPath,
        ['--import', pathToFileURL(hooks).href, join(dist, 'ansai-agent.mjs'), 'collect', '--json'],
        {
          cwd: work,
          encoding: 'utf8',
          timeout: 300_000,
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', ANSAI_LOADED_OUT: list },
        },
      )
      expect(r.status, r.stderr).toBe(0)
      const report = ReportV1Schema.parse(JSON.parse(r.stdout))
      expect(report.host.tags).toEqual({})

      const loaded = new Set(
        readFileSync(list, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((url) => fileURLToPath(url)),
      )
      const inputs = Object.entries(built.metafile.outputs)
        .filter(([file]) => loaded.has(resolve(REPO_ROOT, file)))
        .flatMap(([, o]) => Object.keys(o.inputs))
      note(`collect without a config file: ${loaded.size} files, ${inputs.length} sources`)
      expect(loaded.size).toBeGreaterThan(3)
      expect(inputs.filter((i) => /node_modules\/(zod|yaml)\/|shared\/engine\/(evaluate|compile)\.ts/.test(i))).toEqual(
        [],
      )
    },
  )
})
