import { describe, expect, it } from 'vitest'
import { parseMeminfo, parseMeminfoFields, parsePressure } from '../../../agent/probes/meminfo.ts'
import { MemoryObservationSchema, PsiSchema } from '../../../shared/contracts/index.ts'
import { assertNeverThrows, expectFailure, expectOk, readOsFixture } from './os-fixtures.ts'

const KiB = 1024

describe('parseMeminfo', () => {
  it('reads /proc/meminfo captured on a test machine (kB are KiB)', () => {
    const obs = expectOk(parseMeminfo(readOsFixture('proc-meminfo.txt')))
    expect(obs).toEqual({
      kind: 'memory',
      totalBytes: 24684084 * KiB,
      availableBytes: 24303824 * KiB,
      swapTotalBytes: 0,
      swapFreeBytes: 0,
    })
    expect(MemoryObservationSchema.parse(obs)).toEqual(obs)
  })

  it('adds memory pressure (PSI) when given', () => {
    const result = parseMeminfo(readOsFixture('proc-meminfo.txt'), readOsFixture('proc-pressure-memory.txt'))
    const obs = expectOk(result)
    expect(obs.psi).toEqual({
      someAvg10: 0,
      someAvg60: 0,
      someAvg300: 0,
      fullAvg10: 0,
      fullAvg60: 0,
      fullAvg300: 0,
    })
    expect(result.ok && result.problems).toEqual([])
    MemoryObservationSchema.parse(obs)
  })

  it('reads a host under pressure, with swap', () => {
    const meminfo = [
      'MemTotal:        8048576 kB',
      'MemFree:          102400 kB',
      'MemAvailable:     204800 kB',
      'SwapTotal:       2097148 kB',
      'SwapFree:         524288 kB',
      'HugePages_Total:       0',
    ].join('\n')
    const psi =
      'some avg10=12.50 avg60=8.03 avg300=2.71 total=123456789\nfull avg10=4.00 avg60=1.10 avg300=0.35 total=2345678\n'
    const obs = expectOk(parseMeminfo(meminfo, psi))
    expect(obs).toEqual({
      kind: 'memory',
      totalBytes: 8048576 * KiB,
      availableBytes: 204800 * KiB,
      swapTotalBytes: 2097148 * KiB,
      swapFreeBytes: 524288 * KiB,
      psi: { someAvg10: 12.5, someAvg60: 8.03, someAvg300: 2.71, fullAvg10: 4, fullAvg60: 1.1, fullAvg300: 0.35 },
    })
  })

  it('estimates MemAvailable on kernels before 3.14', () => {
    const obs = expectOk(parseMeminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n'))
    expect(obs.availableBytes).toBe(400 * KiB)
    expect(obs.swapTotalBytes).toBe(0)
  })

  it('keeps the observation and names the problem when the pressure text is odd', () => {
    const result = parseMeminfo('MemTotal: 1000 kB\nMemAvailable: 500 kB\n', 'some avg10=abc')
    expect(expectOk(result)).not.toHaveProperty('psi')
    expect(result.ok && result.problems[0]?.reason).toMatch(/memory pressure ignored: unexpected pressure line/)
  })

  it('fails without MemTotal', () => {
    expectFailure(parseMeminfo(''), /no MemTotal/)
    expectFailure(parseMeminfo('MemTotal: 1000 kB\n'), /neither MemAvailable nor MemFree/)
    expectFailure(parseMeminfo('cat: /proc/meminfo: No such file or directory'), /no MemTotal/)
  })

  it('parses all fields, with and without units', () => {
    const f = parseMeminfoFields(readOsFixture('proc-meminfo.txt'))
    expect(f.get('Active(anon)')).toBe(1528 * KiB)
    expect(f.get('HugePages_Total')).toBe(0)
    expect(f.get('Hugepagesize')).toBe(2048 * KiB)
  })

  it('never throws on arbitrary text', () => {
    const words = ['MemTotal:', 'MemAvailable:', 'MemFree:', 'SwapTotal:', ' kB', 'some', 'avg10=', '1.5']
    assertNeverThrows(
      (t) => parseMeminfo(t),
      words,
      (o) => MemoryObservationSchema.parse(o),
    )
    assertNeverThrows(
      (t) => parseMeminfo('MemTotal: 1 kB\nMemAvailable: 1 kB', t),
      words,
      (o) => MemoryObservationSchema.parse(o),
    )
    assertNeverThrows(parsePressure, words, (p) => PsiSchema.parse(p))
  })
})
