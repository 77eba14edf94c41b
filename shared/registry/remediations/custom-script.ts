import { z } from 'zod'
import { RiskSchema } from '../../contracts/index.ts'
import type { RemediationDefinition } from '../types.ts'
import { limitThenEscalate, timeoutSecondsSchema } from './params.ts'

/** Where the agent looks for operator scripts; the executor resolves `script` to `<ACTIONS_DIR>/<script>` only. */
export const CUSTOM_SCRIPT_ACTIONS_DIR = '/etc/ansai/actions'

/**
 * One argument. Arguments go to the script as an argv array, never through a shell, but scripts are often shell
 * scripts that expand `$1` unquoted, so only characters no shell treats specially are accepted: letters, digits and
 * `. _ : / = @ % + , -`. That refuses spaces, quotes, backticks, `$`, `;`, `|`, `&`, `<`, `>`, globs (`* ? [ ]`),
 * braces, `~`, `!`, `#`, backslashes and newlines. An argument may not start with `-` (no option injection: pass
 * `mode=fast`, not `--mode=fast`) and may not hold a `..` path segment.
 */
export const CustomScriptArgSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(
    /^[A-Za-z0-9._:/=@%+,][A-Za-z0-9._:/=@%+,-]*$/,
    'letters, digits and . _ : / = @ % + , - only, not starting with -',
  )
  .refine((a) => !a.split('/').includes('..'), 'no .. path segments')

export const CustomScriptParamsSchema = z
  .object({
    script: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'a script name such as drain-queue: lowercase letters, digits, _ and -')
      .describe(
        `The name of an executable the operator placed in ${CUSTOM_SCRIPT_ACTIONS_DIR} on the host; a name, never a path or a command`,
      ),
    args: z
      .array(CustomScriptArgSchema)
      .max(16)
      .default([])
      .describe(
        'Up to 16 arguments for the script, each up to 256 characters of [A-Za-z0-9._:/=@%+,-], not starting with -',
      ),
    timeoutSeconds: timeoutSecondsSchema(300, 3600),
    risk: RiskSchema.default('disruptive').describe(
      'What the script may do, declared by the policy author: safe, disruptive (the default) or destructive (needs allowDestructive)',
    ),
  })
  .strict()
export type CustomScriptParams = z.infer<typeof CustomScriptParamsSchema>

export const customScriptRemediation: RemediationDefinition<typeof CustomScriptParamsSchema> = {
  id: 'custom-script',
  title: "Run an operator's script",
  description: `Runs an executable the operator placed in ${CUSTOM_SCRIPT_ACTIONS_DIR} (root-owned, not group- or world-writable), with argv arguments, no shell, a timeout and a clean environment. Its risk is declared per use in params.risk (default disruptive); destructive needs allowDestructive.`,
  params: CustomScriptParamsSchema,
  risk: 'disruptive',
  riskOf: (params) => params.risk,
  status: 'planned',
  appliesTo: ['*'],
  defaultGuards: { limit: limitThenEscalate(3, '1h'), cooldown: '5m' },
  ssmDocument: 'ANSAI-RunCustomScript',
  permissions: [
    `execute <script> from ${CUSTOM_SCRIPT_ACTIONS_DIR} (checked: a regular file, root-owned, not group- or world-writable)`,
    'whatever the script itself does, as root: review each script before placing it',
  ],
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: queue-backlog }
spec:
  observe: custom
  match: { name: queue_depth }
  severity:
    warning: { when: "value > 1000.0", for: 3 cycles }
    critical: { when: "value > 10000.0", for: 2 cycles }
  remediate:
    - at: critical
      run: custom-script
      params: { script: drain-queue, args: [queue=default, max=500], timeoutSeconds: 120, risk: disruptive }
    - escalate: page
`,
}
