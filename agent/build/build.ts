/**
 * `npm run build`: bundles the two CLIs with esbuild and packs the host artifact.
 *
 *   dist/ansai.mjs, dist/ansai-agent.mjs   the entry points (ESM, `#!/usr/bin/env node`, Node ≥ 22 syntax)
 *   dist/chunks/*.mjs                      code shared by both and code loaded lazily (one chunk per dynamic import)
 *   dist/ansai-<version>.tar.gz            what a host installs: ansai-<version>/{lib/, install.sh, uninstall.sh,
 *                                          the systemd units, config.example.yaml, README.md}
 *
 * Why chunks and not one file: V8 parses a whole file before running it. One 1.2 MB file costs about 100 ms of CPU
 * and 30 MB of RSS before the first line of `ansai-agent collect` runs; with code splitting each command loads only
 * what it imports (`ansai-agent --help` loads 3 small files). The install copies `lib/` as a whole, so the host still
 * gets "one program": a directory with no node_modules and nothing to resolve at run time.
 *
 * Files the code reads next to its source at run time (`readFileSync(new URL('<relative>', import.meta.url),
 * 'utf8')`, such as the baseline policy pack) are embedded as string literals by the `embed-files` plugin; any other
 * use of `import.meta.url`/`__dirname` in our own sources fails the build, because the bundle lives elsewhere.
 * `node:` builtins stay external (node:sqlite above all), taken with `process.getBuiltinModule()` rather than through
 * Node's ESM facades (see `builtinsWithoutFacadePlugin`); npm dependencies are bundled. CommonJS dependencies
 * (nodemailer) call `require()`, so every output file starts with a `createRequire(import.meta.url)` shim, made at
 * the first call.
 *
 * Minified, and no source maps by default: a host gets the smallest code to parse. `--sourcemap` writes linked
 * `.map` files next to the outputs (Node reads them with `--enable-source-maps`) and `--keep-names` keeps function
 * and class names in stack traces; keeping names costs about 15 ms of CPU and 3 MB at every start (esbuild wraps
 * each function in a `__name()` call), so it is off. Error names survive either way: the errors set `name` themselves.
 *
 *   node agent/build/build.ts [--outdir dist] [--no-tarball] [--sourcemap] [--keep-names] [--no-minify] [--quiet]
 */
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { isBuiltin } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { gzipSync } from 'node:zlib'
import { build, type Metafile, type Plugin } from 'esbuild'

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const INSTALL_DIR = join(REPO_ROOT, 'agent/install')

/** The CLIs: output name → source. */
export const ENTRY_POINTS = {
  ansai: 'agent/cli/ansai.ts',
  'ansai-agent': 'agent/cli/ansai-agent.ts',
} as const

/** What the artifact holds from agent/install/ (beside lib/), and their modes. */
export const ARTIFACT_FILES: Record<string, number> = {
  'install.sh': 0o755,
  'uninstall.sh': 0o755,
  'ansai-agent.service': 0o644,
  'ansai-agent.timer': 0o644,
  'ansai-report@.service': 0o644,
  'config.example.yaml': 0o644,
  'README.md': 0o644,
}

export interface BuildOptions {
  /** Where the bundles go (default <repo>/dist); created, and its lib outputs replaced. */
  outDir?: string
  /** Also pack dist/ansai-<version>.tar.gz (default true). */
  tarball?: boolean
  /** Linked source maps next to the outputs (default false). */
  sourcemap?: boolean
  /** Minify (default true). */
  minify?: boolean
  /** Keep function and class names for stack traces (default false: it costs startup time). */
  keepNames?: boolean
  /** Print nothing (default false: one line per output with its size). */
  quiet?: boolean
}

export interface BuildResult {
  version: string
  outDir: string
  /** Every output file (absolute path) with its size in bytes; entry points first. */
  outputs: { file: string; bytes: number }[]
  tarball?: { file: string; bytes: number }
  /** esbuild's metafile: which sources each output holds, and what it imports (paths relative to the repo). */
  metafile: Metafile
}

