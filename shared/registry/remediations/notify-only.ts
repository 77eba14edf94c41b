import { z } from 'zod'
import type { RemediationDefinition } from '../types.ts'

export const NotifyOnlyParamsSchema = z
  .object({
    message: z
      .string()
      .min(1)
      .max(500)
      .optional()
      .describe('A line for the people notified, e.g. what to check first; the evidence is attached either way'),
  })
  .strict()
export type NotifyOnlyParams = z.infer<typeof NotifyOnlyParamsSchema>

export const notifyOnlyRemediation: RemediationDefinition<typeof NotifyOnlyParamsSchema> = {
  id: 'notify-only',
  title: 'Tell people, change nothing',
  description:
    'A ladder step that runs nothing on the host: it notifies the policy channels with the message and the evidence, and moves the incident to the next step. For problems a human must fix.',
  params: NotifyOnlyParamsSchema,
  risk: 'safe',
  status: 'available',
  appliesTo: ['*'],
  defaultGuards: { cooldown: '1h' },
  ssmDocument: null,
  permissions: [],
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: security-updates-waiting }
spec:
  observe: packages
  severity:
    warning: { when: "security > 0", for: 3 cycles }
    critical: { when: "security > 10 || rebootRequired" }
  remediate:
    - at: critical
      run: notify-only
      params: { message: "Security updates are waiting: plan a maintenance window" }
    - escalate: page
  notify: [ops-email]
`,
}
