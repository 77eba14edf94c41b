/**
 * A throwaway ACME CA for tests: Debian's `pebble` (Let's Encrypt's ACME test server) on loopback, and certbot
 * pointed at it.
 *
 * - pebble serves its ACME API over HTTPS only. The Debian package ships no test certificate, so {@link startPebble}
 *   makes a CA and a `localhost`/`127.0.0.1` server certificate with openssl in the temp directory; certbot trusts
 *   that CA through `REQUESTS_CA_BUNDLE` (python-requests), set in {@link Pebble.env}.
 * - Challenges: `PEBBLE_VA_ALWAYS_VALID=1` (supported by Debian's pebble 2.4) makes every authorization valid without
 *   a validation request, so the domains need no DNS and no port 80. certbot still needs an authenticator: the
 *   webroot one ({@link certbotCertonly}) writes its challenge files into a temp directory nobody reads, and
 *   remembers that in the renewal configuration, so a later `certbot renew` of the lineage works the same way.
 * - `PEBBLE_VA_NOSLEEP=1` (no artificial validation delays), `PEBBLE_WFE_NONCEREJECT=0` (pebble otherwise rejects
 *   5 % of good nonces on purpose, which would make the tests flaky), and `certificateValidityPeriod` in the config
 *   (default here 10 days, so that certbot's default 30-day window finds a new certificate due at once; pebble's own
 *   default is 5 years).
 * - Free loopback ports, found by binding port 0; a start that loses a port race is retried with new ports.
 *
 * Everything lives under one temp directory, removed by {@link Pebble.stop} together with the process.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const PEBBLE_BINARY = 'pebble'

/** Which of the given programs are missing from PATH. */
export function missingCommands(names: readonly string[]): string[] {
  return names.filter((name) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name]).status !== 0)
}

/** A free TCP port on 127.0.0.1 (bound and released: a small race remains, callers retry). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export interface Pebble {
  /** The ACME directory URL, e.g. https://127.0.0.1:43211/dir. */
  directoryUrl: string
  /** PEM file of the CA that signed pebble's HTTPS certificate (for REQUESTS_CA_BUNDLE). */
  caBundle: string
  /** The whole environment for certbot: the test process's plus REQUESTS_CA_BUNDLE. */
  env: Record<string, string>
  /** The temp directory (config, TLS files, log). */
  dir: string
  /** pebble's output so far (stdout and stderr). */
  log: () => string
  /** Stops pebble and waits for it to exit; keeps the temp directory (for the lineage's files). */
  stopServer: () => Promise<void>
  /** Stops pebble and removes its temp directory. */
  stop: () => Promise<void>
  readonly running: boolean
}

