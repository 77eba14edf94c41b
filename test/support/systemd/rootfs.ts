/**
 * A minimal Debian bookworm root filesystem with systemd, built once by mmdebstrap and cached OUTSIDE the repo, for
 * the tests that boot a real systemd (machine.ts).
 *
 * Cache: `$ANSAI_CACHE_DIR` (default `$XDG_CACHE_HOME/ansai`, else `~/.cache/ansai`) holds
 * `rootfs-bookworm-<hash>`, where the hash covers the package list and the customisation, so a change to either
 * builds a new tree. The tree is built in a temporary directory beside it and renamed into place (atomic); a lock
 * file keeps parallel test files from building it twice. The tree is never changed after that: machines boot on an
 * overlay of it.
 *
 * Mirror: `$ANSAI_DEBIAN_MIRROR`, else the first Debian archive that apt on this host uses, else deb.debian.org.
 */
import { createHash } from 'node:crypto'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { findCommand, log, processExists, runHost, sleep } from './host.ts'

export const ROOTFS_SUITE = 'bookworm'

/** What the rootfs holds beyond Debian's minbase. */
export const ROOTFS_PACKAGES: readonly string[] = [
  'systemd',
  'systemd-sysv',
  'dbus', // systemctl itself talks to PID 1 on its private socket; logind (and so a clean "running") needs D-Bus
  'procps',
  'coreutils',
  'util-linux',
  'monit', // the benchmark compares ANSAI with Monit on the same unit
]

/**
 * Run by mmdebstrap on the host with the new tree as $1 (written here, not by a caller). Masks what must not run in
 * a test machine: gettys (they would open terminals), first-boot prompts, units that would touch the host's kernel
 * (sysctl, modules, binfmt, pstore, audit, kernel debug mounts: /proc/sys and /sys are read-only in the machine
 * anyway), and the periodic maintenance timers that would add noise to benchmarks. Monit is installed but not
 * started: the benchmark starts it.
 */
const MASKED_UNITS = [
  'getty@.service',
  'serial-getty@.service',
  'console-getty.service',
  'container-getty@.service',
  'systemd-firstboot.service',
  'systemd-sysctl.service',
  'systemd-modules-load.service',
  'modprobe@.service',
  'kmod-static-nodes.service',
  'systemd-binfmt.service',
  'proc-sys-fs-binfmt_misc.automount',
  'systemd-pstore.service',
  'systemd-remount-fs.service',
  'systemd-random-seed.service',
  'systemd-journald-audit.socket',
  'sys-kernel-debug.mount',
  'sys-kernel-tracing.mount',
  'sys-kernel-config.mount',
  'sys-fs-fuse-connections.mount',
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'dpkg-db-backup.timer',
  'e2scrub_all.timer',
  'e2scrub_reap.service',
  'fstrim.timer',
]

const CUSTOMIZE_HOOK = [
  'set -e',
  `chroot "$1" systemctl mask --quiet ${MASKED_UNITS.join(' ')}`,
  'chroot "$1" systemctl disable --quiet monit.service',
  'rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"',
].join('\n')

/** Bump when the way the tree is built changes in a way the package list and hook do not show. */
const RECIPE_VERSION = 1

const recipeHash = (): string =>
  createHash('sha256')
    .update(
      JSON.stringify({
        suite: ROOTFS_SUITE,
        variant: 'minbase',
        packages: ROOTFS_PACKAGES,
        hook: CUSTOMIZE_HOOK,
        v: RECIPE_VERSION,
      }),
    )
    .digest('hex')
    .slice(0, 12)

/** Where cached artefacts of the tests live (outside the repo). */
export const cacheDir = (): string => {
  const explicit = process.env.ANSAI_CACHE_DIR
  if (explicit) return explicit
  const xdg = process.env.XDG_CACHE_HOME
  return join(xdg?.startsWith('/') ? xdg : join(homedir(), '.cache'), 'ansai')
}

/** The path of the cached rootfs of the current recipe (it may not exist yet). */
export const rootfsPath = (): string => join(cacheDir(), `rootfs-${ROOTFS_SUITE}-${recipeHash()}`)

const FALLBACK_MIRROR = 'http://deb.debian.org/debian'

