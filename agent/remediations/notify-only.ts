import type { NotifyOnlyParams } from '../../shared/registry/remediations/notify-only.ts'
import type { RemediationExecutor } from './types.ts'

/** notify-only: changes nothing on the host; the step exists so the incident's message says what a human should do. */
export const notifyOnlyExecutor: RemediationExecutor<NotifyOnlyParams> = {
  id: 'notify-only',
  execute: async (params, ctx) => {
    const at = ctx.now().toISOString()
    return {
      result: {
        schema: 'ansai.remediation-result.v1',
        key: ctx.key,
        remediation: 'notify-only',
        status: ctx.dryRun ? 'dry-run' : 'succeeded',
        dryRun: ctx.dryRun,
        startedAt: at,
        finishedAt: at,
        durationMs: 0,
        summary: params.message ?? 'nothing changed: people were told',
        evidence: {},
      },
      audit: [],
    }
  },
}
