/**
 * ANSAI installed for real on a test machine (test/support/systemd): the project's own build (agent/build/build.ts,
 * the bundles without the tarball) and its own install.sh, run inside the machine, with the host's Node bound in as
 * /usr/local/bin/node (the same Debian release, so it runs there) and given to install.sh with `--node`. The timer
 * is not started (`--no-start`): a test runs cycles itself, with `systemctl start ansai-agent.service` (what the
 * timer starts) or `ansai run --once`, and OnFailure= hooks start ansai-report@ as they would on a host.
 *
 *   const release = await buildAnsaiForMachine()
 *   machine = await SystemdMachine.boot({ name: 'x', binds: release.binds })
 *   await installAnsai(machine, { config: CONFIG_YAML, policies: { 'demo.yaml': POLICY_YAML } })
 *   await ansai(machine, 'history', '--json')
 *   release.cleanup()
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildBundles, REPO_ROOT } from '../../agent/build/build.ts'
import type { BindMount, ExecResult, SystemdMachine } from './systemd/machine.ts'

/** The wrapper install.sh puts in place (default --prefix /opt/ansai). */
export const ANSAI_BIN = '/opt/ansai/bin/ansai'
export const ANSAI_CONFIG = '/etc/ansai/config.yaml'
export const ANSAI_POLICY_DIR = '/etc/ansai/policies'

const DIST_INSIDE = '/mnt/ansai-dist'
const SRC_INSIDE = '/mnt/ansai-src'

export interface AnsaiRelease {
  /** For SystemdMachine.boot: the bundles, the checkout (install.sh and the units, read only) and the host's Node. */
  binds: BindMount[]
  buildMs: number
  cleanup: () => void
}

/** Builds the bundles into a temp dir (about half a second). */
export const buildAnsaiForMachine = async (): Promise<AnsaiRelease> => {
  const dir = mkdtempSync(join(tmpdir(), 'ansai-machine-dist-'))
  const t0 = performance.now()
  await buildBundles({ outDir: dir, tarball: false, quiet: true })
  return {
    binds: [
      { host: dir, inside: DIST_INSIDE, readOnly: true },
      { host: REPO_ROOT, inside: SRC_INSIDE, readOnly: true },
      { host: process.execPath, inside: '/usr/local/bin/node', readOnly: true },
    ],
    buildMs: Math.round(performance.now() - t0),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/**
 * Runs install.sh inside the machine (booted with the release's binds), reloads systemd, then writes the config
 * (mode 0600, as install.sh would) and policy files. Returns install.sh's output.
 */
export const installAnsai = async (
  machine: SystemdMachine,
  opts: { config?: string; policies?: Record<string, string> } = {},
): Promise<string> => {
  const out = await machine.run(
    [
      'sh',
      `${SRC_INSIDE}/agent/install/install.sh`,
      '--from',
      DIST_INSIDE,
      '--node',
      '/usr/local/bin/node',
      '--no-start',
    ],
    { timeoutMs: 120_000 },
  )
  await machine.run(['systemctl', 'daemon-reload'])
  if (opts.config !== undefined) await machine.writeFile(ANSAI_CONFIG, opts.config, 0o600)
  for (const [name, text] of Object.entries(opts.policies ?? {})) {
    await machine.writeFile(`${ANSAI_POLICY_DIR}/${name}`, text)
  }
  return out
}

/** `ansai <args>` inside the machine, as root, with the installed config; never throws for a non-zero exit. */
export const ansai = (machine: SystemdMachine, ...args: string[]): Promise<ExecResult> =>
  machine.exec([ANSAI_BIN, ...args, '--config', ANSAI_CONFIG], { timeoutMs: 120_000 })

/**
 * An ANSAI config for a test machine that observes only the given services and per-service memory (every other
 * probe off), with the policies in /etc/ansai/policies and the state in /var/lib/ansai.
 */
export const machineConfig = (opts: {
  hostId: string
  services?: readonly string[]
  failedAny?: boolean
  processMemory?: readonly string[]
}): string => `host: { id: ${opts.hostId}, tags: { role: test } }
policies: { builtin: false, paths: [${ANSAI_POLICY_DIR}] }
probes:
  services: { units: [${(opts.services ?? []).join(', ')}], failedAny: ${opts.failedAny ?? true} }
  processMemory: { units: [${(opts.processMemory ?? []).join(', ')}] }
  filesystems: { enabled: false }
  memory: { enabled: false }
  certificates: { files: [] }
  cron: { enabled: false }
  packages: { enabled: false }
  containers: { enabled: false }
  custom: { enabled: false }
state: { dir: /var/lib/ansai }
`
