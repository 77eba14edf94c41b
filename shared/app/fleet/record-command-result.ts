import { type RemediationResultV1, RemediationResultV1Schema } from '../../contracts/index.ts'
import type { CommandInvocation, CommandRunner, CommandStatus } from '../../ports/fleet.ts'
import { applyToHost, type FleetDeps } from './apply.ts'

export interface RecordResultDeps extends FleetDeps {
  commands: CommandRunner
}

/** The fields of SSM's "EC2 Command Invocation Status-change Notification" that matter here. */
export interface CommandStatusEvent {
  commandId: string
  host: string
  status: string
  document: string
}

export type RecordOutcome =
  | { status: 'recorded'; key: string; result: RemediationResultV1['status'] }
  | { status: 'ignored' | 'in-progress' | 'duplicate'; reason: string }

const TERMINAL: ReadonlySet<string> = new Set<CommandStatus>(['Success', 'Failed', 'TimedOut', 'Cancelled'])
const TAIL = 1500

/**
 * The remediation result a command printed: its last line that parses as an `ansai.remediation-result.v1` for the
 * expected decision key. Anything else (no output, a crash, a wrong key) becomes a `failed` result that says what SSM
 * reported, so a fix never stays pending because its host went quiet.
 */
export const resultOfInvocation = (
  inv: CommandInvocation,
  key: string,
  remediation: string,
  at: string,
): RemediationResultV1 => {
  const lines = inv.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'))
  for (let i = lines.length - 1; i >= 0; i--) {
    let json: unknown
    try {
      json = JSON.parse(lines[i]!)
    } catch {
      continue
    }
    const parsed = RemediationResultV1Schema.safeParse(json)
    if (parsed.success && parsed.data.key === key) return { ...parsed.data, host: parsed.data.host ?? inv.host }
  }
  const why =
    inv.status === 'Success'
      ? 'the command succeeded but printed no remediation result for this decision'
      : `SSM status ${inv.status}, exit code ${inv.responseCode}`
  const stderr = inv.stderr.trim().slice(-TAIL)
  const error = stderr ? `${why}: ${stderr}` : why
  return {
    schema: 'ansai.remediation-result.v1',
    key,
    remediation,
    host: inv.host,
    status: 'failed',
    dryRun: false,
    startedAt: at,
    finishedAt: at,
    durationMs: 0,
    summary: why,
    evidence: { commandId: inv.commandId, ssmStatus: inv.status, responseCode: inv.responseCode },
    error: error.slice(0, 4000),
  }
}

/**
 * `record-command-result`: SSM says an ANSAI command finished. Read its output, store the remediation result once,
 * and evaluate the host at once so the incident moves to `verifying` (or a failed fix is told) without waiting for
 * the next report; the next report from the host (the agent sends one after each fix) confirms the fix.
 */
export const recordCommandResult = async (deps: RecordResultDeps, ev: CommandStatusEvent): Promise<RecordOutcome> => {
  const found = await deps.store.findCommand(ev.commandId)
  if (!found) return { status: 'ignored', reason: `command ${ev.commandId} is not one of ANSAI's` }
  if (!TERMINAL.has(ev.status)) return { status: 'in-progress', reason: `status ${ev.status}` }
  const action = await deps.store.getAction(found.key)
  if (action?.result) return { status: 'duplicate', reason: `result of ${found.key} already recorded` }

  const at = deps.clock().toISOString()
  const inv = await deps.commands.getInvocation(ev.commandId, found.host)
  const remediation = action?.decision?.type === 'remediate' ? action.decision.remediation : ev.document
  const result = resultOfInvocation(inv, found.key, remediation, at)
  const isNew = await deps.store.recordResult(result)
  if (!isNew) return { status: 'duplicate', reason: `result of ${found.key} already recorded` }
  await deps.store.appendAudit([
    {
      kind: 'result',
      at: result.finishedAt,
      hostId: found.host,
      ...(action?.incidentId ? { incidentId: action.incidentId } : {}),
      key: found.key,
      id: `result:${found.key}`,
      data: { result, commandId: ev.commandId, ssmStatus: inv.status },
    },
  ])
  // A tick: applies the result to its pending attempt (incident → verifying, or the failure is told).
  await applyToHost(deps, { host: { id: found.host, hostname: found.host, tags: {} }, now: at })
  return { status: 'recorded', key: found.key, result: result.status }
}
