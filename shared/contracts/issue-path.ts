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
