import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  healthFromStatus,
  parseContainerInspect,
  parseContainerPs,
  parseContainers,
} from '../../../agent/probes/containers.ts'
import { ContainerObservationSchema } from '../../../shared/contracts/index.ts'
import { assertNeverThrows, expectFailure, expectOk, readOsFixture } from './os-fixtures.ts'

const dockerPs = readOsFixture('docker-ps.jsonl')
const dockerInspect = readOsFixture('docker-inspect.json')

describe('docker', () => {
  it('reads ps and inspect into contract-valid observations', () => {
    const result = parseContainers('docker', dockerPs, dockerInspect)
    const obs = expectOk(result)
    for (const o of obs) expect(ContainerObservationSchema.parse(o)).toEqual(o)
    expect(obs).toEqual([
      {
        kind: 'container',
        runtime: 'docker',
        name: 'web',
        image: 'nginx:1.27',
        state: 'running',
        health: 'healthy',
        restarts: 0,
      },
      {
        kind: 'container',
        runtime: 'docker',
        name: 'worker',
        image: 'shop/worker:2.4.1',
        state: 'running',
        health: 'unhealthy',
        restarts: 2,
      },
      {
        kind: 'container',
        runtime: 'docker',
        name: 'db',
        image: 'postgres:16',
        state: 'exited',
        health: 'none',
        restarts: 0,
      },
      {
        kind: 'container',
        runtime: 'docker',
        name: 'cache',
        image: 'redis:7',
        state: 'restarting',
        health: 'none',
        restarts: 17,
      },
      // not in the inspect output: what ps says, restarts unknown → 0
      {
        kind: 'container',
        runtime: 'docker',
        name: 'probe',
        image: 'busybox',
        state: 'running',
        health: 'starting',
        restarts: 0,
      },
    ])
    expect(result.ok && result.problems).toEqual([])
  })

  it('reads ps alone, health from the status text', () => {
    const rows = expectOk(parseContainerPs(dockerPs))
    expect(rows.map((r) => [r.id, r.name, r.state, r.health, r.restarts])).toEqual([
      ['3f4e5d6c7b8a', 'web', 'running', 'healthy', undefined],
      ['9a8b7c6d5e4f', 'worker', 'running', 'unhealthy', undefined],
      ['1b2c3d4e5f60', 'db', 'exited', 'none', undefined],
      ['aa11bb22cc33', 'cache', 'restarting', 'none', undefined],
      ['dd44ee55ff66', 'probe', 'running', 'starting', undefined],
    ])
  })

  it('reads inspect alone', () => {
    const details = expectOk(parseContainerInspect(dockerInspect))
    expect(details.map((d) => [d.name, d.state, d.health, d.restarts])).toEqual([
      ['web', 'running', 'healthy', 0],
      ['worker', 'running', 'unhealthy', 2],
      ['db', 'exited', 'none', 0],
      ['cache', 'restarting', 'none', 17],
    ])
  })

  it('lets inspect win over ps, matching by full id or name', () => {
    const ps =
      '{"ID":"3f4e5d6c7b8a","Names":"web","Image":"nginx:1.27","State":"running","Status":"Up 1 second (health: starting)"}'
    const inspect =
      '[{"Id":"other","Name":"/web","RestartCount":4,"State":{"Status":"running","Health":{"Status":"unhealthy"}}}]'
    expect(expectOk(parseContainers('docker', ps, inspect))).toEqual([
      {
        kind: 'container',
        runtime: 'docker',
        name: 'web',
        image: 'nginx:1.27',
        state: 'running',
        health: 'unhealthy',
        restarts: 4,
      },
    ])
  })

  it('reads no containers from empty output', () => {
    expect(expectOk(parseContainers('docker', ''))).toEqual([])
    expect(expectOk(parseContainers('podman', '[]\n'))).toEqual([])
  })

  it('keeps ps results when inspect is unusable, and names the problem', () => {
    const result = parseContainers('docker', dockerPs, 'Error: No such object: web')
    expect(expectOk(result)).toHaveLength(5)
    expect(result.ok && result.problems[0]?.reason).toMatch(/inspect ignored: inspect output is not JSON/)
  })

  it('skips a row it cannot read', () => {
    const ps =
      '{"ID":"1","Names":"a","State":"running","Status":"Up"}\n{"ID":"2","Names":"b","State":"hibernating"}\n{"ID":"3","State":"running"}\n[1]'
    const result = parseContainerPs(ps)
    expect(expectOk(result).map((r) => r.name)).toEqual(['a'])
    expect(result.ok && result.problems.map((p) => p.reason)).toEqual([
      'b: unknown state "hibernating"',
      'ps row without a name (id "3")',
      'ps item is not an object',
    ])
  })

  it('fails on output that is not JSON', () => {
    expectFailure(
      parseContainerPs(
        'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
      ),
      /ps line 1 is not JSON/,
    )
    expectFailure(parseContainerPs('[{"Names":["a"]'), /ps output is not JSON/)
    expectFailure(parseContainerInspect('{}'), /not a JSON array/)
  })
})

