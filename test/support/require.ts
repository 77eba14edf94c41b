/**
 * Tests that need a server or tool (PostgreSQL, moto, nginx, ...) call `requireOrSkip` with what they found.
 * On a laptop a missing server skips the tests loudly; in CI (`ANSAI_REQUIRE_ALL=1`, set by .ci/run) it fails them.
 *
 *   const hasPg = requireOrSkip('postgresql', await commandExists('initdb'), 'initdb not found: apt-get install postgresql')
 *   describe.skipIf(!hasPg)('postgresql maintenance', () => { ... })
 *
 * or inside one test: `if (!requireOrSkip(...)) return ctx.skip()`.
 */

export class MissingRequirementError extends Error {
  override readonly name = 'MissingRequirementError'
}

export const REQUIRE_ALL_ENV = 'ANSAI_REQUIRE_ALL'

/**
 * Returns true when `name` is available. When it is not: throws under ANSAI_REQUIRE_ALL=1, else warns with the
 * reason on stderr and returns false, so the caller skips.
 */
export const requireOrSkip = (name: string, available: boolean, reason: string): boolean => {
  if (available) return true
  if (process.env[REQUIRE_ALL_ENV] === '1') {
    throw new MissingRequirementError(`${name} is required (${REQUIRE_ALL_ENV}=1) but missing: ${reason}`)
  }
  console.warn(
    `\n!!! SKIPPED: tests that need ${name}: ${reason}\n!!! (with ${REQUIRE_ALL_ENV}=1, as in CI, this is a failure)\n`,
  )
  return false
}
