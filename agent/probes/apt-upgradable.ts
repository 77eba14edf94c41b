import type { ObservationOf } from '../../shared/contracts/index.ts'
import { failed, type ParseResult, parsed, problem, quote, splitLines } from './parse-result.ts'

const PROBE = 'packages'

export type PackagesObservation = ObservationOf<'packages'>

export interface PendingPackage {
  name: string
  /** undefined for a package the upgrade newly installs (a new kernel ABI, a new dependency). */
  from: string | undefined
  to: string
  /** The archive origins, e.g. `Debian-Security:12/stable-security`. */
  origins: string[]
  arch: string
  security: boolean
}

export interface PackagesOptions {
  /** From `/var/run/reboot-required` (Debian, Ubuntu) or `needs-restarting -r` (dnf): the OS adapter knows. */
  rebootRequired?: boolean
}

/** `Inst libssl3 [3.0.11-1~deb12u2] (3.0.13-1~deb12u1 Debian-Security:12/stable-security [amd64]) []` */
const INST = /^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+)(?: (.*?))? \[([^\]\s]+)\]\)(?: .*)?$/
const APT_SUMMARY = /^(\d+) upgraded, (\d+) newly installed, (\d+) to remove and (\d+) not upgraded\.\s*$/

const isSecurityOrigin = (origin: string): boolean => /-security\b/i.test(origin)

/**
 * Output of `apt-get -s -o Debug::NoLocking=1 dist-upgrade` (run with `LC_ALL=C`: the summary line is what proves
 * the text is apt's) → the packages the upgrade would install. Every `Inst` line counts as pending, newly installed
 * packages included; a package is a security update when one of its origins is a `-security` archive.
 */
export function parseAptSimulation(text: string): ParseResult<PendingPackage[]> {
  if (typeof text !== 'string') return failed(PROBE, 'apt-get output is not text')
  const lines = splitLines(text)
  const error = lines.find((l) => l.startsWith('E: '))
  if (error !== undefined) return failed(PROBE, `apt-get failed: ${error.slice(3).trim()}`)
  if (!lines.some((l) => APT_SUMMARY.test(l))) {
    return failed(PROBE, 'no "N upgraded, N newly installed, ..." summary line in apt-get output (LC_ALL=C?)')
  }
  const byName = new Map<string, PendingPackage>()
  const problems = []
  for (const line of lines) {
    if (!line.startsWith('Inst ')) continue
    const m = INST.exec(line)
    if (!m) {
      problems.push(problem(PROBE, `apt Inst line not understood: ${quote(line)}`))
      continue
    }
    const [, name, from, to, originText, arch] = m
    const origins = (originText ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter((o) => o.length > 0)
    byName.set(`${name}:${arch}`, {
      name: name!,
      from,
      to: to!,
      origins,
      arch: arch!,
      security: origins.some(isSecurityOrigin),
    })
  }
  return parsed([...byName.values()], problems)
}

export function aptToObservation(packages: readonly PendingPackage[], opts: PackagesOptions = {}): PackagesObservation {
  const obs: PackagesObservation = {
    kind: 'packages',
    manager: 'apt',
    pending: packages.length,
    security: packages.filter((p) => p.security).length,
  }
  if (opts.rebootRequired !== undefined) obs.rebootRequired = opts.rebootRequired
  return obs
}

/** apt-get simulation text → PackagesObservation. */
export function parseAptUpgradable(text: string, opts: PackagesOptions = {}): ParseResult<PackagesObservation> {
  const result = parseAptSimulation(text)
  if (!result.ok) return result
  return parsed(aptToObservation(result.value, opts), result.problems)
}

/** `name.arch` as dnf prints it: `kernel-core.x86_64`, `python3.11-libs.noarch`. */
const NAME_ARCH = /^[A-Za-z0-9_+.-]+\.[A-Za-z0-9_]+$/
/** `[epoch:]version-release`. */
const EVR = /^(?:\d+:)?[A-Za-z0-9._+~^]+-[A-Za-z0-9._+~^]+$/

/**
 * `dnf check-update` / `yum check-update` output → `name.arch` of each available update. The update list is the
 * three-column block (`name.arch  [epoch:]version-release  repo`); a name too long for its column is printed alone
 * with the rest on the next, indented, line. The `Obsoleting Packages` section and everything else is ignored.
 * An `Error:` line fails the parse.
 */
export function parseDnfCheckUpdate(text: string): ParseResult<string[]> {
  if (typeof text !== 'string') return failed(PROBE, 'dnf output is not text')
  const lines = splitLines(text)
  const error = lines.find((l) => /^Error:/.test(l))
  if (error !== undefined) return failed(PROBE, `dnf failed: ${error.slice(6).trim()}`)
  const names = new Set<string>()
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (/^Obsoleting Packages/.test(line)) break
    if (/^\s/.test(line)) continue
    let tokens = line.trim().split(/\s+/)
    if (tokens.length === 1 && NAME_ARCH.test(tokens[0]!) && /^\s+\S+\s+\S+\s*$/.test(lines[i + 1] ?? '')) {
      tokens = [tokens[0]!, ...lines[i + 1]!.trim().split(/\s+/)]
      i++
    }
    if (tokens.length === 3 && NAME_ARCH.test(tokens[0]!) && EVR.test(tokens[1]!)) names.add(tokens[0]!)
  }
  return parsed([...names])
}

