/**
 * The host installation (agent/install): shellcheck on both scripts; the release tarball's install.sh into a temp
 * `--root` with a private Node from an offline tarball (made from the Node that runs these tests): layout, modes,
 * wrappers that work from the root, idempotency, clear errors, uninstall with and without --purge. Then, on a real
 * systemd (test/support/systemd: PID 1 of a PID namespace, no network needed), the same tarball installs for real:
 * the timer is listed and enabled, `systemctl start ansai-agent.service` runs a cycle, an OnFailure= hook starts
 * ansai-report@, and uninstall.sh takes it all away again.
 */
import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildBundles, REPO_ROOT } from '../../agent/build/build.ts'
import { requireOrSkip } from '../support/require.ts'
import { SystemdMachine } from '../support/systemd/machine.ts'

const note = (message: string): void => {
  process.stderr.write(`[install.test] ${message}\n`)
}

const INSTALL_DIR = join(REPO_ROOT, 'agent/install')
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

const sh = (argv: string[], opts: { env?: Record<string, string>; cwd?: string } = {}) => {
  const r = spawnSync(argv[0]!, argv.slice(1), {
    encoding: 'utf8',
    timeout: 300_000,
    cwd: opts.cwd ?? tmpdir(),
    env: { PATH, LANG: 'C.UTF-8', HOME: process.env.HOME ?? '/root', ...opts.env },
  })
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', output: `${r.stdout}${r.stderr}` }
}

const mode = (path: string): number => statSync(path).mode & 0o7777

