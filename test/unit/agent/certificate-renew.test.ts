/**
 * certificate-renew: the pure parts (renewal configurations and `certbot certificates` as certbot 2.1 writes them,
 * intervals, the plan, argv, output bounding) and the executor's decisions with a fake certbot (a ctx.run that
 * rotates a certbot-shaped lineage of real openssl certificates, as `certbot renew` does) and a fake endpoint.
 * The real certbot, pebble and nginx run in test/integration/certificate-renew.test.ts.
 */
import { X509Certificate } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { type AddressInfo, createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSecureContext, createServer as createTlsServer } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ExecError, type RunOptions, type RunResult, runCommand } from '../../../agent/os/exec.ts'
import { fetchServedCertificate, type ServedCertificate, splitHostPort } from '../../../agent/os/tls.ts'
import {
  addRenewInterval,
  type CertificateRenewOptions,
  certbotErrorLine,
  certbotRenewArgs,
  chooseServerName,
  createCertificateRenewExecutor,
  matchLineages,
  outputTail,
  parseCertbotCertificates,
  parseRenewalConf,
  planRenewal,
  type ReloadFunction,
} from '../../../agent/remediations/certificate-renew.ts'
import type { ExecutorContext } from '../../../agent/remediations/types.ts'
import { RemediationResultV1Schema } from '../../../shared/contracts/index.ts'
import {
  type CertificateRenewParams,
  CertificateRenewParamsSchema,
} from '../../../shared/registry/remediations/certificate-renew.ts'

const DAY = 86_400_000

// Captured from certbot 2.1.0 (Debian 12) against pebble; paths moved to /etc/letsencrypt.
const RENEWAL_CONF = `# renew_before_expiry = 30 days
version = 2.1.0
archive_dir = /etc/letsencrypt/archive/multi
cert = /etc/letsencrypt/live/multi/cert.pem
privkey = /etc/letsencrypt/live/multi/privkey.pem
chain = /etc/letsencrypt/live/multi/chain.pem
fullchain = /etc/letsencrypt/live/multi/fullchain.pem

# Options used in the renewal process
[renewalparams]
account = b60659828f908671aeb597b1deeb11f4
config_dir = /etc/letsencrypt
server = https://127.0.0.1:14555/dir
authenticator = webroot
webroot_path = /var/www/html,
key_type = ecdsa
[[webroot_map]]
api.ansai.invalid = /var/www/html
www.ansai.invalid = /var/www/html
`

const CERTIFICATES_OUTPUT = `
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
Found the following certs:
  Certificate Name: example.ansai.invalid
    Serial Number: 364b9bd898f5202f
    Key Type: ECDSA
    Domains: example.ansai.invalid
    Expiry Date: 2026-12-03 01:35:45+00:00 (VALID: 9 days)
    Certificate Path: /etc/letsencrypt/live/example.ansai.invalid/fullchain.pem
    Private Key Path: /etc/letsencrypt/live/example.ansai.invalid/privkey.pem
  Certificate Name: multi
    Serial Number: 1175773114325791
    Key Type: ECDSA
    Domains: www.ansai.invalid api.ansai.invalid
    Expiry Date: 2026-12-03 01:35:42+00:00 (VALID: 9 days)
    Certificate Path: /etc/letsencrypt/live/multi/fullchain.pem
    Private Key Path: /etc/letsencrypt/live/multi/privkey.pem
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
`

const RENEW_FAILED_STDOUT = `
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
Processing /etc/letsencrypt/renewal/example.org.conf
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -

- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
`
const RENEW_FAILED_STDERR = `Saving debug log to /var/log/letsencrypt/letsencrypt.log
Failed to renew certificate example.org with error: Requesting 127.0.0.1/dir: Connection refused
All renewals failed. The following certificates could not be renewed:
  /etc/letsencrypt/live/example.org/fullchain.pem (failure)
1 renew failure(s), 0 parse failure(s)
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /var/log/letsencrypt/letsencrypt.log or re-run Certbot with -v for more details.
`
const RENEW_OK_STDOUT = `
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
Processing /etc/letsencrypt/renewal/example.org.conf
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
Renewing an existing certificate for example.org

- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
Congratulations, all renewals succeeded:
  /etc/letsencrypt/live/example.org/fullchain.pem (success)
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
`
const NOT_DUE_STDOUT = `Certificate not yet due for renewal

The following certificates are not due for renewal yet:
  /etc/letsencrypt/live/example.org/fullchain.pem expires on 2031-11-23 (skipped)
No renewals were attempted.
`

