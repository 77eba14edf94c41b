import { type DispatchDeps, dispatchRemediation, parseAction } from '../../shared/app/fleet/dispatch-remediation.ts'
import { type Observability, withStandardStack } from '../platform/observability.ts'
import { sqsBatch } from '../platform/sqs.ts'

/** `dispatch-remediation`: actions FIFO queue (one group per host) → at most one SSM command per decision. */
export const createDispatchHandler = (deps: DispatchDeps, obs: Observability) =>
  withStandardStack(
    obs,
    sqsBatch(
      obs,
      async (r) => {
        const out = await dispatchRemediation(deps, parseAction(r.body))
        obs.logger.info('action', { messageId: r.messageId, ...out })
        obs.metrics.addMetric(
          `Commands${out.status === 'sent' ? 'Sent' : out.status === 'duplicate' ? 'Duplicate' : 'Refused'}`,
          'Count',
          1,
        )
      },
      { fifo: true },
    ),
  )