/** Every path under dir with its type, mode, and content hash or link target: to compare two installs. */
const snapshot = (dir: string): string[] => {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      const st = lstatSync(p)
      const rel = relative(dir, p)
      if (st.isSymbolicLink()) out.push(`${rel} -> ${readlinkSync(p)}`)
      else if (st.isDirectory()) {
        out.push(`${rel}/ ${(st.mode & 0o7777).toString(8)}`)
        walk(p)
      } else out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${st.size}`)
    }
  }
  walk(dir)
  return out
}

const machineStatus = await SystemdMachine.available()
const canBoot = requireOrSkip(
  'a real systemd (PID 1 of a PID namespace, needs root)',
  machineStatus.ok,
  machineStatus.reason ?? 'unknown',
)

const shellcheck = spawnSync('shellcheck', ['--version']).status === 0
const hasShellcheck = requireOrSkip('shellcheck', shellcheck, 'shellcheck not found: apt-get install shellcheck')

describe.skipIf(!hasShellcheck)('install scripts: shellcheck', () => {
  it('install.sh and uninstall.sh are shellcheck-clean (POSIX sh)', () => {
    const r = sh(['shellcheck', '--shell=sh', 'install.sh', 'uninstall.sh'], { cwd: INSTALL_DIR })
    expect(r.output).toBe('')
    expect(r.code).toBe(0)
  })
})

describe('install.sh and uninstall.sh', () => {
  let tmp: string
  let release: string // the extracted ansai-<version>/ of the release tarball
  let nodeTarball: string
  let version: string

  const install = (root: string, ...args: string[]) =>
    sh(['sh', join(release, 'install.sh'), '--root', root, '--no-start', '--node-tarball', nodeTarball, ...args])

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ansai-install-'))
    const built = await buildBundles({ outDir: join(tmp, 'dist'), quiet: true })
    version = built.version
    expect(sh(['tar', '-xzf', built.tarball!.file, '-C', tmp]).code).toBe(0)
    release = join(tmp, `ansai-${version}`)
    // an offline Node tarball shaped like the npm package node-linux-<arch>, made from the Node running the tests
    const pkg = join(tmp, 'node-pkg', 'package')
    mkdirSync(join(pkg, 'bin'), { recursive: true })
    copyFileSync(process.execPath, join(pkg, 'bin', 'node'))
    writeFileSync(
      join(pkg, 'package.json'),
      `{\n  "name": "ansai-test-node",\n  "version": "${process.versions.node}"\n}\n`,
    )
    nodeTarball = join(tmp, 'test-node.tgz')
    const t0 = performance.now()
    const tar = sh(['tar', '-I', 'gzip -1', '-cf', nodeTarball, '-C', join(tmp, 'node-pkg'), 'package'])
    expect(tar.code, tar.stderr).toBe(0)
    rmSync(join(tmp, 'node-pkg'), { recursive: true })
    note(`test Node tarball (${process.version}) made in ${Math.round(performance.now() - t0)} ms`)
  }, 300_000)

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('installs into a --root: layout, modes, units, relative links, a private Node', () => {
    const root = join(tmp, 'root-a')
    mkdirSync(root)
    const r = install(root)
    expect(r.code, r.output).toBe(0)
    expect(r.stderr).toMatch(/not the pinned node-linux-/) // the test tarball is not the pinned package: a warning

    const p = (x: string) => join(root, x)
    for (const f of ['ansai.mjs', 'ansai-agent.mjs']) expect(mode(p(`opt/ansai/lib/${f}`))).toBe(0o644)
    expect(readdirSync(p('opt/ansai/lib/chunks')).length).toBe(readdirSync(join(release, 'lib/chunks')).length)
    expect(mode(p('opt/ansai/node/bin/node'))).toBe(0o755)
    for (const cmd of ['ansai', 'ansai-agent']) {
      expect(mode(p(`opt/ansai/bin/${cmd}`))).toBe(0o755)
      expect(readlinkSync(p(`usr/local/bin/${cmd}`))).toBe(`../../../opt/ansai/bin/${cmd}`)
    }
    expect(mode(p('etc/ansai'))).toBe(0o755)
    expect(mode(p('etc/ansai/config.yaml'))).toBe(0o600)
    expect(readFileSync(p('etc/ansai/config.yaml'), 'utf8')).toBe(
      readFileSync(join(INSTALL_DIR, 'config.example.yaml'), 'utf8'),
    )
    expect(mode(p('var/lib/ansai'))).toBe(0o700)
    for (const unit of ['ansai-agent.service', 'ansai-agent.timer', 'ansai-report@.service']) {
      expect(mode(p(`etc/systemd/system/${unit}`))).toBe(0o644)
    }
    const service = readFileSync(p('etc/systemd/system/ansai-agent.service'), 'utf8')
    expect(service).toMatch(/^Type=oneshot$/m)
    expect(service).toMatch(/^ExecStart=.* \/opt\/ansai\/bin\/ansai-agent report$/m)
    const timer = readFileSync(p('etc/systemd/system/ansai-agent.timer'), 'utf8')
    expect(timer).toMatch(/^OnBootSec=1min$/m)
    expect(timer).toMatch(/^OnUnitActiveSec=60s$/m)
    expect(timer).toMatch(/^AccuracySec=5s$/m)
    expect(existsSync(p('etc/systemd/system/timers.target.wants'))).toBe(false) // --no-start: not enabled
    expect(readFileSync(p('opt/ansai/share/install-info'), 'utf8')).toContain('node=private')
    for (const f of ['uninstall.sh', 'config.example.yaml', 'README.md'])
      expect(existsSync(p(`opt/ansai/share/${f}`))).toBe(true)
  })

  it('the wrappers run the bundles on the private Node from inside the root (no Node on PATH needed)', () => {
    const root = join(tmp, 'root-a')
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } // whatever Node is there, the wrapper does not use it
    const help = sh([join(root, 'usr/local/bin/ansai'), '--help'], { env })
    expect(help.code, help.output).toBe(0)
    expect(help.stdout).toMatch(/^Usage: ansai <command>/m)
    const v = sh([join(root, 'usr/local/bin/ansai-agent'), 'version'], { env })
    expect(v.stdout.trim()).toBe(version)
    // a full cycle needs node:sqlite, so this proves which Node runs it; the state goes to a temp dir
    const state = join(tmp, 'wrapper-state')
    const config = join(tmp, 'wrapper-config.yaml')
    writeFileSync(config, `state:\n  dir: ${state}\n`)
    const cycle = sh([join(root, 'opt/ansai/bin/ansai'), 'run', '--once', '--dry-run', '--config', config], { env })
    expect([0, 1], cycle.output).toContain(cycle.code)
    expect(existsSync(join(state, 'state.db'))).toBe(true)
  })

  it('is idempotent: a second install changes nothing and keeps an edited config', () => {
    const root = join(tmp, 'root-a')
    const config = join(root, 'etc/ansai/config.yaml')
    writeFileSync(config, `${readFileSync(config, 'utf8')}# edited by the operator\n`)
    const before = snapshot(root)
    const r = install(root)
    expect(r.code, r.output).toBe(0)
    expect(r.stdout).toContain('kept')
    expect(r.stdout).toMatch(/private Node already in/)
    expect(snapshot(root)).toEqual(before)
    expect(readFileSync(config, 'utf8')).toContain('# edited by the operator')
  })

  it('--dry-run prints what it would do and changes nothing', () => {
    const root = join(tmp, 'root-dry')
    mkdirSync(root)
    const r = install(root, '--dry-run')
    expect(r.code, r.output).toBe(0)
    expect(r.stdout).toMatch(/would write: .*\/etc\/systemd\/system\/ansai-agent\.timer/)
    expect(r.stdout).toMatch(/would install: the private Node/)
    expect(r.stdout).toContain('dry run: nothing was changed')
    expect(readdirSync(root)).toEqual([])
  })

  it('--prefix and --bindir: the units and the links follow, the wrappers still find their prefix', () => {
    const root = join(tmp, 'root-b')
    mkdirSync(root)
    const r = install(root, '--prefix', '/srv/tools/ansai', '--bindir', '/usr/bin')
    expect(r.code, r.output).toBe(0)
    expect(readlinkSync(join(root, 'usr/bin/ansai'))).toBe('../../srv/tools/ansai/bin/ansai')
    const service = readFileSync(join(root, 'etc/systemd/system/ansai-agent.service'), 'utf8')
    expect(service).toContain(
      'ExecStart=/usr/bin/flock --wait 300 /var/lib/ansai/.cycle.lock /srv/tools/ansai/bin/ansai-agent report',
    )
    expect(service).toContain('ConditionPathExists=/srv/tools/ansai/bin/ansai-agent')
    expect(service).not.toContain('/opt/ansai')
    const help = sh([join(root, 'usr/bin/ansai-agent'), '--help'])
    expect(help.code, help.output).toBe(0)
    const un = sh([
      'sh',
      join(root, 'srv/tools/ansai/share/uninstall.sh'),
      '--root',
      root,
      '--prefix',
      '/srv/tools/ansai',
    ])
    expect(un.code, un.output).toBe(0)
    expect(existsSync(join(root, 'usr/bin/ansai'))).toBe(false)
    expect(existsSync(join(root, 'srv/tools/ansai'))).toBe(false)
  })

  it('refuses bad input with a clear message', () => {
    const root = join(tmp, 'root-c')
    mkdirSync(root)
    const cases: [string[], RegExp][] = [
      [['--bogus'], /unknown option: --bogus/],
      [['--prefix', 'opt/ansai'], /--prefix must be an absolute path/],
      [['--prefix', '/usr'], /system directory/],
      [['--prefix', '/opt/an sai'], /may hold only/],
      [['--node-tarball', join(tmp, 'missing.tgz')], /no such file/],
    ]
    for (const [args, message] of cases) {
      const r = sh(['sh', join(release, 'install.sh'), '--root', root, '--no-start', ...args])
      expect(r.code, args.join(' ')).toBe(1)
      expect(r.stderr).toMatch(message)
    }
    const noRoot = sh(['sh', join(release, 'install.sh'), '--root', join(tmp, 'nope'), '--no-start'])
    expect(noRoot.stderr).toMatch(/is not a directory/)

    // a tarball that claims to be the pinned package but is not: refused before anything is installed
    const fake = join(tmp, 'fake-pinned')
    mkdirSync(join(fake, 'package/bin'), { recursive: true })
    writeFileSync(join(fake, 'package/bin/node'), '#!/bin/sh\necho v24.21.0\n', { mode: 0o755 })
    const pinned = readFileSync(join(release, 'install.sh'), 'utf8').match(/^NODE_VERSION=(\S+)$/m)![1]
    const arch = process.arch === 'arm64' ? 'arm64' : 'x64'
    writeFileSync(
      join(fake, 'package/package.json'),
      `{\n  "name": "node-linux-${arch}",\n  "version": "${pinned}"\n}\n`,
    )
    expect(sh(['tar', '-czf', join(tmp, 'fake.tgz'), '-C', fake, 'package']).code).toBe(0)
    const r = sh([
      'sh',
      join(release, 'install.sh'),
      '--root',
      root,
      '--no-start',
      '--node-tarball',
      join(tmp, 'fake.tgz'),
    ])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/sha512 differs from the published one/)
    expect(readdirSync(root)).toEqual([])
  })

  it('uninstall.sh keeps the config and the state; again is a no-op; --purge removes them', () => {
    const root = join(tmp, 'root-a')
    writeFileSync(join(root, 'var/lib/ansai/state.db'), 'state')
    const un = sh(['sh', join(root, 'opt/ansai/share/uninstall.sh'), '--root', root])
    expect(un.code, un.output).toBe(0)
    for (const gone of [
      'opt/ansai',
      'usr/local/bin/ansai',
      'usr/local/bin/ansai-agent',
      'etc/systemd/system/ansai-agent.service',
      'etc/systemd/system/ansai-agent.timer',
      'etc/systemd/system/ansai-report@.service',
    ]) {
      expect(existsSync(join(root, gone)), gone).toBe(false)
    }
    expect(readFileSync(join(root, 'etc/ansai/config.yaml'), 'utf8')).toContain('# edited by the operator')
    expect(readFileSync(join(root, 'var/lib/ansai/state.db'), 'utf8')).toBe('state')
    expect(un.stdout).toMatch(/kept .*\/etc\/ansai \(--purge removes it\)/)

    const again = sh(['sh', join(release, 'uninstall.sh'), '--root', root])
    expect(again.code, again.output).toBe(0)

    const purge = sh(['sh', join(release, 'uninstall.sh'), '--root', root, '--purge'])
    expect(purge.code, purge.output).toBe(0)
    expect(existsSync(join(root, 'etc/ansai'))).toBe(false)
    expect(existsSync(join(root, 'var/lib/ansai'))).toBe(false)
  })

  it('uninstall.sh refuses a prefix that is not an ANSAI install', () => {
    const root = join(tmp, 'root-d')
    mkdirSync(join(root, 'opt/other'), { recursive: true })
    writeFileSync(join(root, 'opt/other/data'), 'keep me')
    const r = sh(['sh', join(release, 'uninstall.sh'), '--root', root, '--prefix', '/opt/other'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/does not look like an ANSAI install/)
    expect(readFileSync(join(root, 'opt/other/data'), 'utf8')).toBe('keep me')
  })

  describe('on a real systemd (PID 1 of a PID namespace)', () => {
    let machine: SystemdMachine | undefined

    afterAll(async () => {
      await machine?.shutdown()
    })

    it.skipIf(!canBoot)(
      'installs from the release tarball offline, the timer is listed, a cycle runs, OnFailure= reports, uninstall removes it',
      async () => {
        machine = await SystemdMachine.boot({
          name: 'install',
          network: 'private', // no network: the Node comes from the offline tarball
          binds: [
            { host: release, inside: '/mnt/ansai-release', readOnly: true },
            { host: nodeTarball, inside: '/mnt/node.tgz', readOnly: true },
          ],
        })
        const m = machine
        const t0 = performance.now()
        const inst = await m.exec(['sh', '/mnt/ansai-release/install.sh', '--node-tarball', '/mnt/node.tgz'], {
          timeoutMs: 120_000,
        })
        expect(inst.exitCode, inst.stdout + inst.stderr).toBe(0)
        note(`install.sh inside the machine: ${Math.round(performance.now() - t0)} ms`)
        expect(inst.stdout).toContain('installing ANSAI')

        const timers = await m.run(['systemctl', 'list-timers', '--all', '--no-pager'])
        expect(timers).toContain('ansai-agent.timer')
        expect((await m.systemctl('is-enabled', 'ansai-agent.timer')).stdout.trim()).toBe('enabled')
        expect((await m.systemctl('is-active', 'ansai-agent.timer')).stdout.trim()).toBe('active')
        expect((await m.run(['stat', '-c', '%a', '/var/lib/ansai'])).trim()).toBe('700')
        expect((await m.run(['stat', '-c', '%a', '/etc/ansai/config.yaml'])).trim()).toBe('600')
        // systemd itself finds nothing wrong with the units
        const verify = await m.exec([
          'systemd-analyze',
          'verify',
          '/etc/systemd/system/ansai-agent.service',
          '/etc/systemd/system/ansai-agent.timer',
          '/etc/systemd/system/ansai-report@.service',
        ])
        expect(verify.exitCode, verify.stderr).toBe(0)

        const t1 = performance.now()
        const start = await m.exec(['systemctl', 'start', 'ansai-agent.service'], { timeoutMs: 180_000 })
        const cycleMs = Math.round(performance.now() - t1)
        const journal = (await m.exec(['journalctl', '-u', 'ansai-agent.service', '--no-pager', '-o', 'cat'])).stdout
        expect(start.exitCode, `${start.stderr}\n${journal}`).toBe(0)
        const shown = await m.show('ansai-agent.service', ['Result', 'ExecMainStatus', 'ActiveState'])
        note(`systemctl start ansai-agent.service: ${cycleMs} ms, ${JSON.stringify(shown)}`)
        expect(shown.Result).toBe('success')
        expect(shown.ActiveState).toBe('inactive') // oneshot: nothing stays resident
        expect(journal).toMatch(/ansai run/)
        expect((await m.run(['ls', '/var/lib/ansai'])).split('\n')).toContain('state.db')

        // a unit with OnFailure=ansai-report@%n.service: its failure starts a cycle at once
        await m.installUnit(
          'fails.service',
          ['[Unit]', 'OnFailure=ansai-report@%n.service', '[Service]', 'Type=oneshot', 'ExecStart=/bin/false'].join(
            '\n',
          ),
        )
        await m.exec(['systemctl', 'start', 'fails.service'])
        const report = await m.waitFor(
          async () => {
            const s = await m.show('ansai-report@fails.service.service', ['Result', 'ExecMainExitTimestampMonotonic'])
            return Number(s.ExecMainExitTimestampMonotonic) > 0 ? s : undefined
          },
          120_000,
          'ansai-report@fails.service.service to run',
        )
        expect(report?.Result).toBe('success')
        const reportLog = (
          await m.exec(['journalctl', '-u', 'ansai-report@fails.service.service', '--no-pager', '-o', 'cat'])
        ).stdout
        expect(reportLog).toMatch(/ansai run/)

        const un = await m.exec(['/opt/ansai/share/uninstall.sh'], { timeoutMs: 60_000 })
        expect(un.exitCode, un.stdout + un.stderr).toBe(0)
        expect(await m.run(['systemctl', 'list-timers', '--all', '--no-pager'])).not.toContain('ansai-agent')
        expect((await m.exec(['test', '-e', '/opt/ansai'])).exitCode).toBe(1)
        expect((await m.exec(['test', '-e', '/usr/local/bin/ansai'])).exitCode).toBe(1)
        expect((await m.exec(['test', '-f', '/etc/ansai/config.yaml'])).exitCode).toBe(0)
      },
      1_800_000,
    )
  })
})
