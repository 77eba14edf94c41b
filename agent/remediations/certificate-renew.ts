import { X509Certificate } from 'node:crypto'
import { readdirSync, readFileSync, realpathSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import type { RemediationResultV1 } from '../../shared/contracts/index.ts'
import type { CertificateRenewParams } from '../../shared/registry/remediations/certificate-renew.ts'
import type { RunResult } from '../os/exec.ts'
import { fetchServedCertificate, type ServedCertificate, splitHostPort } from '../os/tls.ts'
import { splitSubjectAltName } from '../probes/certificate.ts'
import { boundResult, shortenMiddle } from './disk-cleanup/report.ts'
import type { AuditEntry, ExecutorContext, RemediationExecutor } from './types.ts'

/**
 * certificate-renew: renews one certbot certificate, reloads the service that serves it, and checks that the new
 * certificate is what the endpoint serves.
 *
 * 1. **Lineage.** `certName` names certbot's lineage directly (`<configDir>/renewal/<certName>.conf`); a `certPath`
 *    is matched against every renewal configuration's `cert`, `fullchain`, `chain` and `privkey` paths (as written
 *    and with symlinks resolved) and its `archive_dir`. When the renewal configurations give no answer (no such
 *    file, no match, unreadable directory), `certbot certificates` is asked: it also honours a config directory
 *    set in certbot's cli.ini. Both parsers are pure and exported; a path two lineages claim is refused.
 * 2. **Plan** ({@link planRenewal}, pure). certbot renews a certificate only when it expires within the lineage's
 *    `renew_before_expiry` (30 days by default) and `autorenew` is on; otherwise `certbot renew` prints "not yet
 *    due" and exits 0 with nothing renewed. ANSAI's policy decides by its own threshold (14 days in the examples,
 *    but a lineage may set `renew_before_expiry = 7 days`, a policy may renew earlier, an operator may ask by hand),
 *    so when certbot's rule says "not due" the executor adds `--force-renewal`, and only then: when certbot would
 *    renew anyway the outcome is the same without it, and certbot's log and ANSAI's evidence then say truthfully why
 *    the certificate was renewed. Should an unforced run still leave the certificate unchanged (certbot judges by the
 *    newest version in the archive, which can differ from the live one), it is run once more with
 *    `--force-renewal`. One case renews nothing: the endpoint serves an OLDER certificate than the one on disk, which
 *    is not due itself (certbot's timer renewed it, nobody reloaded the service); then only the reload is done.
 * 3. **Renew**: `certbot renew --cert-name <name> --non-interactive --no-random-sleep-on-renew` (certbot sleeps up to
 *    8 minutes before renewing when stdin is not a terminal, which is always the case here), `--server` when
 *    `acmeServer` is given, the `--config-dir/--work-dir/--logs-dir` of {@link CertificateRenewOptions.certbotDirs}.
 *    The certificate counts as renewed only when the lineage's `cert` file has a new fingerprint afterwards.
 * 4. **Reload** `reloadUnit` through {@link CertificateRenewOptions.reload} (default `systemctl reload <unit>`;
 *    tests on machines without systemd as PID 1 pass a function that runs `nginx -s reload`).
 * 5. **Verify**: connect to `verifyEndpoint` with SNI (the endpoint's host name, or the certificate's first DNS name
 *    when the endpoint is an IP address) until the served leaf has the new fingerprint, and once more
 *    {@link CertificateRenewOptions.verifySettleMs} later, within {@link CertificateRenewOptions.verifyTimeoutMs}
 *    (a reloading server takes a moment to switch workers, and serves from old and new ones meanwhile).
 *
 * `succeeded` only when the new certificate is on disk AND, with `verifyEndpoint`, served. Evidence: notAfter,
 * serial and fingerprint before and after, the plan and its reason, certbot's argv, exit status and last output
 * lines (bounded), the reload and the verification. Dry-run checks that the lineage exists and reads its
 * certificate, then says what would run; it renews, reloads and writes nothing (`certbot renew --dry-run` is a
 * different thing: a test order against the CA's staging server, so it is not used).
 */

export type ReloadOutcome = { ok: boolean; detail: string; argv?: string[] }
export type ReloadFunction = (unit: string, ctx: ExecutorContext) => Promise<ReloadOutcome>

export interface CertbotDirs {
  /** certbot's `--config-dir`; also where the executor reads `renewal/*.conf`. Default /etc/letsencrypt. */
  configDir?: string
  /** `--work-dir`; default: certbot's (/var/lib/letsencrypt). */
  workDir?: string
  /** `--logs-dir`; default: certbot's (/var/log/letsencrypt). */
  logsDir?: string
}

export interface CertificateRenewOptions {
  /** The certbot program; default `certbot` on PATH. */
  certbot?: string
  /**
   * Passed to certbot as `--config-dir/--work-dir/--logs-dir` when set; production leaves them unset (certbot's
   * defaults and its cli.ini apply), tests point them at a temp directory.
   */
  certbotDirs?: CertbotDirs
  /** certbot's WHOLE environment; default: the agent's. (Tests add REQUESTS_CA_BUNDLE for their ACME server.) */
  certbotEnv?: Record<string, string>
  /** Timeout of one `certbot renew`; default 5 minutes. */
  certbotTimeoutMs?: number
  /** Reloads `reloadUnit`; default {@link systemctlReload}. */
  reload?: ReloadFunction
  /** How long to wait for the endpoint to serve the new certificate; default 15 s. */
  verifyTimeoutMs?: number
  /** Pause between two verification attempts; default 250 ms. */
  verifyIntervalMs?: number
  /**
   * After the first handshake that shows the new certificate, wait this long and check once more; default 1 s.
   * A reloading server runs old and new workers side by side for a moment (nginx: the new workers accept
   * connections before the old ones have closed their listening sockets), so one lucky handshake proves little.
   */
  verifySettleMs?: number
  /** Timeout of one TLS handshake; default 5 s. */
  tlsTimeoutMs?: number
  /** Reads the served certificate; default {@link fetchServedCertificate} (unit tests inject one). */
  fetchServed?: typeof fetchServedCertificate
}

export const DEFAULT_CONFIG_DIR = '/etc/letsencrypt'
/** certbot's constants.RENEWER_DEFAULTS['renew_before_expiry']. */
export const CERTBOT_DEFAULT_RENEW_BEFORE_EXPIRY = '30 days'
const DAY_MS = 86_400_000
/** Output lines of one certbot run kept in the evidence, per stream, and their length. */
export const MAX_OUTPUT_LINES = 12
export const MAX_OUTPUT_LINE_CHARS = 300

/** `systemctl reload <unit>`: systemd runs the unit's ExecReload= and waits for it (90 s here). */
export const systemctlReload: ReloadFunction = async (unit, ctx) => {
  const argv = ['systemctl', 'reload', unit]
  try {
    const r = await ctx.run('systemctl', argv.slice(1), { timeoutMs: 90_000 })
    const ok = r.exitCode === 0
    return { ok, argv, detail: ok ? 'reloaded' : describeFailure(r, 'systemctl reload') }
  } catch (err) {
    return { ok: false, argv, detail: (err as Error)?.message ?? String(err) }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------------------------------------------

/** What ANSAI reads from a certbot renewal configuration (`<configDir>/renewal/<name>.conf`, ConfigObj format). */
export interface RenewalConf {
  cert?: string
  fullchain?: string
  chain?: string
  privkey?: string
  archiveDir?: string
  /** The lineage's own threshold, e.g. `30 days`; undefined when unset (certbot's default then applies). */
  renewBeforeExpiry?: string
  /** `[renewalparams] autorenew`; certbot's default is on. */
  autorenew: boolean
  server?: string
  authenticator?: string
}

/** A ConfigObj value: quotes removed; an unquoted value ends at `#` (an inline comment). */
function confValue(raw: string): string {
  const v = raw.trim()
  const q = /^(["'])(.*)\1$/.exec(v)
  if (q) return q[2] as string
  const hash = v.indexOf('#')
  return (hash < 0 ? v : v.slice(0, hash)).trim()
}

/**
 * Parses a renewal configuration: top-level `key = value` lines (before the first section) and those of the
 * `[renewalparams]` section; comments (`# renew_before_expiry = 30 days`, as certbot writes the default) and
 * subsections (`[[webroot_map]]`) are ignored.
 */
export function parseRenewalConf(text: string): RenewalConf {
  const top = new Map<string, string>()
  const params = new Map<string, string>()
  let section: Map<string, string> | undefined = top
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim()
    if (line === '' || line.startsWith('#')) continue
    const head = /^(\[+)\s*([^\]]*?)\s*\]+$/.exec(line)
    if (head) {
      section = (head[1] as string).length === 1 && head[2] === 'renewalparams' ? params : undefined
      continue
    }
    const eq = line.indexOf('=')
    if (eq <= 0 || section === undefined) continue
    section.set(line.slice(0, eq).trim(), confValue(line.slice(eq + 1)))
  }
  const get = (m: Map<string, string>, k: string): string | undefined => {
    const v = m.get(k)
    return v === undefined || v === '' ? undefined : v
  }
  const autorenew = get(params, 'autorenew')
  return {
    cert: get(top, 'cert'),
    fullchain: get(top, 'fullchain'),
    chain: get(top, 'chain'),
    privkey: get(top, 'privkey'),
    archiveDir: get(top, 'archive_dir'),
    renewBeforeExpiry: get(top, 'renew_before_expiry'),
    // ConfigObj's as_bool: true/false, yes/no, on/off, 1/0.
    autorenew: autorenew === undefined || !/^(false|no|off|0)$/i.test(autorenew),
    server: get(params, 'server'),
    authenticator: get(params, 'authenticator'),
  }
}

/** One lineage as `certbot certificates` prints it. */
export interface CertbotListedCertificate {
  name: string
  domains: string[]
  certificatePath?: string
  privateKeyPath?: string
  expiry?: string
  serial?: string
}

/**
 * Parses `certbot certificates` (certbot 1.x and 2.x):
 *
 *   Found the following certs:
 *     Certificate Name: example.org
 *       Serial Number: 3116b9afb5df2cd8
 *       Domains: example.org www.example.org
 *       Expiry Date: 2026-12-03 01:26:45+00:00 (VALID: 9 days)
 *       Certificate Path: /etc/letsencrypt/live/example.org/fullchain.pem
 *       Private Key Path: /etc/letsencrypt/live/example.org/privkey.pem
 */
export function parseCertbotCertificates(output: string): CertbotListedCertificate[] {
  const out: CertbotListedCertificate[] = []
  let current: CertbotListedCertificate | undefined
  for (const rawLine of output.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z][A-Za-z ]*?):\s*(.*?)\s*$/.exec(rawLine)
    if (!m) continue
    const key = (m[1] as string).toLowerCase()
    const value = m[2] as string
    if (key === 'certificate name') {
      current = { name: value, domains: [] }
      out.push(current)
      continue
    }
    if (!current) continue
    if (key === 'domains') current.domains = value.split(/\s+/).filter((d) => d.length > 0)
    else if (key === 'certificate path') current.certificatePath = value
    else if (key === 'private key path') current.privateKeyPath = value
    else if (key === 'expiry date') current.expiry = value
    else if (key === 'serial number') current.serial = value
  }
  return out
}

/** A lineage's files, as declared and as resolved (the live symlinks point into the archive). */
export interface LineageFiles {
  name: string
  files: readonly string[]
  archiveDir?: string
}

const stripSlash = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, '') : p)

