import { describe, expect, it } from 'vitest'
import { ConfigError, parseAgentConfig } from '../../../agent/config/config.ts'
import { parseDuration } from '../../../shared/engine/duration.ts'

const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/ansai-reports'
const withFleet = (extra: string) => parseAgentConfig(`fleet:\n  reportsQueueUrl: ${QUEUE}\n${extra}`, 'config.yaml')
const problems = (extra: string): string[] => {
  try {
    withFleet(extra)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

describe('fleet.resendMinutes', () => {
  it('is 90m by default; takes a duration, bare minutes, and 0 (off)', () => {
    expect(withFleet('').fleet?.resendMinutes).toBe('90m')
    const window = (v: string) => parseDuration(withFleet(`  resendMinutes: ${v}\n`).fleet!.resendMinutes)
    expect(window('2h')).toBe(2 * 3_600_000)
    expect(window('45')).toBe(45 * 60_000)
    expect(window('0')).toBe(0)
    expect(window('"0"')).toBe(0)
    expect(window('24h')).toBe(24 * 3_600_000)
  })

  it('refuses a negative, fractional, malformed or over-24h window, naming fleet.resendMinutes and the line', () => {
    for (const bad of ['-5m', '-1', '1.5', 'soon', '25h', '1441', 'true']) {
      expect(problems(`  heartbeat: 15m\n  resendMinutes: ${bad}\n`)).toEqual([
        `config.yaml:4 fleet.resendMinutes: a duration from 0 to 24h is needed, such as 90m (0 turns resending off), not ${JSON.stringify(
          bad === 'true' ? true : /^-?[\d.]+$/.test(bad) ? Number(bad) : bad,
        )}`,
      ])
    }
  })
})
