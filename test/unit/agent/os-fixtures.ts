import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { expect } from 'vitest'
import type { ParseResult } from '../../../agent/probes/parse-result.ts'

/** Raw OS text captured on a test machine or written by hand, under test/fixtures/os/. */
export const readOsFixture = (name: string): string =>
  readFileSync(new URL(`../../fixtures/os/${name}`, import.meta.url), 'utf8')

/** The success value, failing the test with the parser's reason otherwise. */
export function expectOk<T>(result: ParseResult<T>): T {
  if (!result.ok) expect.fail(`expected a parse, got: ${result.error.reason}`)
  return result.value
}

export function expectFailure<T>(result: ParseResult<T>, reason: RegExp): void {
  expect(result.ok).toBe(false)
  if (!result.ok) {
    expect(result.error.reason).toMatch(reason)
    expect(result.error.probe.length).toBeGreaterThan(0)
  }
}

/**
 * Strings that look a little like OS text: arbitrary unicode, plus lines built from the characters and words
 * these formats use, so the property reaches past the first check of each parser.
 */
export const osTextArbitrary = (words: readonly string[] = []): fc.Arbitrary<string> => {
  const token = fc.oneof(
    fc.constantFrom(
      ...words,
      '=',
      ':',
      ' ',
      '\t',
      '-',
      '/',
      '[',
      ']',
      '(',
      ')',
      '{',
      '}',
      '"',
      ',',
      '0',
      '18446744073709551615',
      'kB',
      '\\040',
    ),
    fc.string({ maxLength: 8 }),
    fc.integer().map(String),
  )
  const line = fc.array(token, { maxLength: 12 }).map((t) => t.join(''))
  return fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 200 }),
    fc.array(line, { maxLength: 20 }).map((l) => l.join('\n')),
  )
}

/**
 * Runs `parse` on many generated strings: it must return a result, never throw, and whatever it accepts must still
 * satisfy `check` (typically the contract's zod schema).
 */
export function assertNeverThrows<T>(
  parse: (text: string) => ParseResult<T>,
  words: readonly string[] = [],
  check?: (value: T) => void,
): void {
  fc.assert(
    fc.property(osTextArbitrary(words), (text) => {
      const result = parse(text)
      expect(typeof result.ok).toBe('boolean')
      if (result.ok) check?.(result.value)
      else expect(result.error.reason.length).toBeGreaterThan(0)
    }),
    { numRuns: 500 },
  )
}