describe('parseRenewalConf', () => {
  it('reads the files, the archive and the renewal parameters; the commented default is no setting', () => {
    const conf = parseRenewalConf(RENEWAL_CONF)
    expect(conf).toEqual({
      cert: '/etc/letsencrypt/live/multi/cert.pem',
      fullchain: '/etc/letsencrypt/live/multi/fullchain.pem',
      chain: '/etc/letsencrypt/live/multi/chain.pem',
      privkey: '/etc/letsencrypt/live/multi/privkey.pem',
      archiveDir: '/etc/letsencrypt/archive/multi',
      renewBeforeExpiry: undefined,
      autorenew: true,
      server: 'https://127.0.0.1:14555/dir',
      authenticator: 'webroot',
    })
  })

  it('reads renew_before_expiry, autorenew, quotes and inline comments; ignores subsections', () => {
    const conf = parseRenewalConf(
      `renew_before_expiry = 7 days  # ours\ncert = "/etc/le/live/a b/cert.pem"\n[renewalparams]\nautorenew = False\n[[webroot_map]]\nserver = https://not-this/\n`,
    )
    expect(conf.renewBeforeExpiry).toBe('7 days')
    expect(conf.cert).toBe('/etc/le/live/a b/cert.pem')
    expect(conf.autorenew).toBe(false)
    expect(conf.server).toBeUndefined()
    for (const v of ['no', 'off', '0', 'FALSE']) {
      expect(parseRenewalConf(`[renewalparams]\nautorenew = ${v}\n`).autorenew).toBe(false)
    }
    expect(parseRenewalConf('[renewalparams]\nautorenew = True\n').autorenew).toBe(true)
    expect(parseRenewalConf('')).toEqual({ autorenew: true } as ReturnType<typeof parseRenewalConf>)
  })

  it('keeps top-level keys of other sections out', () => {
    const conf = parseRenewalConf('[other]\ncert = /x\n[renewalparams]\nauthenticator = nginx\n')
    expect(conf.cert).toBeUndefined()
    expect(conf.authenticator).toBe('nginx')
  })
})

describe('parseCertbotCertificates', () => {
  it('lists every lineage with its domains and paths', () => {
    expect(parseCertbotCertificates(CERTIFICATES_OUTPUT)).toEqual([
      {
        name: 'example.ansai.invalid',
        serial: '364b9bd898f5202f',
        domains: ['example.ansai.invalid'],
        expiry: '2026-12-03 01:35:45+00:00 (VALID: 9 days)',
        certificatePath: '/etc/letsencrypt/live/example.ansai.invalid/fullchain.pem',
        privateKeyPath: '/etc/letsencrypt/live/example.ansai.invalid/privkey.pem',
      },
      {
        name: 'multi',
        serial: '1175773114325791',
        domains: ['www.ansai.invalid', 'api.ansai.invalid'],
        expiry: '2026-12-03 01:35:42+00:00 (VALID: 9 days)',
        certificatePath: '/etc/letsencrypt/live/multi/fullchain.pem',
        privateKeyPath: '/etc/letsencrypt/live/multi/privkey.pem',
      },
    ])
  })

  it('finds nothing in "No certificates found." or an empty match', () => {
    expect(parseCertbotCertificates('\n- - - -\nNo certificates found.\n- - - -\n')).toEqual([])
    expect(parseCertbotCertificates('Found the following matching certs:\n\n- - - -\n')).toEqual([])
    expect(parseCertbotCertificates('')).toEqual([])
  })
})

describe('matchLineages', () => {
  const lineages = [
    {
      name: 'a',
      files: ['/etc/le/live/a/cert.pem', '/etc/le/live/a/fullchain.pem', '/etc/le/archive/a/cert3.pem'],
      archiveDir: '/etc/le/archive/a',
    },
    { name: 'b', files: ['/etc/le/live/b/fullchain.pem'], archiveDir: '/etc/le/archive/b/' },
  ]
  it('matches a declared or resolved file, or a file in the archive', () => {
    expect(matchLineages(['/etc/le/live/a/fullchain.pem'], lineages)).toEqual(['a'])
    expect(matchLineages(['/srv/x.pem', '/etc/le/archive/a/cert3.pem'], lineages)).toEqual(['a'])
    expect(matchLineages(['/etc/le/archive/b/fullchain7.pem'], lineages)).toEqual(['b'])
  })
  it('no match, a prefix that is not a directory, two owners', () => {
    expect(matchLineages(['/etc/le/live/c/cert.pem'], lineages)).toEqual([])
    expect(matchLineages(['/etc/le/archive/ab/cert1.pem'], lineages)).toEqual([])
    const twice = [...lineages, { name: 'copy', files: ['/etc/le/live/a/cert.pem'] }]
    expect(matchLineages(['/etc/le/live/a/cert.pem'], twice)).toEqual(['a', 'copy'])
  })
})

