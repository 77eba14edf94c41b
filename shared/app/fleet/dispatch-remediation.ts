import { type RemediateDecision, RemediateDecisionSchema, type RemediationResultV1 } from '../../contracts/index.ts'
import { formatIssues } from '../../contracts/issue-path.ts'
import type { CommandRunner, FleetStore } from '../../ports/fleet.ts'
import { findRemediation } from '../../registry/remediations/index.ts'
import { checkSsmParameters, encodeSsmParameters } from '../../registry/ssm.ts'

export interface DispatchDeps {
  store: FleetStore
  commands: CommandRunner
  /** The whole fleet decides and tells, and never sends a command. */
  dryRun: boolean
  /** The fleet-wide breaker: at most this many SSM commands per minute; the rest wait in the queue. */
  maxCommandsPerMinute: number
  clock: () => Date
}

export type DispatchOutcome =
  | { status: 'sent'; key: string; commandId: string }
  | { status: 'duplicate'; key: string }
  | { status: 'refused' | 'dry-run'; key: string; reason: string }

/** The minute's command budget is spent: the message goes back to the queue and is tried after its timeout. */
export class CommandRateLimitedError extends Error {
  override readonly name = 'CommandRateLimitedError'
}

/** A message on the actions queue that can never be dispatched (not JSON, not a decision): it goes to the DLQ. */
export class InvalidActionError extends Error {
  override readonly name = 'InvalidActionError'
}

/**
 * How long a claim holds a decision. Shorter than the actions queue's visibility timeout, so when SendCommand fails
 * (throttled) and the message comes back, the claim has lapsed and the retry may send.
 */
export const DISPATCH_LEASE_MS = 60_000
/** SSM's own limit for a command; a remediation gets its own bound on the host as well. */
const COMMAND_TIMEOUT_SECONDS = 600

export const parseAction = (body: string): RemediateDecision => {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch (err) {
    throw new InvalidActionError(`action is not JSON: ${(err as Error).message}`)
  }
  const parsed = RemediateDecisionSchema.safeParse(json)
  if (!parsed.success) {
    throw new InvalidActionError(`action is not a remediate decision: ${formatIssues('action', parsed.error.issues)}`)
  }
  return parsed.data
}

/**
 * `dispatch-remediation`: one decision from the actions FIFO queue becomes at most one SSM command. The params are
 * checked twice before anything is sent: against the remediation's strict schema and against the anchored
 * `allowedPattern` of its SSM document (AWS checks the pattern too; the emulators do not). A refused or dry-run
 * decision gets a result at once, so the engine sees it at the host's next evaluation. A decision already claimed or
 * carried out is not sent again (at-least-once delivery, one command).
 */
export const dispatchRemediation = async (
  deps: DispatchDeps,
  decision: RemediateDecision,
): Promise<DispatchOutcome> => {
  const { store } = deps
  const now = deps.clock().toISOString()
  const { key } = decision
  const existing = await store.getAction(key)
  if (existing?.result) return { status: 'duplicate', key }

  const def = findRemediation(decision.remediation)
  const refuse = async (reason: string): Promise<DispatchOutcome> => {
    await finish(deps, decision, now, 'failed', `refused before SendCommand: ${reason}`)
    return { status: 'refused', key, reason }
  }
  if (def?.status !== 'available' || !def.ssmDocument) {
    return refuse(`remediation ${decision.remediation} has no SSM document in this version`)
  }
  const params = def.params.safeParse(decision.params)
  if (!params.success) {
    return refuse(formatIssues('params', params.error.issues) || 'invalid params')
  }
  const parameters = encodeSsmParameters(def, params.data as Record<string, unknown>, { key, dryRun: decision.dryRun })
  const violations = checkSsmParameters(def, parameters)
  if (violations.length > 0) {
    return refuse(violations.map((v) => `${v.parameter}: ${v.message}`).join('; '))
  }
  if (decision.dryRun || deps.dryRun) {
    const reason = decision.dryRun ? 'the decision is a dry run' : 'the fleet runs in dry-run mode'
    await finish(deps, decision, now, 'dry-run', `not sent: ${reason}`)
    return { status: 'dry-run', key, reason }
  }

  if (!(await store.claimDispatch(key, now, DISPATCH_LEASE_MS))) return { status: 'duplicate', key }
  // The claim's lease runs out before the message comes back, so the retry may claim again.
  if (!(await store.takeCommandToken(now, deps.maxCommandsPerMinute))) {
    throw new CommandRateLimitedError(
      `more than ${deps.maxCommandsPerMinute} commands this minute across the fleet: ${key} waits in the queue`,
    )
  }
  const { commandId } = await deps.commands.send({
    host: decision.host,
    document: def.ssmDocument,
    parameters,
    timeoutSeconds: COMMAND_TIMEOUT_SECONDS,
    comment: `ANSAI ${key}`.slice(0, 100),
  })
  await store.recordCommand(key, commandId, decision.host, now)
  await store.appendAudit([
    {
      kind: 'action',
      at: now,
      hostId: decision.host,
      incidentId: decision.incidentId,
      key,
      id: `action:${key}`,
      data: { decision, document: def.ssmDocument, commandId },
    },
  ])
  return { status: 'sent', key, commandId }
}

const finish = async (
  deps: DispatchDeps,
  d: RemediateDecision,
  at: string,
  status: 'failed' | 'dry-run',
  summary: string,
): Promise<void> => {
  const result: RemediationResultV1 = {
    schema: 'ansai.remediation-result.v1',
    key: d.key,
    remediation: d.remediation,
    host: d.host,
    status,
    dryRun: status === 'dry-run',
    startedAt: at,
    finishedAt: at,
    durationMs: 0,
    summary: summary.slice(0, 2000),
    evidence: {},
    ...(status === 'failed' ? { error: summary.slice(0, 4000) } : {}),
  }
  await deps.store.recordResult(result)
  await deps.store.appendAudit([
    {
      kind: status === 'failed' ? 'error' : 'result',
      at,
      hostId: d.host,
      incidentId: d.incidentId,
      key: d.key,
      id: `result:${d.key}`,
      data: { result },
    },
  ])
}
