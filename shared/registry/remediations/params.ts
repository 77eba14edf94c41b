import { z } from 'zod'
import { DurationSchema } from '../../contracts/index.ts'
import type { DefaultGuards } from '../types.ts'

/**
 * Building blocks of the remediation params schemas. Every value here ends up in an argv array on a host (never a
 * shell string), and in an SSM parameter checked against an anchored `allowedPattern`; the schemas still refuse
 * anything a shell, an option parser or a path walk could misread, so a policy cannot smuggle one in.
 */

export const UNIT_TYPES = ['service', 'socket', 'timer', 'target', 'mount', 'path'] as const
export type UnitType = (typeof UNIT_TYPES)[number]

/** systemd's own limit (UNIT_NAME_MAX is 256 with the terminating NUL). */
const UNIT_NAME_MAX = 255

/**
 * A systemd unit name of the given types: letters, digits and `@ . _ : -`, starting with a letter, digit or `_`
 * (so never an option such as `--now`), with an explicit type suffix. No slashes, spaces, quotes or `$`; a template
 * without an instance (`getty@.service`) is refused because it cannot be started.
 */
export const unitNameSchema = (types: readonly UnitType[] = UNIT_TYPES) => {
  const pattern = new RegExp(`^[A-Za-z0-9_][A-Za-z0-9@._:-]*\\.(${types.join('|')})$`)
  return z
    .string()
    .min(1)
    .max(UNIT_NAME_MAX)
    .regex(pattern, `a systemd unit name such as nginx.service (type: ${types.join(', ')}); no slashes or spaces`)
    .refine((name) => !/@\.[a-z]+$/.test(name), 'a template unit needs an instance (getty@tty1.service)')
}

/** Any unit type ANSAI may act on. */
export const UnitNameSchema = unitNameSchema()
/** Only `.service` units: the ones with processes to signal, reload or run to completion. */
export const ServiceUnitNameSchema = unitNameSchema(['service'])

const hasControlCharacter = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x20 || code === 0x7f) return true
  }
  return false
}

/**
 * An absolute path in canonical form: starts with `/`, is not `/` itself, has no empty, `.` or `..` segments, no
 * trailing slash, no NUL or other control characters. Canonical so that what the policy says is what the executor
 * walks (`/var/../etc` is refused rather than resolved).
 */
export const AbsolutePathSchema = z
  .string()
  .min(2, 'not / itself')
  .max(4096)
  .regex(/^\//, 'an absolute path (starts with /)')
  .refine((p) => !hasControlCharacter(p), 'no NUL or control characters')
  .refine((p) => !/^\/+$/.test(p), 'not / itself')
  .refine((p) => !p.endsWith('/'), 'no trailing slash (write /var/log, not /var/log/)')
  .refine((p) => !p.includes('//'), 'no empty path segments (//)')
  .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'no . or .. segments')

/** A duration greater than zero, e.g. `30d`. `0d` would mean "everything, now", which no cleanup should mean. */
export const PositiveDurationSchema = DurationSchema.max(32).refine(
  (d) => /[1-9]/.test(d),
  'a duration greater than zero, e.g. 30d',
)

/** `1` to `86400` seconds. */
export const timeoutSecondsSchema = (defaultSeconds: number, maxSeconds = 86_400) =>
  z
    .number()
    .int()
    .min(1)
    .max(maxSeconds)
    .default(defaultSeconds)
    .describe(`How long the executor waits before giving up, in seconds (1..${maxSeconds}, default ${defaultSeconds})`)

/** A default `limit` guard: at most `max` runs `within` a duration, then a human is paged. */
export const limitThenEscalate = (max: number, within: string): NonNullable<DefaultGuards['limit']> => ({
  max,
  within,
  then: 'escalate',
})
