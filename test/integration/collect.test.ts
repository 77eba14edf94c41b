/**
 * `collect` on THIS machine, for real: real /proc, statfs, openssl-made certificates on disk and served by a
 * loopback TLS server (node:tls), real tar/gzip archives (one corrupted), cron markers, a custom metric, DNS for
 * `localhost`, and apt-get for the slow packages probe. Then the services and per-service memory probes against a
 * real systemd (PID 1 of a PID namespace, test/support/systemd), whose nested cgroup2 has no memory controller, so
 * per-service memory has to come from the RSS of the unit's processes.
 *
 * Timings (wall, CPU of the agent and of its child processes, and a fresh bundled process) are printed, never
 * asserted (DESIGN.md: benchmarks are a separate command).
 */
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { createServer, type Server } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collectDetailed } from '../../agent/collect/collect.ts'
import type { CollectContext } from '../../agent/collect/context.ts'
import { createHostContext, hostFs } from '../../agent/collect/host-context.ts'
import { collectProcessMemory } from '../../agent/collect/process-memory.ts'
import { collectServices } from '../../agent/collect/services.ts'
import { type ProbesConfig, ProbesConfigSchema } from '../../agent/config/probes.ts'
import { runCommand } from '../../agent/os/exec.ts'
import { type Observation, type ObservationOf, ReportV1Schema } from '../../shared/contracts/index.ts'
import { requireOrSkip } from '../support/require.ts'
import { SystemdMachine } from '../support/systemd/machine.ts'

const note = (message: string): void => {
  process.stderr.write(`[collect.test] ${message}\n`)
}

const find = <K extends Observation['kind']>(
  observations: readonly Observation[],
  kind: K,
  pred: (o: ObservationOf<K>) => boolean = () => true,
): ObservationOf<K> | undefined =>
  observations.find((o): o is ObservationOf<K> => o.kind === kind && pred(o as ObservationOf<K>))