describe('addRenewInterval (certbot add_time_interval)', () => {
  const from = new Date('2026-01-31T00:00:00Z')
  it.each([
    ['30 days', '2026-03-02T00:00:00.000Z'],
    ['30', '2026-03-02T00:00:00.000Z'],
    ['2 weeks', '2026-02-14T00:00:00.000Z'],
    ['3 days 12 hours', '2026-02-03T12:00:00.000Z'],
    ['1 week, 1 day', '2026-02-08T00:00:00.000Z'],
    ['1 year', '2027-01-31T00:00:00.000Z'],
    ['90 minutes', '2026-01-31T01:30:00.000Z'],
    [' 7 Days ', '2026-02-07T00:00:00.000Z'],
  ])('%s', (interval, expected) => {
    expect(addRenewInterval(from, interval)?.toISOString()).toBe(expected)
  })
  it('months by the calendar', () => {
    expect(addRenewInterval(new Date('2026-01-15T00:00:00Z'), '1 month')?.toISOString()).toBe(
      '2026-02-15T00:00:00.000Z',
    )
  })
  it.each(['', 'soon', '30 fortnights', 'days', '1.5 months', '30 days later'])('unreadable: %j', (interval) => {
    expect(addRenewInterval(from, interval)).toBeUndefined()
  })
})

