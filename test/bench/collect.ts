/**
 * The start of the bundled agent, `ansai-agent collect --json`, the way a host runs it: the bundle as
 * `npm run build` makes it, the Node that runs the bench, the default configuration (no config file), a fresh
 * process each run, nothing resident between runs. Goal (the issue): ≤ 80 ms of CPU, child processes included, and
 * ≤ 50 MB of peak RSS.
 *
 * Each run: `bash -c '… /usr/bin/time -f %M <node> <bundle> collect --json; times'`, stdout a pipe the bench reads:
 * - CPU: user + system time of the waited-for children of that shell, from bash's `times` (getrusage
 *   RUSAGE_CHILDREN, printed to the millisecond): the Node process, all its threads, and every process it started
 *   and waited for (systemctl, apt-get, docker…), plus /usr/bin/time's own fork and exec (~1 ms). GNU time's own
 *   %U and %S are cut to 10 ms each, which reads 20-30 ms for a bare `node -e 0` that takes ~30: too coarse here.
 * - peak RSS: GNU time's %M (wait4's ru_maxrss: the largest resident set of the process and of each of its
 *   children, not their sum). Without /usr/bin/time, a preloaded module reports process.resourceUsage().maxRSS of
 *   the Node process alone, and says so.
 * - wall: bash's $EPOCHREALTIME around the command.
 * Median of `runs` (default 7) after one warm-up run (which also fills the slow probes' caches: the package check
 * runs apt-get or dnf at most every 6 h), for `node -e 0` (the floor), `ansai-agent --help` and `collect --json`;
 * then `collect --json` again inside a systemd test machine (test/support/systemd), where systemd is PID 1 and the
 * services probe runs systemctl, as on most hosts (skipped with the reason where such a machine cannot boot).
 *
 * The bundle: dist/ when it is newer than every source of agent/, shared/ and the package files, else a fresh build
 * in a temp dir (dist/ is left alone). One more run, not measured, lists the files the collect loads (module
 * hooks) and checks the report against ReportV1Schema.
 *
 * `npm run bench -- --collect-only` runs it from test/bench/run.ts; `node test/bench/collect.ts [--dist <dir>]` alone
 * (`--dist`: measure that bundle directory, e.g. a build of an earlier commit, to compare).
 * Environment: ANSAI_BENCH_COLLECT_RUNS (default 7), ANSAI_BENCH_COLLECT_SYSTEMD=0 (no systemd machine).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { buildBundles, ENTRY_POINTS, REPO_ROOT } from '../../agent/build/build.ts'
import { DEFAULT_CONFIG_PATH } from '../../agent/config/load.ts'
import { type ReportV1, ReportV1Schema } from '../../shared/contracts/index.ts'
import { ROOTFS_SUITE } from '../support/systemd/rootfs.ts'

export interface Figures {
  /** Median wall time, ms. */
  wallMs: number
  /** Median user + system CPU time, children included, ms. */
  cpuMs: number
  /** Median peak RSS, MB (MiB, as GNU time and the kernel count them). */
  rssMb: number
  /** Every run's CPU time, ms, sorted. */
  cpuRunsMs: number[]
}

export interface CollectBench {
  node: string
  runs: number
  /** How CPU and RSS were measured. */
  method: string
  /** Where the bundle came from. */
  bundle: string
  /** `defaults` (no config file), or the config file in effect. */
  config: string
  rows: { name: string; figures: Figures }[]
  /** What the measured collect reported. */
  observations: number
  probeErrors: string[]
  /** The files the collect loaded, and their size. */
  loaded: { files: number; bytes: number }
  notes: string[]
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Newest modification time under `dir` (sources only: no node_modules, no dotfiles). */
const newestUnder = (dir: string): number => {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue
    const path = join(dir, e.name)
    newest = Math.max(newest, e.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs)
  }
  return newest
}

/** dist/ when its bundles are newer than every source they are built from. */
export const freshDist = (): string | undefined => {
  const dist = join(REPO_ROOT, 'dist')
  const entries = Object.keys(ENTRY_POINTS).map((n) => join(dist, `${n}.mjs`))
  if (!entries.every((f) => existsSync(f))) return undefined
  const built = Math.min(...entries.map((f) => statSync(f).mtimeMs))
  const sources = Math.max(
    newestUnder(join(REPO_ROOT, 'agent')),
    newestUnder(join(REPO_ROOT, 'shared')),
    ...['package.json', 'package-lock.json'].map((f) => statSync(join(REPO_ROOT, f)).mtimeMs),
  )
  return built > sources ? dist : undefined
}

