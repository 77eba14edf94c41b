import { type IngestDeps, ingestReport } from '../../shared/app/fleet/ingest-report.ts'
import type { Observability } from '../platform/observability.ts'
import { withStandardStack } from '../platform/observability.ts'
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
      obs.metrics.addMetric(out.status === 'rejected' ? 'ReportsRejected' : 'ReportsIngested', 'Count', 1)
      if (out.status !== 'rejected' && out.decisions > 0) obs.metrics.addMetric('Decisions', 'Count', out.decisions)
    }),
  )
