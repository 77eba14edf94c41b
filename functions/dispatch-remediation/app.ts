import { type DispatchDeps, dispatchRemediation, parseAction } from '../../shared/app/fleet/dispatch-remediation.ts'
import { countActivity, countProblem, type Observability, withStandardStack } from '../platform/observability.ts'
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
        if (out.status === 'sent') countActivity(obs, 'CommandsSent')
        else if (out.status === 'duplicate') countActivity(obs, 'CommandsDuplicate')
        else countProblem(obs, 'CommandsRefused')
      },
      { fifo: true },
    ),
  )