describe('planRenewal', () => {
  const now = new Date('2026-06-01T00:00:00Z')
  const cert = (daysLeft: number, fingerprint = 'AA') => ({
    fingerprint,
    notAfter: new Date(now.getTime() + daysLeft * DAY),
  })
  const base = { autorenew: true, canReload: true, now }

  it('due by certbot (default 30 days): renew without --force-renewal', () => {
    expect(planRenewal({ ...base, current: cert(12) })).toMatchObject({ action: 'renew', force: false })
    expect(planRenewal({ ...base, current: cert(-3) })).toMatchObject({ action: 'renew', force: false })
    expect(planRenewal({ ...base, current: cert(12) }).reason).toMatch(/12\.0 days left.*30 days/)
  })

  it('not due by certbot: --force-renewal, and why', () => {
    const p = planRenewal({ ...base, current: cert(12), renewBeforeExpiry: '7 days' })
    expect(p).toMatchObject({ action: 'renew', force: true })
    expect(p.reason).toMatch(/outside certbot's renew_before_expiry \(7 days\).*not yet due/)
    expect(planRenewal({ ...base, current: cert(45) })).toMatchObject({ force: true })
    expect(planRenewal({ ...base, current: cert(12), autorenew: false }).reason).toMatch(/autorenew is off/)
    expect(planRenewal({ ...base, current: cert(12), renewBeforeExpiry: 'a while' })).toMatchObject({ force: true })
  })

  it('reload only when the disk has a newer certificate that is not due and a unit to reload', () => {
    const served = cert(5, 'OLD')
    expect(planRenewal({ ...base, current: cert(80, 'NEW'), served })).toMatchObject({ action: 'reload' })
    // due anyway: renew (and reload after)
    expect(planRenewal({ ...base, current: cert(20, 'NEW'), served })).toMatchObject({ action: 'renew', force: false })
    // nothing to reload: a renewal (certbot's deploy hooks may reload)
    expect(planRenewal({ ...base, current: cert(80, 'NEW'), served, canReload: false })).toMatchObject({
      action: 'renew',
      force: true,
    })
    // served is the same, or newer (another lineage): renew
    expect(planRenewal({ ...base, current: cert(80, 'NEW'), served: cert(80, 'NEW') })).toMatchObject({
      action: 'renew',
    })
    expect(planRenewal({ ...base, current: cert(80, 'NEW'), served: cert(90, 'X') })).toMatchObject({ action: 'renew' })
  })
})

describe('argv and output', () => {
  it('certbot renew: never a random sleep, force and server and directories only when asked', () => {
    expect(certbotRenewArgs({ certName: 'example.org', force: false })).toEqual([
      'renew',
      '--cert-name',
      'example.org',
      '--non-interactive',
      '--no-random-sleep-on-renew',
    ])
    expect(
      certbotRenewArgs({
        certName: 'example.org',
        force: true,
        server: 'https://acme.internal/dir',
        dirs: { configDir: '/c', workDir: '/w', logsDir: '/l' },
      }),
    ).toEqual([
      'renew',
      '--cert-name',
      'example.org',
      '--non-interactive',
      '--no-random-sleep-on-renew',
      '--force-renewal',
      '--server',
      'https://acme.internal/dir',
      '--config-dir',
      '/c',
      '--work-dir',
      '/w',
      '--logs-dir',
      '/l',
    ])
  })

  it('outputTail drops rules and blank lines, keeps the last lines, shortened', () => {
    expect(outputTail(RENEW_OK_STDOUT)).toEqual([
      'Processing /etc/letsencrypt/renewal/example.org.conf',
      'Renewing an existing certificate for example.org',
      'Congratulations, all renewals succeeded:',
      '  /etc/letsencrypt/live/example.org/fullchain.pem (success)',
    ])
    const many = Array.from({ length: 100 }, (_, i) => `line ${i} ${'x'.repeat(1000)}`).join('\n')
    const tail = outputTail(many)
    expect(tail).toHaveLength(12)
    expect(tail[11]?.startsWith('line 99')).toBe(true)
    expect(Math.max(...tail.map((l) => l.length))).toBeLessThanOrEqual(300)
  })

  it("certbotErrorLine picks certbot's reason", () => {
    const r = { stdout: RENEW_FAILED_STDOUT, stderr: RENEW_FAILED_STDERR, exitCode: 1, signal: null, timedOut: false }
    expect(certbotErrorLine(r)).toBe(
      'certbot ended with exit 1: Failed to renew certificate example.org with error: Requesting 127.0.0.1/dir: Connection refused',
    )
    const unexpected =
      'Saving debug log to /x\nAn unexpected error occurred:\nAttributeError: cannot set\nAsk for help or search'
    expect(certbotErrorLine({ ...r, stdout: '', stderr: unexpected })).toMatch(
      /An unexpected error occurred: AttributeError: cannot set$/,
    )
    expect(certbotErrorLine({ ...r, stdout: '', stderr: '', exitCode: null, signal: 'SIGKILL', timedOut: true })).toBe(
      'certbot ended with a timeout',
    )
    expect(certbotErrorLine({ ...r, stdout: 'just this', stderr: '', exitCode: 2 })).toBe(
      'certbot ended with exit 2: just this',
    )
  })

  it('chooseServerName: the endpoint name, else the first plain DNS name of the certificate', () => {
    expect(chooseServerName('example.org', ['www.example.org'])).toBe('example.org')
    expect(chooseServerName('127.0.0.1', ['*.example.org', '10.0.0.1', 'email:a@b', 'example.org'])).toBe('example.org')
    expect(chooseServerName('::1', ['*.example.org'])).toBeUndefined()
  })

  it('splitHostPort', () => {
    expect(splitHostPort('example.org:443')).toEqual({ host: 'example.org', port: 443 })
    expect(splitHostPort('[2001:db8::1]:8443')).toEqual({ host: '2001:db8::1', port: 8443 })
    expect(splitHostPort('127.0.0.1:65535')).toEqual({ host: '127.0.0.1', port: 65535 })
    for (const bad of ['example.org', 'example.org:0', 'example.org:70000', '2001:db8::1:443', ':443']) {
      expect(splitHostPort(bad)).toBeUndefined()
    }
  })
})

// ---------------------------------------------------------------------------------------------------------------
// The executor, with a fake certbot over a certbot-shaped lineage of real certificates
// ---------------------------------------------------------------------------------------------------------------

const NAME = 'example.org'
let root: string
/** Certificates made by openssl: [10 days, 80 days, 80 days, 80 days] left. */
const pems: string[] = []
const x509 = (i: number) => new X509Certificate(pems[i] as string)
const fp = (i: number) => x509(i).fingerprint256.toUpperCase()

async function openssl(args: string[]): Promise<void> {
  const r = await runCommand('openssl', args, { timeoutMs: 20_000, cwd: root })
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`)
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'ansai-cert-renew-unit-'))
  for (const [i, days] of [10, 80, 80, 80].entries()) {
    await openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `k${i}.pem`,
      '-out',
      `c${i}.pem`,
      '-days',
      String(days),
      '-subj',
      `/CN=${NAME}`,
      '-addext',
      `subjectAltName=DNS:${NAME},DNS:www.${NAME}`,
    ])
    pems.push(readFileSync(join(root, `c${i}.pem`), 'utf8'))
  }
})

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true })
})

interface Lineage {
  configDir: string
  live: string
  archive: string
  /** Makes certificate `i` the lineage's next version, as certbot renew does. */
  rotate: (i: number) => void
  version: () => number
}

let lineageCount = 0
/** A certbot lineage in a fresh config dir: renewal conf, archive/…1.pem, live/ symlinks; current cert `first`. */
function makeLineage(first: number, confExtra = ''): Lineage {
  const configDir = join(root, `config-${++lineageCount}`)
  const live = join(configDir, 'live', NAME)
  const archive = join(configDir, 'archive', NAME)
  mkdirSync(live, { recursive: true })
  mkdirSync(archive, { recursive: true })
  mkdirSync(join(configDir, 'renewal'))
  writeFileSync(
    join(configDir, 'renewal', `${NAME}.conf`),
    `${confExtra}version = 2.1.0\narchive_dir = ${archive}\ncert = ${live}/cert.pem\nprivkey = ${live}/privkey.pem\nchain = ${live}/chain.pem\nfullchain = ${live}/fullchain.pem\n\n[renewalparams]\nauthenticator = webroot\nserver = https://acme-v02.api.letsencrypt.org/directory\n`,
  )
  let version = 0
  const rotate = (i: number) => {
    version++
    writeFileSync(join(archive, `cert${version}.pem`), pems[i] as string)
    writeFileSync(join(archive, `fullchain${version}.pem`), pems[i] as string)
    writeFileSync(join(archive, `chain${version}.pem`), pems[i] as string)
    writeFileSync(join(archive, `privkey${version}.pem`), readFileSync(join(root, `k${i}.pem`)))
    for (const kind of ['cert', 'fullchain', 'chain', 'privkey']) {
      const link = join(live, `${kind}.pem`)
      try {
        unlinkSync(link)
      } catch {
        // first version
      }
      symlinkSync(`../../archive/${NAME}/${kind}${version}.pem`, link)
    }
  }
  rotate(first)
  return { configDir, live, archive, rotate, version: () => version }
}

