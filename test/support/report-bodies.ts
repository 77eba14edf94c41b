import { type ReportBatchV1, ReportBatchV1Schema, unpackCompressed } from '../../shared/contracts/index.ts'

/**
 * A queue message body as the document it carries: the JSON itself, or the document inside an
 * `ansai.compressed.v1` envelope (how the agent's SQS sender packs report batches).
 */
export const documentOfBody = (body: string): unknown => {
  const json = JSON.parse(body) as { schema?: unknown } | null
  return json?.schema === 'ansai.compressed.v1' ? unpackCompressed(json) : json
}

/** A reports-queue message body as the batch it carries, packed or not. */
export const reportBatchOfBody = (body: string): ReportBatchV1 => ReportBatchV1Schema.parse(documentOfBody(body))