const HAS_GNU_TIME =
  existsSync('/usr/bin/time') && spawnSync('/usr/bin/time', ['-f', '%M', 'true'], { stdio: 'ignore' }).status === 0

/**
 * The bench's environment, as a shell gives it, without what would change how Node starts (NODE_OPTIONS, a compile
 * cache); LC_NUMERIC=C so that $EPOCHREALTIME has a decimal point.
 */
const runEnv = (): Record<string, string | undefined> => {
  const { NODE_OPTIONS: _options, NODE_COMPILE_CACHE: _cache, ...env } = process.env
  return { ...env, LC_NUMERIC: 'C' }
}

/** Where a measured command runs: this host, or a systemd test machine. */
interface Shell {
  /** `bash -c script bench ...args`, stdout captured (a pipe). */
  bash: (script: string, args: readonly string[]) => Promise<{ status: number | null; stdout: string; stderr: string }>
  read: (path: string) => Promise<string>
  /** A directory for the figures files, as that shell sees it. */
  dir: string
  /** /usr/bin/time as that shell sees it, when there is one. */
  gnuTime: string | undefined
}

const hostShell = (work: string): Shell => ({
  bash: async (script, args) => {
    const r = spawnSync('bash', ['-c', script, 'bench', ...args], {
      cwd: work,
      encoding: 'utf8',
      timeout: 600_000,
      maxBuffer: 256 * 1024 * 1024,
      env: { ...runEnv(), ANSAI_BENCH_RSS_OUT: join(work, 'measure.rss') },
    })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr || (r.error?.message ?? '') }
  },
  read: async (path) => readFileSync(path, 'utf8'),
  dir: work,
  gnuTime: HAS_GNU_TIME ? '/usr/bin/time' : undefined,
})

// $1 is where the figures go; the rest is the command. `times` prints the shell's own times, then its children's.
const MEASURE_SCRIPT =
  'o=$1; shift; s=$EPOCHREALTIME; "$@"; st=$?; e=$EPOCHREALTIME; { times; echo "$s $e"; } > "$o.times"; exit $st'

/** Measures one fresh process; its stdout (a pipe) is returned. */
const measureOnce = async (
  shell: Shell,
  argv: readonly string[],
): Promise<{ stdout: string; wallMs: number; cpuMs: number; rssMb: number }> => {
  const out = `${shell.dir}/measure`
  const command = shell.gnuTime
    ? [shell.gnuTime, '-f', '%M', '-o', `${out}.rss`, ...argv]
    : [argv[0]!, '--import', pathToFileURL(`${shell.dir}/max-rss.mjs`).href, ...argv.slice(1)]
  const r = await shell.bash(MEASURE_SCRIPT, [out, ...command])
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`)
  const [, children, realtime] = (await shell.read(`${out}.times`)).trim().split('\n')
  const seconds = [...(children ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]))
  const [start, end] = (realtime ?? '').split(' ').map(Number)
  const rssKb = Number((await shell.read(`${out}.rss`)).trim().split('\n').at(-1))
  return {
    stdout: r.stdout,
    wallMs: (end! - start!) * 1000,
    cpuMs: (seconds[0]! + seconds[1]!) * 1000,
    rssMb: rssKb / 1024,
  }
}

const measure = async (
  shell: Shell,
  argv: readonly string[],
  runs: number,
): Promise<{ figures: Figures; stdout: string }> => {
  await measureOnce(shell, argv) // warm-up: file cache, and the slow probes' caches
  const samples: Awaited<ReturnType<typeof measureOnce>>[] = []
  for (let i = 0; i < runs; i++) samples.push(await measureOnce(shell, argv))
  const cpu = samples.map((s) => s.cpuMs)
  return {
    figures: {
      wallMs: median(samples.map((s) => s.wallMs)),
      cpuMs: median(cpu),
      rssMb: median(samples.map((s) => s.rssMb)),
      cpuRunsMs: [...cpu].sort((a, b) => a - b),
    },
    stdout: samples.at(-1)!.stdout,
  }
}

/**
 * `collect --json` with the default configuration on a REAL systemd (test/support/systemd: PID 1 of a PID namespace,
 * Debian's systemd), where the services probe runs systemctl: what a typical host pays and this machine (no systemd
 * as init) does not. The bundle, this Node and GNU time are bound into the machine.
 */
const measureOnSystemd = async (
  dist: string,
  runs: number,
): Promise<{ figures: Figures; report: ReportV1 } | { skipped: string }> => {
  const { SystemdMachine } = await import('../support/systemd/machine.ts')
  const status = await SystemdMachine.available()
  if (!status.ok) return { skipped: status.reason ?? 'no systemd test machine here' }
  if (!HAS_GNU_TIME) return { skipped: 'no /usr/bin/time to bind into the machine' }
  const machine = await SystemdMachine.boot({
    name: 'bench-collect',
    binds: [
      { host: dist, inside: '/opt/ansai-bench', readOnly: true },
      { host: process.execPath, inside: '/usr/local/bin/node', readOnly: true },
      { host: '/usr/bin/time', inside: '/usr/local/bin/gnu-time', readOnly: true },
    ],
  })
  try {
    await machine.run(['mkdir', '-p', '/tmp/bench'])
    const shell: Shell = {
      bash: async (script, args) => {
        const r = await machine.exec(['bash', '-c', script, 'bench', ...args], {
          timeoutMs: 600_000,
          env: { LC_NUMERIC: 'C' },
        })
        return { status: r.exitCode, stdout: r.stdout, stderr: r.stderr }
      },
      read: (path) => machine.readFile(path),
      dir: '/tmp/bench',
      gnuTime: '/usr/local/bin/gnu-time',
    }
    const m = await measure(
      shell,
      ['/usr/local/bin/node', '/opt/ansai-bench/ansai-agent.mjs', 'collect', '--json'],
      runs,
    )
    return { figures: m.figures, report: ReportV1Schema.parse(JSON.parse(m.stdout)) }
  } finally {
    await machine.shutdown()
  }
}

/** The files (under `root`) a run of `argv` loads, by module hooks (a run of its own, not measured). */
const loadedFiles = (argv: readonly string[], work: string, root: string): string[] => {
  const hooks = join(work, 'hooks.mjs')
  const list = join(work, 'loaded.txt')
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
  rmSync(list, { force: true })
  const r = spawnSync(argv[0]!, ['--import', pathToFileURL(hooks).href, ...argv.slice(1)], {
    cwd: work,
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...runEnv(), ANSAI_LOADED_OUT: list },
  })
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`)
  return readFileSync(list, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((url) => fileURLToPath(url))
    .filter((file) => file.startsWith(`${root}/`))
}

