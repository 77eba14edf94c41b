import type { DeliverDeps } from '../../shared/app/fleet/deliver-notification.ts'
import type { DispatchDeps } from '../../shared/app/fleet/dispatch-remediation.ts'
import type { IngestDeps } from '../../shared/app/fleet/ingest-report.ts'
import type { RecordResultDeps } from '../../shared/app/fleet/record-command-result.ts'
import type { DigestDeps } from '../../shared/app/fleet/send-digest.ts'
import { parseDuration } from '../../shared/engine/duration.ts'
import type { FleetStore } from '../../shared/ports/fleet.ts'
import {
  createEventBridgeClient,
  createSecretsManagerClient,
  createSesClient,
  createSqsClient,
  createSsmClient,
} from '../adapters/aws-clients.ts'
import { createDynamoDbClient, DynamoDbFleetStore } from '../adapters/dynamodb-store.ts'
import { EventBridgePublisher } from '../adapters/eventbridge-publisher.ts'
import { createFleetNotifiers } from '../adapters/fleet-notifiers.ts'
import { SecretsManagerSecrets } from '../adapters/secrets.ts'
import { SqsActionQueue, SqsEvaluationQueue, SqsNotificationQueue } from '../adapters/sqs-queues.ts'
import { SsmCommandRunner } from '../adapters/ssm-command-runner.ts'
import type { EvaluateFleetDeps } from '../evaluate-fleet/app.ts'
import { compileFleetPolicies, loadRuntimeConfig, readEnv } from './env.ts'
import type { FunctionName } from './names.ts'
import { createObservability, type Observability } from './observability.ts'
import type { FleetRuntimeConfig } from './runtime-config.ts'

/**
 * Composition root of the fleet functions: built once per cold start from the environment the CDK app wrote and the
 * runtime config in the asset. SDK clients take `clientConfig` (tests pass moto's endpoint and dummy credentials;
 * in Lambda it is empty and the SDK's defaults, `AWS_ENDPOINT_URL` included, apply).
 */
export interface ComposeOptions {
  env?: NodeJS.ProcessEnv
  config?: FleetRuntimeConfig
  clientConfig?: { endpoint?: string; region?: string; credentials?: { accessKeyId: string; secretAccessKey: string } }
  clock?: () => Date
}

/**
 * Powertools for one function, with the fleet config's metrics choice (`metrics: all` adds the activity counts).
 */
export const observabilityFor = (functionName: FunctionName, opts: ComposeOptions = {}): Observability =>
  createObservability(functionName, {
    activity: (opts.config ?? loadRuntimeConfig(opts.env ?? process.env)).metrics === 'all',
  })

/** The notifications hold of a started fix, in whole seconds (SQS DelaySeconds). */
const holdSecondsOf = (config: FleetRuntimeConfig): number => Math.round(parseDuration(config.holdFixStarted) / 1000)

const base = (opts: ComposeOptions) => {
  const env = opts.env ?? process.env
  const config = opts.config ?? loadRuntimeConfig(env)
  const clientConfig = opts.clientConfig ?? {}
  const clock = opts.clock ?? (() => new Date())
  const { table } = readEnv(['table'], env)
  const store: FleetStore = new DynamoDbFleetStore({ client: createDynamoDbClient(clientConfig), tableName: table })
  return { env, config, clientConfig, clock, store }
}

const fleetDeps = (opts: ComposeOptions) => {
  const b = base(opts)
  const e = readEnv(['actionsQueue', 'notificationsQueue', 'eventBus'], b.env)
  const sqs = createSqsClient(b.clientConfig)
  return {
    ...b,
    sqs,
    deps: {
      policies: compileFleetPolicies(b.config),
      store: b.store,
      actions: new SqsActionQueue({ client: sqs, queueUrl: e.actionsQueue }),
      notifications: new SqsNotificationQueue({ client: sqs, queueUrl: e.notificationsQueue }),
      events: new EventBridgePublisher({ client: createEventBridgeClient(b.clientConfig), eventBusName: e.eventBus }),
      channels: Object.keys(b.config.channels),
      defaultChannels: b.config.defaultChannels,
      dryRun: b.config.dryRun,
      clock: b.clock,
      quietWriteMs: parseDuration(b.config.quietWriteEvery),
      holdFixStartedSeconds: holdSecondsOf(b.config),
    },
  }
}

const commandRunner = (b: ReturnType<typeof base>) => {
  const bucket = b.env.ANSAI_OUTPUT_BUCKET
  return new SsmCommandRunner({
    client: createSsmClient(b.clientConfig),
    ...(bucket ? { outputS3: { bucket, keyPrefix: 'command-output/' } } : {}),
  })
}

export const composeIngest = (opts: ComposeOptions = {}): IngestDeps => {
  const f = fleetDeps(opts)
  return { ...f.deps, shards: f.config.shards }
}

export const composeEvaluateFleet = (opts: ComposeOptions = {}): EvaluateFleetDeps => {
  const f = fleetDeps(opts)
  const { evaluationsQueue } = readEnv(['evaluationsQueue'], f.env)
  return {
    ...f.deps,
    commands: commandRunner(f),
    evaluations: new SqsEvaluationQueue({ client: f.sqs, queueUrl: evaluationsQueue }),
    shards: f.config.shards,
  }
}

export const composeRecordCommandResult = (opts: ComposeOptions = {}): RecordResultDeps => {
  const f = fleetDeps(opts)
  return { ...f.deps, commands: commandRunner(f) }
}

export const composeDispatch = (opts: ComposeOptions = {}): DispatchDeps => {
  const b = base(opts)
  return {
    store: b.store,
    commands: commandRunner(b),
    dryRun: b.config.dryRun,
    maxCommandsPerMinute: b.config.maxCommandsPerMinute,
    clock: b.clock,
  }
}

export const composeSendNotifications = (opts: ComposeOptions = {}): DeliverDeps => {
  const b = base(opts)
  const notifiers = createFleetNotifiers(b.config.channels, {
    ses: createSesClient(b.clientConfig),
    secrets: new SecretsManagerSecrets({ client: createSecretsManagerClient(b.clientConfig) }),
    clock: b.clock,
  })
  return {
    notifiers,
    store: b.store,
    clock: b.clock,
    holdFixStartedSeconds: holdSecondsOf(b.config),
  }
}

export const composeSendDigest = (opts: ComposeOptions = {}): DigestDeps => {
  const b = base(opts)
  const { notificationsQueue } = readEnv(['notificationsQueue'], b.env)
  return {
    store: b.store,
    notifications: new SqsNotificationQueue({ client: createSqsClient(b.clientConfig), queueUrl: notificationsQueue }),
    channels: b.config.digestChannels,
    clock: b.clock,
  }
}
