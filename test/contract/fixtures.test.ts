/**
 * Contract fixtures: JSON documents as they travel between agent, control plane and people.
 *
 * Contracts are versioned: every fixture ever committed under v1/ must still parse. Never edit or delete a past
 * fixture to make a schema change pass; a change that breaks one needs a new version (v2 schemas, v2 fixtures).
 * Add a fixture when a contract gains a field.
 *
 * The schema is chosen by the file-name prefix (the longest matching prefix wins).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { z } from 'zod'
import {
  CompressedV1Schema,
  DecisionSchema,
  IncidentSchema,
  NotificationV1Schema,
  OBSERVATION_KINDS,
  RemediationRequestV1Schema,
  RemediationResultV1Schema,
  ReportBatchV1Schema,
  ReportV1Schema,
  unpackCompressed,
} from '../../shared/contracts/index.ts'

const SCHEMAS_BY_PREFIX: Record<string, z.ZodType> = {
  'report-': ReportV1Schema,
  'report-batch-': ReportBatchV1Schema,
  'remediation-request': RemediationRequestV1Schema,
  'remediation-result': RemediationResultV1Schema,
  notification: NotificationV1Schema,
  'decision-': DecisionSchema,
  incident: IncidentSchema,
  compressed: CompressedV1Schema,
}

const schemaFor = (file: string): z.ZodType => {
  const prefix = Object.keys(SCHEMAS_BY_PREFIX)
    .filter((p) => file.startsWith(p))
    .sort((a, b) => b.length - a.length)[0]
  if (!prefix)
    throw new Error(
      `${file}: no schema for this file-name prefix; use one of ${Object.keys(SCHEMAS_BY_PREFIX).join(', ')}`,
    )
  return SCHEMAS_BY_PREFIX[prefix]!
}

const dir = (name: string): string => fileURLToPath(new URL(`../fixtures/contracts/${name}/`, import.meta.url))
const jsonFiles = (name: string): string[] =>
  readdirSync(dir(name))
    .filter((f) => f.endsWith('.json'))
    .sort()
const load = (name: string, file: string): unknown => JSON.parse(readFileSync(`${dir(name)}${file}`, 'utf8'))

const V1 = jsonFiles('v1')
const INVALID = jsonFiles('invalid')

describe('v1 contract fixtures parse', () => {
  it.each(V1)('%s', (file) => {
    const result = schemaFor(file).safeParse(load('v1', file))
    expect(result.error?.issues ?? [], `${file} no longer parses`).toEqual([])
  })

  it('cover every contract', () => {
    for (const prefix of Object.keys(SCHEMAS_BY_PREFIX)) {
      expect(
        V1.some((f) => f.startsWith(prefix)),
        `no v1 fixture for ${prefix}`,
      ).toBe(true)
    }
  })

  it('report-full.json carries every observation kind', () => {
    const report = ReportV1Schema.parse(load('v1', 'report-full.json'))
    expect(new Set(report.observations.map((o) => o.kind))).toEqual(new Set(OBSERVATION_KINDS))
  })

  it('there is a decision fixture of each type', () => {
    const types = V1.filter((f) => f.startsWith('decision-')).map((f) => DecisionSchema.parse(load('v1', f)).type)
    expect(new Set(types)).toEqual(new Set(DecisionSchema.options.map((o) => o.shape.type.value)))
  })

  it('each compressed fixture unpacks to a document of the schema its envelope names', () => {
    const compressed = V1.filter((f) => f.startsWith('compressed'))
    for (const f of compressed) {
      const envelope = CompressedV1Schema.parse(load('v1', f))
      const inner = unpackCompressed(envelope)
      const schema = envelope.content === 'ansai.report-batch.v1' ? ReportBatchV1Schema : ReportV1Schema
      expect(schema.safeParse(inner).error?.issues ?? [], `${f}: its document no longer parses`).toEqual([])
    }
    expect(ReportBatchV1Schema.parse(unpackCompressed(load('v1', 'compressed-report-batch.json')))).toEqual(
      ReportBatchV1Schema.parse(load('v1', 'report-batch-heartbeat.json')),
    )
  })

  it('the disk-cleanup result reports bytes recovered per category', () => {
    const result = RemediationResultV1Schema.parse(load('v1', 'remediation-result-disk-cleanup.json'))
    expect(result.remediation).toBe('disk-cleanup')
    expect(Object.keys(result.bytesRecovered ?? {}).length).toBeGreaterThan(0)
  })
})

/**
 * Each invalid fixture is a valid document with exactly one breach, so the schema must report exactly one issue,
 * at the expected path and with the expected code.
 */
const EXPECTED_FAILURES: Record<string, { path: (string | number)[]; code: string; keys?: string[] }> = {
  'report-unknown-observation-key.json': { path: ['observations', 0], code: 'unrecognized_keys', keys: ['cpuPercent'] },
  'report-negative-bytes.json': { path: ['observations', 0, 'bytesUsed'], code: 'too_small' },
  'report-bad-timestamp.json': { path: ['time'], code: 'invalid_format' },
  'report-unknown-kind.json': { path: ['observations', 0, 'kind'], code: 'invalid_union' },
  'report-missing-host-id.json': { path: ['host', 'id'], code: 'invalid_type' },
  'remediation-result-negative-bytes.json': { path: ['bytesRecovered', 'logs'], code: 'too_small' },
  'decision-unknown-type.json': { path: ['type'], code: 'invalid_union' },
  'notification-bad-timestamp.json': { path: ['at'], code: 'invalid_format' },
  'report-batch-mixed-hosts.json': { path: ['reports'], code: 'custom' },
  'compressed-not-base64.json': { path: ['data'], code: 'invalid_format' },
  'compressed-unknown-encoding.json': { path: ['encoding'], code: 'invalid_value' },
}

describe('invalid contract fixtures fail at the expected path', () => {
  it('every invalid fixture has an expectation, and every expectation a fixture', () => {
    expect(INVALID).toEqual(Object.keys(EXPECTED_FAILURES).sort())
  })

  it.each(INVALID)('%s', (file) => {
    const expected = EXPECTED_FAILURES[file]
    if (!expected) throw new Error(`${file}: add its expected path to EXPECTED_FAILURES`)
    const result = schemaFor(file).safeParse(load('invalid', file))
    expect(result.success, `${file} parsed, but it must fail`).toBe(false)
    const issues = result.error?.issues ?? []
    expect(issues.map((i) => ({ path: i.path, code: i.code }))).toEqual([{ path: expected.path, code: expected.code }])
    if (expected.keys) expect(issues[0]).toMatchObject({ keys: expected.keys })
  })
})
