/**
 * A real systemd for tests: Debian's systemd boots as PID 1 of a new PID namespace, chrooted into a private overlay
 * of the cached rootfs (rootfs.ts). systemd-nspawn does not work on the test machines; this does.
 *
 *   const machine = await SystemdMachine.boot({ name: 'svc-test' })
 *   await machine.installUnit('demo.service', '[Service]\nExecStart=/bin/sleep infinity\n')
 *   await machine.run(['systemctl', 'start', 'demo.service'])
 *   const pid = await machine.mainPid('demo.service')     // as seen inside
 *   process.kill(machine.hostPid(pid)!, 'SIGKILL')         // as seen from the host
 *   await machine.shutdown()                               // in afterAll; an exit hook also kills what is left
 *
 * How it boots (every step written here, nothing from callers reaches a shell):
 *   setpriv --pdeathsig KILL  sh outer.sh          moves itself into a fresh cgroup (the machine's cgroup root),
 *     script -c stage2.sh console.log              a pty as the machine's /dev/console, logged to console.log
 *       setpriv --pdeathsig KILL unshare --pid --fork --kill-child --mount --uts --ipc --cgroup [--net]
 *         sh stage3.sh                             tmpfs + overlayfs (or a copy) of the rootfs, binds, chroot,
 *           /lib/systemd/systemd --system          its own /dev, proc (/proc/sys read-only), sys (read-only),
 *                                                  /run, cgroup2; PID 1 inside
 * The death signals chain: if the test process dies, everything below it dies with it. Commands run inside with
 * `nsenter -t <pid> -m -p -u -i -C -n -r -w`.
 *
 * The machine shares the host's network unless booted with `network: 'private'` (then only its own loopback).
 */
