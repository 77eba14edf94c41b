import { readFileSync } from 'node:fs'
import type { AgentConfig } from './config.ts'

/**
 * Loading the agent's configuration without paying for its parser when there is nothing to parse. A host with no
 * `/etc/ansai/config.yaml` (the default, and the common case of `ansai-agent collect`) gets {@link
 * defaultAgentConfig}: no YAML parser and no zod are loaded (together ~40 ms of CPU and ~15 MB at every start).
 * A config file is parsed by config.ts (YAML, then the zod schema), loaded only then.
 *
 * Nothing here imports zod or yaml: keep it that way (test/unit/agent/collect-lean-start.test.ts checks the
 * sources, test/integration/bundle.test.ts what the bundled collect loads).
 */

export const DEFAULT_CONFIG_PATH = '/etc/ansai/config.yaml'

/** A config that does not load: every problem with file, line and path. */
export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly file: string
  readonly problems: string[]

  constructor(file: string, problems: string[]) {
    super(`${file}: invalid configuration\n${problems.map((p) => `  ${p}`).join('\n')}`)
    this.file = file
    this.problems = problems
  }
}

/**
 * `AgentConfigSchema.parse({})`, written out: the configuration of a host without a config file. A unit test
 * keeps it equal to the schema's defaults. A fresh object at each call.
 */
export const defaultAgentConfig = (): AgentConfig => ({
  host: { tags: {} },
  policies: { builtin: true, paths: [], disable: [] },
  probes: {
    services: { units: [], failedAny: true },
    filesystems: { enabled: true, exclude: [], includeTmpfs: false },
    memory: { enabled: true },
    processMemory: {},
    certificates: { files: ['/etc/letsencrypt/live/*/cert.pem'], endpoints: [], timeoutMs: 3000 },
    databases: [],
    backups: [],
    cron: { enabled: true, markerDir: '/var/lib/ansai/cron', expect: [] },
    dns: { names: [], timeoutMs: 2000 },
    packages: { enabled: true, every: '6h', timeoutSeconds: 300 },
    containers: { enabled: 'auto' },
    custom: { enabled: true, dir: '/var/lib/ansai/metrics' },
  },
  notifications: { channels: {}, default: ['console'] },
  remediation: { dryRun: false, backupCommands: {} },
  state: { dir: '/var/lib/ansai', keepAudit: '30d' },
  interval: '60s',
})

/**
 * The config file's text, or undefined when the default path is absent (defaults apply: a first run needs no
 * config). A path given explicitly must exist.
 */
export const readConfigText = (path: string | undefined): { text: string; file: string } | undefined => {
  const file = path ?? DEFAULT_CONFIG_PATH
  try {
    return { text: readFileSync(file, 'utf8'), file }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (!path && code === 'ENOENT') return undefined
    throw new ConfigError(file, [`cannot read (${code ?? (err as Error).message})`])
  }
}

/**
 * config.ts's `loadAgentConfig`, loading the parser (YAML and zod) only when there is a file to parse. Same
 * result, same errors.
 */
export const loadAgentConfigLazily = async (
  path: string | undefined,
): Promise<{ config: AgentConfig; file: string | undefined }> => {
  const read = readConfigText(path)
  if (!read) return { config: defaultAgentConfig(), file: undefined }
  const { parseAgentConfig } = await import('./config.ts')
  return { config: parseAgentConfig(read.text, read.file), file: read.file }
}
