import type { EventBridgeEvent } from 'aws-lambda'
import { z } from 'zod'
import { type RecordResultDeps, recordCommandResult } from '../../shared/app/fleet/record-command-result.ts'
import { countActivity, countProblem, type Observability, withStandardStack } from '../platform/observability.ts'

/** The detail of SSM's "EC2 Command Invocation Status-change Notification" (only what is used). */
const DetailSchema = z.object({
  'command-id': z.string().min(1),
  'instance-id': z.string().min(1),
  status: z.string().min(1),
  'document-name': z.string().min(1),
})

/**
 * `record-command-result`: an ANSAI command finished on a host → its result is stored and the host evaluated, so the
 * incident moves to verifying. A throw makes EventBridge retry the event (then its DLQ).
 */
export const createRecordCommandResultHandler = (deps: RecordResultDeps, obs: Observability) =>
  withStandardStack(obs, async (event: EventBridgeEvent<string, unknown>) => {
    const d = DetailSchema.parse(event.detail)
    const out = await recordCommandResult(deps, {
      commandId: d['command-id'],
      host: d['instance-id'],
      status: d.status,
      document: d['document-name'],
    })
    obs.logger.info('command status', { commandId: d['command-id'], ...out })
    if (out.status === 'recorded') {
      // A failed fix is a problem; succeeded, skipped (nothing to do) and dry runs are activity.
      if (out.result === 'failed') countProblem(obs, 'Fix_failed')
      else countActivity(obs, `Fix_${out.result}`)
    }
    return out
  })
