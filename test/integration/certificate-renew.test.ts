/**
 * certificate-renew for real: Debian's pebble (ACME test server) on loopback, certbot with its own temp config
 * directory, and nginx serving the lineage over TLS on a free loopback port (a second, default server with a
 * self-signed certificate, so the right certificate is only served with the right SNI).
 *
 * The executor runs the real `certbot renew`, reloads nginx (`nginx -s reload`: no systemd as PID 1 here, hence the
 * injected reload function) and verifies the served certificate. Independent checks use openssl (`s_client`,
 * `x509 -fingerprint`), not the code under test.
 *
 * pebble issues 10-day certificates here, so certbot's default 30-day window finds the lineage due (an unforced
 * renewal); a lineage with `renew_before_expiry = 5 days` needs `--force-renewal`. Skipped loudly without certbot,
 * pebble, nginx or openssl, failing under ANSAI_REQUIRE_ALL=1.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCommand } from '../../agent/os/exec.ts'
import {
  type CertificateRenewOptions,
  createCertificateRenewExecutor,
  type ReloadFunction,
} from '../../agent/remediations/certificate-renew.ts'
import type { ExecutorContext } from '../../agent/remediations/types.ts'
import { RemediationResultV1Schema } from '../../shared/contracts/index.ts'
import { CertificateRenewParamsSchema } from '../../shared/registry/remediations/certificate-renew.ts'
import { certbotCertonly, certbotDirs, freePort, missingCommands, type Pebble, startPebble } from '../support/acme.ts'
import { requireOrSkip } from '../support/require.ts'

const DOMAIN = 'test.ansai.invalid'
const missing = missingCommands(['certbot', 'pebble', 'nginx', 'openssl'])
const available = requireOrSkip(
  'certbot, pebble and nginx',
  missing.length === 0,
  `${missing.join(', ')} not found: apt-get install certbot pebble nginx openssl`,
)

interface Nginx {
  port: number
  prefix: string
  conf: string
  errorLog: string
  /** `nginx -s reload`, then waits until the old workers are gone (so no connection can reach one any more). */
  reload: () => Promise<void>
  /** The pids of the master's worker processes. */
  workers: () => number[]
  stop: () => Promise<void>
}

function sh(cmd: string, args: string[], input?: string, env?: Record<string, string>) {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, input: input ?? '', ...(env ? { env } : {}) })
}

/** nginx as a daemon with its own prefix, pid file and logs; a default server and one for DOMAIN. */
async function startNginx(root: string, lineageLive: string): Promise<Nginx> {
  const prefix = join(root, 'nginx')
  mkdirSync(prefix, { recursive: true })
  const defaultKey = join(prefix, 'default.key')
  const defaultCert = join(prefix, 'default.pem')
  const made = sh('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    defaultKey,
    '-out',
    defaultCert,
    '-days',
    '2',
    '-subj',
    '/CN=default.ansai.invalid',
  ])
  if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`)
  const conf = join(prefix, 'nginx.conf')
  const errorLog = join(prefix, 'error.log')
  const pidFile = join(prefix, 'nginx.pid')
  const base = ['-p', prefix, '-c', conf, '-e', errorLog]
  let lastError = ''
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort()
    const temp = (name: string) => `${name}_temp_path ${join(prefix, name)};`
    writeFileSync(
      conf,
      `daemon on;