/** Every `deb` URI of apt's sources on this host, with its suites, in apt's order. */
const aptSources = (): { uri: string; suites: string[] }[] => {
  const found: { uri: string; suites: string[] }[] = []
  const read = (path: string): string => {
    try {
      return readFileSync(path, 'utf8')
    } catch {
      return ''
    }
  }
  // one-line format: deb [options] uri suite [components]
  for (const line of read('/etc/apt/sources.list').split('\n')) {
    const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line)
    if (m?.[1] && m[2]) found.push({ uri: m[1], suites: [m[2]] })
  }
  let names: string[] = []
  try {
    names = readdirSync('/etc/apt/sources.list.d').sort()
  } catch {
    // no directory
  }
  for (const name of names) {
    const text = read(join('/etc/apt/sources.list.d', name))
    if (name.endsWith('.list')) {
      for (const line of text.split('\n')) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line)
        if (m?.[1] && m[2]) found.push({ uri: m[1], suites: [m[2]] })
      }
    } else if (name.endsWith('.sources')) {
      // deb822: stanzas separated by blank lines, fields "Name: value"
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (key: string): string[] =>
          (new RegExp(`^${key}:\\s*(.*)$`, 'mi').exec(stanza)?.[1] ?? '').split(/\s+/).filter(Boolean)
        if (/^enabled:\s*no/im.test(stanza) || !field('Types').includes('deb')) continue
        for (const uri of field('URIs')) found.push({ uri, suites: field('Suites') })
      }
    }
  }
  return found
}

/** The Debian archive to build from: $ANSAI_DEBIAN_MIRROR, the host's own Debian mirror, or deb.debian.org. */
export const debianMirror = (): string => {
  const explicit = process.env.ANSAI_DEBIAN_MIRROR
  if (explicit) return explicit
  const sources = aptSources().filter((s) => /^https?:\/\//.test(s.uri) && !/security/.test(s.uri))
  const archive =
    sources.find((s) => s.suites.includes(ROOTFS_SUITE)) ??
    sources.find((s) => s.suites.some((suite) => /^(bookworm|trixie|bullseye|sid|stable|testing)$/.test(suite)))
  return archive?.uri.replace(/\/+$/, '') ?? FALLBACK_MIRROR
}

export interface RootfsStatus {
  path: string
  cached: boolean
  /** True when the tree is cached, or mmdebstrap is here, or it can be installed (root with apt-get). */
  buildable: boolean
  reason?: string
}

export const rootfsStatus = (): RootfsStatus => {
  const path = rootfsPath()
  if (existsSync(path)) return { path, cached: true, buildable: true }
  if (findCommand('mmdebstrap')) return { path, cached: false, buildable: true }
  if (process.getuid?.() === 0 && findCommand('apt-get')) {
    return { path, cached: false, buildable: true, reason: 'mmdebstrap will be installed with apt-get' }
  }
  return { path, cached: false, buildable: false, reason: 'mmdebstrap not found: apt-get install mmdebstrap' }
}

const installMmdebstrap = async (): Promise<string> => {
  const have = findCommand('mmdebstrap')
  if (have) return have
  const aptGet = findCommand('apt-get')
  if (process.getuid?.() !== 0 || aptGet === undefined) {
    throw new Error('mmdebstrap not found: apt-get install mmdebstrap')
  }
  log('mmdebstrap is missing: apt-get install mmdebstrap (CI installs it in .ci/run)')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const install = [aptGet, 'install', '-y', '-q', '--no-install-recommends', 'mmdebstrap']
  let result = await runHost(install, { env, timeoutMs: 600_000 })
  if (result.exitCode !== 0) {
    await runHost([aptGet, 'update', '-q'], { env, timeoutMs: 600_000 })
    result = await runHost(install, { env, timeoutMs: 600_000 })
  }
  const path = findCommand('mmdebstrap')
  if (result.exitCode !== 0 || path === undefined) {
    throw new Error(`apt-get install mmdebstrap failed:\n${result.stderr.slice(-2000)}`)
  }
  return path
}

/** Mount points at or below `dir` (a half-built tree of a killed mmdebstrap may still have /proc etc. mounted). */
const mountsBelow = (dir: string): string[] =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(`${dir}/`))

/** Removes a directory tree, but never through a mount point (it would delete the host's /dev or /proc). */
const removeTree = (dir: string): void => {
  const mounted = mountsBelow(dir)
  if (mounted.length > 0) {
    log(`leaving ${dir} alone: mount points inside it (${mounted.join(', ')})`)
    return
  }
  rmSync(dir, { recursive: true, force: true })
}

interface Lock {
  release(): void
}