/** utime, stime of this process and cutime, cstime of its reaped children, in ms (from /proc/self/stat). */
const procTimes = (): { self: number; children: number } => {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const tick = 10 // CLK_TCK is 100 on Linux
  return { self: (Number(f[11]) + Number(f[12])) * tick, children: (Number(f[13]) + Number(f[14])) * tick }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

const hasOpenssl = requireOrSkip('openssl', existsSync('/usr/bin/openssl'), 'apt-get install openssl')

describe.skipIf(!hasOpenssl)('collect on this machine', () => {
  const root = join(tmpdir(), `ansai-collect-it-${process.pid}`)
  const stateDir = join(root, 'state')
  const tlsDir = join(root, 'tls')
  const backupsDir = join(root, 'backups')
  let server: Server
  let port = 0
  const sniSeen: string[] = []
  let expectedNotAfter = ''
  let expectedFingerprint = ''
  let probes: ProbesConfig
  let ctx: CollectContext
  let newestSize = 0
  const spawned: string[] = []

  beforeAll(async () => {
    rmSync(root, { recursive: true, force: true })
    for (const d of [
      tlsDir,
      join(backupsDir, 'good'),
      join(backupsDir, 'bad'),
      join(backupsDir, 'db'),
      join(root, 'payload'),
    ]) {
      mkdirSync(d, { recursive: true })
    }
    // a certificate for 20 days, as certbot's would be shortly before renewal
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(tlsDir, 'key.pem'),
        '-out',
        join(tlsDir, 'cert.pem'),
        '-subj',
        '/CN=app.example.test',
        '-addext',
        'subjectAltName=DNS:app.example.test',
        '-days',
        '20',
      ],
      { stdio: 'pipe' },
    )
    const enddate = execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', join(tlsDir, 'cert.pem')], {
      encoding: 'utf8',
    })
    expectedNotAfter = new Date(enddate.trim().replace(/^notAfter=/, '')).toISOString()
    expectedFingerprint = execFileSync(
      'openssl',
      ['x509', '-noout', '-fingerprint', '-sha256', '-in', join(tlsDir, 'cert.pem')],
      { encoding: 'utf8' },
    )
      .trim()
      .replace(/^.*Fingerprint=/, '')

    server = createServer(
      {
        key: readFileSync(join(tlsDir, 'key.pem')),
        cert: readFileSync(join(tlsDir, 'cert.pem')),
        SNICallback: (name, done) => {
          sniSeen.push(name)
          done(null) // the default context: the certificate above
        },
      },
      (socket: TLSSocket) => socket.end(),
    )
    server.on('tlsClientError', () => {}) // the agent hangs up as soon as it has the certificate
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as { port: number }).port

    // backups: real archives made by tar, an older one, and corrupted ones
    for (let i = 0; i < 200; i++) writeFileSync(join(root, 'payload', `file-${i}.log`), `line ${i}\n`.repeat(200))
    const tarTo = (file: string): void => {
      execFileSync('tar', ['-czf', file, '-C', root, 'payload'])
    }
    const tenMinutesAgo = new Date(Date.now() - 600_000)
    const dayAgo = new Date(Date.now() - 86_400_000)
    tarTo(join(backupsDir, 'good', 'app-2026-11-21.tar.gz'))
    utimesSync(join(backupsDir, 'good', 'app-2026-11-21.tar.gz'), dayAgo, dayAgo)
    tarTo(join(backupsDir, 'good', 'app-2026-11-22.tar.gz'))
    utimesSync(join(backupsDir, 'good', 'app-2026-11-22.tar.gz'), tenMinutesAgo, tenMinutesAgo)
    newestSize = statSync(join(backupsDir, 'good', 'app-2026-11-22.tar.gz')).size
    writeFileSync(join(backupsDir, 'good', 'notes.txt'), 'not an artifact')
    // cut in half: tar -tf fails (unexpected end of file)
    copyFileSync(join(backupsDir, 'good', 'app-2026-11-22.tar.gz'), join(backupsDir, 'bad', 'app-2026-11-22.tar.gz'))
    truncateSync(join(backupsDir, 'bad', 'app-2026-11-22.tar.gz'), Math.floor(newestSize / 2))
    utimesSync(join(backupsDir, 'bad', 'app-2026-11-22.tar.gz'), tenMinutesAgo, tenMinutesAgo)
    // a gzip whose CRC no longer matches: gzip -t fails
    writeFileSync(join(root, 'dump.sql'), 'INSERT INTO t VALUES (1);\n'.repeat(1000))
    execFileSync('gzip', ['-9', join(root, 'dump.sql')])
    const gz = readFileSync(join(root, 'dump.sql.gz'))
    gz[gz.length - 8] = gz[gz.length - 8]! ^ 0xff
    writeFileSync(join(backupsDir, 'db', 'dump.sql.gz'), gz)
    utimesSync(join(backupsDir, 'db', 'dump.sql.gz'), tenMinutesAgo, tenMinutesAgo)

    mkdirSync(join(root, 'cron'))
    writeFileSync(
      join(root, 'cron', 'logrotate.json'),
      '{"job":"logrotate","startedAt":"2026-11-23T03:00:00Z","finishedAt":"2026-11-23T03:00:07Z","exitStatus":0}\n',
    )
    mkdirSync(join(root, 'metrics'))
    writeFileSync(join(root, 'metrics', 'queue_depth.value'), '42\n')

    probes = ProbesConfigSchema.parse({
      certificates: {
        files: [join(tlsDir, '*.pem')],
        endpoints: [{ host: '127.0.0.1', port, servername: 'app.example.test' }],
      },
      backups: [
        { job: 'app', dir: join(backupsDir, 'good'), pattern: 'app-*.tar.gz' },
        { job: 'app-broken', dir: join(backupsDir, 'bad'), pattern: 'app-*.tar.gz' },
        { job: 'db', dir: join(backupsDir, 'db'), pattern: '*.sql.gz' },
        { job: 'missing', dir: join(backupsDir, 'nowhere') },
      ],
      cron: { markerDir: join(root, 'cron'), expect: ['logrotate', 'never-ran'] },
      dns: { names: ['localhost'] },
      packages: { enabled: false }, // its own test below: it costs seconds
      custom: { dir: join(root, 'metrics') },
    })
    const host = createHostContext({ cacheDir: join(stateDir, 'cache') })
    ctx = {
      ...host,
      run: (file, args, opts) => {
        spawned.push([file, ...args].join(' '))
        return runCommand(file, args, opts)
      },
    }
  })

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
    rmSync(root, { recursive: true, force: true })
  })

  it('builds a ReportV1 with the concrete values of this machine', async () => {
    const { report, probes: runs } = await collectDetailed(
      { probes, agentVersion: '0.1.0-test', stateDir, host: { tags: { role: 'ci' } } },
      ctx,
    )
    note(`probes: ${runs.map((r) => `${r.name} ${r.wallMs} ms (${r.observations} obs, ${r.errors} err)`).join('; ')}`)
    expect(() => ReportV1Schema.parse(report)).not.toThrow()
    expect(report.host.tags).toEqual({ role: 'ci' })
    expect(report.agent.version).toBe('0.1.0-test')

    // services: systemd is not PID 1 here: a ProbeError, not a crash (on a systemd host, observations instead)
    if (existsSync('/run/systemd/system')) {
      note('this machine runs systemd: the services probe observed it')
    } else {
      expect(report.probeErrors).toContainEqual({
        probe: 'service',
        reason: expect.stringMatching(/systemd is not the init system/),
      })
      expect(find(report.observations, 'service')).toBeUndefined()
    }

    // filesystems: / with the numbers statfs gives
    const rootFs = find(report.observations, 'filesystem', (o) => o.mount === '/')
    expect(rootFs).toBeDefined()
    const s = statfsSync('/')
    expect(rootFs!.bytesTotal).toBe(s.blocks * s.bsize)
    expect(rootFs!.inodesTotal).toBe(s.files)
    expect(rootFs!.bytesUsed).toBeGreaterThan(0)
    expect(rootFs!.bytesUsed + rootFs!.bytesAvailable).toBeLessThanOrEqual(rootFs!.bytesTotal)
    expect(Math.abs(rootFs!.bytesAvailable - s.bavail * s.bsize)).toBeLessThan(256 * 1024 * 1024) // others write meanwhile

    // memory
    const memory = find(report.observations, 'memory')
    expect(memory!.totalBytes).toBeGreaterThan(0)
    expect(memory!.availableBytes).toBeLessThanOrEqual(memory!.totalBytes)

    // certificates: the file (the key next to it has no certificate block) and the served one, SNI sent
    const fileCert = find(report.observations, 'certificate', (o) => o.sourceType === 'file')
    expect(fileCert).toMatchObject({
      source: join(tlsDir, 'cert.pem'),
      subject: 'CN=app.example.test',
      sans: ['app.example.test'],
      notAfter: expectedNotAfter,
      fingerprint: expectedFingerprint,
    })
    expect(report.probeErrors).toContainEqual({
      probe: 'certificate',
      reason: `${join(tlsDir, 'key.pem')}: no PEM certificate block`,
    })
    const served = find(report.observations, 'certificate', (o) => o.sourceType === 'endpoint')
    expect(served).toMatchObject({
      source: `app.example.test@127.0.0.1:${port}`,
      notAfter: expectedNotAfter,
      fingerprint: expectedFingerprint,
    })
    expect(sniSeen).toContain('app.example.test')
    const x509 = new X509Certificate(readFileSync(join(tlsDir, 'cert.pem')))
    expect(x509.validToDate.toISOString()).toBe(expectedNotAfter)

    // backups
    expect(find(report.observations, 'backup', (o) => o.job === 'app')).toEqual({
      kind: 'backup',
      job: 'app',
      newestArtifactAt: new Date(statSync(join(backupsDir, 'good', 'app-2026-11-22.tar.gz')).mtimeMs).toISOString(),
      newestArtifactPath: join(backupsDir, 'good', 'app-2026-11-22.tar.gz'),
      sizeBytes: newestSize,
      integrity: 'ok',
    })
    expect(find(report.observations, 'backup', (o) => o.job === 'app-broken')).toMatchObject({
      sizeBytes: Math.floor(newestSize / 2),
      integrity: 'failed',
    })
    expect(find(report.observations, 'backup', (o) => o.job === 'db')).toMatchObject({ integrity: 'failed' })
    expect(find(report.observations, 'backup', (o) => o.job === 'missing')).toEqual({ kind: 'backup', job: 'missing' })
    const integrityCache = JSON.parse(readFileSync(join(stateDir, 'cache', 'backup-integrity.json'), 'utf8'))
    expect(integrityCache.jobs['app-broken'].detail).toMatch(/^tar -tf exited 2: /)
    expect(integrityCache.jobs.db.detail).toMatch(/^gzip -t exited 1: .*crc error/)

    // cron, dns, custom
    expect(find(report.observations, 'cron', (o) => o.job === 'logrotate')).toMatchObject({
      lastRunAt: '2026-11-23T03:00:00Z',
      durationSeconds: 7,
      lastExitStatus: 0,
    })
    expect(find(report.observations, 'cron', (o) => o.job === 'never-ran')).toEqual({ kind: 'cron', job: 'never-ran' })
    const dns = find(report.observations, 'dns', (o) => o.name === 'localhost')
    expect(dns?.resolved).toBe(true)
    expect(dns?.addresses.some((a) => a === '127.0.0.1' || a === '::1')).toBe(true)
    expect(find(report.observations, 'custom', (o) => o.name === 'queue_depth')?.value).toBe(42)

    // no probe error besides the expected ones
    const unexpected = report.probeErrors.filter(
      (e) => e.probe !== 'service' && !(e.probe === 'certificate' && e.reason.includes('key.pem')),
    )
    expect(unexpected).toEqual([])
  })

  it('the next collect: seq + 1, integrity results reused (no tar or gzip), same observations', async () => {
    const seqBefore = Number(readFileSync(join(stateDir, 'seq'), 'utf8'))
    spawned.length = 0
    const { report } = await collectDetailed({ probes, agentVersion: '0.1.0-test', stateDir }, ctx)
    expect(report.seq).toBe(seqBefore + 1)
    expect(spawned.filter((c) => /^(tar|gzip) /.test(c))).toEqual([])
    expect(find(report.observations, 'backup', (o) => o.job === 'app-broken')?.integrity).toBe('failed')
  })

  it('measures collect: wall, CPU of the agent and of its children (printed, not asserted)', async () => {
    const runs = 7
    const wall: number[] = []
    const cpu: number[] = []
    const children: number[] = []
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now()
      const c0 = process.cpuUsage()
      const p0 = procTimes()
      await collectDetailed({ probes, agentVersion: '0.1.0-test', stateDir }, ctx)
      const c = process.cpuUsage(c0)
      wall.push(performance.now() - t0)
      cpu.push((c.user + c.system) / 1000)
      children.push(procTimes().children - p0.children)
    }
    note(
      `collect in process, median of ${runs}: wall ${median(wall).toFixed(1)} ms, CPU ${median(cpu).toFixed(1)} ms ` +
        `(agent, incl. its libuv threads), children ${median(children)} ms (10 ms ticks); steady state: ` +
        `packages cached, integrity cached, spawned this run: ${spawned.length === 0 ? 'nothing' : spawned.join(', ')}`,
    )
    expect(wall.length).toBe(runs)
  })

  it('measures a fresh process running the bundled collect (Node start included; printed, not asserted)', async () => {
    const esbuild = await import('esbuild')
    // `cli`: the config parsed with zod and every observation checked (the defaults); `lean`: a config parsed
    // beforehand (JSON) and no contract check, so zod is loaded only by a parser that needs it (cron markers).
    const entry = (parse: boolean, validate: boolean): string =>
      [
        "import { collectDetailed } from './agent/collect/collect.ts'",
        "import { createHostContext } from './agent/collect/host-context.ts'",
        parse ? "import { ProbesConfigSchema } from './agent/config/probes.ts'" : '',
        'const [config, stateDir] = JSON.parse(process.argv[2])',
        "const ctx = createHostContext({ cacheDir: stateDir + '/cache' })",
        `const probes = ${parse ? 'ProbesConfigSchema.parse(config)' : 'config'}`,
        `const { report } = await collectDetailed({ probes, agentVersion: 'bench', stateDir, validate: ${validate} }, ctx)`,
        'const u = process.resourceUsage()',
        "const s = (await import('node:fs')).readFileSync('/proc/self/stat', 'utf8')",
        "const f = s.slice(s.lastIndexOf(')') + 2).split(' ')",
        'console.log(JSON.stringify({ obs: report.observations.length, cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000, maxRssKb: u.maxRSS, childrenMs: (Number(f[13]) + Number(f[14])) * 10 }))',
      ].join('\n')
    const config = (cronMarkers: boolean) => ({
      certificates: { files: [join(tlsDir, 'cert.pem')], endpoints: [`127.0.0.1:${port}`] },
      backups: [{ job: 'app', dir: join(backupsDir, 'good'), pattern: 'app-*.tar.gz' }],
      cron: { markerDir: cronMarkers ? join(root, 'cron') : join(root, 'no-cron') },
      dns: { names: ['localhost'] },
      custom: { dir: join(root, 'metrics') },
    })
    const benchState = join(root, 'bench-state')
    const variants = [
      { name: 'cli (zod config, validate)', parse: true, validate: true, cron: true },
      { name: 'lean (JSON config, no validate)', parse: false, validate: false, cron: true },
      { name: 'lean, no cron markers', parse: false, validate: false, cron: false },
    ]
    for (const [i, v] of variants.entries()) {
      const outdir = join(root, `bundle-${i}`)
      await esbuild.build({
        stdin: {
          contents: entry(v.parse, v.validate),
          resolveDir: process.cwd(),
          loader: 'ts',
          sourcefile: 'bench.ts',
        },
        bundle: true,
        splitting: true,
        format: 'esm',
        platform: 'node',
        target: 'node24',
        outdir,
        minify: true,
        logLevel: 'silent',
      })
      const input = JSON.stringify([v.parse ? config(v.cron) : ProbesConfigSchema.parse(config(v.cron)), benchState])
      const results: { obs: number; cpuMs: number; maxRssKb: number; childrenMs: number; wallMs: number }[] = []
      for (let run = 0; run < 6; run++) {
        const t0 = performance.now()
        const out = await runCommand(process.execPath, [join(outdir, 'stdin.js'), input], { timeoutMs: 600_000 })
        const wallMs = performance.now() - t0
        expect(out.exitCode, out.stderr).toBe(0)
        results.push({ ...JSON.parse(out.stdout), wallMs })
      }
      if (i === 0) {
        note(
          `fresh process, first run ever (apt-get and the integrity test run): wall ${results[0]!.wallMs.toFixed(0)} ms, ` +
            `CPU ${results[0]!.cpuMs.toFixed(0)} ms + children ${results[0]!.childrenMs} ms`,
        )
      }
      const warm = results.slice(1) // the first run of each variant warms the file cache
      note(
        `fresh process, ${v.name}, median of ${warm.length}: wall ${median(warm.map((r) => r.wallMs)).toFixed(0)} ms, ` +
          `CPU ${median(warm.map((r) => r.cpuMs)).toFixed(0)} ms (Node start included) + children ` +
          `${median(warm.map((r) => r.childrenMs))} ms, peak RSS ${(median(warm.map((r) => r.maxRssKb)) / 1024).toFixed(1)} MiB, ` +
          `${warm[0]!.obs} observations, entry ${Math.round(statSync(join(outdir, 'stdin.js')).size / 1024)} KiB + lazy chunks`,
      )
    }
    const bare: { cpu: number; rss: number }[] = []
    for (let run = 0; run < 5; run++) {
      const out = await runCommand(
        process.execPath,
        [
          '-e',
          'const u=process.resourceUsage();console.log(JSON.stringify({cpu:(u.userCPUTime+u.systemCPUTime)/1000,rss:u.maxRSS}))',
        ],
        { timeoutMs: 30_000 },
      )
      bare.push(JSON.parse(out.stdout))
    }
    note(
      `for comparison, a bare node -e: CPU ${median(bare.map((b) => b.cpu)).toFixed(0)} ms, peak RSS ` +
        `${(median(bare.map((b) => b.rss)) / 1024).toFixed(1)} MiB`,
    )
  }, 600_000)

  const hasApt = existsSync('/usr/bin/apt-get')
  it.skipIf(!hasApt)(
    'packages (slow): apt-get really runs once, then the cached observation is reported',
    async () => {
      const cacheDir = join(root, 'packages-cache')
      const pctx: CollectContext = { ...ctx, cacheDir }
      const config = ProbesConfigSchema.parse({ packages: { every: '6h' } })
      spawned.length = 0
      const t0 = performance.now()
      const first = await collectDetailed({ probes: config, agentVersion: 't', stateDir, only: ['packages'] }, pctx)
      const firstMs = performance.now() - t0
      expect(spawned).toEqual(['apt-get -s -o Debug::NoLocking=1 dist-upgrade'])
      const obs = find(first.report.observations, 'packages')
      expect(obs).toMatchObject({ kind: 'packages', manager: 'apt' })
      expect(first.report.probeErrors).toEqual([])
      spawned.length = 0
      const t1 = performance.now()
      const second = await collectDetailed({ probes: config, agentVersion: 't', stateDir, only: ['packages'] }, pctx)
      const secondMs = performance.now() - t1
      expect(spawned).toEqual([])
      expect(find(second.report.observations, 'packages')).toEqual(obs)
      note(
        `packages: apt-get run ${firstMs.toFixed(0)} ms (${obs?.pending} pending, ${obs?.security} security), cached ${secondMs.toFixed(1)} ms`,
      )
    },
    600_000,
  )
})

