/**
 * What keeps `ansai-agent collect` small at start (goal: ≤ 80 ms CPU, ≤ 50 MB; `npm run bench -- --collect-only`)
 * without changing what it does: the written-out defaults are the schema's, the lazy config loader answers as
 * config.ts does, the heartbeat timestamp check is the contract's; and the collect path imports no zod or YAML, nor
 * (in what every collect loads) a heavy builtin at its top. test/integration/bundle.test.ts checks the bundle itself.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { AgentConfigSchema, ConfigError as ConfigErrorOfConfig, loadAgentConfig } from '../../../agent/config/config.ts'
import { ConfigError, defaultAgentConfig, loadAgentConfigLazily } from '../../../agent/config/load.ts'
import { ISO_TIMESTAMP } from '../../../agent/probes/cron-heartbeat.ts'
import { TimestampSchema } from '../../../shared/contracts/index.ts'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'ansai-lean-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('the configuration without a config file', () => {
  it('defaultAgentConfig() is AgentConfigSchema.parse({}), key for key', () => {
    expect(defaultAgentConfig()).toStrictEqual(AgentConfigSchema.parse({}))
  })

  it('is a fresh object at each call', () => {
    const a = defaultAgentConfig()
    a.probes.services.units.push('x.service')
    a.host.tags.role = 'web'
    expect(defaultAgentConfig()).toStrictEqual(AgentConfigSchema.parse({}))
  })

  it('loadAgentConfigLazily gives what loadAgentConfig gives, file or no file', async () => {
    const file = join(dir, 'config.yaml')
    writeFileSync(file, 'host: { tags: { role: web } }\nprobes:\n  services: { units: [nginx] }\n')
    expect(await loadAgentConfigLazily(file)).toStrictEqual(loadAgentConfig(file))
    expect((await loadAgentConfigLazily(file)).config.probes.services.units).toEqual(['nginx.service'])
  })

  it('the same errors: a missing explicit file, a bad file (with its line)', async () => {
    const missing = join(dir, 'missing.yaml')
    await expect(loadAgentConfigLazily(missing)).rejects.toThrow(ConfigError)
    expect(() => loadAgentConfig(missing)).toThrow(ConfigError)
    expect(ConfigErrorOfConfig).toBe(ConfigError)
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'probes:\n  memory: { enabled: 3 }\n')
    const err = (await loadAgentConfigLazily(bad).catch((e: unknown) => e)) as ConfigError
    expect(err).toBeInstanceOf(ConfigError)
    expect(err.problems).toEqual([`${bad}:2 probes.memory.enabled: Invalid input: expected boolean, received number`])
  })
})

describe("the heartbeat's timestamp check", () => {
  const agrees = (text: string): boolean => ISO_TIMESTAMP.test(text) === TimestampSchema.safeParse(text).success

  it('accepts and refuses what TimestampSchema does', () => {
    for (const text of [
      '2026-11-23T03:00:00Z',
      '2026-11-23T03:00:00.123456Z',
      '2026-11-23T03:00:00+01:00',
      '2026-11-23T03:00:00-23:59',
      '2024-02-29T00:00:00Z',
      '2000-02-29T00:00:00Z',
      '1900-02-29T00:00:00Z',
      '2026-02-29T00:00:00Z',
      '2026-04-31T00:00:00Z',
      '2026-11-23T03:00Z',
      '2026-11-23T03:00:00',
      '2026-11-23 03:00:00Z',
      '2026-11-23T24:00:00Z',
      '2026-11-23T03:00:00+24:00',
      '2026-11-23T03:00:00+0100',
      '2026-11-23T03:00:00.Z',
      '2026-11-23t03:00:00z',
      ' 2026-11-23T03:00:00Z',
      '2026-11-23T03:00:00Z\n',
      '',
    ]) {
      expect(agrees(text), text).toBe(true)
    }
  })

  it('agrees with TimestampSchema on generated timestamps and near misses', () => {
    const two = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, '0'))
    const stamp = fc
      .tuple(
        fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, '0')),
        two(13),
        two(32),
        two(25),
        two(61),
        two(61),
        fc.constantFrom('', '.5', '.123', '.'),
        fc.constantFrom('Z', 'z', '', '+01:00', '-23:59', '+24:00', '+05:60', '+0100'),
      )
      .map(([y, mo, d, h, mi, s, frac, zone]) => `${y}-${mo}-${d}T${h}:${mi}:${s}${frac}${zone}`)
    fc.assert(
      fc.property(stamp, (text) => agrees(text)),
      { numRuns: 5_000 },
    )
    fc.assert(fc.property(fc.string(), (text) => agrees(text)))
  })
})

describe('the collect path imports neither zod nor YAML', () => {
  // Every module `ansai-agent collect` may load without a config file: the probe adapters and their parsers, the
  // process runner, the lazy config loader, the command's module. Types may come from anywhere.
  const COLLECT_PATH = [
    'agent/cli/commands/collect.ts',
    'agent/config/load.ts',
    'agent/os/exec.ts',
    ...['agent/collect', 'agent/probes'].flatMap((d) =>
      readdirSync(join(root, d))
        .filter((f) => f.endsWith('.ts'))
        .map((f) => `${d}/${f}`),
    ),
  ]
  it.each(COLLECT_PATH)('%s', (file) => {
    const source = readFileSync(join(root, file), 'utf8')
    const valueImports = [...source.matchAll(/^import\s+(?!type\b)[^'"]*?from\s+'([^']+)'/gms)].map((m) => m[1]!)
    expect(valueImports.filter((spec) => /^(zod|yaml)$|contracts\/|\/engine\/(?!duration\.ts)/.test(spec))).toEqual([])
  })
})

describe('what every default collect loads imports no heavy builtin at its top', () => {
  // node:child_process (with net, dgram, the streams), node:net, node:tls, node:perf_hooks, node:fs/promises (with
  // readline and the REPL history): each ~0.5-3 MB at start. They load at the first use instead (exec.ts at the first
  // command, node:tls for an endpoint, ...).
  const ALWAYS_LOADED = [
    'agent/cli/commands/collect.ts',
    'agent/config/load.ts',
    ...[
      'collect',
      'context',
      'host',
      'host-context',
      'state',
      'fs-async',
      'glob',
      'systemd',
      'services',
      'filesystems',
      'memory',
      'certificates',
      'cron',
      'packages',
      'containers',
      'custom',
    ].map((name) => `agent/collect/${name}.ts`),
    ...['systemd-show', 'mountinfo', 'meminfo', 'parse-result', 'containers'].map((name) => `agent/probes/${name}.ts`),
  ]
  it.each(ALWAYS_LOADED)('%s', (file) => {
    const source = readFileSync(join(root, file), 'utf8')
    const valueImports = [...source.matchAll(/^import\s+(?!type\b)[^'"]*?from\s+'([^']+)'/gms)].map((m) => m[1]!)
    expect(
      valueImports.filter((spec) => /^node:(child_process|net|tls|perf_hooks|fs\/promises|worker_threads)$/.test(spec)),
    ).toEqual([])
  })
})