const EMBED = /readFileSync\(\s*new URL\(\s*(['"])([^'"]+)\1\s*,\s*import\.meta\.url\s*\)\s*,\s*(['"])utf-?8\3\s*\)/g
const UNBUNDLABLE = /\bimport\.meta\.(url|dirname|filename)\b|\b__dirname\b|\b__filename\b/

/**
 * Embeds files that our sources read relative to themselves (the baseline pack), and refuses any other reference to
 * the source location: in the bundle it would point at dist/, where those files are not.
 */
export const embedFilesPlugin = (root: string): Plugin => ({
  name: 'embed-files',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      if (args.path.includes('/node_modules/') || !args.path.startsWith(`${root}/`)) return undefined
      const source = readFileSync(args.path, 'utf8')
      if (!source.includes('import.meta') && !/__(dir|file)name/.test(source)) return undefined
      const watchFiles: string[] = []
      const contents = source.replace(EMBED, (_match, _q, rel: string) => {
        const file = resolve(dirname(args.path), rel)
        watchFiles.push(file)
        return JSON.stringify(readFileSync(file, 'utf8'))
      })
      const left = UNBUNDLABLE.exec(contents)
      if (left) {
        const line = contents.slice(0, left.index).split('\n').length
        return {
          errors: [
            {
              text: `${relative(root, args.path)}:${line} uses ${left[0]}: in the bundle it points at dist/, not at the source. Read files with readFileSync(new URL('<relative path>', import.meta.url), 'utf8') (embedded at build time) or take the path from the config.`,
            },
          ],
        }
      }
      return { contents, loader: 'ts', watchFiles }
    })
  },
})

/**
 * zod's `z.locales` namespace holds the error messages of ~50 languages (270 kB of the 460 kB zod chunk that every
 * command loads). ANSAI speaks English: the namespace keeps only `en` (zod's default), and a source that picks a
 * locale through `locales.` fails the build instead of failing on a host.
 */
export const englishOnlyZodPlugin = (root: string): Plugin => ({
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/\/node_modules\/zod\/v4\/(classic|core)$/.test(args.resolveDir)) return undefined
      return { path: resolve(args.resolveDir, '../locales/index.js'), namespace: 'zod-locales' }
    })
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(join(dirname(args.path), 'en.js'))}\n`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }))
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      if (args.path.includes('/node_modules/') || !args.path.startsWith(`${root}/`)) return undefined
      const source = readFileSync(args.path, 'utf8')
      const hit = /\blocales\.(?!en\b)[a-zA-Z]+/.exec(source)
      if (!hit) return undefined
      return {
        errors: [
          {
            text: `${relative(root, args.path)} uses zod's ${hit[0]}: the bundle keeps only the English locale (see englishOnlyZodPlugin in agent/build/build.ts)`,
          },
        ],
      }
    })
  },
})

/**
 * Node builtins without their ESM facade. `import { readFileSync } from 'node:fs'` makes Node build an ES module of
 * the whole builtin, and building it reads every export, lazy ones included: node:fs then loads fs/promises,
 * readline and the fs streams, node:util the streams, worker_threads and the assert diff. Each facade costs about
 * 1 MB and 1-3 ms at start; together ~3 MB of the 50 MB that `ansai-agent collect` may take.
 *
 * So each static import of a builtin resolves to a small module of its own, one per importing file, bundled into
 * that file's chunk: `const m = process.getBuiltinModule('node:fs')` (Node >= 22.3; ANSAI needs 24) and one export
 * per name of the builtin, each marked pure, so that tree shaking keeps only the names that file imports. The
 * output reads `var m=process.getBuiltinModule("node:fs"),r=m.readFileSync` where it had `import{readFileSync as
 * r}from"node:fs"`, and nothing else of the builtin. Dynamic `import('node:tls')` and the require() calls of CommonJS
 * dependencies stay as they are; node:sqlite stays a real import (the store's, loaded only where it is used).
 */
