import { describe, expect, it, vi } from 'vitest'
import { collect, collectDetailed, PROBE_ENTRIES } from '../../../agent/collect/collect.ts'
import { type ProbesConfig, ProbesConfigSchema } from '../../../agent/config/probes.ts'
import { ReportV1Schema } from '../../../shared/contracts/index.ts'
import { fakeContext, fakeRun, NOW, osFixture, tempDir } from '../../fixtures/collect/fakes.ts'

/**
 * The orchestrator with the real probe registry. Three adapters are replaced to misbehave (throw, hang, break the
 * contract) and one records whether it was loaded at all, to check that disabled probes are never imported.
 */
const probe = vi.hoisted(() => ({
  loaded: new Set<string>(),
  mode: { custom: 'ok', cron: 'ok', dns: 'ok' } as Record<string, 'ok' | 'throw' | 'hang' | 'invalid'>,
}))

vi.mock('../../../agent/collect/custom.ts', () => {
  probe.loaded.add('custom')
  return {
    collectCustom: async () => {
      if (probe.mode.custom === 'throw') throw new TypeError("Cannot read properties of undefined (reading 'x')")
      return { observations: [{ kind: 'custom', name: 'queue_depth', value: 3 }], errors: [] }
    },
  }
})
vi.mock('../../../agent/collect/cron.ts', () => {
  probe.loaded.add('cron')
  return {
    collectCron: () =>
      probe.mode.cron === 'hang'
        ? new Promise(() => {})
        : Promise.resolve({ observations: [{ kind: 'cron', job: 'nightly' }], errors: [] }),
  }
})
vi.mock('../../../agent/collect/dns.ts', () => {
  probe.loaded.add('dns')
  return {
    collectDns: async () => ({
      observations: [
        { kind: 'dns', name: 'localhost', resolved: true, addresses: ['127.0.0.1'] },
        ...(probe.mode.dns === 'invalid' ? [{ kind: 'dns', name: '', resolved: 'yes', addresses: [] }] : []),
      ],
      errors: [],
    }),
  }
})
vi.mock('../../../agent/collect/packages.ts', () => {
  probe.loaded.add('packages')
  return { collectPackages: async () => ({ observations: [], errors: [] }) }
})

const config = (over: Record<string, unknown> = {}): ProbesConfig =>
  ProbesConfigSchema.parse({
    certificates: { files: [] },
    containers: { enabled: false },
    packages: { enabled: false },
    dns: { names: ['localhost'] },
    ...over,
  })

const hostTree = {
  files: {
    '/proc/self/mountinfo': osFixture('proc-self-mountinfo.txt'),
    '/proc/meminfo': osFixture('proc-meminfo.txt'),
  },
  statfs: {
    '/': { bsize: 4096, blocks: 1000, bfree: 500, bavail: 400, files: 100, ffree: 50 },
  },
}