const ok = (stdout = '', stderr = ''): RunResult => ({
  exitCode: 0,
  signal: null,
  stdout,
  stderr,
  timedOut: false,
  truncated: false,
  durationMs: 1,
})

type FakeCertbot = (args: readonly string[], call: number) => RunResult | Error
interface Call {
  file: string
  args: readonly string[]
  opts: RunOptions
}

function fakeRun(behaviour: FakeCertbot): { run: ExecutorContext['run']; calls: Call[] } {
  const calls: Call[] = []
  const run = (async (file: string, args: readonly string[], opts: RunOptions) => {
    calls.push({ file, args, opts })
    const out = behaviour(args, calls.length)
    if (out instanceof Error) throw out
    return out
  }) as ExecutorContext['run']
  return { run, calls }
}

/** Serves the certificates in order, then the last one for ever; `undefined` is a refused connection. */
function servedSeq(...seq: (number | undefined)[]): {
  fetch: NonNullable<CertificateRenewOptions['fetchServed']>
  seen: { servername: string | undefined }[]
} {
  const seen: { servername: string | undefined }[] = []
  let n = 0
  const fetch = async (req: { servername?: string }): Promise<ServedCertificate> => {
    seen.push({ servername: req.servername })
    const i = seq[Math.min(n++, seq.length - 1)]
    if (i === undefined) return { ok: false, error: 'ECONNREFUSED: connect ECONNREFUSED', servername: req.servername }
    return { ok: true, certificate: x509(i), servername: req.servername, protocol: 'TLSv1.3' }
  }
  return { fetch, seen }
}

function recordingReload(outcome: { ok: boolean; detail: string } | Error = { ok: true, detail: 'reloaded' }) {
  const units: string[] = []
  const reload: ReloadFunction = async (unit) => {
    units.push(unit)
    if (outcome instanceof Error) throw outcome
    return outcome
  }
  return { reload, units }
}

const ctxOf = (run: ExecutorContext['run'], dryRun = false): ExecutorContext => ({
  key: 'k-1',
  dryRun,
  now: () => new Date(),
  run,
  log: () => {},
})

const p = (params: Record<string, unknown>): CertificateRenewParams => CertificateRenewParamsSchema.parse(params)

/** The executor for lineage `l`, fast verification. */
const executorFor = (l: Lineage, extra: CertificateRenewOptions = {}) =>
  createCertificateRenewExecutor({
    certbotDirs: { configDir: l.configDir, workDir: join(root, 'work'), logsDir: join(root, 'logs') },
    verifyIntervalMs: 5,
    verifySettleMs: 5,
    verifyTimeoutMs: 300,
    ...extra,
  })

const renewWith =
  (l: Lineage, next: number, stdout = RENEW_OK_STDOUT): FakeCertbot =>
  (args) => {
    if (args[0] !== 'renew') return new Error(`unexpected certbot ${args.join(' ')}`)
    l.rotate(next)
    return ok(stdout)
  }