/**
 * The names of the lineages that own a certificate file, given the forms of its path (as written and resolved).
 * A path owned by two lineages (copies, odd configurations) returns both: the caller refuses to guess.
 */
export function matchLineages(pathForms: readonly string[], lineages: readonly LineageFiles[]): string[] {
  const forms = pathForms.map(stripSlash)
  const names = lineages
    .filter((l) => {
      if (l.files.some((f) => forms.includes(stripSlash(f)))) return true
      const archive = l.archiveDir === undefined ? undefined : `${stripSlash(l.archiveDir)}/`
      return archive !== undefined && forms.some((p) => p.startsWith(archive))
    })
    .map((l) => l.name)
  return [...new Set(names)]
}

const INTERVAL_UNITS: Record<string, 'ms' | 'month' | 'year'> = {}
const UNIT_MS: Record<string, number> = {}
for (const [names, ms] of [
  [['s', 'sec', 'secs', 'second', 'seconds'], 1_000],
  [['min', 'mins', 'minute', 'minutes'], 60_000],
  [['h', 'hr', 'hrs', 'hour', 'hours'], 3_600_000],
  [['d', 'day', 'days'], DAY_MS],
  [['w', 'wk', 'wks', 'week', 'weeks'], 7 * DAY_MS],
] as const) {
  for (const n of names) {
    INTERVAL_UNITS[n] = 'ms'
    UNIT_MS[n] = ms
  }
}
for (const n of ['mo', 'mon', 'month', 'months']) INTERVAL_UNITS[n] = 'month'
for (const n of ['y', 'yr', 'yrs', 'year', 'years']) INTERVAL_UNITS[n] = 'year'

