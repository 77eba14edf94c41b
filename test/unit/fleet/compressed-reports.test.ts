/**
 * Compressed report bodies: what the agent's SQS sender puts on the reports queue (an `ansai.compressed.v1`
 * envelope around the batch's JSON) and what `ingest-reports` makes of it. Every way a body can be broken is an
 * InvalidReportError whose message says what is wrong (it goes to the DLQ with the message).
 */
import { createHash } from 'node:crypto'
import { brotliCompressSync } from 'node:zlib'
import type { SQSClient } from '@aws-sdk/client-sqs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  reportBody,
  SqsReportSender,
  splitReportBatch,
  sqsMessageBytes,
  toSqsBody,
} from '../../../functions/adapters/sqs-queues.ts'
import { InvalidReportError, parseReports } from '../../../shared/app/fleet/ingest-report.ts'
import {
  type CompressedV1,
  CompressedV1Schema,
  compressJson,
  MAX_UNPACKED_BYTES,
  type ReportBatchV1,
  type ReportV1,
} from '../../../shared/contracts/index.ts'
import { PortError } from '../../../shared/ports/fleet.ts'
import { healthyReport } from '../../bench/fleet-agent.ts'
import { failure } from '../../support/rejection.ts'

const T0 = Date.parse('2026-11-23T10:00:00Z')
/** `n` one-minute reports of one healthy host (the fleet bench's `typical` report: 20 observations). */
const reports = (n: number, firstSeq = 1): ReportV1[] =>
  Array.from({ length: n }, (_, i) => healthyReport(3, i, T0 + i * 60_000, firstSeq + i))
const batchOf = (rs: ReportV1[], reason: ReportBatchV1['reason'] = 'heartbeat'): ReportBatchV1 => ({
  schema: 'ansai.report-batch.v1',
  reason,
  reports: rs,
})

/** Text brotli cannot shrink (hashes in base64): a report with it stays big packed. */
const noise = (seed: string, chars: number): string => {
  let out = ''
  for (let i = 0; out.length < chars; i++) out += createHash('sha512').update(`${seed}:${i}`).digest('base64')
  return out.slice(0, chars)
}
const bulky = (seq: number, chars: number): ReportV1 => {
  const r = healthyReport(3, seq, T0 + seq * 60_000, seq)
  return { ...r, probeErrors: [{ probe: 'custom', reason: noise(String(seq), chars) }] }
}

const envelope = (over: Partial<CompressedV1>): string =>
  JSON.stringify({ ...compressJson('ansai.report-batch.v1', JSON.stringify(batchOf(reports(2)))), ...over })
const brotli = (data: string | Uint8Array): string => brotliCompressSync(data).toString('base64')
const rejection = (body: string): Error => {
  try {
    parseReports(body)
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidReportError)
    return err as Error
  }
  throw new Error('parseReports took a broken body')
}

describe('report bodies: the sender packs, ingest unpacks', () => {
  it('round trip: the sender body of a batch parses back to its reports, sorted by seq', () => {
    const sent = reports(15)
    const shuffled = [sent[7]!, ...sent.slice(0, 7), ...sent.slice(8)]
    const body = reportBody(batchOf(shuffled, 'change'))
    expect(CompressedV1Schema.parse(JSON.parse(body))).toMatchObject({
      schema: 'ansai.compressed.v1',
      encoding: 'br',
      content: 'ansai.report-batch.v1',
    })
    expect(parseReports(body)).toEqual(sent)
  })

  it('the body of a 90-report heartbeat is far below one 64 KiB billing chunk, and smaller than its JSON', () => {
    const batch = batchOf(reports(90))
    const raw = Buffer.byteLength(toSqsBody(batch), 'utf8')
    const body = reportBody(batch)
    expect(raw).toBeGreaterThan(256 * 1024) // today's whole message limit: it would not even fit unpacked
    expect(body.length).toBeLessThan(64 * 1024)
    expect(body.length).toBeLessThan(raw / 20)
    expect(parseReports(body)).toEqual(batch.reports)
  })

  it('a one-report batch packs smaller too; a body that would not shrink stays plain JSON', () => {
    const one = batchOf(reports(1))
    expect(reportBody(one).length).toBeLessThan(Buffer.byteLength(toSqsBody(one), 'utf8'))
    const tiny = batchOf([{ ...reports(1)[0]!, observations: [] }])
    const noisy = batchOf([{ ...bulky(1, 3000), observations: [] }])
    for (const b of [tiny, noisy]) {
      const body = reportBody(b)
      expect(body).toBe(toSqsBody(b))
      expect(parseReports(body)).toEqual(b.reports)
    }
  })

  it('plain JSON bodies (older agents) are still accepted: a batch and a single report', () => {
    const sent = reports(3)
    expect(parseReports(JSON.stringify(batchOf([sent[2]!, sent[0]!, sent[1]!])))).toEqual(sent)
    expect(parseReports(JSON.stringify(sent[0]))).toEqual([sent[0]])
  })

  it('a compressed single report is accepted', () => {
    const [r] = reports(1)
    expect(parseReports(JSON.stringify(compressJson('ansai.report.v1', JSON.stringify(r))))).toEqual([r])
  })
})