describe('certificate-renew executor', () => {
  it('dry-run: reads the lineage, says what would run, runs nothing', async () => {
    const l = makeLineage(0)
    const { run, calls } = fakeRun(() => new Error('must not run'))
    const { reload, units } = recordingReload()
    const { result, audit } = await executorFor(l, { reload }).execute(
      p({ certName: NAME, reloadUnit: 'nginx.service' }),
      ctxOf(run, true),
    )
    RemediationResultV1Schema.parse(result)
    expect(result).toMatchObject({ status: 'dry-run', dryRun: true, remediation: 'certificate-renew', key: 'k-1' })
    expect(calls).toEqual([])
    expect(units).toEqual([])
    expect(result.evidence.wouldRun).toEqual([
      `certbot renew --cert-name ${NAME} --non-interactive --no-random-sleep-on-renew --config-dir ${l.configDir} --work-dir ${join(root, 'work')} --logs-dir ${join(root, 'logs')}`,
      'reload nginx.service',
    ])
    expect(result.evidence.before).toMatchObject({ fingerprint: fp(0) })
    expect(audit).toEqual([expect.objectContaining({ action: 'would-renew', target: NAME })])
    expect(l.version()).toBe(1)
  })

  it('renews without --force-renewal when due, reloads, verifies with the SNI of the certificate', async () => {
    const l = makeLineage(0)
    const { run, calls } = fakeRun(renewWith(l, 1))
    const { reload, units } = recordingReload()
    // before: old; after the reload: old twice (workers switching), then new, confirmed.
    const served = servedSeq(0, 0, 0, 1, 1)
    const { result, audit } = await executorFor(l, { reload, fetchServed: served.fetch }).execute(
      p({ certName: NAME, reloadUnit: 'nginx.service', verifyEndpoint: '127.0.0.1:8443' }),
      ctxOf(run),
    )
    RemediationResultV1Schema.parse(result)
    expect(result.error).toBeUndefined()
    expect(result.status).toBe('succeeded')
    expect(calls).toHaveLength(1)
    expect(calls[0]?.file).toBe('certbot')
    expect(calls[0]?.args).not.toContain('--force-renewal')
    expect(calls[0]?.opts.timeoutMs).toBeGreaterThan(0)
    expect(units).toEqual(['nginx.service'])
    expect(served.seen.every((s) => s.servername === NAME)).toBe(true)
    expect(result.evidence).toMatchObject({
      certName: NAME,
      plan: { action: 'renew', force: false },
      before: { fingerprint: fp(0) },
      after: { fingerprint: fp(1) },
      renewed: true,
      reload: { unit: 'nginx.service', ok: true },
      verify: { servername: NAME, matched: true, attempts: 4, served: { fingerprint: fp(1) } },
    })
    expect(result.summary).toMatch(
      /^renewed example\.org: notAfter .* → .*; reloaded nginx\.service; 127\.0\.0\.1:8443 serves it$/,
    )
    expect(result.items).toEqual([NAME, '127.0.0.1:8443', 'nginx.service'])
    expect(audit.map((a) => a.action)).toEqual(['certbot-renew', 'reload', 'verify'])
  })

  it('forces the renewal when certbot would call it not yet due, and passes acmeServer', async () => {
    const l = makeLineage(0, 'renew_before_expiry = 5 days\n')
    const { run, calls } = fakeRun(renewWith(l, 1))
    const { result } = await executorFor(l).execute(
      p({ certName: NAME, acmeServer: 'https://acme.internal/dir' }),
      ctxOf(run),
    )
    expect(result.status).toBe('succeeded')
    expect(calls[0]?.args).toEqual(expect.arrayContaining(['--force-renewal', '--server', 'https://acme.internal/dir']))
    expect(result.evidence.plan).toMatchObject({ action: 'renew', force: true })
    expect(result.evidence.lineage).toMatchObject({ renewBeforeExpiry: '5 days', resolvedFrom: 'certName' })
  })

  it('runs once more with --force-renewal when an unforced run renewed nothing', async () => {
    const l = makeLineage(0)
    const { run, calls } = fakeRun((_args, call) => {
      if (call === 1) return ok(NOT_DUE_STDOUT)
      l.rotate(1)
      return ok(RENEW_OK_STDOUT)
    })
    const { result } = await executorFor(l).execute(p({ certName: NAME }), ctxOf(run))
    expect(result.status).toBe('succeeded')
    expect(calls.map((c) => c.args.includes('--force-renewal'))).toEqual([false, true])
    expect(result.evidence.plan).toMatchObject({ force: true, reason: expect.stringMatching(/renewed nothing/) })
    expect(result.evidence.certbot).toHaveLength(2)
  })

  it('fails when the certificate on disk does not change, and reloads nothing', async () => {
    const l = makeLineage(0, 'renew_before_expiry = 2 days\n')
    const { run, calls } = fakeRun(() => ok(NOT_DUE_STDOUT))
    const { reload, units } = recordingReload()
    const { result } = await executorFor(l, { reload }).execute(
      p({ certName: NAME, reloadUnit: 'nginx.service' }),
      ctxOf(run),
    )
    expect(result.status).toBe('failed')
    expect(result.error).toMatch(/did not change/)
    expect(calls).toHaveLength(1)
    expect(units).toEqual([])
  })

  it("fails with certbot's error line, nothing reloaded, nothing thrown", async () => {
    const l = makeLineage(0)
    const { run } = fakeRun(() => ({ ...ok(RENEW_FAILED_STDOUT, RENEW_FAILED_STDERR), exitCode: 1 }))
    const { reload, units } = recordingReload()
    const { result, audit } = await executorFor(l, { reload }).execute(
      p({ certName: NAME, reloadUnit: 'nginx.service' }),
      ctxOf(run),
    )
    RemediationResultV1Schema.parse(result)
    expect(result.status).toBe('failed')
    expect(result.error).toMatch(/exit 1: Failed to renew certificate example\.org with error: .*Connection refused$/)
    expect(result.summary).toMatch(/nothing reloaded, the current certificate stays in place/)
    expect(units).toEqual([])
    expect(audit.map((a) => a.action)).toEqual(['certbot-renew'])
    const runs = result.evidence.certbot as { stderr: string[]; exitCode: number }[]
    expect(runs[0]?.exitCode).toBe(1)
    expect(runs[0]?.stderr).toContain(
      'Failed to renew certificate example.org with error: Requesting 127.0.0.1/dir: Connection refused',
    )
  })

  it('a missing certbot, a timeout, a huge output: failed results, bounded', async () => {
    const l = makeLineage(0)
    const missing = fakeRun(() => new ExecError('spawn-failed', 'certbot', 'cannot start certbot: ENOENT'))
    const r1 = await executorFor(l).execute(p({ certName: NAME }), ctxOf(missing.run))
    expect(r1.result.status).toBe('failed')
    expect(r1.result.error).toMatch(/cannot run certbot: cannot start certbot: ENOENT/)

    const slow = fakeRun(() => ({ ...ok(), exitCode: null, signal: 'SIGTERM', timedOut: true }))
    const r2 = await executorFor(l, { certbotTimeoutMs: 1234 }).execute(p({ certName: NAME }), ctxOf(slow.run))
    expect(r2.result.error).toBe('certbot ended with a timeout')
    expect(slow.calls[0]?.opts.timeoutMs).toBe(1234)

    const noisy = 'Failed: '.concat('y'.repeat(5000), '\n').repeat(2000)
    const loud = fakeRun(() => ({ ...ok(noisy, noisy), exitCode: 1 }))
    const r3 = await executorFor(l).execute(p({ certName: NAME }), ctxOf(loud.run))
    RemediationResultV1Schema.parse(r3.result)
    expect(JSON.stringify(r3.result).length).toBeLessThan(16_000)
  })

  it('a failed or throwing reload: failed, with the new certificate in the evidence', async () => {
    for (const outcome of [{ ok: false, detail: 'nginx.service is not active, cannot reload.' }, new Error('boom')]) {
      const l = makeLineage(0)
      const { run } = fakeRun(renewWith(l, 1))
      const { reload } = recordingReload(outcome)
      const { result } = await executorFor(l, { reload }).execute(
        p({ certName: NAME, reloadUnit: 'nginx.service' }),
        ctxOf(run),
      )
      expect(result.status).toBe('failed')
      expect(result.error).toMatch(/^reload of nginx\.service failed: (nginx\.service is not active|boom)/)
      expect(result.evidence.after).toMatchObject({ fingerprint: fp(1) })
    }
  })

  it('verification: still the old certificate, an unreachable endpoint, a single lucky handshake', async () => {
    const cases: [(number | undefined)[], RegExp][] = [
      [[0], /still serves .* not the new certificate/],
      [[0, undefined], /could not be read: ECONNREFUSED/],
      // the new certificate once, then an old worker again, for ever: not confirmed
      [[0, 1, 0], /still serves/],
    ]
    for (const [seq, error] of cases) {
      const l = makeLineage(0)
      const { run } = fakeRun(renewWith(l, 1))
      const served = servedSeq(...seq)
      const { result } = await executorFor(l, { fetchServed: served.fetch }).execute(
        p({ certName: NAME, verifyEndpoint: 'example.org:443' }),
        ctxOf(run),
      )
      expect(result.status).toBe('failed')
      expect(result.error).toMatch(error)
      expect(result.evidence.verify).toMatchObject({ matched: false, servername: 'example.org' })
      expect(served.seen.length).toBeGreaterThan(2)
    }
  })

  it('only reloads when the disk holds a newer certificate than the served one', async () => {
    const l = makeLineage(1)
    const { run, calls } = fakeRun(() => new Error('must not run'))
    const { reload, units } = recordingReload()
    const served = servedSeq(0, 1, 1)
    const { result, audit } = await executorFor(l, { reload, fetchServed: served.fetch }).execute(
      p({ certName: NAME, reloadUnit: 'nginx.service', verifyEndpoint: 'example.org:443' }),
      ctxOf(run),
    )
    expect(result.status).toBe('succeeded')
    expect(calls).toEqual([])
    expect(units).toEqual(['nginx.service'])
    expect(result.evidence).toMatchObject({ plan: { action: 'reload' }, renewed: false })
    expect(audit.map((a) => a.action)).toEqual(['reload', 'verify'])
  })

  describe('finding the lineage of a certPath', () => {
    it('by a live path, an archive path, the resolved symlink', async () => {
      const l = makeLineage(0)
      for (const certPath of [join(l.live, 'fullchain.pem'), join(l.live, 'cert.pem'), join(l.archive, 'cert1.pem')]) {
        const { run, calls } = fakeRun(() => new Error('no certbot for a dry-run'))
        const { result } = await executorFor(l).execute(p({ certPath }), ctxOf(run, true))
        expect(result.status).toBe('dry-run')
        expect(result.evidence).toMatchObject({ certName: NAME, lineage: { resolvedFrom: 'renewal-conf' } })
        expect(calls).toEqual([])
      }
    })

    it('asks certbot certificates when no renewal configuration names the path, and refuses unknown paths', async () => {
      const l = makeLineage(0)
      const elsewhere = join(root, 'elsewhere', NAME)
      mkdirSync(elsewhere, { recursive: true })
      writeFileSync(join(elsewhere, 'fullchain.pem'), pems[0] as string)
      const listing = CERTIFICATES_OUTPUT.replaceAll('/etc/letsencrypt/live/example.ansai.invalid', elsewhere).replace(
        'Certificate Name: example.ansai.invalid',
        'Certificate Name: other-name',
      )
      const { run, calls } = fakeRun((args) => (args[0] === 'certificates' ? ok(listing) : new Error('dry-run')))
      const found = await executorFor(l).execute(p({ certPath: join(elsewhere, 'fullchain.pem') }), ctxOf(run, true))
      expect(calls.map((c) => c.args[0])).toEqual(['certificates'])
      expect(calls[0]?.args).toEqual(expect.arrayContaining(['--config-dir', l.configDir]))
      expect(found.result.status).toBe('dry-run')
      expect(found.result.evidence).toMatchObject({
        certName: 'other-name',
        lineage: { resolvedFrom: 'certbot-certificates', cert: join(elsewhere, 'fullchain.pem') },
        before: { fingerprint: fp(0) },
      })

      const unknown = await executorFor(l).execute(p({ certPath: '/srv/tls/unknown.pem' }), ctxOf(run, true))
      expect(unknown.result.status).toBe('failed')
      expect(unknown.result.error).toMatch(/no certbot certificate owns \/srv\/tls\/unknown\.pem/)
    })

    it('refuses a path two lineages claim', async () => {
      const l = makeLineage(0)
      const conf = readFileSync(join(l.configDir, 'renewal', `${NAME}.conf`), 'utf8')
      writeFileSync(join(l.configDir, 'renewal', 'copy.conf'), conf)
      const { run } = fakeRun(() => new Error('none'))
      const { result } = await executorFor(l).execute(p({ certPath: join(l.live, 'cert.pem') }), ctxOf(run, true))
      expect(result.status).toBe('failed')
      expect(result.error).toMatch(/several certbot certificates \((copy, example\.org|example\.org, copy)\)/)
    })
  })

  it('an unknown certName: failed after asking certbot certificates, nothing thrown', async () => {
    const l = makeLineage(0)
    const { run, calls } = fakeRun(() => ok('Found the following matching certs:\n\n- - - -\n'))
    const { result } = await executorFor(l).execute(p({ certName: 'nope.example' }), ctxOf(run))
    RemediationResultV1Schema.parse(result)
    expect(result.status).toBe('failed')
    expect(result.error).toMatch(
      /no renewal configuration .*nope\.example\.conf \(ENOENT\); certbot certificates does not list it/,
    )
    expect(calls[0]?.args.slice(0, 3)).toEqual(['certificates', '--cert-name', 'nope.example'])
  })
})

