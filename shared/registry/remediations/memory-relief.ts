import { z } from 'zod'
import type { RemediationDefinition } from '../types.ts'
import { limitThenEscalate, ServiceUnitNameSchema } from './params.ts'

/** Signals a service may be asked to free memory with (drop caches, reopen, trim); never one that kills. */
export const MEMORY_RELIEF_SIGNALS = ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const

export const MemoryReliefParamsSchema = z
  .object({
    unit: ServiceUnitNameSchema.describe('The service whose memory to relieve, e.g. app.service'),
    signal: z
      .enum(MEMORY_RELIEF_SIGNALS)
      .optional()
      .describe("Send this signal to the unit's main process first (systemctl kill --kill-whom=main --signal=...)"),
    reload: z.boolean().default(false).describe('Run `systemctl reload <unit>` first'),
    restartIfStillAbovePercent: z
      .number()
      .min(1)
      .max(100)
      .optional()
      .describe(
        'After the signal or reload, restart the unit if its memory is still above this share of its limit (usedPercentOfLimit, 1..100)',
      ),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.restartIfStillAbovePercent !== undefined && p.signal === undefined && !p.reload) {
      ctx.addIssue({
        code: 'custom',
        path: ['restartIfStillAbovePercent'],
        message:
          'only with signal or reload: without either the unit is restarted at once, so there is nothing to measure first',
      })
    }
  })
export type MemoryReliefParams = z.infer<typeof MemoryReliefParamsSchema>

export const memoryReliefRemediation: RemediationDefinition<typeof MemoryReliefParamsSchema> = {
  id: 'memory-relief',
  title: "Relieve a service's memory",
  description:
    'Gently first: sends the signal and/or reloads the unit when asked to, then restarts it only if its memory is still above restartIfStillAbovePercent of its limit. With neither a signal nor a reload, the unit is restarted at once (the cure for a leak).',
  params: MemoryReliefParamsSchema,
  risk: 'disruptive',
  status: 'available',
  appliesTo: ['process-memory', 'memory'],
  defaultGuards: { limit: limitThenEscalate(2, '1h'), cooldown: '15m' },
  bind: { 'process-memory': { param: 'unit', field: 'unit', placeholder: 'example.service' } },
  ssmDocument: 'ANSAI-RelieveMemory',
  permissions: [
    'systemctl kill --kill-whom=main --signal=<signal> <unit>',
    'systemctl reload <unit>',
    'systemctl restart <unit>',
    "read the unit's cgroup memory.current and memory.max",
  ],
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: app-memory-leak }
spec:
  observe: process-memory
  match: { unit: app.service }
  trend: { window: 30m, minSamples: 5 }
  severity:
    warning: { when: "usedPercentOfLimit >= 80.0" }
    critical: { when: "minutesToOom < 60.0 || usedPercentOfLimit >= 95.0", for: 2 cycles }
  remediate:
    - at: critical
      run: memory-relief
      params: { unit: app.service, signal: SIGUSR1, restartIfStillAbovePercent: 90 }
    - escalate: page
`,
}
