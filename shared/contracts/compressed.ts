import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants } from 'node:zlib'
import { z } from 'zod'
import { formatIssues } from './issue-path.ts'

/**
 * The most bytes a compressed document may unpack to. A 120-report batch (the most a batch holds) of a typical host
 * is ~400 KB of JSON; unpacking stops at this limit and the message is refused (a few dozen bytes of brotli can
 * unpack to gigabytes).
 */
export const MAX_UNPACKED_BYTES = 8 * 1024 * 1024

/** SQS takes at most 1 MiB per message body, so `data` is never longer. */
const MAX_DATA_CHARS = 1024 * 1024

/** The documents that travel compressed: what an agent puts on the reports queue. */
export const COMPRESSED_CONTENTS = ['ansai.report-batch.v1', 'ansai.report.v1'] as const

/**
 * Compressed v1: one contract document, compressed, as one small JSON object (a queue message body stays text).
 * The agent sends its report batches this way: one host's reports repeat themselves, so brotli takes a 90-report
 * batch from ~290 KB to a few KB, and SQS bills each request per 64 KB. Readers also take the document as plain
 * JSON (older agents send it so).
 */
export const CompressedV1Schema = z
  .object({
    schema: z.literal('ansai.compressed.v1'),
    /** How `data` is compressed: `br` is brotli (RFC 7932). The only one for now. */
    encoding: z.enum(['br']),
    /** The schema of the document inside (its own `schema` field must say the same). */
    content: z.enum(COMPRESSED_CONTENTS),
    /** The document's UTF-8 JSON, compressed, in base64 (RFC 4648 §4, the standard alphabet, padded). */
    data: z.base64('not base64 (RFC 4648, standard alphabet, padded)').min(1).max(MAX_DATA_CHARS),
  })
  .strict()
export type CompressedV1 = z.infer<typeof CompressedV1Schema>
export type CompressedContent = CompressedV1['content']

/** A compressed document that cannot be unpacked; the message says why. */
export class CompressedDataError extends Error {
  override readonly name = 'CompressedDataError'
}

/**
 * `json` (the document of schema `content`, as JSON text) as a compressed envelope. Quality 5 packs a typical
 * host's 90-report batch (293 KB) to ~1.5 KB in ~1 ms; quality 11 saves another 10 % at 40 times the time.
 */
export const compressJson = (content: CompressedContent, json: string, quality = 5): CompressedV1 => {
  const bytes = Buffer.from(json, 'utf8')
  const packed = brotliCompressSync(bytes, {
    params: {
      [zlibConstants.BROTLI_PARAM_MODE]: zlibConstants.BROTLI_MODE_TEXT,
      [zlibConstants.BROTLI_PARAM_QUALITY]: quality,
      [zlibConstants.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength,
    },
  })
  return { schema: 'ansai.compressed.v1', encoding: 'br', content, data: packed.toString('base64') }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The JSON text inside an envelope (parsed by {@link CompressedV1Schema}, so `data` is base64). Throws a
 * {@link CompressedDataError} when `data` is not brotli, unpacks to more than `maxBytes`, or is not UTF-8.
 */
export const decompressJson = (envelope: CompressedV1, maxBytes = MAX_UNPACKED_BYTES): string => {
  const packed = Buffer.from(envelope.data, 'base64')
  let bytes: Buffer
  try {
    bytes = brotliDecompressSync(packed, { maxOutputLength: maxBytes })
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new CompressedDataError(`data is larger than ${maxBytes} bytes unpacked`, { cause: err })
    }
    throw new CompressedDataError(`data is not brotli: ${(err as Error).message}`, { cause: err })
  }
  try {
    return utf8.decode(bytes)
  } catch (err) {
    throw new CompressedDataError('data does not unpack to UTF-8 text', { cause: err })
  }
}

/**
 * The document inside a compressed envelope, as parsed JSON (not yet checked against its own schema: the reader
 * does that). `value` is the message as parsed JSON, `{"schema":"ansai.compressed.v1",...}`. Throws a
 * {@link CompressedDataError} that says what is wrong: the envelope itself, `data` (not brotli, too big unpacked, not
 * UTF-8), a document that is not JSON, or one of another schema than `content`.
 */
export const unpackCompressed = (value: unknown, maxBytes = MAX_UNPACKED_BYTES): unknown => {
  const envelope = CompressedV1Schema.safeParse(value)
  if (!envelope.success) {
    throw new CompressedDataError(
      `message does not match ansai.compressed.v1: ${formatIssues('envelope', envelope.error.issues)}`,
    )
  }
  const { content } = envelope.data
  let text: string
  try {
    text = decompressJson(envelope.data, maxBytes)
  } catch (err) {
    if (!(err instanceof CompressedDataError)) throw err
    throw new CompressedDataError(`ansai.compressed.v1 ${err.message}`, { cause: err })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new CompressedDataError(`compressed ${content} is not JSON: ${(err as Error).message}`, { cause: err })
  }
  const schema = (json as { schema?: unknown } | null)?.schema
  if (schema !== content) {
    throw new CompressedDataError(
      `compressed ${content} has schema ${JSON.stringify(schema) ?? 'undefined'}, not ${content} as its envelope says`,
    )
  }
  return json
}