export const builtinsWithoutFacadePlugin = (root: string): Plugin => ({
  name: 'builtins-without-facade',
  setup(b) {
    b.onResolve({ filter: /^[a-z_]/ }, (args) => {
      if (args.kind !== 'import-statement' || !isBuiltin(args.path)) return undefined
      const id = args.path.startsWith('node:') ? args.path : `node:${args.path}`
      if (id === 'node:sqlite') return undefined
      return { path: `${id}?from=${relative(root, args.importer)}`, namespace: 'node-builtin', pluginData: id }
    })
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => {
      const id = args.pluginData as string
      const builtin = process.getBuiltinModule(id) as object | undefined
      if (!builtin) return { errors: [{ text: `${id} is not a builtin of the Node that builds (${process.version})` }] }
      const names = Object.keys(builtin).filter((n) => n !== 'default' && /^[A-Za-z_$][\w$]*$/.test(n))
      return {
        contents: [
          `const m = process.getBuiltinModule(${JSON.stringify(id)})`,
          'export default m',
          ...names.map((n) => `export const ${n} = /* @__PURE__ */ (() => m.${n})()`),
        ].join('\n'),
        loader: 'js',
      }
    })
  },
})

/**
 * CommonJS dependencies inside an ESM bundle call require() for builtins: give every output file a real one, made at
 * its first call (createRequire and import.meta cost ~1-2 ms and loads node:module's source maps at every start, and
 * most commands never require anything). esbuild's __require helper only tests `typeof require` and calls it.
 */
const REQUIRE_SHIM =
  'let __ansaiRequire;const require=(id)=>(__ansaiRequire??=process.getBuiltinModule("node:module").createRequire(import.meta.url))(id);'