/**
 * `from` plus a certbot interval (`renew_before_expiry`): `30 days`, `2 weeks`, `6 months 1 week`, `3 days 12
 * hours`, a bare number of days (`30`), as certbot's add_time_interval reads them (months and years by the
 * calendar). Undefined for anything else: the caller must not guess certbot's threshold.
 */
export function addRenewInterval(from: Date, interval: string): Date | undefined {
  const text = interval.trim().toLowerCase()
  if (/^[0-9]+$/.test(text)) return new Date(from.getTime() + Number(text) * DAY_MS)
  const token = /([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)[\s,]*(?:and\s+)?/y
  const out = new Date(from.getTime())
  let pos = 0
  let parts = 0
  while (pos < text.length) {
    token.lastIndex = pos
    const m = token.exec(text)
    if (!m) return undefined
    const n = Number(m[1])
    const unit = m[2] as string
    const kind = INTERVAL_UNITS[unit]
    if (kind === undefined) return undefined
    if (kind === 'ms') out.setTime(out.getTime() + n * (UNIT_MS[unit] as number))
    else if (!Number.isInteger(n)) return undefined
    else if (kind === 'month') out.setUTCMonth(out.getUTCMonth() + n)
    else out.setUTCFullYear(out.getUTCFullYear() + n)
    pos = token.lastIndex
    parts++
  }
  return parts > 0 ? out : undefined
}

export type RenewalPlan =
  | { action: 'renew'; force: boolean; reason: string }
  | { action: 'reload'; force: false; reason: string }

const days = (ms: number): string => `${(Math.round((ms / DAY_MS) * 10) / 10).toFixed(1)} days`

/** Decides what to do; see the module comment, step 2. Pure. */
export function planRenewal(input: {
  current: { fingerprint: string; notAfter: Date }
  /** What the endpoint serves now, when it could be read. */
  served?: { fingerprint: string; notAfter: Date } | undefined
  /** The lineage's `renew_before_expiry`; undefined: certbot's default (30 days). */
  renewBeforeExpiry?: string | undefined
  autorenew: boolean
  /** A reloadUnit is given. */
  canReload: boolean
  now: Date
}): RenewalPlan {
  const interval = input.renewBeforeExpiry ?? CERTBOT_DEFAULT_RENEW_BEFORE_EXPIRY
  const left = input.current.notAfter.getTime() - input.now.getTime()
  const leftText = left < 0 ? `expired ${days(-left)} ago` : `${days(left)} left`
  const dueAt = addRenewInterval(input.now, interval)
  const certbotDue = input.autorenew && dueAt !== undefined && input.current.notAfter.getTime() < dueAt.getTime()
  const served = input.served
  if (
    !certbotDue &&
    input.canReload &&
    served !== undefined &&
    served.fingerprint !== input.current.fingerprint &&
    served.notAfter.getTime() < input.current.notAfter.getTime()
  ) {
    return {
      action: 'reload',
      force: false,
      reason:
        `the certificate on disk (notAfter ${input.current.notAfter.toISOString()}, ${leftText}) is newer than the ` +
        `served one (notAfter ${served.notAfter.toISOString()}) and not due: reload only, no new certificate`,
    }
  }
  if (certbotDue) {
    return {
      action: 'renew',
      force: false,
      reason: `${leftText}, within certbot's renew_before_expiry (${interval}): certbot renews it by itself`,
    }
  }
  const why = !input.autorenew
    ? 'autorenew is off for this lineage'
    : dueAt === undefined
      ? `certbot's renew_before_expiry "${interval}" cannot be read here`
      : `${leftText}, outside certbot's renew_before_expiry (${interval}): certbot would skip it as not yet due`
  return { action: 'renew', force: true, reason: `${why}, so --force-renewal` }
}

/** argv (after the program name) of one `certbot renew`. */
export function certbotRenewArgs(input: {
  certName: string
  force: boolean
  server?: string | undefined
  dirs?: CertbotDirs | undefined
}): string[] {
  const args = ['renew', '--cert-name', input.certName, '--non-interactive', '--no-random-sleep-on-renew']
  if (input.force) args.push('--force-renewal')
  if (input.server !== undefined) args.push('--server', input.server)
  args.push(...certbotDirArgs(input.dirs))
  return args
}

export function certbotDirArgs(dirs: CertbotDirs | undefined): string[] {
  const args: string[] = []
  if (dirs?.configDir !== undefined) args.push('--config-dir', dirs.configDir)
  if (dirs?.workDir !== undefined) args.push('--work-dir', dirs.workDir)
  if (dirs?.logsDir !== undefined) args.push('--logs-dir', dirs.logsDir)
  return args
}

/** certbot's meaningful output lines: no blank lines, no `- - - -` rules; the last `max`, each shortened. */
export function outputTail(text: string, max = MAX_OUTPUT_LINES): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '' && !/^[\s-]+$/.test(l))
    .slice(-max)
    .map((l) => shortenMiddle(l, MAX_OUTPUT_LINE_CHARS))
}

