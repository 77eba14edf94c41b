/**
 * Numbers and names both stacks agree on: function timeouts (the queues' visibility timeouts are derived from
 * them), queue consumers, S3 prefixes, the host tag.
 */
import { Aws } from 'aws-cdk-lib'
import type { FunctionName } from '../functions/platform/names.ts'

export interface FunctionSpec {
  description: string
  timeoutSeconds: number
  /**
   * X-Ray: `active` traces every invocation Lambda samples; `pass-through` only those a caller already traced. The
   * two high-volume functions (a report batch per host every 15 minutes, a tick per host every round) pass through:
   * at 1,000 hosts Lambda's default sampling (1 request/s + 5 %) would trace nearly every invocation, and X-Ray
   * would cost more than the rest of the control plane (npm run bench).
   */
  tracing: 'active' | 'pass-through'
}

export const FUNCTION_SPECS: Record<FunctionName, FunctionSpec> = {
  'ingest-reports': {
    description: 'ANSAI: reports queue → host state, engine evaluation, decisions, notifications',
    timeoutSeconds: 60,
    tracing: 'pass-through',
  },
  'evaluate-fleet': {
    description: 'ANSAI: scheduled round (fans out shards) and evaluation of one shard of hosts',
    timeoutSeconds: 300,
    tracing: 'pass-through',
  },
  'dispatch-remediation': {
    description: 'ANSAI: actions FIFO queue → safety gates → SSM SendCommand of an ANSAI-* document',
    timeoutSeconds: 60,
    tracing: 'active',
  },
  'record-command-result': {
    description: 'ANSAI: SSM command status events → command result, incident verifying',
    timeoutSeconds: 60,
    tracing: 'active',
  },
  'send-notifications': {
    description: 'ANSAI: notifications queue → SES email, signed webhooks, Slack',
    timeoutSeconds: 60,
    tracing: 'active',
  },
  'send-digest': {
    description: 'ANSAI: the daily digest by email and webhooks',
    timeoutSeconds: 300,
    tracing: 'active',
  },
}

export type QueueName = 'reports' | 'evaluations' | 'actions' | 'notifications'

/** Each work queue and the one function that consumes it. */
export const QUEUE_CONSUMERS: Record<QueueName, FunctionName> = {
  reports: 'ingest-reports',
  evaluations: 'evaluate-fleet',
  actions: 'dispatch-remediation',
  notifications: 'send-notifications',
}

/** AWS's guidance for SQS event sources: visibility timeout at least 6 times the function timeout. */
export const VISIBILITY_FACTOR = 6
export const DLQ_MAX_RECEIVE_COUNT = 5

export const visibilityTimeoutSeconds = (queue: QueueName): number =>
  FUNCTION_SPECS[QUEUE_CONSUMERS[queue]].timeoutSeconds * VISIBILITY_FACTOR

/** Key prefixes in the ANSAI bucket. The dispatch function sends SSM output to OutputS3KeyPrefix `command-output/`. */
export const S3_PREFIX = {
  commandOutput: 'command-output/',
  agentBundle: 'agent-bundle/',
} as const

/** Every host ANSAI may act on carries this tag (EC2 tag, or SSM tag of a hybrid managed node). */
export const MANAGED_TAG = { key: 'ansai:managed', value: 'true' } as const

/** Powertools settings the CDK app sets on every function (beside the names.ts ENV variables). */
export const POWERTOOLS_SERVICE_NAME = 'ansai'
export const POWERTOOLS_METRICS_NAMESPACE = 'ANSAI'

/**
 * Physical names of the table and the bucket: fixed, so the control plane refers to them by name (its IAM
 * statements are then built in its own stack, and their cdk-nag finding ids are stable) and operators find them.
 * The bucket name is unique per account and region.
 */
export const stateNames = (name: string): { table: string; bucket: string } => ({
  table: `${name}-state`,
  bucket: `${name.toLowerCase()}-${Aws.ACCOUNT_ID}-${Aws.REGION}`,
})