describe('a broken compressed body is an InvalidReportError that says what is wrong', () => {
  it('the envelope: data not base64, an unknown encoding or content, an unknown field', () => {
    expect(rejection(envelope({ data: 'G7oBAAQK!tqT' })).message).toBe(
      'message does not match ansai.compressed.v1: envelope.data: not base64 (RFC 4648, standard alphabet, padded)',
    )
    expect(rejection(envelope({ data: 'G7oBAAQ' })).message).toMatch(/envelope\.data: not base64/)
    expect(rejection(envelope({ encoding: 'gzip' as 'br' })).message).toMatch(
      /^message does not match ansai\.compressed\.v1: envelope\.encoding: /,
    )
    expect(rejection(envelope({ content: 'ansai.notification.v1' as 'ansai.report.v1' })).message).toMatch(
      /^message does not match ansai\.compressed\.v1: envelope\.content: /,
    )
    expect(rejection(JSON.stringify({ ...JSON.parse(envelope({})), level: 11 })).message).toMatch(
      /^message does not match ansai\.compressed\.v1: envelope: .*"level"/,
    )
  })

  it('data that is not brotli', () => {
    const err = rejection(envelope({ data: Buffer.from('{"schema":"ansai.report-batch.v1"}').toString('base64') }))
    expect(err.message).toMatch(/^ansai\.compressed\.v1 data is not brotli: /)
    const cut = JSON.parse(envelope({})).data.slice(0, 40)
    expect(rejection(envelope({ data: cut })).message).toMatch(/^ansai\.compressed\.v1 data is not brotli: /)
  })

  it('a zip bomb: a small body that would unpack past the limit is refused', () => {
    const bomb = brotliCompressSync(Buffer.alloc(MAX_UNPACKED_BYTES + 1, 0x20)).toString('base64')
    const body = envelope({ data: bomb })
    expect(body.length).toBeLessThan(1024)
    expect(rejection(body).message).toBe(`ansai.compressed.v1 data is larger than ${MAX_UNPACKED_BYTES} bytes unpacked`)
    // Exactly at the limit is fine as far as unpacking goes (then it is not JSON).
    const full = brotliCompressSync(Buffer.alloc(MAX_UNPACKED_BYTES, 0x20)).toString('base64')
    expect(rejection(envelope({ data: full })).message).toMatch(/is not JSON/)
  })

  it('data that does not unpack to UTF-8', () => {
    expect(rejection(envelope({ data: brotli(Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d)) })).message).toBe(
      'ansai.compressed.v1 data does not unpack to UTF-8 text',
    )
  })

  it('a document inside that is not JSON', () => {
    expect(rejection(envelope({ data: brotli('{"schema":"ansai.report-batch.v1",') })).message).toMatch(
      /^compressed ansai\.report-batch\.v1 is not JSON: /,
    )
  })

  it('a document inside of another schema than its envelope says', () => {
    const [r] = reports(1)
    expect(rejection(envelope({ data: brotli(JSON.stringify(r)) })).message).toBe(
      'compressed ansai.report-batch.v1 has schema "ansai.report.v1", not ansai.report-batch.v1 as its envelope says',
    )
    expect(rejection(envelope({ data: brotli('[1,2]') })).message).toMatch(/has schema undefined, not/)
    const nested = JSON.stringify(compressJson('ansai.report-batch.v1', JSON.stringify(batchOf(reports(1)))))
    expect(rejection(envelope({ data: brotli(nested) })).message).toMatch(/has schema "ansai\.compressed\.v1"/)
  })

  it('a batch inside that does not match ansai.report-batch.v1, at its path', () => {
    const [a, b] = reports(2)
    const bad = { ...batchOf([a!, { ...b!, seq: -1 }]) }
    expect(rejection(envelope({ data: brotli(JSON.stringify(bad)) })).message).toMatch(
      /^compressed message does not match ansai\.report-batch\.v1: batch\.reports\[1\]\.seq: /,
    )
  })

  it('any data at all is taken or refused as an InvalidReportError, never anything else', () => {
    const content = fc.constantFrom('ansai.report-batch.v1', 'ansai.report.v1')
    const packedText = fc.string({ maxLength: 200 }).map((s) => brotli(s))
    const packedBytes = fc.uint8Array({ maxLength: 200 }).map((b) => brotli(b))
    const rawBase64 = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('base64'))
    fc.assert(
      fc.property(content, fc.oneof(packedText, packedBytes, rawBase64, fc.string()), (c, data) => {
        const body = JSON.stringify({ schema: 'ansai.compressed.v1', encoding: 'br', content: c, data })
        try {
          parseReports(body)
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidReportError)
        }
      }),
    )
  })
})

