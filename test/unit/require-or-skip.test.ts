import { afterEach, describe, expect, it, vi } from 'vitest'
import { MissingRequirementError, requireOrSkip } from '../support/require.ts'

describe('requireOrSkip', () => {
  afterEach(() => {
    vi.unstubAllEnvs()
    vi.restoreAllMocks()
  })

  it('says yes, silently, when the server is there, in CI or not', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    vi.stubEnv('ANSAI_REQUIRE_ALL', '1')
    expect(requireOrSkip('postgresql', true, 'initdb not found')).toBe(true)
    vi.stubEnv('ANSAI_REQUIRE_ALL', '')
    expect(requireOrSkip('postgresql', true, 'initdb not found')).toBe(true)
    expect(warn).not.toHaveBeenCalled()
  })

  it('on a laptop, skips loudly with the reason', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    vi.stubEnv('ANSAI_REQUIRE_ALL', '')
    expect(requireOrSkip('postgresql', false, 'initdb not found: apt-get install postgresql')).toBe(false)
    expect(warn).toHaveBeenCalledOnce()
    expect(warn.mock.calls[0]?.[0]).toContain('SKIPPED: tests that need postgresql: initdb not found')
    expect(warn.mock.calls[0]?.[0]).toContain('ANSAI_REQUIRE_ALL=1')
  })

  it('only ANSAI_REQUIRE_ALL=1 turns a skip into a failure', () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    vi.stubEnv('ANSAI_REQUIRE_ALL', 'true')
    expect(requireOrSkip('moto', false, 'moto_server not found')).toBe(false)
  })

  it('in CI (ANSAI_REQUIRE_ALL=1), fails with the name and the reason', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    vi.stubEnv('ANSAI_REQUIRE_ALL', '1')
    expect(() => requireOrSkip('moto', false, 'moto_server not on PATH')).toThrow(MissingRequirementError)
    expect(() => requireOrSkip('moto', false, 'moto_server not found')).toThrow(
      'moto is required (ANSAI_REQUIRE_ALL=1) but missing: moto_server not found',
    )
    expect(warn).not.toHaveBeenCalled()
  })
})