/** `openssl-libs-1:3.0.7-25.el9_3.x86_64` → `openssl-libs.x86_64`. */
export function nevraToNameArch(nevra: string): string | undefined {
  const m = /^(.+)-(?:\d+:)?[^-]+-[^-]+\.([A-Za-z0-9_]+)$/.exec(nevra)
  return m ? `${m[1]}.${m[2]}` : undefined
}

/**
 * `dnf updateinfo list --security` → `name.arch` of the packages with a security advisory. dnf 4 prints
 * `RHSA-2024:0001 Important/Sec. openssl-libs-1:3.0.7-25.el9_3.x86_64`; dnf 5 prints
 * `FEDORA-2024-abc security Moderate curl-8.2.1-4.fc39.x86_64 2024-01-01 01:02:03`. A package named by several
 * advisories counts once.
 */
export function parseDnfSecurityList(text: string): ParseResult<string[]> {
  if (typeof text !== 'string') return failed(PROBE, 'dnf updateinfo output is not text')
  const lines = splitLines(text)
  const error = lines.find((l) => /^Error:/.test(l))
  if (error !== undefined) return failed(PROBE, `dnf updateinfo failed: ${error.slice(6).trim()}`)
  const names = new Set<string>()
  for (const line of lines) {
    const t = line.trim().split(/\s+/)
    if (t.length < 3) continue
    let nevra: string | undefined
    if (/(^|\/)Sec\.$/.test(t[1]!)) nevra = t[2]
    else if (t[1] === 'security') nevra = t.length >= 4 && nevraToNameArch(t[3]!) ? t[3] : t[2]
    const nameArch = nevra === undefined ? undefined : nevraToNameArch(nevra)
    if (nameArch) names.add(nameArch)
  }
  return parsed([...names])
}

/**
 * `dnf check-update` text (+ `dnf updateinfo list --security` text when available) → PackagesObservation.
 * `security` counts only packages that are also pending (security updates are a subset of the updates).
 */
export function parseDnfUpdates(
  checkUpdate: string,
  securityList?: string,
  opts: PackagesOptions & { manager?: 'dnf' | 'yum' } = {},
): ParseResult<PackagesObservation> {
  const pending = parseDnfCheckUpdate(checkUpdate)
  if (!pending.ok) return pending
  const problems = [...pending.problems]
  let security = 0
  if (securityList !== undefined) {
    const sec = parseDnfSecurityList(securityList)
    if (sec.ok) {
      const pendingSet = new Set(pending.value)
      security = sec.value.filter((n) => pendingSet.has(n)).length
    } else {
      problems.push(problem(PROBE, `security count unknown: ${sec.error.reason}`))
    }
  }
  const obs: PackagesObservation = {
    kind: 'packages',
    manager: opts.manager ?? 'dnf',
    pending: pending.value.length,
    security,
  }
  if (opts.rebootRequired !== undefined) obs.rebootRequired = opts.rebootRequired
  return parsed(obs, problems)
}