master_process on;
worker_processes 1;
pid ${pidFile};
error_log ${errorLog} notice;
events { worker_connections 64; }
http {
  access_log off;
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}
  server {
    listen 127.0.0.1:${port} ssl default_server;
    server_name _;
    ssl_certificate ${defaultCert};
    ssl_certificate_key ${defaultKey};
    return 421;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name ${DOMAIN};
    ssl_certificate ${join(lineageLive, 'fullchain.pem')};
    ssl_certificate_key ${join(lineageLive, 'privkey.pem')};
    return 200 "ok\\n";
  }
}
`,
    )
    const started = sh('nginx', base)
    if (started.status !== 0) {
      lastError = `nginx did not start (attempt ${attempt}): ${started.stderr}`
      continue
    }
    const pid = Number(readFileSync(pidFile, 'utf8').trim())
    const workers = () => childrenOf(pid)
    return {
      port,
      prefix,
      conf,
      errorLog,
      workers,
      reload: async () => {
        const old = workers()
        const r = sh('nginx', [...base, '-s', 'reload'])
        if (r.status !== 0) throw new Error(`nginx -s reload: ${r.stderr}`)
        await waitGone(old)
      },
      stop: async () => {
        try {
          process.kill(pid, 'SIGTERM')
        } catch {
          return // already gone
        }
        for (let i = 0; i < 100; i++) {
          try {
            process.kill(pid, 0)
          } catch {
            return
          }
          await new Promise((r) => setTimeout(r, 50))
        }
        process.kill(pid, 'SIGKILL')
      },
    }
  }
  throw new Error(lastError)
}

/** Child pids of `parent`, from /proc/<pid>/stat (field 4 is the parent pid; the name in field 2 may hold spaces). */
function childrenOf(parent: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === parent) out.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function waitGone(pids: number[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (pids.some(alive)) {
    if (Date.now() > deadline) throw new Error(`processes ${pids.filter(alive).join(', ')} still there`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** The SHA-256 fingerprint of the leaf nginx serves, as openssl (not node) sees it. */
function servedFingerprint(port: number, servername?: string): string {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`]
  if (servername) args.push('-servername', servername)
  else args.push('-noservername')
  const s = sh('openssl', args, '')
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(s.stdout)?.[0]
  if (!pem) throw new Error(`openssl s_client got no certificate: ${s.stderr}`)
  return fingerprintOfPem(pem)
}

