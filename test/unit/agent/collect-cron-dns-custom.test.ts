import { describe, expect, it } from 'vitest'
import { collectCron } from '../../../agent/collect/cron.ts'
import { collectCustom, parseMetricValue } from '../../../agent/collect/custom.ts'
import { collectDns } from '../../../agent/collect/dns.ts'
import {
  CronObservationSchema,
  CustomObservationSchema,
  DnsObservationSchema,
} from '../../../shared/contracts/index.ts'
import { fakeContext } from '../../fixtures/collect/fakes.ts'

const DIR = '/var/lib/ansai/cron'
const marker = (job: string, extra = '') =>
  `{"job":"${job}","startedAt":"2026-11-23T03:00:00Z","finishedAt":"2026-11-23T03:00:42Z","exitStatus":0${extra}}\n`

describe('collectCron', () => {
  const cron = { enabled: true, markerDir: DIR, expect: [] as string[] }

  it('one observation per <job>.json marker', async () => {
    const ctx = fakeContext({
      tree: {
        files: {
          [`${DIR}/logrotate.json`]: marker('logrotate'),
          [`${DIR}/certbot.json`]: '{"job":"certbot","startedAt":"2026-11-23T02:00:00Z"}\n',
          [`${DIR}/notes.txt`]: 'ignored',
          [`${DIR}/.tmp-123.json`]: 'a wrapper writing its marker: ignored',
        },
      },
    })
    const out = await collectCron(cron, ctx)
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      { kind: 'cron', job: 'certbot', lastRunAt: '2026-11-23T02:00:00Z' },
      { kind: 'cron', job: 'logrotate', lastRunAt: '2026-11-23T03:00:00Z', durationSeconds: 42, lastExitStatus: 0 },
    ])
    for (const o of out.observations) CronObservationSchema.parse(o)
  })

  it('an expected job without a marker is observed as never run; a broken marker is a ProbeError, not "never run"', async () => {
    const ctx = fakeContext({
      tree: { files: { [`${DIR}/backup.json`]: 'not json', [`${DIR}/other.json`]: marker('logrotate') } },
    })
    const out = await collectCron({ ...cron, expect: ['backup', 'logrotate'] }, ctx)
    expect(out.observations).toEqual([{ kind: 'cron', job: 'logrotate' }])
    expect(out.errors).toEqual([
      { probe: 'cron', reason: 'heartbeat of "backup" is not JSON: "not json"' },
      { probe: 'cron', reason: 'heartbeat of "other" names another job: "logrotate"' },
    ])
  })

  it('a missing directory is no job yet (expected ones never ran); an unreadable one is a ProbeError', async () => {
    expect(await collectCron({ ...cron, expect: ['nightly'] }, fakeContext())).toEqual({
      observations: [{ kind: 'cron', job: 'nightly' }],
      errors: [],
    })
    const denied = fakeContext({ tree: { dirs: { [DIR]: { error: 'EACCES' } } } })
    expect(await collectCron(cron, denied)).toEqual({
      observations: [],
      errors: [{ probe: 'cron', reason: `${DIR}: permission denied (EACCES)` }],
    })
    const unreadable = fakeContext({ tree: { files: { [`${DIR}/x.json`]: { error: 'EACCES' } } } })
    expect((await collectCron(cron, unreadable)).errors).toEqual([
      { probe: 'cron', reason: `${DIR}/x.json: permission denied (EACCES)` },
    ])
  })
})

describe('collectCustom', () => {
  const custom = { enabled: true, dir: '/var/lib/ansai/metrics' }

  it('one observation per <name>.value holding a number', async () => {
    const ctx = fakeContext({
      tree: {
        files: {
          '/var/lib/ansai/metrics/queue_depth.value': '1234\n',
          '/var/lib/ansai/metrics/ratio.value': ' -0.25 ',
          '/var/lib/ansai/metrics/big.value': '1e6',
          '/var/lib/ansai/metrics/readme.txt': 'ignored',
        },
      },
    })
    const out = await collectCustom(custom, ctx)
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      { kind: 'custom', name: 'big', value: 1e6 },
      { kind: 'custom', name: 'queue_depth', value: 1234 },
      { kind: 'custom', name: 'ratio', value: -0.25 },
    ])
    for (const o of out.observations) CustomObservationSchema.parse(o)
  })

  it('a file that is not one number, or not readable, is a ProbeError naming it; a missing dir is nothing', async () => {
    const ctx = fakeContext({
      tree: {
        files: {
          '/var/lib/ansai/metrics/a.value': '12 apples',
          '/var/lib/ansai/metrics/b.value': { error: 'EACCES' },
          '/var/lib/ansai/metrics/c.value': '',
        },
      },
    })
    expect((await collectCustom(custom, ctx)).errors).toEqual([
      { probe: 'custom', reason: '/var/lib/ansai/metrics/a.value: not a number: "12 apples"' },
      { probe: 'custom', reason: '/var/lib/ansai/metrics/b.value: permission denied (EACCES)' },
      { probe: 'custom', reason: '/var/lib/ansai/metrics/c.value: not a number: ""' },
    ])
    expect(await collectCustom(custom, fakeContext())).toEqual({ observations: [], errors: [] })
    expect(await collectCustom({ ...custom, enabled: false }, ctx)).toEqual({ observations: [], errors: [] })
  })

  it('parseMetricValue', () => {
    for (const bad of ['NaN', 'Infinity', '0x10', '1,5', '1 2', '', '1e999'])
      expect(parseMetricValue(bad)).toBeUndefined()
    expect(parseMetricValue('+3.')).toBe(3)
    expect(parseMetricValue('.5')).toBe(0.5)
  })
})

describe('collectDns', () => {
  it('resolved names with their addresses and latency; failures are observations with the error', async () => {
    const ctx = fakeContext({
      lookup: async (name) => {
        if (name === 'localhost') return ['127.0.0.1', '::1', '127.0.0.1']
        if (name === 'slow.example') return new Promise(() => {})
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' })
      },
    })
    const out = await collectDns({ names: ['localhost', 'nope.invalid', 'slow.example'], timeoutMs: 100 }, ctx)
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      {
        kind: 'dns',
        name: 'localhost',
        resolved: true,
        addresses: ['127.0.0.1', '::1'],
        latencyMs: expect.any(Number),
      },
      {
        kind: 'dns',
        name: 'nope.invalid',
        resolved: false,
        addresses: [],
        latencyMs: expect.any(Number),
        error: 'ENOTFOUND',
      },
      {
        kind: 'dns',
        name: 'slow.example',
        resolved: false,
        addresses: [],
        latencyMs: expect.any(Number),
        error: 'no answer within 100 ms',
      },
    ])
    for (const o of out.observations) DnsObservationSchema.parse(o)
  })
})