/** Processes still running whose command line names `needle` (nothing may stay resident between runs). */
const residents = (needle: string): number =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)
      } catch {
        return false // gone meanwhile
      }
    }).length

export interface CollectBenchOptions {
  /** Measured runs of each command after the warm-up (default ANSAI_BENCH_COLLECT_RUNS or 7). */
  runs?: number
  /** Measure this bundle directory (an earlier build, to compare) instead of dist/ or a fresh build. */
  dist?: string
  /**
   * Also measure the collect on a real systemd test machine (needs root and the harness's tools; default true, or
   * ANSAI_BENCH_COLLECT_SYSTEMD=0 to leave it out).
   */
  systemd?: boolean
}

export async function runCollectBench(opts: CollectBenchOptions = {}): Promise<CollectBench> {
  const runs = opts.runs ?? Number(process.env.ANSAI_BENCH_COLLECT_RUNS ?? 7)
  const work = mkdtempSync(join(tmpdir(), 'ansai-bench-collect-'))
  const notes: string[] = []
  try {
    writeFileSync(
      join(work, 'max-rss.mjs'),
      [
        "import { writeFileSync } from 'node:fs'",
        "process.on('exit', () => writeFileSync(process.env.ANSAI_BENCH_RSS_OUT, String(process.resourceUsage().maxRSS)))",
      ].join('\n'),
    )
    const fresh = opts.dist ? undefined : freshDist()
    let dist: string
    let bundle: string
    if (opts.dist) {
      dist = resolve(opts.dist)
      bundle = `${opts.dist} (given)`
    } else if (fresh) {
      dist = fresh
      bundle = `${relative(process.cwd(), fresh) || fresh}/ (newer than its sources)`
    } else {
      dist = join(work, 'dist')
      const t0 = performance.now()
      await buildBundles({ outDir: dist, tarball: false, quiet: true })
      bundle = `built for the bench in ${Math.round(performance.now() - t0)} ms (dist/ is older than its sources)`
    }
    const agent = join(dist, 'ansai-agent.mjs')
    const config = existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : 'defaults'
    if (config !== 'defaults') notes.push(`${DEFAULT_CONFIG_PATH} exists: the collect runs with it, not the defaults`)
    const load = loadavg()[0]!
    notes.push(
      `load average (1 min) at the start: ${load.toFixed(2)} — CPU time holds up on a busy machine, wall time does not`,
    )
    if (process.getuid?.() !== 0) {
      notes.push('not root: the default state dir /var/lib/ansai is not writable (the report says so in probeErrors)')
    }

    const node = process.execPath
    const shell = hostShell(work)
    const rows: CollectBench['rows'] = []
    rows.push({
      name: 'node -e 0 (a bare Node start)',
      figures: (await measure(shell, [node, '-e', '0'], runs)).figures,
    })
    rows.push({ name: 'ansai-agent --help', figures: (await measure(shell, [node, agent, '--help'], runs)).figures })
    const collect = await measure(shell, [node, agent, 'collect', '--json'], runs)
    rows.push({ name: 'ansai-agent collect --json', figures: collect.figures })

    const left = residents(agent)
    notes.push(`processes of the bundle still running after the runs: ${left}`)

    const report = ReportV1Schema.parse(JSON.parse(collect.stdout))
    const loaded = loadedFiles([node, agent, 'collect', '--json'], work, dist)

    if (opts.systemd ?? process.env.ANSAI_BENCH_COLLECT_SYSTEMD !== '0') {
      const onSystemd = await measureOnSystemd(dist, runs)
      if ('skipped' in onSystemd) notes.push(`on a real systemd: skipped (${onSystemd.skipped})`)
      else {
        rows.push({ name: 'ansai-agent collect --json, real systemd', figures: onSystemd.figures })
        const r = onSystemd.report
        notes.push(
          `on a real systemd (a test machine: systemd as PID 1 of a PID namespace, Debian ${ROOTFS_SUITE}, the same ` +
            `bundle, Node and defaults): the services probe runs systemctl; ${r.observations.length} observations ` +
            `(${[...new Set(r.observations.map((o) => o.kind))].join(', ')}), ${r.probeErrors.length} probe errors` +
            (r.probeErrors.length ? ` (${r.probeErrors.map((e) => `${e.probe}: ${e.reason}`).join('; ')})` : ''),
        )
      }
    }
    return {
      node: process.version,
      runs,
      method: HAS_GNU_TIME
        ? "CPU: bash `times` (children's rusage, ms); peak RSS: /usr/bin/time %M; wall: $EPOCHREALTIME"
        : "CPU: bash `times` (children's rusage, ms); peak RSS: process.resourceUsage().maxRSS of the Node process alone (no /usr/bin/time); wall: $EPOCHREALTIME",
      bundle,
      config,
      rows,
      observations: report.observations.length,
      probeErrors: report.probeErrors.map((e) => `${e.probe}: ${e.reason}`),
      loaded: { files: loaded.length, bytes: loaded.reduce((sum, f) => sum + statSync(f).size, 0) },
      notes,
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** The figures as a table (for `npm run bench` and the README). */
export const formatCollectBench = (b: CollectBench): string => {
  const rows = [
    [`fresh process, median of ${b.runs}`, 'CPU (children incl.)', 'peak RSS', 'wall'],
    ...b.rows.map((r) => [
      r.name,
      `${r.figures.cpuMs.toFixed(0)} ms`,
      `${r.figures.rssMb.toFixed(1)} MB`,
      `${r.figures.wallMs.toFixed(0)} ms`,
    ]),
  ]
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const lines = rows.map((r) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '),
  )
  return [
    ...lines,
    '',
    `goal (collect): ≤ 80 ms CPU, ≤ 50 MB peak RSS; nothing stays resident between runs`,
    ...b.rows
      .filter((r) => r.name.includes('collect'))
      .map((r) => `${r.name}, CPU of each run: ${r.figures.cpuRunsMs.map((x) => x.toFixed(0)).join(', ')} ms`),
    `Node ${b.node}; ${b.method}; one warm-up run each`,
    `bundle: ${b.bundle}; config: ${b.config}; the collect loads ${b.loaded.files} files (${(b.loaded.bytes / 1024).toFixed(1)} KiB)`,
    `report: ${b.observations} observations, ${b.probeErrors.length} probe errors${b.probeErrors.length ? ` (${b.probeErrors.join('; ')})` : ''}`,
    ...b.notes,
  ].join('\n')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // node test/bench/collect.ts [--dist <bundle dir>]
  const at = process.argv.indexOf('--dist')
  console.log(formatCollectBench(await runCollectBench(at > 0 ? { dist: process.argv[at + 1]! } : {})))
}