const systemd = await SystemdMachine.available()
const canBoot = requireOrSkip(
  'a real systemd (PID 1 of a new PID namespace, needs root)',
  systemd.ok,
  systemd.reason ?? '',
)

describe.skipIf(!canBoot)('services and per-service memory on a real systemd', () => {
  let machine: SystemdMachine
  let mctx: CollectContext

  beforeAll(async () => {
    machine = await SystemdMachine.boot({ name: 'collect' })
    // a service with ~30 MB resident in `tail` (it holds what it read until EOF, which never comes), and children
    await machine.installUnit(
      'app-web.service',
      [
        '[Service]',
        "ExecStart=/bin/sh -c 'head -c 30000000 /dev/zero | (cat; exec sleep infinity) | tail -c 40000000 > /dev/null'",
        'MemoryMax=200M',
        'Restart=on-failure',
      ].join('\n'),
    )
    await machine.installUnit('app-broken.service', '[Service]\nType=oneshot\nExecStart=/bin/false\n')
    await machine.run(['systemctl', 'start', 'app-web.service'])
    await machine.exec(['systemctl', 'start', 'app-broken.service'])
    // the machine's processes and files, as the agent inside the machine would see them
    mctx = {
      ...createHostContext({ cacheDir: join(tmpdir(), `ansai-collect-machine-${process.pid}`) }),
      run: async (file, args, opts) => {
        const env: Record<string, string> = {}
        for (const k of ['LC_ALL', 'LANG', 'SYSTEMD_PAGER', 'SYSTEMD_COLORS'])
          if (opts.env?.[k] !== undefined) env[k] = opts.env[k]!
        const r = await machine.exec([file, ...args], { timeoutMs: opts.timeoutMs, env })
        return {
          exitCode: r.exitCode,
          signal: null,
          stdout: r.stdout,
          stderr: r.stderr,
          timedOut: r.timedOut,
          truncated: false,
          durationMs: 0,
        }
      },
      fs: {
        // cgroup.procs lists pids in the READER's pid namespace: read it inside, as the agent there would
        readFile: (p) => (p.endsWith('/cgroup.procs') ? machine.run(['cat', p]) : hostFs.readFile(machine.path(p))),
        readdir: (p) => hostFs.readdir(machine.path(p)),
        stat: (p) => hostFs.stat(machine.path(p)),
        statfs: (p) => hostFs.statfs(machine.path(p)),
      },
    }
  }, 1_800_000)

  afterAll(async () => {
    await machine?.shutdown()
  })

  it('one systemctl show: the watched units and every failed one', async () => {
    const out = await collectServices({ units: ['app-*.service', 'nginx.service'], failedAny: true }, mctx)
    expect(out.errors).toEqual([])
    expect(find(out.observations, 'service', (o) => o.unit === 'app-web.service')).toMatchObject({
      activeState: 'active',
      subState: 'running',
      restartPolicy: 'on-failure',
      mainPid: await machine.mainPid('app-web.service'),
    })
    expect(find(out.observations, 'service', (o) => o.unit === 'app-broken.service')).toMatchObject({
      activeState: 'failed',
      result: 'exit-code',
    })
    expect(find(out.observations, 'service', (o) => o.unit === 'nginx.service')).toMatchObject({
      loadState: 'not-found',
      activeState: 'inactive',
    })
  })

  it('per-service memory from the RSS of the unit processes (no memory controller in the nested cgroup2)', async () => {
    expect(await machine.cgroupControllers()).not.toContain('memory')
    const procs = async (): Promise<number[]> =>
      (await machine.run(['cat', '/sys/fs/cgroup/system.slice/app-web.service/cgroup.procs']))
        .split('\n')
        .filter(Boolean)
        .map(Number)
    const rssOf = async (pid: number): Promise<number> =>
      Number(/VmRSS:\s+(\d+) kB/.exec(await machine.readFile(`/proc/${pid}/status`).catch(() => ''))?.[1] ?? 0) * 1024
    // wait until tail has read its 30 MB
    await machine.waitFor(
      async () => (await Promise.all((await procs()).map(rssOf))).some((r) => r > 29_000_000),
      10_000,
      'tail holds 30 MB',
    )
    const out = await collectProcessMemory({ units: ['app-web.service'] }, mctx)
    expect(out.errors).toEqual([])
    const obs = find(out.observations, 'process-memory', (o) => o.unit === 'app-web.service')
    const pids = await procs()
    const expected = (await Promise.all(pids.map(rssOf))).reduce((a, b) => a + b, 0)
    expect(obs).toMatchObject({ source: 'rss', limitBytes: 200 * 1024 * 1024, pids: pids.sort((a, b) => a - b) })
    expect(Math.abs(obs!.memoryBytes - expected)).toBeLessThan(1024 * 1024)
    expect(obs!.memoryBytes).toBeGreaterThan(29_000_000)
    note(
      `app-web.service: ${pids.length} processes, ${(obs!.memoryBytes / 1048576).toFixed(1)} MiB by RSS, limit 200 MiB`,
    )
  })

  it('the whole collect inside the machine: services and process memory in a valid report', async () => {
    const probes = ProbesConfigSchema.parse({
      services: { units: ['app-web.service'] },
      filesystems: { enabled: false },
      certificates: { files: [] },
      cron: { enabled: false },
      custom: { enabled: false },
      packages: { enabled: false },
      containers: { enabled: false },
    })
    const stateDir = join(tmpdir(), `ansai-collect-machine-state-${process.pid}`)
    const { report } = await collectDetailed({ probes, agentVersion: 't', stateDir, hostname: 'collect' }, mctx)
    rmSync(stateDir, { recursive: true, force: true })
    expect(() => ReportV1Schema.parse(report)).not.toThrow()
    expect(report.probeErrors).toEqual([])
    expect(report.observations.map((o) => o.kind).sort()).toEqual(['memory', 'process-memory', 'service', 'service'])
  })
})