describe('fetchServedCertificate (agent/os/tls.ts) against a loopback TLS server', () => {
  it('reads the leaf chosen by SNI; no SNI for an IP address; refused and silent endpoints are results', async () => {
    const key = (i: number) => readFileSync(join(root, `k${i}.pem`), 'utf8')
    const named = createSecureContext({ cert: pems[1], key: key(1) })
    const server = createTlsServer(
      { cert: pems[0], key: key(0), SNICallback: (name, cb) => cb(null, name === NAME ? named : undefined) },
      (socket) => socket.end(),
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    const silent = createNetServer(() => {}) // accepts, never speaks TLS
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const silentPort = (silent.address() as AddressInfo).port
    try {
      const bySni = await fetchServedCertificate({ host: '127.0.0.1', port, servername: NAME })
      expect(bySni.ok && bySni.certificate.fingerprint256.toUpperCase()).toBe(fp(1))
      const noSni = await fetchServedCertificate({ host: '127.0.0.1', port })
      expect(noSni.servername).toBeUndefined()
      expect(noSni.ok && noSni.certificate.fingerprint256.toUpperCase()).toBe(fp(0))
      const byName = await fetchServedCertificate({ host: 'localhost', port })
      expect(byName.servername).toBe('localhost')

      await new Promise<void>((resolve) => server.close(() => resolve()))
      const refused = await fetchServedCertificate({ host: '127.0.0.1', port })
      expect(refused).toMatchObject({ ok: false, error: expect.stringMatching(/ECONNREFUSED/) })
      const t0 = Date.now()
      const quiet = await fetchServedCertificate({ host: '127.0.0.1', port: silentPort, timeoutMs: 200 })
      expect(quiet).toMatchObject({ ok: false, error: 'no TLS handshake within 200 ms' })
      expect(Date.now() - t0).toBeLessThan(2_000)
    } finally {
      server.close()
      silent.close()
    }
  })
})
