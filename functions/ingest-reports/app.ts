import { type IngestDeps, ingestReport } from '../../shared/app/fleet/ingest-report.ts'
import { countActivity, countProblem, type Observability, withStandardStack } from '../platform/observability.ts'
import { sentAt, sqsBatch } from '../platform/sqs.ts'

/** `ingest-reports`: reports queue → evaluate each host against its stored state → actions, messages, events. */
export const createIngestHandler = (deps: IngestDeps, obs: Observability) =>
  withStandardStack(
    obs,
    sqsBatch(obs, async (r) => {
      const out = await ingestReport(deps, {
        body: r.body,
        senderId: r.attributes.SenderId,
        messageId: r.messageId,
        receivedAt: sentAt(r),
      })
      if (out.status === 'rejected') obs.logger.warn('report rejected', { messageId: r.messageId, ...out })
      else obs.logger.debug('report', out)
      if (out.status === 'rejected') countProblem(obs, 'ReportsRejected')
      else {
        countActivity(obs, 'ReportsIngested')
        countActivity(obs, 'Decisions', out.decisions)
      }
    }),
  )