/** The line that says what went wrong in a failed certbot run, for the result's `error`. */
export function certbotErrorLine(r: Pick<RunResult, 'stdout' | 'stderr' | 'exitCode' | 'signal' | 'timedOut'>): string {
  const status = r.timedOut ? 'a timeout' : r.exitCode === null ? `signal ${r.signal}` : `exit ${r.exitCode}`
  const lines = [...outputTail(r.stderr, 1000), ...outputTail(r.stdout, 1000)].map((l) => l.trim())
  let at = lines.findIndex(
    (l) => /error|failed|refused|denied|unauthorized|another instance/i.test(l) && !/^Ask for help/.test(l),
  )
  if (at < 0) at = lines.length - 1
  let hit = lines[at]
  // `An unexpected error occurred:` says what on the next line.
  if (hit?.endsWith(':') && lines[at + 1] !== undefined) hit = `${hit} ${lines[at + 1]}`
  return shortenMiddle(
    hit === undefined ? `certbot ended with ${status}` : `certbot ended with ${status}: ${hit}`,
    1000,
  )
}

function describeFailure(r: RunResult, what: string): string {
  if (r.timedOut) return `${what} timed out`
  const tail = [...outputTail(r.stderr, 3), ...outputTail(r.stdout, 3)].join(' | ')
  const status = r.exitCode === null ? `signal ${r.signal}` : `exit ${r.exitCode}`
  return shortenMiddle(`${what} ended with ${status}${tail ? `: ${tail}` : ''}`, 600)
}

/** The SNI name to verify with: the endpoint's host when it is a name, else the certificate's first DNS name. */
export function chooseServerName(endpointHost: string, sans: readonly string[]): string | undefined {
  if (isIP(endpointHost) === 0) return endpointHost
  return sans.find((s) => !s.includes(':') && !s.startsWith('*') && isIP(s) === 0 && s.length > 0)
}

// ---------------------------------------------------------------------------------------------------------------
// The executor
// ---------------------------------------------------------------------------------------------------------------

