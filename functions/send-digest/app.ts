import { type DigestDeps, sendDigest } from '../../shared/app/fleet/send-digest.ts'
import { type Observability, withStandardStack } from '../platform/observability.ts'

/** `send-digest`, daily: the fleet's summary of the last 24 hours, queued for `send-notifications`. */
export const createSendDigestHandler = (deps: DigestDeps, obs: Observability) =>
  withStandardStack(obs, async () => {
    const messages = await sendDigest(deps)
    obs.logger.info('digest queued', { messages: messages.map((m) => m.id) })
    return { queued: messages.length }
  })