function fingerprintOfPem(pem: string): string {
  const x = sh('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], pem)
  if (x.status !== 0) throw new Error(`openssl x509: ${x.stderr}`)
  return x.stdout.trim().replace(/^.*Fingerprint=/i, '')
}

const diskFingerprint = (file: string): string => fingerprintOfPem(readFileSync(file, 'utf8'))

describe.skipIf(!available)('certificate-renew: certbot against pebble, nginx reloaded and verified', () => {
  let root: string
  let pebble: Pebble
  let nginx: Nginx
  let dirs: { configDir: string; workDir: string; logsDir: string }
  let live: string
  let renewalConf: string
  const timings: Record<string, number> = {}

  const ctx = (dryRun = false): ExecutorContext & { lines: string[] } => {
    const lines: string[] = []
    return {
      key: `test-${Date.now()}`,
      dryRun,
      now: () => new Date(),
      run: runCommand,
      log: (l) => lines.push(l),
      lines,
    }
  }

  /** `nginx -s reload` through the executor's ctx.run: what `systemctl reload nginx.service` does on a real host. */
  const nginxReload: ReloadFunction = async (unit, c) => {
    const argv = ['nginx', '-p', nginx.prefix, '-c', nginx.conf, '-e', nginx.errorLog, '-s', 'reload']
    const r = await c.run('nginx', argv.slice(1), { timeoutMs: 15_000 })
    return { ok: r.exitCode === 0, argv, detail: r.exitCode === 0 ? `nginx -s reload (for ${unit})` : r.stderr }
  }

  const executor = (extra: CertificateRenewOptions = {}) =>
    createCertificateRenewExecutor({
      certbotDirs: dirs,
      certbotEnv: pebble.env,
      reload: nginxReload,
      verifyTimeoutMs: 10_000,
      ...extra,
    })

  const params = (p: Record<string, unknown>) =>
    CertificateRenewParamsSchema.parse({
      reloadUnit: 'nginx.service',
      verifyEndpoint: `127.0.0.1:${nginx.port}`,
      acmeServer: pebble.directoryUrl,
      ...p,
    })

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ansai-cert-renew-'))
    let t0 = Date.now()
    pebble = await startPebble()
    timings.pebbleStartMs = Date.now() - t0
    dirs = certbotDirs(join(root, 'certbot'))
    t0 = Date.now()
    const issued = certbotCertonly({ pebble, domains: [DOMAIN], dirs, webroot: join(root, 'webroot') })
    timings.certonlyMs = issued.durationMs
    live = join(dirs.configDir, 'live', DOMAIN)
    renewalConf = join(dirs.configDir, 'renewal', `${DOMAIN}.conf`)
    nginx = await startNginx(root, live)
  })

  afterAll(async () => {
    await nginx?.stop()
    await pebble?.stop()
    if (root) rmSync(root, { recursive: true, force: true })
    if (Object.keys(timings).length > 0) console.info(`certificate-renew timings (ms): ${JSON.stringify(timings)}`)
  })

  it('serves the lineage only with its SNI name (the setup is what the test thinks it is)', () => {
    const disk = diskFingerprint(join(live, 'cert.pem'))
    expect(servedFingerprint(nginx.port, DOMAIN)).toBe(disk)
    expect(servedFingerprint(nginx.port)).not.toBe(disk)
  })

  it('dry-run: finds the lineage, says what would run, changes nothing', async () => {
    const before = diskFingerprint(join(live, 'cert.pem'))
    const { result, audit } = await executor().execute(params({ certName: DOMAIN }), ctx(true))
    RemediationResultV1Schema.parse(result)
    expect(result.status).toBe('dry-run')
    expect(result.evidence.certbot).toBeUndefined()
    expect(result.evidence.plan).toMatchObject({ action: 'renew', force: false })
    const wouldRun = result.evidence.wouldRun as string[]
    expect(wouldRun[0]).toContain(`certbot renew --cert-name ${DOMAIN} --non-interactive --no-random-sleep-on-renew`)
    expect(wouldRun[0]).not.toContain('--force-renewal')
    expect(wouldRun[1]).toBe('reload nginx.service')
    expect(audit.map((a) => a.action)).toEqual(['would-renew'])
    expect(diskFingerprint(join(live, 'cert.pem'))).toBe(before)
    expect(servedFingerprint(nginx.port, DOMAIN)).toBe(before)
  })

  it('renews a due certificate without --force-renewal, reloads nginx and verifies it serves the new one', async () => {
    const before = diskFingerprint(join(live, 'cert.pem'))
    const t0 = Date.now()
    const { result, audit } = await executor().execute(params({ certName: DOMAIN }), ctx())
    timings.renewUnforcedMs = Date.now() - t0
    RemediationResultV1Schema.parse(result)
    expect(result.error).toBeUndefined()
    expect(result.status).toBe('succeeded')
    const after = diskFingerprint(join(live, 'cert.pem'))
    expect(after).not.toBe(before)
    const ev = result.evidence as Record<string, Record<string, unknown>>
    expect(ev.plan).toMatchObject({ action: 'renew', force: false })
    expect(ev.before?.fingerprint).toBe(before)
    expect(ev.after?.fingerprint).toBe(after)
    expect(ev.after?.serial).not.toBe(ev.before?.serial)
    expect(Date.parse(String(ev.after?.notAfter))).toBeGreaterThanOrEqual(Date.parse(String(ev.before?.notAfter)))
    const runs = result.evidence.certbot as { argv: string[]; exitCode: number; stdout: string[] }[]
    expect(runs).toHaveLength(1)
    expect(runs[0]?.argv).not.toContain('--force-renewal')
    expect(runs[0]?.argv).toEqual(expect.arrayContaining(['--server', pebble.directoryUrl]))
    expect(runs[0]?.exitCode).toBe(0)
    expect(runs[0]?.stdout.join('\n')).toMatch(/renewals succeeded/)
    expect(ev.reload).toMatchObject({ unit: 'nginx.service', ok: true })
    expect(ev.verify).toMatchObject({ servername: DOMAIN, matched: true })
    expect(ev.verify?.served).toMatchObject({ fingerprint: after })
    expect(audit.map((a) => a.action)).toEqual(['certbot-renew', 'reload', 'verify'])
    // Independently: openssl sees nginx serve the new certificate.
    expect(servedFingerprint(nginx.port, DOMAIN)).toBe(after)
  })

  it('forces the renewal when certbot would call it not yet due (renew_before_expiry 5 days), found by certPath', async () => {
    const conf = readFileSync(renewalConf, 'utf8')
    writeFileSync(renewalConf, `renew_before_expiry = 5 days\n${conf}`)
    const before = diskFingerprint(join(live, 'cert.pem'))
    const t0 = Date.now()
    const { result } = await executor().execute(params({ certPath: join(live, 'fullchain.pem') }), ctx())
    timings.renewForcedMs = Date.now() - t0
    RemediationResultV1Schema.parse(result)
    expect(result.error).toBeUndefined()
    expect(result.status).toBe('succeeded')
    expect(result.evidence.certName).toBe(DOMAIN)
    expect(result.evidence.lineage).toMatchObject({ resolvedFrom: 'renewal-conf', renewBeforeExpiry: '5 days' })
    expect(result.evidence.plan).toMatchObject({ action: 'renew', force: true })
    expect(String((result.evidence.plan as { reason: string }).reason)).toMatch(/not yet due/)
    const runs = result.evidence.certbot as { argv: string[] }[]
    expect(runs).toHaveLength(1)
    expect(runs[0]?.argv).toContain('--force-renewal')
    const after = diskFingerprint(join(live, 'cert.pem'))
    expect(after).not.toBe(before)
    expect(servedFingerprint(nginx.port, DOMAIN)).toBe(after)
  })

  it('only reloads when the certificate on disk is newer than the served one and not due', async () => {
    // certbot's own timer renewed it; nobody reloaded nginx.
    const byHand = sh(
      'certbot',
      [
        'renew',
        '--cert-name',
        DOMAIN,
        '--force-renewal',
        '--non-interactive',
        '--no-random-sleep-on-renew',
        '--config-dir',
        dirs.configDir,
        '--work-dir',
        dirs.workDir,
        '--logs-dir',
        dirs.logsDir,
      ],
      undefined,
      pebble.env,
    )
    if (byHand.status !== 0) throw new Error(`certbot renew by hand failed: ${byHand.stderr}`)
    const disk = diskFingerprint(join(live, 'cert.pem'))
    const servedBefore = servedFingerprint(nginx.port, DOMAIN)
    expect(servedBefore).not.toBe(disk)
    const { result, audit } = await executor().execute(params({ certName: DOMAIN }), ctx())
    RemediationResultV1Schema.parse(result)
    expect(result.status).toBe('succeeded')
    expect(result.evidence.plan).toMatchObject({ action: 'reload' })
    expect(result.evidence.renewed).toBe(false)
    expect(result.evidence.certbot).toBeUndefined()
    expect(audit.map((a) => a.action)).toEqual(['reload', 'verify'])
    expect(diskFingerprint(join(live, 'cert.pem'))).toBe(disk)
    expect(servedFingerprint(nginx.port, DOMAIN)).toBe(disk)
  }, 60_000)

  it('fails when the service does not pick up the new certificate (a reload that does nothing)', async () => {
    const served = servedFingerprint(nginx.port, DOMAIN)
    const t0 = Date.now()
    const { result } = await executor({
      reload: async () => ({ ok: true, detail: 'pretended to reload' }),
      verifyTimeoutMs: 1_500,
    }).execute(params({ certName: DOMAIN }), ctx())
    timings.verifyTimeoutCaseMs = Date.now() - t0
    RemediationResultV1Schema.parse(result)
    expect(result.status).toBe('failed')
    const ev = result.evidence as Record<string, Record<string, unknown>>
    expect(ev.after?.fingerprint).not.toBe(ev.before?.fingerprint)
    expect(ev.verify).toMatchObject({ matched: false })
    expect(Number(ev.verify?.attempts)).toBeGreaterThan(1)
    expect(result.error).toMatch(/still serves/)
    expect(servedFingerprint(nginx.port, DOMAIN)).toBe(served)
    await nginx.reload() // back to a consistent state for the next test
  }, 60_000)

  it('fails with certbot’s error when the ACME server is down; nginx keeps serving the current certificate', async () => {
    await pebble.stopServer()
    const disk = diskFingerprint(join(live, 'cert.pem'))
    expect(servedFingerprint(nginx.port, DOMAIN)).toBe(disk)
    const c = ctx()
    const { result, audit } = await executor().execute(params({ certName: DOMAIN }), c)
    RemediationResultV1Schema.parse(result)
    expect(result.status).toBe('failed')
    expect(result.error).toMatch(/Connection refused/)
    expect(result.evidence.plan).toMatchObject({ action: 'renew' })
    const runs = result.evidence.certbot as { exitCode: number; stderr: string[] }[]
    expect(runs).toHaveLength(1)
    expect(runs[0]?.exitCode).toBe(1)
    expect(runs[0]?.stderr.join('\n')).toMatch(/Failed to renew certificate test\.ansai\.invalid/)
    expect(result.evidence.reload).toBeUndefined()
    expect(audit.map((a) => a.action)).toEqual(['certbot-renew'])
    expect(diskFingerprint(join(live, 'cert.pem'))).toBe(disk)
    expect(servedFingerprint(nginx.port, DOMAIN)).toBe(disk)
    expect(JSON.stringify(result).length).toBeLessThan(16_000)
  })
})
