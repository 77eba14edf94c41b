import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseSystemctlShow, SYSTEMD_SHOW_PROPERTIES } from '../../../agent/probes/systemd-show.ts'
import { ServiceObservationSchema } from '../../../shared/contracts/index.ts'
import { assertNeverThrows, expectFailure, expectOk, readOsFixture } from './os-fixtures.ts'

describe('parseSystemctlShow', () => {
  const services = expectOk(parseSystemctlShow(readOsFixture('systemctl-show.txt')))

  it('reads one observation per unit block, each valid against the contract', () => {
    expect(services.map((s) => s.unit)).toEqual([
      'nginx.service',
      'backup.service',
      'flappy.service',
      'app.service',
      'missing.service',
    ])
    for (const s of services) expect(ServiceObservationSchema.parse(s)).toEqual(s)
  })

  it('reads a running unit with its memory and restart policy', () => {
    expect(services[0]).toEqual({
      kind: 'service',
      unit: 'nginx.service',
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      restarts: 0,
      mainPid: 1234,
      memoryBytes: 18243584,
      restartPolicy: 'on-failure',
      result: 'success',
      startLimitHit: false,
    })
  })

  it('leaves memory out when systemd says [not set] or UINT64_MAX', () => {
    expect(services[1]).not.toHaveProperty('memoryBytes')
    expect(services[2]).not.toHaveProperty('memoryBytes')
  })

  it('flags a unit systemd gave up on (Result=start-limit-hit)', () => {
    expect(services[2]).toMatchObject({
      unit: 'flappy.service',
      activeState: 'failed',
      restarts: 5,
      restartPolicy: 'always',
      startLimitHit: true,
      result: 'start-limit-hit',
    })
    expect(services[1]).toMatchObject({ activeState: 'failed', result: 'exit-code', startLimitHit: false })
  })

  it('keeps a unit in auto-restart and a unit that is not found', () => {
    expect(services[3]).toMatchObject({ activeState: 'activating', subState: 'auto-restart', restarts: 3 })
    expect(services[4]).toMatchObject({ loadState: 'not-found', activeState: 'inactive', subState: 'dead' })
  })

  it('names the properties the adapter must ask for', () => {
    expect(SYSTEMD_SHOW_PROPERTIES.join(',')).toBe(
      'Id,LoadState,ActiveState,SubState,NRestarts,MainPID,MemoryCurrent,Restart,Result',
    )
  })

  it('tolerates CRLF, values with "=", and an old systemd without NRestarts', () => {
    const text = 'Id=old.service\r\nActiveState=active\r\nSubState=running\r\nMainPID=7\r\nResult=a=b\r\n'
    const [s] = expectOk(parseSystemctlShow(text))
    expect(s).toEqual({
      kind: 'service',
      unit: 'old.service',
      activeState: 'active',
      subState: 'running',
      restarts: 0,
      mainPid: 7,
      result: 'a=b',
      startLimitHit: false,
    })
  })

  it('skips a bad block, keeps the others, and says why', () => {
    const text =
      'Id=a.service\nActiveState=sleeping\nSubState=x\n\nActiveState=active\n\nId=b.service\nActiveState=active\nSubState=running\nNRestarts=-1\n\nId=c.service\nActiveState=active\nSubState=running\n'
    const result = parseSystemctlShow(text)
    expect(expectOk(result).map((s) => s.unit)).toEqual(['c.service'])
    expect(result.ok && result.problems.map((p) => p.reason)).toEqual([
      'a.service: unknown ActiveState "sleeping"',
      'block without Id=',
      'b.service: bad NRestarts "-1"',
    ])
  })

  it('fails on text that is not systemctl show output', () => {
    expectFailure(parseSystemctlShow(''), /no unit/)
    expectFailure(parseSystemctlShow('\n\n'), /no unit/)
    expectFailure(parseSystemctlShow('Failed to connect to bus: No such file or directory'), /line 1 is not Key=Value/)
  })

  it('turns any Key=Value blocks into contract-valid observations or named problems', () => {
    const value = fc.oneof(
      fc.constantFrom(
        'active',
        'failed',
        'inactive',
        '[not set]',
        '18446744073709551615',
        '',
        '0',
        '-1',
        'start-limit-hit',
      ),
      fc.nat().map(String),
      fc.string({ maxLength: 10 }).filter((v) => !/[\r\n]/.test(v)),
    )
    const line = fc.tuple(fc.constantFrom(...SYSTEMD_SHOW_PROPERTIES), value).map(([k, v]) => `${k}=${v}`)
    const blocks = fc.array(fc.array(line, { minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 5 })
    fc.assert(
      fc.property(blocks, (bs) => {
        const result = parseSystemctlShow(bs.map((b) => b.join('\n')).join('\n\n'))
        const services = expectOk(result)
        for (const s of services) ServiceObservationSchema.parse(s)
        expect(services.length + (result.ok ? result.problems.length : 0)).toBe(bs.length)
      }),
      { numRuns: 300 },
    )
  })

  it('never throws on arbitrary text', () => {
    assertNeverThrows(
      parseSystemctlShow,
      [
        'Id',
        'ActiveState',
        'active',
        'failed',
        'NRestarts',
        'MainPID',
        'MemoryCurrent',
        '[not set]',
        '\n',
        'x.service',
      ],
      (services) => {
        for (const s of services) ServiceObservationSchema.parse(s)
      },
    )
  })
})