import { spawn } from 'node:child_process'
import {
  chmodSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import {
  childPids,
  type ExecResult,
  findCommand,
  listPids,
  log,
  namespacePids,
  processExists,
  readProcFile,
  runHost,
  sleep,
} from './host.ts'
import { ensureRootfs, rootfsStatus } from './rootfs.ts'

export type { ExecResult } from './host.ts'

export interface BindMount {
  /** A host file or directory. */
  host: string
  /** Where it appears inside the machine (absolute). */
  inside: string
  readOnly?: boolean
}

export interface BootOptions {
  /** Host name inside and part of the temp dir names; [a-z0-9-], default `ansai-test`. */
  name?: string
  /** Host files or directories to bind into the machine (e.g. the agent bundle and a Node binary). */
  binds?: readonly BindMount[]
  /** `host` (default): the host's network, as in the plain unshare recipe. `private`: a loopback of its own. */
  network?: 'host' | 'private'
  /** How long to wait for `systemctl is-system-running` to say running or degraded (default 60 s). */
  bootTimeoutMs?: number
  /**
   * `overlay` (default): an overlayfs on the cached tree with a tmpfs for the changes, falling back to a copy where
   * overlayfs does not work. `copy`: always a full copy into the machine's temp dir (slower; to test the fallback).
   */
  root?: 'overlay' | 'copy'
}

export interface MachineExecOptions {
  timeoutMs?: number
  input?: string | Buffer
  /** Added to the clean environment commands get inside (PATH, HOME, LANG, no pager, no colours). */
  env?: Record<string, string>
}

const SIGRTMIN_PLUS_3 = 37 // glibc's SIGRTMIN is 34: systemd halts on SIGRTMIN+3
const INSIDE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** host commands the harness needs, and the Debian package of each */
const HOST_COMMANDS: Record<string, string> = {
  unshare: 'util-linux',
  nsenter: 'util-linux',
  setpriv: 'util-linux',
  script: 'bsdutils',
  chroot: 'coreutils',
  mount: 'mount',
  sh: 'dash',
}

const OUTER_SH = `set -eu
if [ -n "\${ANSAI_CGROUP_PROCS:-}" ]; then echo $$ > "$ANSAI_CGROUP_PROCS"; fi
exec script --quiet --flush --return --command 'exec /bin/sh "$ANSAI_STATE/stage2.sh"' "$ANSAI_STATE/console.log" >/dev/null
`

const STAGE2_SH = `set -eu
tty=$(tty)
exec setpriv --pdeathsig KILL -- unshare --pid --fork --kill-child=SIGKILL --mount --propagation private \\
  --uts --ipc --cgroup $ANSAI_UNSHARE_NET -- /bin/sh "$ANSAI_STATE/stage3.sh" "$tty"
`

const STAGE3_SH = `set -eu
tty=$1
s=$ANSAI_STATE
r=$s/root
mount -t tmpfs -o mode=0755 tmpfs "$s/upper"
mkdir "$s/upper/data" "$s/upper/work"
if [ "$ANSAI_ROOT_MODE" = overlay ] &&
  mount -t overlay overlay -o "lowerdir=$ANSAI_LOWER,upperdir=$s/upper/data,workdir=$s/upper/work" "$r"; then
  echo "[harness] overlay of $ANSAI_LOWER"
else
  echo "[harness] no overlayfs ($ANSAI_ROOT_MODE): copying the rootfs (slower)"
  umount "$s/upper"
  cp -a "$ANSAI_LOWER/." "$r/"
  mount --bind "$r" "$r" # the root must be a mount point, or units with sandboxing options fail (226/NAMESPACE)
fi
# a /dev of its own: with /dev not yet a mount point systemd would mount the host's devtmpfs there (every disk
# and terminal of the host); the console is the pty that script(1) logs. Inside the chroot /proc/sys and /sys are
# read-only (as systemd-nspawn does): otherwise systemd would set the host's sysctls (fs.file-max,
# net.unix.max_dgram_qlen, the systemd-sysctl.service defaults).
mount -t tmpfs -o mode=0755,nosuid,size=4m tmpfs "$r/dev"
cp -a "$ANSAI_LOWER/dev/." "$r/dev/"
mount --bind "$tty" "$r/dev/console"
printf '%s\\n' "$ANSAI_NAME" > "$r/etc/hostname"
tab=$(printf '\\t')
printf '%s\\n' "\${ANSAI_BINDS:-}" | while IFS=$tab read -r mode host inside; do
  [ -n "$host" ] || continue
  if [ -d "$host" ]; then
    mkdir -p "$r$inside"
  else
    mkdir -p "$(dirname "$r$inside")"
    [ -e "$r$inside" ] || touch "$r$inside"
  fi
  mount --bind "$host" "$r$inside"
  if [ "$mode" = ro ]; then mount -o remount,bind,ro "$r$inside"; fi
  echo "[harness] bind $host -> $inside ($mode)"
done
echo "[harness] starting systemd"
exec env -i PATH=${INSIDE_PATH} LANG=C.UTF-8 chroot "$r" /bin/sh -c \\
  'set -e; mount -t proc proc /proc; mount --bind /proc/sys /proc/sys; mount -o remount,bind,ro /proc/sys; mount -t sysfs -o ro sys /sys; mount -t tmpfs -o mode=0755 tmpfs /run; mount -t cgroup2 none /sys/fs/cgroup; exec /lib/systemd/systemd --system'
`

const STATE_PREFIX = 'ansai-machine-'
const CGROUP_PREFIX = 'ansai-machine-'

interface CgroupPlace {
  /** The cgroup2 directory on the host under which each machine gets its own cgroup. */
  parent: string
}

/** Where our cgroup sits in the host's cgroup2 hierarchy (pure v2 or the hybrid "unified" mount), if anywhere. */
const cgroupPlace = (): CgroupPlace | undefined => {
  const mount = readProcFile('/proc/self/mountinfo')
    .split('\n')
    .map((line) => {
      const [before, after] = line.split(' - ')
      return { mountPoint: before?.split(' ')[4], fsType: after?.split(' ')[0] }
    })
    .find((m) => m.fsType === 'cgroup2')?.mountPoint
  const own = readProcFile('/proc/self/cgroup')
    .split('\n')
    .find((l) => l.startsWith('0::'))
    ?.slice(3)
  if (mount === undefined || own === undefined) return undefined
  return { parent: join(mount, own) }
}

/** Removes a cgroup and its children, bottom-up (cgroup directories are removed with rmdir, never unlinked). */
const removeCgroup = (dir: string): boolean => {
  let entries: string[]
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
  } catch {
    return true // gone
  }
  for (const child of entries) removeCgroup(join(dir, child))
  try {
    rmdirSync(dir)
    return true
  } catch {
    return false
  }
}