describe('collect', () => {
  it('builds a ReportV1 from every enabled probe; disabled probes are never loaded', async () => {
    probe.mode = { custom: 'ok', cron: 'ok', dns: 'ok' }
    const stateDir = tempDir()
    const ctx = fakeContext({ tree: hostTree, run: fakeRun({}) })
    const result = await collectDetailed(
      {
        probes: config(),
        host: { id: 'web-1', tags: { role: 'web', env: 'prod' } },
        agentVersion: '0.1.0',
        stateDir,
        hostname: 'web-1.example.com',
      },
      ctx,
    )
    const report = ReportV1Schema.parse(result.report)
    expect(report).toMatchObject({
      schema: 'ansai.report.v1',
      host: { id: 'web-1', hostname: 'web-1.example.com', tags: { role: 'web', env: 'prod' } },
      agent: { version: '0.1.0' },
      time: NOW.toISOString(),
      seq: NOW.getTime() / 1000,
    })
    expect(report.observations.map((o) => o.kind)).toEqual(['filesystem', 'memory', 'cron', 'dns', 'custom'])
    expect(report.probeErrors).toEqual([
      { probe: 'service', reason: expect.stringMatching(/systemd is not the init system/) },
    ])
    expect(result.probes.map((p) => p.name)).toEqual(['services', 'filesystems', 'memory', 'cron', 'dns', 'custom'])
    expect(probe.loaded.has('packages')).toBe(false)

    const next = await collect({ probes: config(), agentVersion: '0.1.0', stateDir, hostname: 'web-1' }, ctx)
    expect(next.seq).toBe(report.seq + 1)
    expect(next.host).toEqual({ id: 'web-1', hostname: 'web-1', tags: {} })
  })

  it('a probe that throws, one that hangs, and one that breaks the contract cost only their own part', async () => {
    probe.mode = { custom: 'throw', cron: 'hang', dns: 'invalid' }
    const ctx = fakeContext({ tree: hostTree })
    const started = Date.now()
    const result = await collectDetailed(
      { probes: config(), agentVersion: '0.1.0', stateDir: tempDir(), timeoutsMs: { cron: 50 } },
      ctx,
    )
    expect(Date.now() - started).toBeLessThan(5_000)
    const report = ReportV1Schema.parse(result.report)
    expect(report.observations.map((o) => o.kind)).toEqual(['filesystem', 'memory', 'dns'])
    expect(report.probeErrors).toEqual([
      { probe: 'service', reason: expect.any(String) },
      { probe: 'cron', reason: 'did not finish within 50 ms; its results are left out of this report' },
      {
        probe: 'dns',
        reason: expect.stringMatching(/^an observation was dropped, it breaks the contract \(name: /),
      },
      { probe: 'custom', reason: "failed: Cannot read properties of undefined (reading 'x')" },
    ])
    expect(result.probes.find((p) => p.name === 'cron')?.outcome).toBe('timed-out')
    expect(result.probes.find((p) => p.name === 'custom')?.outcome).toBe('threw')
  })

  it('only: a subset (an OnFailure= report needs the services alone)', async () => {
    probe.mode = { custom: 'ok', cron: 'ok', dns: 'ok' }
    const result = await collectDetailed(
      { probes: config(), agentVersion: '0.1.0', stateDir: tempDir(), only: ['memory', 'cron'] },
      fakeContext({ tree: hostTree }),
    )
    expect(result.probes.map((p) => p.name)).toEqual(['memory', 'cron'])
    expect(result.report.observations.map((o) => o.kind)).toEqual(['memory', 'cron'])
  })

  it('an unwritable state directory: seq from the clock and a ProbeError, still a report', async () => {
    const report = await collect(
      { probes: config({ dns: { names: [] } }), agentVersion: '0.1.0', stateDir: '/dev/null/state', only: ['memory'] },
      fakeContext({ tree: hostTree }),
    )
    expect(report.seq).toBe(NOW.getTime() / 1000)
    expect(report.probeErrors).toEqual([
      { probe: 'agent', reason: expect.stringMatching(/^sequence counter not saved \(.*\); seq from the clock$/) },
    ])
  })

  it('every probe has an entry, each names its observation kind', () => {
    expect(PROBE_ENTRIES.map((e) => [e.name, e.probe])).toEqual([
      ['services', 'service'],
      ['filesystems', 'filesystem'],
      ['memory', 'memory'],
      ['processMemory', 'process-memory'],
      ['certificates', 'certificate'],
      ['databases', 'database'],
      ['backups', 'backup'],
      ['cron', 'cron'],
      ['dns', 'dns'],
      ['packages', 'packages'],
      ['containers', 'container'],
      ['custom', 'custom'],
    ])
    const defaults = ProbesConfigSchema.parse({})
    // an empty config: everything but the opt-in probes (process memory, databases, backups, dns need names)
    expect(PROBE_ENTRIES.filter((e) => e.enabled(defaults)).map((e) => e.name)).toEqual([
      'services',
      'filesystems',
      'memory',
      'certificates',
      'cron',
      'packages',
      'containers',
      'custom',
    ])
    const watched = ProbesConfigSchema.parse({ services: { units: ['app.service'] } })
    expect(PROBE_ENTRIES.find((e) => e.name === 'processMemory')?.enabled(watched)).toBe(true)
  })
})
