import { z } from 'zod'
import type { RemediationDefinition } from '../types.ts'
import { limitThenEscalate, ServiceUnitNameSchema, timeoutSecondsSchema } from './params.ts'

export const BackupRetryParamsSchema = z
  .object({
    job: z
      .string()
      .max(128)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a backup job name: letters, digits, . _ and -, e.g. pg-nightly')
      .describe('The backup job, as named in the agent configuration and in backup observations'),
    unit: ServiceUnitNameSchema.optional().describe(
      "The service that runs the backup (started with systemctl start --wait); without it, the job's configured command",
    ),
    timeoutSeconds: timeoutSecondsSchema(3600),
  })
  .strict()
export type BackupRetryParams = z.infer<typeof BackupRetryParamsSchema>

export const backupRetryRemediation: RemediationDefinition<typeof BackupRetryParamsSchema> = {
  id: 'backup-retry',
  title: 'Run a backup again',
  description:
    'Runs a stale or failed backup job once more and waits for it, then re-collects the backup observation so the new artifact (age, size, integrity) confirms the fix. A job already running is not started twice.',
  params: BackupRetryParamsSchema,
  risk: 'safe',
  status: 'available',
  appliesTo: ['backup'],
  defaultGuards: { limit: limitThenEscalate(2, '1d'), cooldown: '1h' },
  bind: { backup: { param: 'job', field: 'job', placeholder: 'example' } },
  ssmDocument: 'ANSAI-RetryBackup',
  permissions: [
    'systemctl start --wait <unit> (with unit)',
    "run the job's configured command, as its configured user (without unit)",
    "read the job's artifact directory",
  ],
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: pg-backup-stale }
spec:
  observe: backup
  match: { job: pg-nightly }
  severity:
    critical: { when: "ageHours > 26.0 || integrityFailed" }
  remediate:
    - run: backup-retry
      params: { job: pg-nightly, unit: pg-backup.service, timeoutSeconds: 7200 }
    - escalate: page
`,
}