export interface StartPebbleOptions {
  /** Validity of the certificates pebble issues, in seconds; default 10 days. */
  validitySeconds?: number
  /** How long to wait for the directory to answer; default 15 s. */
  readyTimeoutMs?: number
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr || r.error}`)
}

/** A CA and a server certificate for localhost/127.0.0.1 signed by it, for pebble's HTTPS listener. */
function makePebbleTls(dir: string): { ca: string; cert: string; key: string } {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=ANSAI test pebble TLS CA',
    ],
    dir,
  )
  openssl(['req', ...ec, '-keyout', 'key.pem', '-out', 'server.csr', '-subj', '/CN=localhost'], dir)
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
  )
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'cert.pem',
      '-days',
      '2',
      '-extfile',
      'server.ext',
    ],
    dir,
  )
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }
}

/** GET `url` trusting only `ca`; resolves with the status code, or undefined when nothing answers. */
function probeHttps(url: string, ca: string, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { ca, timeout: timeoutMs }, (res) => {
      res.resume()
      resolve(res.statusCode)
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(undefined))
    req.end()
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
    }, timeoutMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

export async function startPebble(options: StartPebbleOptions = {}): Promise<Pebble> {
  const dir = mkdtempSync(join(tmpdir(), 'ansai-pebble-'))
  try {
    const tls = makePebbleTls(dir)
    const caPem = readFileSync(tls.ca, 'utf8')
    let lastError = ''
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [listen, management, httpPort, tlsPort] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ]
      const config = {
        pebble: {
          listenAddress: `127.0.0.1:${listen}`,
          managementListenAddress: `127.0.0.1:${management}`,
          certificate: tls.cert,
          privateKey: tls.key,
          // Unused with PEBBLE_VA_ALWAYS_VALID; free ports all the same, should a validation ever be attempted.
          httpPort,
          tlsPort,
          ocspResponderURL: '',
          externalAccountBindingRequired: false,
          certificateValidityPeriod: options.validitySeconds ?? 10 * 86_400,
        },
      }
      const configPath = join(dir, 'pebble-config.json')
      writeFileSync(configPath, JSON.stringify(config, null, 2))
      let output = ''
      const child = spawn(PEBBLE_BINARY, ['-config', configPath], {
        cwd: dir,
        env: {
          ...process.env,
          PEBBLE_VA_ALWAYS_VALID: '1',
          PEBBLE_VA_NOSLEEP: '1',
          PEBBLE_WFE_NONCEREJECT: '0',
          // Always a fresh authorization: each renewal then goes through the whole order flow.
          PEBBLE_AUTHZREUSE: '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child.stdout?.on('data', (b: Buffer) => {
        output += b.toString('utf8')
      })
      child.stderr?.on('data', (b: Buffer) => {
        output += b.toString('utf8')
      })
      child.on('error', (err) => {
        output += `\nspawn error: ${err.message}`
      })
      const directoryUrl = `https://127.0.0.1:${listen}/dir`
      const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000)
      let ready = false
      while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
        if ((await probeHttps(directoryUrl, caPem, 1_000)) === 200) {
          ready = true
          break
        }
        await sleep(100)
      }
      if (!ready) {
        child.kill('SIGTERM')
        await waitExit(child, 3_000)
        lastError = `pebble did not serve ${directoryUrl} (attempt ${attempt}): ${output.slice(-2000)}`
        continue
      }
      const env: Record<string, string> = {}
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
      env.REQUESTS_CA_BUNDLE = tls.ca
      const stopServer = async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM')
          await waitExit(child, 5_000)
        }
      }
      return {
        directoryUrl,
        caBundle: tls.ca,
        env,
        dir,
        log: () => output,
        stopServer,
        stop: async () => {
          await stopServer()
          rmSync(dir, { recursive: true, force: true })
        },
        get running() {
          return child.exitCode === null && child.signalCode === null
        },
      }
    }
    throw new Error(lastError)
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/** certbot's three directories under `root` (config, work, logs), created. */
export function certbotDirs(root: string): { configDir: string; workDir: string; logsDir: string } {
  const dirs = { configDir: join(root, 'config'), workDir: join(root, 'work'), logsDir: join(root, 'logs') }
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true })
  return dirs
}

/**
 * `certbot certonly` for `domains` against pebble, webroot authenticator (see the module comment), account
 * registered without an email. Returns the lineage name (the first domain). Throws with certbot's output on failure.
 */
export function certbotCertonly(input: {
  pebble: Pebble
  domains: readonly string[]
  dirs: { configDir: string; workDir: string; logsDir: string }
  webroot: string
  certName?: string
}): { certName: string; durationMs: number } {
  mkdirSync(input.webroot, { recursive: true })
  const certName = input.certName ?? (input.domains[0] as string)
  const args = [
    'certonly',
    '--non-interactive',
    '--agree-tos',
    '--register-unsafely-without-email',
    '--no-random-sleep-on-renew',
    '--server',
    input.pebble.directoryUrl,
    '--webroot',
    '-w',
    input.webroot,
    '--cert-name',
    certName,
    ...input.domains.flatMap((d) => ['-d', d]),
    '--config-dir',
    input.dirs.configDir,
    '--work-dir',
    input.dirs.workDir,
    '--logs-dir',
    input.dirs.logsDir,
  ]
  const t0 = Date.now()
  const r = spawnSync('certbot', args, { env: input.pebble.env, encoding: 'utf8', timeout: 120_000 })
  if (r.status !== 0) {
    throw new Error(
      `certbot certonly failed (${r.status ?? r.signal}): ${r.stdout}\n${r.stderr}\npebble: ${input.pebble.log().slice(-2000)}`,
    )
  }
  return { certName, durationMs: Date.now() - t0 }
}
