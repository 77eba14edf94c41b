import type { SQSEvent } from 'aws-lambda'
import { z } from 'zod'
import { evaluateShard, planRound, type ShardDeps } from '../../shared/app/fleet/evaluate-fleet.ts'
import type { EvaluationQueue } from '../../shared/ports/fleet.ts'
import { countActivity, countProblem, type Observability, withStandardStack } from '../platform/observability.ts'
import { sqsBatch } from '../platform/sqs.ts'

export interface EvaluateFleetDeps extends ShardDeps {
  evaluations: EvaluationQueue
  shards: number
}

const TaskSchema = z.strictObject({
  shard: z.number().int().nonnegative(),
  of: z.number().int().positive(),
  at: z.iso.datetime({ offset: true }),
})
/** What the schedule sends (its input may carry Scheduler's `<aws.scheduler.scheduled-time>`). */
const ScheduleSchema = z.object({ scheduledTime: z.iso.datetime({ offset: true }).optional() })

const isSqs = (event: unknown): event is SQSEvent =>
  Array.isArray((event as SQSEvent | undefined)?.Records) &&
  (event as SQSEvent).Records.every((r) => r.eventSource === 'aws:sqs')

/**
 * `evaluate-fleet`, two triggers, one function: the schedule plans a round (one message per shard), and the
 * evaluations queue evaluates one shard per message.
 */
export const createEvaluateFleetHandler = (deps: EvaluateFleetDeps, obs: Observability) => {
  const shard = sqsBatch(obs, async (r) => {
    const out = await evaluateShard(deps, TaskSchema.parse(JSON.parse(r.body)))
    obs.logger.info('shard evaluated', { messageId: r.messageId, ...out, silent: out.silent.slice(0, 20) })
    countActivity(obs, 'HostsEvaluated', out.hosts)
    countProblem(obs, 'SilentHosts', out.silent.length)
  })
  return withStandardStack(obs, async (event: unknown, context) => {
    if (isSqs(event)) return shard(event, context)
    const at = ScheduleSchema.parse(event ?? {}).scheduledTime ?? deps.clock().toISOString()
    const tasks = await planRound(deps, at)
    obs.logger.info('round planned', { at, shards: tasks.length })
    return { shards: tasks.length, at }
  })
}