const hostMountsBelow = (dir: string): string[] =>
  readProcFile('/proc/self/mountinfo')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`))

/** Removes a machine's state dir; never through a mount point of the host's namespace. */
const removeStateDir = (dir: string): void => {
  if (hostMountsBelow(dir).length > 0) {
    log(`leaving ${dir} in place: it has mount points in the host namespace`)
    return
  }
  rmSync(dir, { recursive: true, force: true })
}

/** Leftovers of test processes that were killed before their exit hook ran (their pid is in the name). */
const removeLeftovers = (place: CgroupPlace | undefined): void => {
  const deadOwner = (name: string, prefix: string): boolean => {
    const pid = Number(name.slice(prefix.length).split('-')[0])
    return Number.isInteger(pid) && pid > 0 && !processExists(pid)
  }
  try {
    for (const name of readdirSync(tmpdir())) {
      if (name.startsWith(STATE_PREFIX) && deadOwner(name, STATE_PREFIX)) removeStateDir(join(tmpdir(), name))
    }
    if (place) {
      for (const name of readdirSync(place.parent)) {
        if (name.startsWith(CGROUP_PREFIX) && deadOwner(name, CGROUP_PREFIX)) removeCgroup(join(place.parent, name))
      }
    }
  } catch {
    // best effort
  }
}

const live = new Set<SystemdMachine>()
let exitHookInstalled = false

const installExitHook = (): void => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const machine of live) machine.killNow()
  })
}

const tail = (text: string, lines: number): string =>
  text
    .replace(/\r/g, '')
    .replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, 'g'), '') // colours of status lines
    .split('\n')
    .slice(-lines)
    .join('\n')

const NAME = /^[a-z0-9][a-z0-9-]{0,40}$/
const UNIT_NAME = /^[A-Za-z0-9:_.@\\-]+\.(service|socket|timer|target|path|mount|slice|scope)$/

export class SystemdMachine {
  #stopped = false
  readonly #exited: Promise<void>
  readonly #nsenter: string

  /** Host name inside. */
  readonly name: string
  /** Host pid of systemd, which is PID 1 inside. */
  readonly pid: number
  /** Host pid of the outermost process of the machine (setpriv → sh → script). */
  readonly launcherPid: number
  /** The machine's files on the host (console.log, wrapper.log; the root itself is only in its namespace). */
  readonly stateDir: string
  /** The machine's cgroup directory on the host (the root of its cgroup namespace), if it has its own. */
  readonly cgroupDir: string | undefined
  /** The read-only rootfs it runs on. */
  readonly rootfs: string

  // not a parameter-property constructor: `node file.ts` (type stripping, as in the benchmark) must load this file
  private constructor(parts: {
    name: string
    pid: number
    launcherPid: number
    stateDir: string
    cgroupDir: string | undefined
    rootfs: string
    exited: Promise<void>
    nsenter: string
  }) {
    this.name = parts.name
    this.pid = parts.pid
    this.launcherPid = parts.launcherPid
    this.stateDir = parts.stateDir
    this.cgroupDir = parts.cgroupDir
    this.rootfs = parts.rootfs
    this.#exited = parts.exited
    this.#nsenter = parts.nsenter
  }

  /** Milliseconds from spawn to `running`/`degraded` (set by boot). */
  bootMs = 0
  /** `running` or `degraded` when boot returned. */
  bootState = ''

  /** Whether machines can boot here, and if not why (for requireOrSkip). */
  static async available(): Promise<{ ok: boolean; reason?: string }> {
    availability ??= checkAvailability()
    return availability
  }

  /** Boots a new machine on the cached rootfs (built first if missing). */
  static async boot(opts: BootOptions = {}): Promise<SystemdMachine> {
    const name = opts.name ?? 'ansai-test'
    if (!NAME.test(name)) throw new Error(`machine name must match ${NAME}: ${name}`)
    const status = await SystemdMachine.available()
    if (!status.ok) throw new Error(`cannot boot a systemd machine here: ${status.reason}`)
    for (const bind of opts.binds ?? []) {
      // /proc, /sys, /run and /dev are mounted over after the binds; tabs and newlines would break the list
      const hidden = /^\/(proc|sys|run|dev)(\/|$)/.test(bind.inside)
      if (
        !bind.inside.startsWith('/') ||
        hidden ||
        /[\t\n]/.test(bind.host + bind.inside) ||
        bind.inside.includes('..')
      ) {
        throw new Error(`bad bind mount (absolute, not under /proc, /sys, /run, /dev): ${JSON.stringify(bind)}`)
      }
      if (!existsSync(bind.host)) throw new Error(`bind mount source does not exist: ${bind.host}`)
    }
    const rootfs = await ensureRootfs()
    const place = cgroupPlace()
    removeLeftovers(place)

    const stateDir = mkdtempSync(join(tmpdir(), `${STATE_PREFIX}${process.pid}-${name}-`))
    mkdirSync(join(stateDir, 'upper'))
    mkdirSync(join(stateDir, 'root'))
    writeFileSync(join(stateDir, 'outer.sh'), OUTER_SH)
    writeFileSync(join(stateDir, 'stage2.sh'), STAGE2_SH)
    writeFileSync(join(stateDir, 'stage3.sh'), STAGE3_SH)
    writeFileSync(join(stateDir, 'console.log'), '')

    let cgroupDir: string | undefined
    if (place) {
      const dir = join(place.parent, `${CGROUP_PREFIX}${process.pid}-${name}-${stateDir.slice(-6)}`)
      try {
        mkdirSync(dir)
        cgroupDir = dir
      } catch (error) {
        log(`no cgroup of its own for ${name} (${(error as Error).message}); it shares the test process's cgroup`)
      }
    }

    const wrapperLog = openSync(join(stateDir, 'wrapper.log'), 'a')
    const started = performance.now()
    const child = spawn(requireHost('setpriv'), ['--pdeathsig', 'KILL', '--', '/bin/sh', join(stateDir, 'outer.sh')], {
      stdio: ['ignore', wrapperLog, wrapperLog],
      env: {
        PATH: INSIDE_PATH,
        SHELL: '/bin/sh',
        LANG: 'C.UTF-8',
        ANSAI_STATE: stateDir,
        ANSAI_LOWER: rootfs,
        ANSAI_NAME: name,
        ANSAI_CGROUP_PROCS: cgroupDir ? join(cgroupDir, 'cgroup.procs') : '',
        ANSAI_UNSHARE_NET: opts.network === 'private' ? '--net' : '',
        ANSAI_ROOT_MODE: opts.root ?? 'overlay',
        ANSAI_BINDS: (opts.binds ?? [])
          .map((b) => `${b.readOnly ? 'ro' : 'rw'}\t${b.host}\t${b.inside.replace(/\/+$/, '')}`)
          .join('\n'),
      },
    })
    closeSync(wrapperLog)
    const launcherPid = child.pid
    if (launcherPid === undefined) throw new Error('could not spawn the machine launcher')
    let launcherExit: string | undefined
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        launcherExit = `launcher exited (${signal ?? `code ${code}`})`
        resolve()
      })
    })
    child.unref()

    const diagnostics = (): string =>
      [
        `--- console of ${name} (last lines, ${join(stateDir, 'console.log')}) ---`,
        tail(readProcFile(join(stateDir, 'console.log')), 40),
        '--- launcher output ---',
        tail(readProcFile(join(stateDir, 'wrapper.log')), 20),
      ].join('\n')
    const fail = async (message: string, machine?: SystemdMachine): Promise<never> => {
      const details = diagnostics()
      if (machine) await machine.shutdown()
      else {
        child.kill('SIGKILL')
        await Promise.race([exited, sleep(3000)])
        if (cgroupDir) removeCgroup(cgroupDir)
        removeStateDir(stateDir)
      }
      throw new Error(`${message}\n${details}`)
    }

    const timeoutMs = opts.bootTimeoutMs ?? 60_000
    const deadline = Date.now() + timeoutMs
    // launcher (script) → unshare → PID 1 of the new namespace
    let pid: number | undefined
    while (pid === undefined) {
      if (launcherExit) return fail(`machine ${name} did not start: ${launcherExit}`)
      if (Date.now() > deadline) return fail(`machine ${name}: no PID 1 after ${timeoutMs} ms`)
      const unshare = childPids(launcherPid)[0]
      const init = unshare === undefined ? undefined : childPids(unshare)[0]
      if (init !== undefined && readProcFile(`/proc/${init}/comm`).trim() === 'systemd') pid = init
      else await sleep(20)
    }
    const machine = new SystemdMachine({
      name,
      pid,
      launcherPid,
      stateDir,
      cgroupDir,
      rootfs,
      exited,
      nsenter: requireHost('nsenter'),
    })
    live.add(machine)
    installExitHook()

    let state = ''
    for (;;) {
      if (launcherExit) return fail(`machine ${name} stopped while booting: ${launcherExit}`, machine)
      const result = await machine.exec(['systemctl', 'is-system-running'], { timeoutMs: 5000 })
      state = result.stdout.trim() || result.stderr.trim()
      if (state === 'running' || state === 'degraded') break
      if (Date.now() > deadline) {
        const jobs = await machine.exec(['systemctl', 'list-jobs', '--no-pager'], { timeoutMs: 5000 })
        return fail(
          `machine ${name} did not finish booting in ${timeoutMs} ms: is-system-running says "${state}"\n${jobs.stdout}`,
          machine,
        )
      }
      await sleep(50)
    }
    machine.bootMs = Math.round(performance.now() - started)
    machine.bootState = state
    if (state === 'degraded') {
      const failed = await machine.exec(['systemctl', '--failed', '--no-legend', '--plain', '--no-pager'])
      log(`machine ${name} booted degraded; failed units:\n${failed.stdout}`)
    }
    log(`machine ${name} is ${state} after ${machine.bootMs} ms (systemd = host pid ${pid})`)
    return machine
  }

  /** Runs argv inside the machine (all its namespaces, its root). Never throws for a non-zero exit. */
  async exec(argv: readonly string[], opts: MachineExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new Error('exec: empty argv')
    if (this.#stopped) throw new Error(`machine ${this.name} is shut down`)
    return runHost(
      [this.#nsenter, '-t', String(this.pid), '-m', '-p', '-u', '-i', '-C', '-n', '-r', '-w', '--', ...argv],
      {
        timeoutMs: opts.timeoutMs ?? 30_000,
        ...(opts.input === undefined ? {} : { input: opts.input }),
        env: {
          PATH: INSIDE_PATH,
          HOME: '/root',
          LANG: 'C.UTF-8',
          TERM: 'dumb',
          SYSTEMD_PAGER: '',
          SYSTEMD_COLORS: '0',
          ...opts.env,
        },
        // nsenter forks the command into the machine's PID namespace. Kill the command, not nsenter: nsenter reaps it
        // and exits with its signal. An orphan of nsenter would go to the HOST's init, and a zombie in the machine
        // that systemd cannot reap stalls its halt.
        onTimeout: (nsenterPid) => {
          for (const child of childPids(nsenterPid)) killTree(child)
          setTimeout(() => killTree(nsenterPid), 2000).unref()
        },
      },
    )
  }

  /** Like exec, but throws with the command's stderr when it exits non-zero; returns stdout. */
  async run(argv: readonly string[], opts: MachineExecOptions = {}): Promise<string> {
    const result = await this.exec(argv, opts)
    if (result.exitCode !== 0) {
      throw new Error(
        `${argv.join(' ')} in ${this.name} exited ${result.exitCode}${result.timedOut ? ' (timed out)' : ''}: ${result.stderr.trim() || result.stdout.trim()}`,
      )
    }
    return result.stdout
  }

  /**
   * The host path of a path inside the machine (through /proc/<pid>/root), with symlinks inside resolved against
   * the machine's root. Valid while the machine runs.
   */
  path(inside: string): string {
    if (!inside.startsWith('/')) throw new Error(`path inside the machine must be absolute: ${inside}`)
    const root = `/proc/${this.pid}/root`
    const todo = inside.split('/').filter((p) => p !== '' && p !== '.')
    const done: string[] = []
    let hops = 0
    while (todo.length > 0) {
      const part = todo.shift() as string
      if (part === '..') {
        done.pop()
        continue
      }
      const candidate = `${root}/${[...done, part].join('/')}`
      let target: string | undefined
      try {
        if (lstatSync(candidate).isSymbolicLink()) target = readlinkSync(candidate)
      } catch {
        target = undefined // does not exist (yet): taken literally
      }
      if (target === undefined) {
        done.push(part)
        continue
      }
      if (++hops > 40) throw new Error(`too many symlinks in ${inside}`)
      if (target.startsWith('/')) done.length = 0
      todo.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'))
    }
    return `${root}/${done.join('/')}`
  }

  /** Writes a file inside the machine (parents created), owned by root. */
  async writeFile(inside: string, content: string | Buffer, mode = 0o644): Promise<void> {
    const host = this.path(inside)
    mkdirSync(dirname(host), { recursive: true })
    writeFileSync(host, content)
    chmodSync(host, mode)
  }

  async readFile(inside: string): Promise<string> {
    return readFileSync(this.path(inside), 'utf8')
  }

  /** Writes /etc/systemd/system/<name> and reloads systemd. */
  async installUnit(name: string, text: string): Promise<void> {
    if (!UNIT_NAME.test(name)) throw new Error(`not a unit file name: ${name}`)
    await this.writeFile(`/etc/systemd/system/${name}`, text.endsWith('\n') ? text : `${text}\n`)
    await this.run(['systemctl', 'daemon-reload'])
  }

  /** `systemctl <args>` inside; the result as is (is-active and friends exit non-zero on purpose). */
  async systemctl(...args: string[]): Promise<ExecResult> {
    return this.exec(['systemctl', ...args])
  }

  /** `systemctl show` of the given properties; a property systemd does not report is ''. */
  async show<P extends string>(unit: string, props: readonly P[]): Promise<Record<P, string>> {
    const out = await this.run(['systemctl', 'show', unit, `--property=${props.join(',')}`])
    const record = Object.fromEntries(props.map((p) => [p, ''])) as Record<P, string>
    for (const line of out.split('\n')) {
      const eq = line.indexOf('=')
      const key = line.slice(0, eq) as P
      if (eq > 0 && props.includes(key)) record[key] = line.slice(eq + 1)
    }
    return record
  }

  /** The unit's main pid as seen inside the machine; 0 when it has none. */
  async mainPid(unit: string): Promise<number> {
    return Number((await this.show(unit, ['MainPID'])).MainPID) || 0
  }

  /** The host pid of a pid inside the machine, or undefined when no such process runs. */
  hostPid(pidInside: number): number | undefined {
    const ns = (pid: number): string | undefined => {
      try {
        return readlinkSync(`/proc/${pid}/ns/pid`)
      } catch {
        return undefined
      }
    }
    if (pidInside === 1) return this.pid
    const ours = ns(this.pid)
    return listPids().find((p) => {
      const pids = namespacePids(p)
      return pids.length >= 2 && pids.at(-1) === pidInside && ns(p) === ours
    })
  }

  /** Polls `predicate` every 50 ms until it returns a truthy value (returned), or throws after timeoutMs. */
  async waitFor<T>(predicate: () => T | Promise<T>, timeoutMs = 10_000, what = 'a condition'): Promise<T> {
    const deadline = Date.now() + timeoutMs
    let last: T | undefined
    for (;;) {
      last = await predicate()
      if (last) return last
      if (Date.now() > deadline) {
        throw new Error(`machine ${this.name}: timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`)
      }
      await sleep(50)
    }
  }

  /** What systemd and the launcher printed on the machine's console so far (the last `lines`). */
  consoleLog(lines = 200): string {
    return tail(readProcFile(join(this.stateDir, 'console.log')), lines)
  }

  /** The controllers the machine's cgroup2 root offers (none may be there: see the memory probe's fallback). */
  async cgroupControllers(): Promise<string[]> {
    return (await this.readFile('/sys/fs/cgroup/cgroup.controllers')).trim().split(/\s+/).filter(Boolean)
  }

  /**
   * Halts systemd (SIGRTMIN+3), kills it after `timeoutMs`, removes its cgroup and files. Idempotent. Says how it
   * ended: `halted` (clean), `killed` (SIGKILL after the timeout) or `already` (shut down before).
   */
  async shutdown(timeoutMs = 10_000): Promise<'halted' | 'killed' | 'already'> {
    if (this.#stopped) return 'already'
    this.#stopped = true
    try {
      if (processExists(this.pid)) process.kill(this.pid, SIGRTMIN_PLUS_3)
    } catch {
      // gone already
    }
    const halted = await Promise.race([this.#exited.then(() => true), sleep(timeoutMs).then(() => false)])
    if (!halted) {
      log(`machine ${this.name} did not halt in ${timeoutMs} ms: SIGKILL. Its console:\n${this.consoleLog(15)}`)
      this.#kill()
      await Promise.race([this.#exited, sleep(5000)])
    }
    await this.#cleanUp()
    return halted ? 'halted' : 'killed'
  }

  /** Synchronous last resort for the process exit hook: SIGKILL, then remove what can be removed. */
  killNow(): void {
    if (!live.has(this)) return
    this.#stopped = true
    this.#kill()
    const until = Date.now() + 2000
    while (processExists(this.launcherPid) && Date.now() < until) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20)
    }
    if (this.cgroupDir) removeCgroup(this.cgroupDir)
    removeStateDir(this.stateDir)
    live.delete(this)
  }

  #kill(): void {
    for (const pid of [this.pid, this.launcherPid]) {
      try {
        process.kill(pid, 'SIGKILL') // PID 1 of the namespace: the kernel kills every process in it
      } catch {
        // gone
      }
    }
  }

  async #cleanUp(): Promise<void> {
    if (this.cgroupDir) {
      // the kernel frees a cgroup a moment after its last process exited
      for (let i = 0; i < 50 && !removeCgroup(this.cgroupDir); i++) await sleep(20)
    }
    removeStateDir(this.stateDir)
    live.delete(this)
  }
}

let availability: Promise<{ ok: boolean; reason?: string }> | undefined

const requireHost = (name: string): string => {
  const path = findCommand(name)
  if (path === undefined) throw new Error(`${name} not found: apt-get install ${HOST_COMMANDS[name] ?? name}`)
  return path
}

const killTree = (pid: number): void => {
  for (const child of childPids(pid)) killTree(child)
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // gone
  }
}

const checkAvailability = async (): Promise<{ ok: boolean; reason?: string }> => {
  if (process.platform !== 'linux') return { ok: false, reason: 'needs Linux' }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (namespaces, mounts, chroot)' }
  for (const [command, pkg] of Object.entries(HOST_COMMANDS)) {
    if (findCommand(command) === undefined) return { ok: false, reason: `${command} not found: apt-get install ${pkg}` }
  }
  const probe = await runHost(
    [requireHost('unshare'), '--pid', '--fork', '--mount', '--uts', '--ipc', '--cgroup', '--', '/bin/true'],
    { timeoutMs: 10_000 },
  )
  if (probe.exitCode !== 0) {
    return { ok: false, reason: `cannot create namespaces here (unshare: ${probe.stderr.trim()})` }
  }
  const rootfs = rootfsStatus()
  if (!rootfs.buildable) return { ok: false, reason: rootfs.reason ?? 'the rootfs cannot be built' }
  return { ok: true }
}
