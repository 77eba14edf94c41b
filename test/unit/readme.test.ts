import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parseAgentConfig } from '../../agent/config/config.ts'
import { formatPolicyError, loadPolicies } from '../../shared/policy/load.ts'
import { renderReadme } from '../support/readme-tables.ts'

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

/** Every ```yaml block of the README that is a policy document. */
const policyBlocks = (): { line: number; text: string }[] => {
  const blocks: { line: number; text: string }[] = []
  const re = /```yaml\n([\s\S]*?)```/g
  for (let m = re.exec(README); m; m = re.exec(README)) {
    const text = m[1] ?? ''
    if (/^kind: Policy$/m.test(text) && /^spec:/m.test(text)) {
      blocks.push({ line: README.slice(0, m.index).split('\n').length + 1, text })
    }
  }
  return blocks
}

describe('README', () => {
  it('has its generated tables up to date with the registries', () => {
    // Biome pads Markdown tables: compare cell by cell.
    const cells = (text: string) =>
      text
        .split('\n')
        .map((l) =>
          l.startsWith('|')
            ? l
                .split(/(?<!\\)\|/)
                .map((c) => c.trim().replace(/^-{3,}$/, '---'))
                .join('|')
            : l,
        )
        .join('\n')
    expect(
      cells(renderReadme(README)),
      'run: npx tsx test/support/readme-tables.ts --write && npx biome format --write README.md',
    ).toBe(cells(README))
  })

  it('has policy examples, and every one loads', () => {
    const blocks = policyBlocks()
    expect(blocks.length).toBeGreaterThanOrEqual(1)
    for (const b of blocks) {
      const { errors, policies } = loadPolicies([{ file: `README.md:${b.line}`, text: b.text }], { allowPlanned: true })
      expect(errors.map(formatPolicyError)).toEqual([])
      expect(policies.length).toBeGreaterThan(0)
    }
  })

  it('has a configuration example that loads', () => {
    const blocks = [...README.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .map((m) => m[1] ?? '')
      .filter((t) => /^probes:/m.test(t))
    expect(blocks.length).toBe(1)
    const config = parseAgentConfig(blocks[0]!, 'README.md')
    expect(config.probes.services.units).toEqual(['nginx.service', 'app-*.service'])
    expect(Object.keys(config.notifications.channels)).toEqual(['ops-email', 'hooks'])
  })

  it('has a host fleet: example that loads', () => {
    const blocks = [...README.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .map((m) => m[1] ?? '')
      .filter((t) => /^fleet:/m.test(t))
    expect(blocks.length).toBe(1)
    const config = parseAgentConfig(blocks[0]!, 'README.md')
    expect(config.fleet?.reportsQueueUrl).toMatch(/^https:\/\/sqs\./)
    expect(config.fleet?.heartbeat).toBe('15m')
  })

  it('starts with the two set-up commands', () => {
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(README)?.[1] ?? ''
    expect(firstBlock).toMatch(/^npm install && npm start/m)
    expect(firstBlock).toMatch(/^npm test/m)
  })
})