describe('podman', () => {
  it('reads the JSON array of podman ps, with its own states and restart count', () => {
    const obs = expectOk(parseContainers('podman', readOsFixture('podman-ps.json')))
    for (const o of obs) ContainerObservationSchema.parse(o)
    expect(obs).toEqual([
      {
        kind: 'container',
        runtime: 'podman',
        name: 'web',
        image: 'docker.io/library/nginx:1.27',
        state: 'running',
        health: 'healthy',
        restarts: 1,
      },
      {
        kind: 'container',
        runtime: 'podman',
        name: 'nightly-job',
        image: 'quay.io/acme/job:1',
        state: 'exited',
        health: 'none',
        restarts: 0,
      },
    ])
  })

  it('reads the older podman inspect health key (State.Healthcheck)', () => {
    const inspect =
      '[{"Id":"abc","Name":"web","RestartCount":0,"State":{"Status":"running","Healthcheck":{"Status":"unhealthy"}},"ImageName":"nginx"}]'
    expect(expectOk(parseContainerInspect(inspect))[0]).toMatchObject({ health: 'unhealthy', image: 'nginx' })
  })
})

describe('health from status text', () => {
  it.each([
    ['Up 3 days (healthy)', 'healthy'],
    ['Up 2 hours (unhealthy)', 'unhealthy'],
    ['Up 5 seconds (health: starting)', 'starting'],
    ['Exited (0) 2 minutes ago', 'none'],
    [undefined, 'none'],
  ])('%s → %s', (status, health) => {
    expect(healthFromStatus(status)).toBe(health)
  })
})

describe('never throws', () => {
  it('on arbitrary text', () => {
    const words = ['{"Names":"a","State":"running"}', '[', ']', '{"ID":"x"}', 'constructor', '__proto__', 'null']
    const check = (os: unknown[]): void => {
      for (const o of os) ContainerObservationSchema.parse(o)
    }
    assertNeverThrows((t) => parseContainers('docker', t), words, check)
    assertNeverThrows((t) => parseContainers('podman', dockerPs, t), words, check)
  })

  it('on JSON of any shape, including nearly valid rows', () => {
    const check = (os: unknown[]): void => {
      for (const o of os) ContainerObservationSchema.parse(o)
    }
    const anyValue = fc.oneof(
      fc.constantFrom(
        'running',
        'exited',
        'stopped',
        'healthy',
        'Up 1 day (unhealthy)',
        '/web',
        'web',
        '',
        'constructor',
      ),
      fc.jsonValue(),
    )
    const item = fc.record(
      {
        ID: anyValue,
        Id: anyValue,
        Names: fc.oneof(anyValue, fc.array(anyValue)),
        Name: anyValue,
        State: fc.oneof(anyValue, fc.record({ Status: anyValue, Health: fc.record({ Status: anyValue }) })),
        Status: anyValue,
        Health: anyValue,
        Image: anyValue,
        Restarts: anyValue,
        RestartCount: anyValue,
        Config: fc.record({ Image: anyValue }),
      },
      { requiredKeys: [] },
    )
    const list = fc.array(fc.oneof(item, fc.jsonValue()), { maxLength: 5 })
    fc.assert(
      fc.property(list, list, fc.boolean(), (ps, inspect, lines) => {
        const psText = lines ? ps.map((p) => JSON.stringify(p)).join('\n') : JSON.stringify(ps)
        const result = parseContainers('docker', psText, JSON.stringify(inspect))
        if (result.ok) check(result.value)
      }),
      { numRuns: 500 },
    )
  })
})
