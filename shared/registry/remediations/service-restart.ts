import { z } from 'zod'
import type { RemediationDefinition } from '../types.ts'
import { limitThenEscalate, UnitNameSchema } from './params.ts'

export const ServiceRestartParamsSchema = z
  .object({
    unit: UnitNameSchema.describe('The systemd unit to restart, e.g. nginx.service'),
    waitActiveSeconds: z
      .number()
      .int()
      .min(1)
      .max(300)
      .default(30)
      .describe('How long to wait for the unit to become active again before the fix counts as failed (1..300 s)'),
    respectRestartPolicy: z
      .boolean()
      .default(true)
      .describe(
        'Leave a unit that systemd restarts itself (Restart= set) to systemd until it hits its start limit; the fix is skipped until then',
      ),
  })
  .strict()
export type ServiceRestartParams = z.infer<typeof ServiceRestartParamsSchema>

export const serviceRestartRemediation: RemediationDefinition<typeof ServiceRestartParamsSchema> = {
  id: 'service-restart',
  title: 'Restart a systemd unit',
  description:
    'Restarts a failed or stuck unit with `systemctl restart` and waits until it is active again. A unit that hit its start limit is reset first (`systemctl reset-failed`). With `respectRestartPolicy` (the default), a unit with Restart= set is left to systemd until systemd gives up on it.',
  params: ServiceRestartParamsSchema,
  risk: 'disruptive',
  status: 'available',
  appliesTo: ['service', 'process-memory'],
  defaultGuards: { limit: limitThenEscalate(3, '1h'), cooldown: '2m' },
  bind: {
    service: { param: 'unit', field: 'unit', placeholder: 'example.service' },
    'process-memory': { param: 'unit', field: 'unit', placeholder: 'example.service' },
  },
  ssmDocument: 'ANSAI-RestartService',
  permissions: [
    'systemctl show <unit> (read ActiveState, Restart= and the start-limit result)',
    'systemctl reset-failed <unit> (only when systemd gave up on it)',
    'systemctl restart <unit>',
    'systemctl is-active <unit> (wait for it)',
  ],
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: nginx-down, description: Restart nginx when it is down and systemd gave up on it }
spec:
  observe: service
  match: { unit: nginx.service }
  severity:
    critical: { when: "down && !selfHealing", for: 2 cycles }
  remediate:
    - run: service-restart
      params: { unit: nginx.service, waitActiveSeconds: 60 }
    - escalate: page
  guards:
    limit: { max: 3, within: 1h, then: escalate }
    cooldown: 2m
`,
}
