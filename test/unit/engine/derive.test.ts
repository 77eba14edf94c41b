/**
 * What the engine assumes of every probe's derive(): it makes a new, writable object on each call. evaluate() uses
 * that object as the variables of the observation (adding the fields and trend values its policies read) instead of
 * copying it, so a probe that handed out one shared object would mix the values of two observations.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { PROBES } from '../../../shared/registry/probes/index.ts'

const report = JSON.parse(
  readFileSync(new URL('../../fixtures/contracts/v1/report-full.json', import.meta.url), 'utf8'),
) as { observations: { kind: string }[] }

describe('probe derive()', () => {
  it.each(PROBES.map((p) => [p.kind, p] as const))('%s: a new writable object on each call', (kind, probe) => {
    const raw = report.observations.find((o) => o.kind === kind)
    expect(raw, `report-full.json has no '${kind}' observation`).toBeDefined()
    const obs = probe.schema.parse(raw)
    const ctx = { now: Date.parse('2026-11-23T00:00:00Z') }
    const a = probe.derive(obs as never, ctx)
    const b = probe.derive(obs as never, ctx)
    expect(a).not.toBe(b)
    expect(a).toEqual(b)
    expect(Object.isExtensible(a)).toBe(true)
  })
})
