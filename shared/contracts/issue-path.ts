/** `probes.backups[0].dir`, `notifications["ops email"].to[1]`: where in a document a zod issue is. */
export const formatIssuePath = (base: string, path: readonly PropertyKey[]): string =>
  path.reduce<string>(
    (acc, p) =>
      typeof p === 'number'
        ? `${acc}[${p}]`
        : /^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(p))
          ? `${acc}.${String(p)}`
          : `${acc}[${JSON.stringify(String(p))}]`,
    base,
  )

/** The first `max` issues of a failed parse, `path: message; path: message`, for one-line errors. */
export const formatIssues = (
  base: string,
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  max = 5,
): string =>
  issues
    .slice(0, max)
    .map((i) => `${formatIssuePath(base, i.path)}: ${i.message}`)
    .join('; ')
