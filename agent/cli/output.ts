/** Small helpers for human and machine output. */

export const printJson = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

/** A plain text table: columns padded to their widest cell, long cells cut with an ellipsis. */
export const formatTable = (
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  maxWidth = 60,
): string => {
  const cut = (s: string) => (s.length > maxWidth ? `${s.slice(0, maxWidth - 1)}…` : s)
  const cells = [headers, ...rows].map((r) => r.map((c) => cut(c)))
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(cells[0]!), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n')
}

/** Errors the user can fix: printed without a stack trace, exit code 2 for usage and 1 otherwise. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** Run a CLI's main: its exit code, or a one-line message and exit 2 for errors a user can fix, a trace otherwise. */
export const runCli = (
  name: string,
  main: (argv: string[]) => Promise<number>,
  userErrors: readonly string[],
): void => {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (err: unknown) => {
      const e = err as { name?: string; message?: string; code?: string }
      if (err instanceof UsageError || userErrors.includes(e?.name ?? '') || e?.code?.startsWith('ERR_PARSE_ARGS')) {
        console.error(`${name}: ${e.message}`)
        process.exitCode = 2
        return
      }
      console.error(err)
      process.exitCode = 1
    },
  )
}