export const readVersion = (): string =>
  (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version

export const buildBundles = async (opts: BuildOptions = {}): Promise<BuildResult> => {
  const outDir = resolve(opts.outDir ?? join(REPO_ROOT, 'dist'))
  const version = readVersion()
  mkdirSync(outDir, { recursive: true })
  // stale chunks of an earlier build would be packed and installed
  rmSync(join(outDir, 'chunks'), { recursive: true, force: true })
  for (const name of Object.keys(ENTRY_POINTS)) {
    for (const ext of ['.mjs', '.mjs.map']) rmSync(join(outDir, `${name}${ext}`), { force: true })
  }
  const result = await build({
    absWorkingDir: REPO_ROOT,
    entryPoints: Object.fromEntries(Object.entries(ENTRY_POINTS).map(([k, v]) => [k, join(REPO_ROOT, v)])),
    outdir: outDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    minify: opts.minify !== false,
    keepNames: opts.keepNames === true,
    sourcemap: opts.sourcemap ? 'linked' : false,
    legalComments: 'none',
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    // node: builtins are external on platform node; bare builtin names (CommonJS deps use 'net', 'tls') too
    external: ['node:*'],
    banner: { js: REQUIRE_SHIM },
    plugins: [builtinsWithoutFacadePlugin(REPO_ROOT), englishOnlyZodPlugin(REPO_ROOT), embedFilesPlugin(REPO_ROOT)],
    metafile: true,
    logLevel: 'warning',
  })
  const outputs = Object.entries(result.metafile.outputs)
    .filter(([file]) => file.endsWith('.mjs'))
    .map(([file, o]) => ({ file: resolve(REPO_ROOT, file), bytes: o.bytes }))
    .sort((a, b) => Number(a.file.includes('/chunks/')) - Number(b.file.includes('/chunks/')) || b.bytes - a.bytes)
  for (const name of Object.keys(ENTRY_POINTS)) {
    const file = join(outDir, `${name}.mjs`)
    const text = readFileSync(file, 'utf8')
    if (!text.startsWith('#!/usr/bin/env node\n')) writeFileSync(file, `#!/usr/bin/env node\n${text}`)
    chmodSync(file, 0o755)
  }
  const out: BuildResult = { version, outDir, outputs, metafile: result.metafile }
  if (opts.tarball !== false) out.tarball = packArtifact(outDir, version)
  if (!opts.quiet) printSizes(out)
  return out
}

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`
const shown = (file: string): string => {
  const rel = relative(process.cwd(), file)
  return rel.startsWith('..') ? file : rel
}

const printSizes = (r: BuildResult): void => {
  const chunks = r.outputs.filter((o) => o.file.includes('/chunks/'))
  for (const o of r.outputs.filter((x) => !x.file.includes('/chunks/'))) {
    console.log(`${kb(o.bytes).padStart(11)}  ${shown(o.file)}`)
  }
  const biggest = [...chunks].sort((a, b) => b.bytes - a.bytes).slice(0, 3)
  const total = chunks.reduce((sum, o) => sum + o.bytes, 0)
  const largest = biggest.map((o) => `${o.file.split('/').pop()} ${kb(o.bytes)}`).join(', ')
  console.log(
    `${kb(total).padStart(11)}  ${shown(join(r.outDir, 'chunks'))}/ (${chunks.length} files; largest ${largest})`,
  )
  if (r.tarball) console.log(`${kb(r.tarball.bytes).padStart(11)}  ${shown(r.tarball.file)}`)
}

/**
 * dist/ansai-<version>.tar.gz: ansai-<version>/lib/ (the bundles), the install and uninstall scripts, the units,
 * config.example.yaml and README.md. Reproducible: sorted names, owner root, mtime of SOURCE_DATE_EPOCH (default 0),
 * gzip without a timestamp.
 */
export const packArtifact = (outDir: string, version: string): { file: string; bytes: number } => {
  const stage = mkdtempSync(join(tmpdir(), 'ansai-pack-'))
  try {
    const top = `ansai-${version}`
    const base = join(stage, top)
    mkdirSync(join(base, 'lib/chunks'), { recursive: true })
    for (const name of Object.keys(ENTRY_POINTS)) {
      copyFileSync(join(outDir, `${name}.mjs`), join(base, 'lib', `${name}.mjs`))
      chmodSync(join(base, 'lib', `${name}.mjs`), 0o755)
    }
    for (const name of readdirSync(join(outDir, 'chunks')).filter((n) => n.endsWith('.mjs'))) {
      copyFileSync(join(outDir, 'chunks', name), join(base, 'lib/chunks', name))
      chmodSync(join(base, 'lib/chunks', name), 0o644)
    }
    for (const [name, mode] of Object.entries(ARTIFACT_FILES)) {
      copyFileSync(join(INSTALL_DIR, name), join(base, name))
      chmodSync(join(base, name), mode)
    }
    writeFileSync(join(base, 'VERSION'), `${version}\n`)
    const tar = spawnSync(
      'tar',
      [
        '--sort=name',
        '--owner=0',
        '--group=0',
        '--numeric-owner',
        `--mtime=@${process.env.SOURCE_DATE_EPOCH ?? '0'}`,
        '-C',
        stage,
        '-cf',
        '-',
        top,
      ],
      { maxBuffer: 512 * 1024 * 1024 },
    )
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr?.toString() ?? tar.error?.message}`)
    const file = join(outDir, `ansai-${version}.tar.gz`)
    writeFileSync(file, gzipSync(tar.stdout, { level: 9 }))
    return { file, bytes: statSync(file).size }
  } finally {
    rmSync(stage, { recursive: true, force: true })
  }
}

const main = async (): Promise<void> => {
  const { values } = parseArgs({
    options: {
      outdir: { type: 'string' },
      'no-tarball': { type: 'boolean', default: false },
      sourcemap: { type: 'boolean', default: false },
      'keep-names': { type: 'boolean', default: false },
      'no-minify': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(
      'Usage: node agent/build/build.ts [--outdir dist] [--no-tarball] [--sourcemap] [--keep-names] [--no-minify] [--quiet]',
    )
    return
  }
  await buildBundles({
    ...(values.outdir ? { outDir: values.outdir } : {}),
    tarball: !values['no-tarball'],
    sourcemap: values.sourcemap,
    keepNames: values['keep-names'],
    minify: !values['no-minify'],
    quiet: values.quiet,
  })
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`build: ${(err as Error).message}`)
    process.exitCode = 1
  })
}
