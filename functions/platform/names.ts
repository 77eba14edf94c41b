/**
 * Names shared by the CDK app (the only writer of Lambda environment variables) and the functions that read them.
 * Constants only: the infra imports this file without pulling in any handler code.
 */

/** Lambda functions, one folder each: `functions/<name>/handler.ts` exporting `handler`. */
export const FUNCTION_NAMES = [
  'ingest-reports',
  'evaluate-fleet',
  'dispatch-remediation',
  'record-command-result',
  'send-notifications',
  'send-digest',
] as const
export type FunctionName = (typeof FUNCTION_NAMES)[number]

/** Environment variables the CDK app sets on the functions. */
export const ENV = {
  table: 'ANSAI_TABLE_NAME',
  reportsQueue: 'ANSAI_REPORTS_QUEUE_URL',
  evaluationsQueue: 'ANSAI_EVALUATIONS_QUEUE_URL',
  actionsQueue: 'ANSAI_ACTIONS_QUEUE_URL',
  notificationsQueue: 'ANSAI_NOTIFICATIONS_QUEUE_URL',
  eventBus: 'ANSAI_EVENT_BUS_NAME',
  outputBucket: 'ANSAI_OUTPUT_BUCKET',
  /** The fleet runtime config (`FleetRuntimeConfigSchema`), a JSON file in the function's asset; relative to cwd. */
  config: 'ANSAI_CONFIG_FILE',
} as const

/** The file name of the runtime config inside each function asset. */
export const CONFIG_FILE_NAME = 'fleet-config.json'

/**
 * The one DynamoDB table. Generic key names so one table holds every item type (single-table design); the item
 * layout is documented in `functions/adapters/dynamodb-store.ts`.
 */
export const TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Epoch seconds; DynamoDB's TTL deletes expired samples, audit entries, claims and dedup marks. */
  ttlAttribute: 'expiresAt',
  indexes: [{ name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' }],
} as const

/** Source of ANSAI's own events on its EventBridge bus. */
export const EVENT_SOURCE = 'ansai'
