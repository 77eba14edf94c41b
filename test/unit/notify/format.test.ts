import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  eventLabel,
  formatBytes,
  formatElapsed,
  formatTime,
  formatValues,
  truncate,
} from '../../../shared/app/notify/format.ts'

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [325_058_560, '310 MiB'],
    [1_288_490_189, '1.2 GiB'],
    [3_289_012_058, '3.1 GiB'],
    [10 * 2 ** 30, '10 GiB'],
    [2 ** 40 * 1.25, '1.3 TiB'],
  ])('%d → %s', (n, s) => {
    expect(formatBytes(n)).toBe(s)
  })

  it('always gives a number and a unit', () => {
    fc.assert(
      fc.property(fc.nat(), (n) => {
        expect(formatBytes(n)).toMatch(/^\d+(\.\d)? (B|KiB|MiB|GiB|TiB|PiB)$/)
      }),
    )
  })
})

describe('other formatters', () => {
  it('durations', () => {
    expect(formatElapsed(850)).toBe('850 ms')
    expect(formatElapsed(12_034)).toBe('12.0 s')
    expect(formatElapsed(250_000)).toBe('4 min 10 s')
    expect(formatElapsed(300_000)).toBe('5 min')
    expect(formatElapsed(7_500_000)).toBe('2 h 5 min')
    expect(formatElapsed(3 * 86_400_000 + 4 * 3_600_000)).toBe('3 d 4 h')
  })

  it('times, values, events', () => {
    expect(formatTime('2026-11-23T10:00:05Z')).toBe('2026-11-23 10:00:05 UTC')
    expect(formatTime('2026-11-23T12:00:05+02:00')).toBe('2026-11-23 10:00:05 UTC')
    expect(formatValues({ usedPercent: 92.5, mount: '/', ok: true, list: [1, 2] })).toBe(
      'usedPercent=92.5, mount=/, ok=true, list=[1,2]',
    )
    expect(eventLabel('ansai.incident.resolved.v1')).toBe('incident resolved')
  })

  it('truncate never exceeds its bound nor splits a surrogate pair', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.integer({ min: 1, max: 40 }), (s, max) => {
        const t = truncate(s, max)
        expect(t.length).toBeLessThanOrEqual(max)
        expect(t.isWellFormed()).toBe(true)
      }),
    )
  })
})
