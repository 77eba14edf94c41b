/**
 * The README's generated tables (observation kinds and their variables; remediations), made from the registries so
 * the docs cannot drift: test/unit/readme.test.ts fails when the README differs. Rewrite with
 * `npx tsx test/support/readme-tables.ts --write && npx biome format --write README.md`.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { HOST_SIGNAL_VARIABLES, variablesOf } from '../../shared/engine/expressions.ts'
import { PROBES } from '../../shared/registry/probes/index.ts'
import { REMEDIATIONS } from '../../shared/registry/remediations/index.ts'

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')

export const kindsTable = (): string => {
  const rows = PROBES.map((p) => {
    const vars = variablesOf(p)
    const own = [...vars.keys()].filter((k) => !(k in p.derived) && k !== p.trend?.eta.name && k !== p.trend?.rate.name)
    const derived = Object.keys(p.derived)
    const trend = p.trend ? [p.trend.eta.name, p.trend.rate.name] : []
    return `| \`${p.kind}\` | ${p.identity.length ? p.identity.map((f) => `\`${f}\``).join(' + ') : '(one per host)'} | ${own.map((v) => `\`${v}\``).join(', ')} | ${[...new Set([...derived, ...trend])].map((v) => `\`${v}\``).join(', ') || '—'} | ${p.schedule === 'slow' ? 'slow, cached' : 'every cycle'}${p.timeBased ? ', re-evaluated on ticks' : ''} |`
  })
  rows.push(
    `| \`host\` | (the host) | — | ${[...HOST_SIGNAL_VARIABLES.keys()].map((v) => `\`${v}\``).join(', ')} | engine's own signal |`,
  )
  return [
    '| observe | resource | fields | derived values | schedule |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n')
}

export const remediationsTable = (): string => {
  const rows = REMEDIATIONS.map((r) => {
    const params = Object.keys((r.params as unknown as { shape: object }).shape)
    const binds = Object.entries(r.bind ?? {})
      .map(([kind, b]) => `\`${b?.param}\` ← ${kind}.\`${b?.field}\``)
      .join(', ')
    return `| \`${r.id}\` | ${cell(r.title)} | ${r.risk}${r.riskOf ? ' (per use)' : ''} | ${r.status} | ${params.map((p) => `\`${p}\``).join(', ')} | ${binds || '—'} | ${r.ssmDocument ? `\`${r.ssmDocument}\`` : '—'} |`
  })
  return [
    '| run | what it does | risk | status | params | filled from the resource | SSM document |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n')
}

const SECTIONS: Record<string, () => string> = { kinds: kindsTable, remediations: remediationsTable }

/** The README with every generated section replaced by what the registries say now. */
export const renderReadme = (readme: string): string =>
  Object.entries(SECTIONS).reduce(
    (text, [name, make]) =>
      text.replace(
        new RegExp(`(<!-- generated:${name} -->\\n)[\\s\\S]*?(<!-- /generated:${name} -->)`),
        (_, open: string, close: string) => `${open}${make()}\n${close}`,
      ),
    readme,
  )

if (process.argv.includes('--write')) {
  const path = new URL('../../README.md', import.meta.url)
  writeFileSync(path, renderReadme(readFileSync(path, 'utf8')))
  console.log('README tables rewritten')
}