describe('splitting: only when even the packed batch is over the message limit', () => {
  const attributes = (b: ReportBatchV1) => ({
    host: { DataType: 'String', StringValue: b.reports[0]!.host.id },
    seq: { DataType: 'Number', StringValue: String(Math.max(...b.reports.map((r) => r.seq))) },
  })
  const messageBytes = (b: ReportBatchV1): number => sqsMessageBytes({ body: reportBody(b), attributes: attributes(b) })

  it('a 120-report batch is one message', () => {
    const batch = batchOf(reports(120))
    expect(splitReportBatch(batch, 256 * 1024)).toEqual([batch])
  })

  it('a batch too big packed is split in order, every part within the limit, nothing lost', () => {
    const sent = Array.from({ length: 11 }, (_, i) => bulky(i + 1, 40_000 + i * 1000))
    const batch = batchOf(sent, 'spool-full')
    const max = 100_000
    expect(messageBytes(batch)).toBeGreaterThan(max)
    const parts = splitReportBatch(batch, max)
    expect(parts.length).toBeGreaterThan(1)
    expect(parts.flatMap((p) => p.reports)).toEqual(sent)
    for (const p of parts) {
      expect(p).toMatchObject({ schema: 'ansai.report-batch.v1', reason: 'spool-full' })
      expect(messageBytes(p)).toBeLessThanOrEqual(max)
      expect(parseReports(reportBody(p))).toEqual(p.reports)
    }
    // Halving: a part that fit was never split further, so two neighbours never fit together at the first level.
    expect(parts.length).toBeLessThan(sent.length)
  })

  it('packed parts: many small compressible reports under a tiny limit split into packed parts', () => {
    const sent = reports(90)
    const parts = splitReportBatch(batchOf(sent), 1500)
    expect(parts.length).toBeGreaterThan(1)
    expect(parts.flatMap((p) => p.reports)).toEqual(sent)
    for (const p of parts) {
      expect(JSON.parse(reportBody(p)).schema).toBe('ansai.compressed.v1')
      if (p.reports.length > 1) expect(messageBytes(p)).toBeLessThanOrEqual(1500)
    }
  })

  it('a report that fits in no message is refused before anything is sent, naming it', async () => {
    let calls = 0
    const client = {
      send: async () => {
        calls++
        return { Successful: [], Failed: [] }
      },
    } as unknown as SQSClient
    const sender = new SqsReportSender({ client, queueUrl: 'https://sqs.us-east-1.amazonaws.com/1/ansai-reports' })
    const err = await failure(sender.send(batchOf([bulky(1, 1000), bulky(2, 300_000), bulky(3, 1000)])))
    expect(err).toBeInstanceOf(PortError)
    expect(err).toMatchObject({ retryable: false, code: 'MessageTooLarge' })
    expect((err as Error).message).toContain(`reports of host ${bulky(2, 0).host.id} seq 2`)
    expect(calls).toBe(0)
  })
})
