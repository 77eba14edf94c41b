import type { EventType, NotificationV1, RemediateDecision, ReportBatchV1 } from '../contracts/index.ts'
import type { StateStore, VersionedHostState } from './store.ts'

/**
 * The ports of the fleet shape (DESIGN.md, "Fleet data flow"). Each has an AWS adapter under `functions/adapters/`
 * (SDK client injectable, SDK errors translated to {@link PortError} with `cause`) and an in-memory twin under
 * `shared/adapters/fleet/`; one contract suite per port runs against both (the AWS side against moto_server).
 */

/** A failure of an outside system, translated by an adapter. */
export class PortError extends Error {
  override readonly name = 'PortError'
  /** True when the same call may go through later (throttling, 5xx, timeouts, network). */
  readonly retryable: boolean
  /** A short machine code, e.g. the SDK error name: `ThrottlingException`, `InvalidInstanceId`. */
  readonly code: string | undefined

  constructor(message: string, options: { retryable: boolean; code?: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.retryable = options.retryable
    this.code = options.code
  }
}

/**
 * Agent → control plane: the `reports` queue (standard). The agent's transport sends a batch of one host's reports
 * (oldest first) with the host's own credentials; SQS's `SenderId` then proves which host sent it.
 */
export interface ReportSender {
  send(batch: ReportBatchV1): Promise<void>
}

/**
 * Decisions to carry out: the `actions` FIFO queue. Message group = `decision.host` (fixes on one host run one at
 * a time), deduplication id = `decision.key` (the same decision sent twice within SQS's 5-minute window is one
 * message; the dispatcher's claim covers the rest).
 */
export interface ActionQueue {
  send(decisions: readonly RemediateDecision[]): Promise<void>
}

/** Messages for people: the `notifications` queue; `send-notifications` delivers them, deduplicated by id. */
/**
 * A notification hold as SQS takes it (DelaySeconds: 0 to 900 whole seconds); 0 when none. Every NotificationQueue
 * refuses the same way: a non-retryable PortError `InvalidParameterValue`.
 */
export const checkDelaySeconds = (delay: number | undefined): number => {
  if (delay === undefined) return 0
  if (!Number.isInteger(delay) || delay < 0 || delay > 900) {
    throw new PortError(`delaySeconds: ${String(delay)} is not a whole number of seconds from 0 to 900`, {
      retryable: false,
      code: 'InvalidParameterValue',
    })
  }
  return delay
}

export interface NotificationQueue {
  /** `delaySeconds` (0–900): the messages become deliverable only after that long (SQS DelaySeconds). */
  send(messages: readonly NotificationV1[], options?: { delaySeconds?: number }): Promise<void>
}

/** One shard of the fleet to evaluate without a report (ticks: silent hosts, time-based checks, overdue fixes). */
export interface EvaluationTask {
  shard: number
  /** Number of shards in this round. */
  of: number
  /** The evaluation time of the round (ISO-8601). */
  at: string
}

/** The `evaluations` queue: `evaluate-fleet` fans a scheduled round out over it, one message per shard. */
export interface EvaluationQueue {
  send(tasks: readonly EvaluationTask[]): Promise<void>
}

/** An ANSAI event for users' own integrations (EventBridge bus; `detail-type` = `type`, source `ansai`). */
export interface AnsaiEvent {
  type: EventType
  time: string
  host: string
  incidentId: string
  policy: string
  resource: string
  detail: Record<string, unknown>
}

export interface EventPublisher {
  publish(events: readonly AnsaiEvent[]): Promise<void>
}

/** A command to run one remediation on one host through its SSM document. */
export interface CommandRequest {
  host: string
  /** `ANSAI-<Verb><Noun>`, from the remediation registry. */
  document: string
  /** Parameter name → value, already checked against the document's `allowedPattern`. */
  parameters: Readonly<Record<string, string>>
  /** Seconds before SSM gives up on the command. */
  timeoutSeconds: number
  /** Shown in the SSM console; the decision key (SSM allows 100 characters). */
  comment: string
}

export const COMMAND_STATUSES = [
  'Pending',
  'InProgress',
  'Delayed',
  'Success',
  'Cancelled',
  'TimedOut',
  'Failed',
  'Cancelling',
] as const
export type CommandStatus = (typeof COMMAND_STATUSES)[number]

export interface CommandInvocation {
  commandId: string
  host: string
  status: CommandStatus
  /** The script's exit code; -1 while it has none. */
  responseCode: number
  /** What the command printed (SSM keeps the first 24,000 characters; the full output goes to S3). */
  stdout: string
  stderr: string
}

export type PingStatus = 'Online' | 'ConnectionLost' | 'Inactive' | 'Unknown'

/** SSM Run Command. */
export interface CommandRunner {
  /** Returns SSM's command id. Throttling is a retryable {@link PortError}. */
  send(request: CommandRequest): Promise<{ commandId: string }>
  getInvocation(commandId: string, host: string): Promise<CommandInvocation>
  /** SSM's ping status of each host; hosts SSM does not know are `Unknown`. */
  pingStatus(hosts: readonly string[]): Promise<Record<string, PingStatus>>
}

/** A host the fleet has heard from: what the scheduled evaluation walks, shard by shard. */
export interface FleetHost {
  id: string
  hostname: string
  tags: Record<string, string>
  /** The shard the host belongs to (a stable hash of its id; see `shardOf`). */
  shard: number
  lastSeenAt: string
}

/**
 * The state store of the fleet: the {@link StateStore} every shape uses, plus what only the fleet needs (a host
 * index for the scheduled rounds, dispatch claims so a decision becomes at most one SSM command, and the map from
 * SSM command ids back to decisions).
 */
export interface FleetStore extends StateStore {
  /**
   * Add or refresh a host in the index (idempotent; `lastSeenAt` only moves forward). Written when a host is first
   * seen and when its hostname or tags change, not on every report: `lastSeenAt` is when the entry was written.
   */
  touchHost(host: FleetHost): Promise<void>
  /**
   * The states of several hosts at once (a round reads a page of its shard this way), eventually consistent: a state
   * may be a moment old, and whoever writes after reading it does so conditionally. Hosts without state are absent.
   */
  getHostStates(hostIds: readonly string[]): Promise<Map<string, VersionedHostState>>
  /** Hosts of one shard, a page at a time; `cursor` is what the previous page returned. */
  listHosts(
    shard: number,
    options: { limit: number; cursor?: string },
  ): Promise<{ hosts: FleetHost[]; cursor?: string }>
  /**
   * Claim a decision for dispatch. True for the first caller, and again once `leaseMs` has passed without a command
   * recorded (the claimant died before SendCommand); false while someone holds it or once a command is recorded.
   */
  claimDispatch(key: string, at: string, leaseMs: number): Promise<boolean>
  /** The SSM command that carries out a decision (idempotent: the first one wins). */
  recordCommand(key: string, commandId: string, host: string, at: string): Promise<void>
  /** The decision key of an SSM command, or undefined when the command is not ANSAI's. */
  findCommand(commandId: string): Promise<{ key: string; host: string } | undefined>
  /**
   * The fleet-wide breaker on SSM commands: take one of `limit` tokens of the minute `at` falls in (UTC). False when
   * the minute's tokens are gone; the caller holds the command back and tries again later.
   */
  takeCommandToken(at: string, limit: number): Promise<boolean>
}