/** An exclusive lock file holding the owner's pid; a lock whose owner is dead is taken over. */
const acquireLock = async (lockPath: string, timeoutMs: number): Promise<Lock> => {
  const deadline = Date.now() + timeoutMs
  let lastNote = 0
  for (;;) {
    try {
      const fd = openSync(lockPath, 'wx')
      writeFileSync(fd, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }))
      closeSync(fd)
      return { release: () => rmSync(lockPath, { force: true }) }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    let owner: number | undefined
    try {
      owner = (JSON.parse(readFileSync(lockPath, 'utf8')) as { pid?: number }).pid
    } catch {
      owner = undefined // being written right now, or garbage: look again
    }
    if (owner !== undefined && !processExists(owner)) {
      log(`removing the stale lock ${lockPath} of dead process ${owner}`)
      rmSync(lockPath, { force: true })
      continue
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${lockPath} (held by pid ${owner})`)
    if (Date.now() - lastNote > 15_000) {
      log(`waiting for process ${owner ?? '?'} that builds the rootfs (${lockPath})`)
      lastNote = Date.now()
    }
    await sleep(500)
  }
}

export interface RootfsBuildInfo {
  path: string
  seconds: number
  mirror: string
  packages: readonly string[]
  builtAt: string
}

/** Build facts of the cached tree, when it was built by this code. */
export const rootfsBuildInfo = (): RootfsBuildInfo | undefined => {
  try {
    return JSON.parse(readFileSync(`${rootfsPath()}.build.json`, 'utf8')) as RootfsBuildInfo
  } catch {
    return undefined
  }
}

const build = async (finalPath: string): Promise<void> => {
  const dir = cacheDir()
  const mmdebstrap = await installMmdebstrap()
  // half-built trees of builders that died
  const prefix = `.${finalPath.slice(dir.length + 1)}.tmp-`
  for (const name of readdirSync(dir)) {
    const pid = name.startsWith(prefix) ? Number(name.slice(prefix.length)) : Number.NaN
    if (Number.isInteger(pid) && !processExists(pid)) removeTree(join(dir, name))
  }
  const tmp = join(dir, `${prefix}${process.pid}`)
  removeTree(tmp)
  const mirror = debianMirror()
  log(`building the ${ROOTFS_SUITE} rootfs with mmdebstrap from ${mirror} into ${finalPath} (a minute or two, once)`)
  const started = performance.now()
  // mmdebstrap (root mode) mounts /proc, /sys, /dev/pts and /dev/shm inside the new tree and leaves them mounted
  // when it is killed: in a private mount namespace of its own they vanish with it. It dies with this process.
  const setpriv = findCommand('setpriv')
  const unshare = findCommand('unshare')
  const argv = [
    ...(setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : []),
    ...(unshare ? [unshare, '--mount', '--propagation', 'private', '--'] : []),
    mmdebstrap,
    '--mode=root',
    '--format=directory',
    '--variant=minbase',
    `--include=${ROOTFS_PACKAGES.join(',')}`,
    '--aptopt=Acquire::Retries "3"',
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
    `--customize-hook=${CUSTOMIZE_HOOK}`,
    ROOTFS_SUITE,
    tmp,
    mirror,
  ]
  const result = await runHost(argv, {
    timeoutMs: 30 * 60_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8' },
    onStderrLine: (line) => {
      if (/^(I|W|E):/.test(line)) log(`mmdebstrap: ${line}`)
    },
  })
  if (result.exitCode !== 0) {
    removeTree(tmp)
    throw new Error(`mmdebstrap failed (exit ${result.exitCode}):\n${result.stderr.split('\n').slice(-30).join('\n')}`)
  }
  renameSync(tmp, finalPath)
  const seconds = Math.round((performance.now() - started) / 100) / 10
  const info: RootfsBuildInfo = {
    path: finalPath,
    seconds,
    mirror,
    packages: ROOTFS_PACKAGES,
    builtAt: new Date().toISOString(),
  }
  writeFileSync(`${finalPath}.build.json`, `${JSON.stringify(info, null, 2)}\n`)
  log(`rootfs built in ${seconds} s: ${finalPath}`)
}

let pending: Promise<string> | undefined

/**
 * The path of the cached rootfs, built first when it is missing (once per machine and recipe, whatever the number
 * of test files asking at the same time). Needs root.
 */
export const ensureRootfs = (): Promise<string> => {
  pending ??= (async () => {
    const finalPath = rootfsPath()
    if (existsSync(finalPath)) return finalPath
    mkdirSync(cacheDir(), { recursive: true })
    const lock = await acquireLock(`${finalPath}.lock`, 40 * 60_000)
    try {
      if (!existsSync(finalPath)) await build(finalPath)
      else log(`another process built ${finalPath}`)
    } finally {
      lock.release()
    }
    return finalPath
  })()
  pending.catch(() => {
    pending = undefined // let a later call try again
  })
  return pending
}
