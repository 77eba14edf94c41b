import {
  BatchProcessor,
  EventType,
  processPartialResponse,
  SqsFifoPartialProcessorAsync,
} from '@aws-lambda-powertools/batch'
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import { countProblem, type Observability } from './observability.ts'

/**
 * An SQS consumer that reports partial batch failures (DESIGN.md rule 7): each record is handled on its own, a record
 * that throws is given back to the queue (and after maxReceiveCount lands in the DLQ, its error logged with its
 * message id here), and the rest of the batch is kept. Records run one after another: reports of one host in the same
 * batch then never race each other. On a FIFO queue, a failure stops its message group (order kept).
 */
export const sqsBatch = (
  obs: Observability,
  handleRecord: (record: SQSRecord) => Promise<void>,
  opts: { fifo?: boolean } = {},
) => {
  const record = async (r: SQSRecord): Promise<void> => {
    try {
      await handleRecord(r)
    } catch (err) {
      obs.logger.error('record failed; it returns to the queue (then the DLQ)', {
        messageId: r.messageId,
        receiveCount: r.attributes.ApproximateReceiveCount,
        error: err as Error,
      })
      countProblem(obs, 'RecordsFailed')
      throw err
    }
  }
  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    opts.fifo
      ? processPartialResponse(event, record, new SqsFifoPartialProcessorAsync(), {
          context,
          skipGroupOnError: true,
          throwOnFullBatchFailure: false,
        })
      : processPartialResponse(event, record, new BatchProcessor(EventType.SQS), {
          context,
          processInParallel: false,
          throwOnFullBatchFailure: false,
        })
}

/** When SQS accepted the message, as ISO-8601. */
export const sentAt = (r: SQSRecord): string => new Date(Number(r.attributes.SentTimestamp)).toISOString()