interface CertFacts {
  fingerprint: string
  serial: string
  notBefore: string
  notAfter: string
  daysLeft: number
  sans: string[]
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/

function describeX509(cert: X509Certificate, now: Date): CertFacts {
  const notAfter = cert.validToDate
  return {
    fingerprint: cert.fingerprint256.toUpperCase(),
    serial: cert.serialNumber.toUpperCase(),
    notBefore: cert.validFromDate.toISOString(),
    notAfter: notAfter.toISOString(),
    daysLeft: Math.round(((notAfter.getTime() - now.getTime()) / DAY_MS) * 100) / 100,
    sans: splitSubjectAltName(cert.subjectAltName),
  }
}

/** The first certificate of a PEM file (the leaf of cert.pem or fullchain.pem). */
function readLeaf(path: string, now: Date): { ok: true; facts: CertFacts } | { ok: false; error: string } {
  try {
    const pem = readFileSync(path, 'utf8')
    const block = PEM_CERTIFICATE.exec(pem)
    if (!block) return { ok: false, error: `${path}: no PEM certificate` }
    return { ok: true, facts: describeX509(new X509Certificate(block[0]), now) }
  } catch (err) {
    return { ok: false, error: `${path}: ${errText(err)}` }
  }
}

const errText = (err: unknown): string => {
  const e = err as NodeJS.ErrnoException | undefined
  return e?.code ? `${e.code}` : ((err as Error)?.message ?? String(err))
}

const publicFacts = (f: CertFacts) => ({
  fingerprint: f.fingerprint,
  serial: f.serial,
  notBefore: f.notBefore,
  notAfter: f.notAfter,
  daysLeft: f.daysLeft,
})

const realpathOr = (p: string): string | undefined => {
  try {
    return realpathSync(p)
  } catch {
    return undefined
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Lineage {
  name: string
  /** Absent when the lineage is known from `certbot certificates` only. */
  confPath?: string
  conf: RenewalConf
  /** The file whose fingerprint tells old from new: the conf's `cert`, else `live/<name>/cert.pem`. */
  certFile: string
  resolvedFrom?: 'certName' | 'renewal-conf' | 'certbot-certificates'
}

export function createCertificateRenewExecutor(
  options: CertificateRenewOptions = {},
): RemediationExecutor<CertificateRenewParams> {
  const certbot = options.certbot ?? 'certbot'
  const dirs = options.certbotDirs
  const configDir = dirs?.configDir ?? DEFAULT_CONFIG_DIR
  const certbotTimeoutMs = options.certbotTimeoutMs ?? 300_000
  const reload = options.reload ?? systemctlReload
  const verifyTimeoutMs = options.verifyTimeoutMs ?? 15_000
  const verifyIntervalMs = options.verifyIntervalMs ?? 250
  const verifySettleMs = options.verifySettleMs ?? 1_000
  const tlsTimeoutMs = options.tlsTimeoutMs ?? 5_000
  const fetchServed = options.fetchServed ?? fetchServedCertificate

  return {
    id: 'certificate-renew',
    async execute(params, ctx) {
      const started = ctx.now()
      const audit: AuditEntry[] = []
      const evidence: Record<string, unknown> = {}
      try {
        return await renew(params, ctx, started, audit, evidence)
      } catch (err) {
        // Not an expected failure (those are results already): still one result, never a throw.
        return finish(ctx, started, audit, {
          status: 'failed',
          summary: 'certificate-renew stopped by an unexpected error',
          evidence,
          error: (err as Error)?.message ?? String(err),
        })
      }
    },
  }

  async function renew(
    params: CertificateRenewParams,
    ctx: ExecutorContext,
    started: Date,
    audit: AuditEntry[],
    evidence: Record<string, unknown>,
  ) {
    const items: string[] = []
    const fail = (summary: string, error: string) =>
      finish(ctx, started, audit, { status: 'failed', summary, evidence, error, items })

    // 1. The lineage.
    evidence.configDir = configDir
    const found =
      params.certName !== undefined
        ? await lineageByName(params.certName, ctx)
        : await lineageByPath(params.certPath as string, ctx)
    if (!found.ok) {
      evidence.lineage = { error: found.error }
      return fail(`no certbot certificate to renew: ${found.error}`, found.error)
    }
    const lineage = found.lineage
    items.push(lineage.name)
    evidence.certName = lineage.name
    evidence.lineage = {
      renewalConf: lineage.confPath,
      cert: lineage.certFile,
      resolvedFrom: lineage.resolvedFrom,
      renewBeforeExpiry: lineage.conf.renewBeforeExpiry ?? `${CERTBOT_DEFAULT_RENEW_BEFORE_EXPIRY} (certbot's default)`,
      autorenew: lineage.conf.autorenew,
      server: lineage.conf.server,
      authenticator: lineage.conf.authenticator,
    }
    const before = readLeaf(lineage.certFile, started)
    if (!before.ok) return fail(`cannot read the certificate of ${lineage.name}`, before.error)
    evidence.before = publicFacts(before.facts)

    // The endpoint, and what it serves now.
    let endpoint: { host: string; port: number; servername: string | undefined } | undefined
    if (params.verifyEndpoint !== undefined) {
      const hp = splitHostPort(params.verifyEndpoint)
      if (!hp) return fail(`bad verifyEndpoint ${params.verifyEndpoint}`, `bad verifyEndpoint ${params.verifyEndpoint}`)
      endpoint = { ...hp, servername: chooseServerName(hp.host, before.facts.sans) }
      items.push(params.verifyEndpoint)
    }
    if (params.reloadUnit !== undefined) items.push(params.reloadUnit)
    const verify: Record<string, unknown> = {}
    let servedBefore: { fingerprint: string; notAfter: Date } | undefined
    if (endpoint) {
      verify.endpoint = params.verifyEndpoint
      verify.servername = endpoint.servername ?? null
      const s = await fetchOnce(endpoint)
      verify.servedBefore = servedEvidence(s, started)
      if (s.ok)
        servedBefore = { fingerprint: s.certificate.fingerprint256.toUpperCase(), notAfter: s.certificate.validToDate }
      evidence.verify = verify
    }

    // 2. The plan.
    const plan = planRenewal({
      current: { fingerprint: before.facts.fingerprint, notAfter: new Date(before.facts.notAfter) },
      served: servedBefore,
      renewBeforeExpiry: lineage.conf.renewBeforeExpiry,
      autorenew: lineage.conf.autorenew,
      canReload: params.reloadUnit !== undefined,
      now: started,
    })
    evidence.plan = plan
    const renewArgs = (force: boolean) =>
      certbotRenewArgs({ certName: lineage.name, force, server: params.acmeServer, dirs })

    if (ctx.dryRun) {
      const steps: string[] = []
      if (plan.action === 'renew') steps.push(`${certbot} ${renewArgs(plan.force).join(' ')}`)
      if (params.reloadUnit !== undefined) steps.push(`reload ${params.reloadUnit}`)
      if (endpoint) steps.push(`verify ${params.verifyEndpoint} serves the new certificate`)
      evidence.wouldRun = steps
      audit.push({ action: 'would-renew', target: lineage.name, detail: plan.reason })
      return finish(ctx, started, audit, {
        status: 'dry-run',
        summary: shortenMiddle(
          `dry-run: ${lineage.name} (notAfter ${before.facts.notAfter}, ${before.facts.daysLeft} days left): would ${steps.join(', then ')}; ${plan.reason}`,
          2000,
        ),
        evidence,
        items,
      })
    }

    // 3. Renew.
    let after = before.facts
    if (plan.action === 'renew') {
      const runs: Record<string, unknown>[] = []
      evidence.certbot = runs
      let outcome = await runCertbot(renewArgs(plan.force), ctx, runs, audit, lineage.name)
      if (!outcome.ok) {
        return fail(
          `certbot could not renew ${lineage.name}: ${outcome.error}; nothing reloaded, the current certificate stays in place`,
          outcome.error,
        )
      }
      let now = readLeaf(lineage.certFile, ctx.now())
      if (now.ok && now.facts.fingerprint === before.facts.fingerprint && !plan.force) {
        ctx.log(`certificate-renew: certbot renewed nothing for ${lineage.name}; again with --force-renewal`)
        evidence.plan = { ...plan, force: true, reason: `${plan.reason}; certbot renewed nothing, so --force-renewal` }
        outcome = await runCertbot(renewArgs(true), ctx, runs, audit, lineage.name)
        if (!outcome.ok) {
          return fail(`certbot could not renew ${lineage.name}: ${outcome.error}; nothing reloaded`, outcome.error)
        }
        now = readLeaf(lineage.certFile, ctx.now())
      }
      if (!now.ok) return fail(`cannot read ${lineage.name}'s certificate after renewal`, now.error)
      evidence.after = publicFacts(now.facts)
      if (now.facts.fingerprint === before.facts.fingerprint) {
        const error = `certbot exited 0 but ${lineage.certFile} did not change`
        return fail(`${lineage.name} was not renewed: ${error}; nothing reloaded`, error)
      }
      after = now.facts
      evidence.renewed = true
    } else {
      evidence.renewed = false
    }

    // 4. Reload.
    if (params.reloadUnit !== undefined) {
      ctx.log(`certificate-renew: reloading ${params.reloadUnit}`)
      const t0 = Date.now()
      let r: ReloadOutcome
      try {
        r = await reload(params.reloadUnit, ctx)
      } catch (err) {
        r = { ok: false, detail: (err as Error)?.message ?? String(err) }
      }
      evidence.reload = {
        unit: params.reloadUnit,
        ok: r.ok,
        detail: shortenMiddle(r.detail, 600),
        argv: r.argv,
        durationMs: Date.now() - t0,
      }
      audit.push({ action: 'reload', target: params.reloadUnit, detail: r.ok ? 'reloaded' : r.detail })
      if (!r.ok) {
        const error = `reload of ${params.reloadUnit} failed: ${r.detail}`
        return fail(`${describeChange(lineage.name, before.facts, after, plan)}, but ${error}`, error)
      }
    }

    // 5. Verify.
    if (endpoint) {
      const v = await verifyServed(endpoint, after.fingerprint, ctx)
      Object.assign(verify, v.evidence)
      audit.push({
        action: 'verify',
        target: params.verifyEndpoint as string,
        detail: v.ok ? 'serves the new certificate' : v.error,
      })
      if (!v.ok) {
        return fail(`${describeChange(lineage.name, before.facts, after, plan)}, but ${v.error}`, v.error)
      }
    }

    const tail = [
      params.reloadUnit !== undefined ? `reloaded ${params.reloadUnit}` : undefined,
      endpoint ? `${params.verifyEndpoint} serves it` : undefined,
    ].filter((s) => s !== undefined)
    return finish(ctx, started, audit, {
      status: 'succeeded',
      summary: `${describeChange(lineage.name, before.facts, after, plan)}${tail.length ? `; ${tail.join('; ')}` : ''}`,
      evidence,
      items,
    })
  }

  function describeChange(name: string, before: CertFacts, after: CertFacts, plan: RenewalPlan): string {
    if (plan.action === 'reload') return `${name} on disk (notAfter ${after.notAfter}) was newer than the served one`
    return `renewed ${name}${plan.force ? ' (--force-renewal)' : ''}: notAfter ${before.notAfter} → ${after.notAfter}`
  }

  async function runCertbot(
    args: string[],
    ctx: ExecutorContext,
    runs: Record<string, unknown>[],
    audit: AuditEntry[],
    name: string,
  ): Promise<{ ok: true } | { ok: false; error: string }> {
    ctx.log(`certificate-renew: ${certbot} ${args.join(' ')}`)
    const run: Record<string, unknown> = { argv: [certbot, ...args] }
    runs.push(run)
    audit.push({ action: 'certbot-renew', target: name, detail: args.join(' ') })
    let r: RunResult
    try {
      r = await ctx.run(certbot, args, {
        timeoutMs: certbotTimeoutMs,
        maxOutputBytes: 256 * 1024,
        ...(options.certbotEnv === undefined ? {} : { env: options.certbotEnv }),
      })
    } catch (err) {
      const error = `cannot run ${certbot}: ${(err as Error)?.message ?? String(err)}`
      run.error = error
      return { ok: false, error }
    }
    Object.assign(run, {
      exitCode: r.exitCode,
      signal: r.signal ?? undefined,
      timedOut: r.timedOut || undefined,
      durationMs: Math.round(r.durationMs),
      stdout: outputTail(r.stdout),
      stderr: outputTail(r.stderr),
    })
    if (r.exitCode === 0 && !r.timedOut) return { ok: true }
    return { ok: false, error: certbotErrorLine(r) }
  }

  function fetchOnce(
    endpoint: { host: string; port: number; servername: string | undefined },
    timeoutMs = tlsTimeoutMs,
  ) {
    return fetchServed({
      host: endpoint.host,
      port: endpoint.port,
      ...(endpoint.servername === undefined ? {} : { servername: endpoint.servername }),
      timeoutMs,
    })
  }

  async function verifyServed(
    endpoint: { host: string; port: number; servername: string | undefined },
    fingerprint: string,
    ctx: ExecutorContext,
  ): Promise<{ ok: boolean; error: string; evidence: Record<string, unknown> }> {
    const t0 = Date.now()
    const deadline = t0 + verifyTimeoutMs
    let attempts = 0
    let matchedOnce = false
    let last: ServedCertificate = { ok: false, error: 'not tried', servername: endpoint.servername }
    for (;;) {
      attempts++
      last = await fetchOnce(endpoint, Math.max(100, Math.min(tlsTimeoutMs, deadline - Date.now())))
      const matched = last.ok && last.certificate.fingerprint256.toUpperCase() === fingerprint
      if (matched && matchedOnce) {
        const evidence = { served: servedEvidence(last, ctx.now()), matched: true, attempts, waitedMs: Date.now() - t0 }
        return { ok: true, error: '', evidence }
      }
      matchedOnce = matched
      const pause = matched ? verifySettleMs : verifyIntervalMs
      if (Date.now() + pause >= deadline) break
      await sleep(pause)
    }
    const waited = Date.now() - t0
    const where = `${endpoint.host}:${endpoint.port}`
    const error = matchedOnce
      ? `${where} served the new certificate only at the last attempt, after ${waited} ms (not confirmed)`
      : last.ok
        ? `after ${waited} ms ${where} still serves ${last.certificate.fingerprint256.toUpperCase()} (notAfter ${last.certificate.validToDate.toISOString()}), not the new certificate`
        : `after ${waited} ms ${where} could not be read: ${last.error}`
    const evidence = { served: servedEvidence(last, ctx.now()), matched: false, attempts, waitedMs: waited }
    return { ok: false, error, evidence }
  }

  type Found = { ok: true; lineage: Lineage } | { ok: false; error: string }

  /** The lineage from its renewal configuration in `configDir`. */
  function lineageFromConf(name: string, resolvedFrom: Lineage['resolvedFrom']): Found {
    const confPath = join(configDir, 'renewal', `${name}.conf`)
    let text: string
    try {
      text = readFileSync(confPath, 'utf8')
    } catch (err) {
      return { ok: false, error: `no renewal configuration ${confPath} (${errText(err)})` }
    }
    const conf = parseRenewalConf(text)
    const certFile = conf.cert ?? join(configDir, 'live', name, 'cert.pem')
    return { ok: true, lineage: { name, confPath, conf, certFile, resolvedFrom } }
  }

  /**
   * `certbot certificates [--cert-name <name>]`: certbot's own view, which also honours a config directory set in
   * its cli.ini that ANSAI was not told about. Used only when the renewal configurations in `configDir` do not
   * give an answer.
   */
  async function listCertbot(
    ctx: ExecutorContext,
    certName?: string,
  ): Promise<{ ok: true; listed: CertbotListedCertificate[] } | { ok: false; error: string }> {
    const args = ['certificates', ...(certName === undefined ? [] : ['--cert-name', certName]), ...certbotDirArgs(dirs)]
    let r: RunResult
    try {
      r = await ctx.run(certbot, args, {
        timeoutMs: 60_000,
        maxOutputBytes: 1024 * 1024,
        ...(options.certbotEnv === undefined ? {} : { env: options.certbotEnv }),
      })
    } catch (err) {
      return { ok: false, error: `cannot run ${certbot} certificates: ${(err as Error)?.message ?? String(err)}` }
    }
    if (r.exitCode !== 0) return { ok: false, error: `${certbot} certificates: ${certbotErrorLine(r)}` }
    return { ok: true, listed: parseCertbotCertificates(r.stdout) }
  }

  /** A lineage known only from `certbot certificates`: its conf is read when it can be, else certbot's defaults. */
  function lineageFromListing(l: CertbotListedCertificate): Found {
    const fromConf = lineageFromConf(l.name, 'certbot-certificates')
    if (fromConf.ok) return fromConf
    if (l.certificatePath === undefined) return { ok: false, error: `certbot lists ${l.name} without a path` }
    return {
      ok: true,
      lineage: {
        name: l.name,
        conf: parseRenewalConf(''),
        certFile: l.certificatePath,
        resolvedFrom: 'certbot-certificates',
      },
    }
  }

  async function lineageByName(name: string, ctx: ExecutorContext): Promise<Found> {
    const fromConf = lineageFromConf(name, 'certName')
    if (fromConf.ok) return fromConf
    const list = await listCertbot(ctx, name)
    const hit = list.ok ? list.listed.find((l) => l.name === name) : undefined
    if (hit) return lineageFromListing(hit)
    const why = list.ok ? `${certbot} certificates does not list it either` : list.error
    return { ok: false, error: `${fromConf.error}; ${why}` }
  }

  async function lineageByPath(certPath: string, ctx: ExecutorContext): Promise<Found> {
    const forms = [certPath, realpathOr(certPath)].filter((p): p is string => p !== undefined)
    const resolved = (paths: (string | undefined)[]): string[] => {
      const declared = paths.filter((p): p is string => p !== undefined)
      return [...declared, ...declared.map(realpathOr).filter((p): p is string => p !== undefined)]
    }
    const renewalDir = join(configDir, 'renewal')
    let why: string
    try {
      const candidates: LineageFiles[] = []
      for (const entry of readdirSync(renewalDir)) {
        if (!entry.endsWith('.conf')) continue
        let conf: RenewalConf
        try {
          conf = parseRenewalConf(readFileSync(join(renewalDir, entry), 'utf8'))
        } catch {
          continue
        }
        candidates.push({
          name: entry.slice(0, -'.conf'.length),
          files: resolved([conf.cert, conf.fullchain, conf.chain, conf.privkey]),
          ...(conf.archiveDir === undefined ? {} : { archiveDir: conf.archiveDir }),
        })
      }
      const names = matchLineages(forms, candidates)
      if (names.length > 1) return ambiguous(certPath, names)
      if (names.length === 1) return lineageFromConf(names[0] as string, 'renewal-conf')
      why = `no renewal configuration in ${renewalDir} names it`
    } catch (err) {
      why = `cannot read ${renewalDir} (${errText(err)})`
    }
    ctx.log(`certificate-renew: ${why}; asking ${certbot} certificates`)
    const list = await listCertbot(ctx)
    if (!list.ok) return { ok: false, error: `${why}; ${list.error}` }
    const names = matchLineages(
      forms,
      list.listed.map((l) => ({ name: l.name, files: resolved([l.certificatePath, l.privateKeyPath]) })),
    )
    if (names.length > 1) return ambiguous(certPath, names)
    const hit = list.listed.find((l) => l.name === names[0])
    if (!hit)
      return {
        ok: false,
        error: `no certbot certificate owns ${certPath} (${why}; nor does ${certbot} certificates list it): name it with certName`,
      }
    return lineageFromListing(hit)
  }
}

const ambiguous = (certPath: string, names: string[]) => ({
  ok: false as const,
  error: `${certPath} belongs to several certbot certificates (${names.join(', ')}): name one with certName`,
})

function servedEvidence(s: ServedCertificate, now: Date): Record<string, unknown> {
  if (!s.ok) return { error: s.error }
  const f = describeX509(s.certificate, now)
  return { fingerprint: f.fingerprint, serial: f.serial, notAfter: f.notAfter, protocol: s.protocol }
}

function finish(
  ctx: ExecutorContext,
  started: Date,
  audit: AuditEntry[],
  r: {
    status: RemediationResultV1['status']
    summary: string
    evidence: Record<string, unknown>
    error?: string
    items?: string[]
  },
): { result: RemediationResultV1; audit: AuditEntry[] } {
  const finished = ctx.now()
  const result: RemediationResultV1 = {
    schema: 'ansai.remediation-result.v1',
    key: ctx.key,
    remediation: 'certificate-renew',
    status: r.status,
    dryRun: ctx.dryRun,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: Math.max(0, finished.getTime() - started.getTime()),
    summary: shortenMiddle(r.summary, 2000),
    evidence: r.evidence,
  }
  if (r.items !== undefined) {
    result.items = r.items
    result.itemsTotal = r.items.length
  }
  if (r.error !== undefined) result.error = r.error
  return { result: boundResult(result), audit }
}

/** The executor with certbot's default directories and `systemctl reload`. */
export const certificateRenewExecutor: RemediationExecutor<CertificateRenewParams> = createCertificateRenewExecutor()
