import { splitLines } from '../probes/parse-result.ts'
import { type CollectContext, cEnvironment, commandFailure, errnoOf, fsReason, spawnFailure } from './context.ts'

/** systemctl answers in milliseconds; 10 s means the manager is stuck. */
export const SYSTEMCTL_TIMEOUT_MS = 10_000

/**
 * Why systemd's units cannot be observed here, or undefined when they can. systemd creates /run/systemd/system
 * when it boots as the init system (what `sd_booted()` checks), so this costs one stat, not a process.
 */
export async function systemdUnavailable(ctx: CollectContext): Promise<string | undefined> {
  try {
    const s = await ctx.fs.stat('/run/systemd/system')
    return s.isDirectory ? undefined : 'systemd is not the init system here (/run/systemd/system is not a directory)'
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') {
      return 'systemd is not the init system (PID 1) here: no /run/systemd/system, so units cannot be observed'
    }
    return `cannot tell whether systemd runs: ${fsReason('/run/systemd/system', err)}`
  }
}

export type CommandText = { ok: true; stdout: string } | { ok: false; reason: string }

/** `systemctl <args>` with the C locale and no pager; its stdout, or why not. */
export async function systemctl(ctx: CollectContext, args: readonly string[]): Promise<CommandText> {
  const env = { ...cEnvironment(ctx.env), SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0' }
  let result: Awaited<ReturnType<CollectContext['run']>>
  try {
    result = await ctx.run('systemctl', args, {
      timeoutMs: SYSTEMCTL_TIMEOUT_MS,
      env,
      maxOutputBytes: 16 * 1024 * 1024,
    })
  } catch (err) {
    return { ok: false, reason: spawnFailure('systemctl', err) }
  }
  const failure = commandFailure(`systemctl ${args[0] ?? ''}`.trim(), result)
  if (failure) return { ok: false, reason: failure }
  if (result.truncated) return { ok: false, reason: `systemctl ${args[0] ?? ''} printed more than 16 MiB` }
  return { ok: true, stdout: result.stdout }
}

/**
 * `systemctl list-units --plain --no-legend --full` → unit names (the first column). Some versions still mark a
 * failed unit with `●` or `*` before its name; that mark is dropped.
 */
export function parseListUnits(text: string): string[] {
  const units: string[] = []
  for (const line of splitLines(text)) {
    const fields = line.trim().split(/\s+/)
    const first = fields[0] === '●' || fields[0] === '*' ? fields[1] : fields[0]
    if (first && /^[A-Za-z0-9_][A-Za-z0-9@._:\\-]*\.[a-z]+$/.test(first)) units.push(first)
  }
  return units
}

/** `systemctl show` output → one `Key → Value` map per unit block (blank-line separated). */
export function parseShowBlocks(text: string): Map<string, string>[] {
  const blocks: Map<string, string>[] = []
  let current: Map<string, string> | undefined
  for (const line of splitLines(text)) {
    const eq = line.indexOf('=')
    if (line.trim() === '' || eq <= 0) {
      current = undefined
      continue
    }
    if (!current) {
      current = new Map()
      blocks.push(current)
    }
    current.set(line.slice(0, eq), line.slice(eq + 1))
  }
  return blocks
}

/** Units in first-seen order, without repeats. */
export const uniqueUnits = (units: readonly string[]): string[] => [...new Set(units)]
