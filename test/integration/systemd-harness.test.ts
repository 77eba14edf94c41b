/**
 * The systemd test harness itself (test/support/systemd): a real systemd boots as PID 1 of a new PID namespace on
 * the cached Debian rootfs, units start, a main process killed from the host fails its unit, a restart brings it
 * back, and OnFailure= hooks run (the agent's instant failure reports rely on them).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireOrSkip } from '../support/require.ts'
import { SystemdMachine } from '../support/systemd/machine.ts'
import { ensureRootfs, rootfsBuildInfo, rootfsStatus } from '../support/systemd/rootfs.ts'

const status = await SystemdMachine.available()
const canBoot = requireOrSkip(
  'a real systemd (PID 1 of a new PID namespace, needs root)',
  status.ok,
  status.reason ?? 'unknown',
)

const note = (message: string): void => {
  process.stderr.write(`[systemd-harness.test] ${message}\n`)
}

describe.skipIf(!canBoot)('systemd harness: a real systemd as PID 1 of a PID namespace', () => {
  let machine: SystemdMachine

  beforeAll(async () => {
    const cached = rootfsStatus().cached
    const t0 = performance.now()
    const rootfs = await ensureRootfs()
    const info = rootfsBuildInfo()
    note(
      cached
        ? `rootfs from the cache: ${rootfs}${info ? ` (built once in ${info.seconds} s on ${info.builtAt})` : ''}`
        : `rootfs built in ${Math.round(performance.now() - t0) / 1000} s: ${rootfs}`,
    )
    machine = await SystemdMachine.boot({ name: 'harness' })
    note(`boot took ${machine.bootMs} ms (${machine.bootState})`)
  }, 1_800_000)

  afterAll(async () => {
    if (machine) expect(await machine.shutdown()).toBe('halted')
  })

  it('runs systemd as PID 1 with its own host name, and runs commands inside with argv, input and exit codes', async () => {
    expect(['running', 'degraded']).toContain(machine.bootState)
    expect((await machine.run(['cat', '/proc/1/comm'])).trim()).toBe('systemd')
    expect((await machine.run(['hostname'])).trim()).toBe('harness')
    expect(machine.hostPid(1)).toBe(machine.pid)
    // its own /dev (not the host's devtmpfs with every disk), systemd's output on its pty console
    expect((await machine.run(['findmnt', '-n', '-o', 'FSTYPE', '/dev'])).trim()).toBe('tmpfs')
    expect(machine.consoleLog()).toMatch(/Reached target .*Multi-User System/)
    // the host's kernel settings cannot be changed from inside
    const sysctl = await machine.exec(['sh', '-c', 'echo 10 > /proc/sys/net/unix/max_dgram_qlen'])
    expect(sysctl.exitCode).not.toBe(0)
    expect(sysctl.stderr).toMatch(/Read-only file system/)

    const echoed = await machine.exec(['sh', '-c', 'cat; echo "$1" >&2; exit 3', 'sh', 'to stderr'], {
      input: 'from stdin',
    })
    expect(echoed).toMatchObject({ exitCode: 3, stdout: 'from stdin', stderr: 'to stderr\n', timedOut: false })

    const slow = await machine.exec(['sleep', '30'], { timeoutMs: 300 })
    expect(slow.timedOut).toBe(true)
    // the timed-out command died inside too, not only nsenter on the host (systemd reaps the zombie a bit later)
    const running = ['pgrep', '-x', '--runstates', 'R,S,D,T', 'sleep']
    await machine.waitFor(async () => (await machine.exec(running)).exitCode === 1, 5000, 'no running sleep')

    await machine.writeFile('/etc/ansai-harness/hello.txt', 'hello\n', 0o600)
    expect(await machine.readFile('/etc/ansai-harness/hello.txt')).toBe('hello\n')
    expect((await machine.run(['stat', '-c', '%a %U', '/etc/ansai-harness/hello.txt'])).trim()).toBe('600 root')
    // /etc/os-release is an absolute symlink: path() resolves it inside the machine, not on the host
    expect(await machine.readFile('/etc/os-release')).toContain('bookworm')
  })

  it('a killed Restart=no unit fails, and systemctl restart brings it back with a new main pid', async () => {
    await machine.installUnit(
      'demo.service',
      ['[Unit]', 'Description=demo', '[Service]', 'ExecStart=/bin/sleep infinity', 'Restart=no'].join('\n'),
    )
    await machine.run(['systemctl', 'start', 'demo.service'])
    const before = await machine.show('demo.service', ['ActiveState', 'SubState', 'MainPID'])
    expect(before.ActiveState).toBe('active')
    const pid = Number(before.MainPID)
    expect(pid).toBeGreaterThan(0)

    const hostPid = machine.hostPid(pid)
    expect(hostPid).toBeGreaterThan(1)
    expect(hostPid).not.toBe(pid)
    process.kill(hostPid as number, 'SIGKILL')

    const failed = await machine.waitFor(
      async () => {
        const s = await machine.show('demo.service', ['ActiveState', 'Result'])
        return s.ActiveState === 'failed' ? s : undefined
      },
      10_000,
      'demo.service to fail',
    )
    expect(failed?.Result).toBe('signal')

    await machine.run(['systemctl', 'restart', 'demo.service'])
    const after = await machine.show('demo.service', ['ActiveState', 'MainPID'])
    expect(after.ActiveState).toBe('active')
    expect(Number(after.MainPID)).toBeGreaterThan(0)
    expect(Number(after.MainPID)).not.toBe(pid)
    expect(await machine.mainPid('demo.service')).toBe(Number(after.MainPID))
  })

  it('OnFailure= runs a templated hook with the failed unit name (what ansai-report@.service relies on)', async () => {
    await machine.installUnit(
      'report@.service',
      [
        '[Unit]',
        'Description=report the failure of %i',
        '[Service]',
        'Type=oneshot',
        `ExecStart=/bin/sh -c 'echo "$$1" > /run/reported' report %i`,
      ].join('\n'),
    )
    await machine.installUnit(
      'demo2.service',
      [
        '[Unit]',
        'Description=demo with a failure hook',
        'OnFailure=report@%n.service',
        '[Service]',
        'ExecStart=/bin/sleep infinity',
        'Restart=no',
      ].join('\n'),
    )
    await machine.run(['systemctl', 'start', 'demo2.service'])
    const pid = await machine.mainPid('demo2.service')
    expect(pid).toBeGreaterThan(0)
    expect(existsSync(machine.path('/run/reported'))).toBe(false)

    process.kill(machine.hostPid(pid) as number, 'SIGKILL')

    const reported = await machine.waitFor(
      () => (existsSync(machine.path('/run/reported')) ? machine.readFile('/run/reported') : undefined),
      10_000,
      '/run/reported',
    )
    expect(reported).toBe('demo2.service\n')
    expect((await machine.show('demo2.service', ['ActiveState'])).ActiveState).toBe('failed')
  })

  it('reports which cgroup controllers the nested cgroup2 offers (the memory probe needs a fallback without one)', async () => {
    const controllers = await machine.cgroupControllers()
    const unitCgroup = '/sys/fs/cgroup/system.slice/demo.service'
    const hasMemoryCurrent = existsSync(machine.path(`${unitCgroup}/memory.current`))
    note(
      `cgroup2 controllers inside: [${controllers.join(' ')}]; memory.current of demo.service: ${hasMemoryCurrent ? 'present' : 'absent'}`,
    )
    expect(hasMemoryCurrent).toBe(controllers.includes('memory'))
    expect(existsSync(machine.path(`${unitCgroup}/cgroup.procs`))).toBe(true)
    if (machine.cgroupDir) {
      // the machine's cgroup root is a cgroup of its own on the host: machines in parallel do not collide
      expect(existsSync(join(machine.cgroupDir, 'system.slice', 'demo.service'))).toBe(true)
    }
  })

  it('a second machine with a private network boots beside the first, halts cleanly and leaves nothing behind', async () => {
    const shared = mkdtempSync(join(tmpdir(), 'ansai-harness-bind-'))
    writeFileSync(join(shared, 'agent.txt'), 'from the host\n')
    const other = await SystemdMachine.boot({
      name: 'harness-private',
      network: 'private',
      binds: [
        { host: shared, inside: '/opt/ansai', readOnly: true },
        // the host's Node runs inside (same Debian release): how the agent gets in
        { host: process.execPath, inside: '/usr/local/bin/node', readOnly: true },
      ],
    })
    let ended: string | undefined
    try {
      expect(await other.readFile('/opt/ansai/agent.txt')).toBe('from the host\n')
      const write = await other.exec(['touch', '/opt/ansai/new'])
      expect(write.stderr).toMatch(/Read-only file system/)
      expect((await other.run(['node', '-e', 'console.log(process.version)'])).trim()).toBe(process.version)
      // a command that times out must not leave a zombie that stalls the halt below
      expect((await other.exec(['sleep', '30'], { timeoutMs: 200 })).timedOut).toBe(true)
      note(`second boot took ${other.bootMs} ms`)
      expect((await other.run(['hostname'])).trim()).toBe('harness-private')
      expect(other.pid).not.toBe(machine.pid)
      // its own network namespace: only a loopback, up
      const links = await other.run(['cat', '/proc/net/dev'])
      expect(links).toContain('lo:')
      expect(links).not.toMatch(/^\s*(eth|ens|enp)\w*:/m)
      // units of one machine are not seen by the other
      expect((await other.systemctl('cat', 'demo.service')).exitCode).not.toBe(0)
    } finally {
      ended = await other.shutdown()
      rmSync(shared, { recursive: true, force: true })
    }
    expect(ended).toBe('halted')
    expect(existsSync(other.stateDir)).toBe(false)
    if (other.cgroupDir) expect(existsSync(other.cgroupDir)).toBe(false)
    expect(existsSync(`/proc/${other.pid}`)).toBe(false)
    expect(existsSync(`/proc/${other.launcherPid}`)).toBe(false)
    // the first machine is unaffected
    expect((await machine.run(['systemctl', 'is-active', 'demo.service'])).trim()).toBe('active')
  })
})
