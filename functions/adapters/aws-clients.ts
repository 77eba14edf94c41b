import { EventBridgeClient, type EventBridgeClientConfig } from '@aws-sdk/client-eventbridge'
import { SecretsManagerClient, type SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager'
import { SESv2Client, type SESv2ClientConfig } from '@aws-sdk/client-sesv2'
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs'
import { SSMClient, type SSMClientConfig } from '@aws-sdk/client-ssm'

/**
 * One factory per AWS SDK v3 client the fleet uses, composed once at cold start and injected into the adapters.
 *
 * Endpoints: no factory sets `endpoint`, so the SDK resolves it by itself, and honours `AWS_ENDPOINT_URL` and the
 * service-specific `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL_SESV2`,
 * `AWS_ENDPOINT_URL_EVENTBRIDGE`, `AWS_ENDPOINT_URL_SECRETS_MANAGER` (the service id, upper case, spaces as `_`),
 * or `endpoint_url` in the shared config file: the same code runs against LocalStack. An explicit `endpoint` in the
 * override (the tests pass moto's) wins over them all. Region and credentials come from the Lambda environment.
 *
 * Retries: `adaptive` (standard retries plus a client-side rate limiter that slows down after throttling), so a
 * throttled SendCommand or SendMessageBatch backs off inside the SDK before the adapter sees an error.
 */

/** Settings every client shares; `maxAttempts` counts the first attempt. */
export const AWS_CLIENT_DEFAULTS = {
  retryMode: 'adaptive',
  maxAttempts: 5,
  /** A connection that hangs must not eat the whole Lambda timeout. */
  requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
} as const

/** Per service: fewer attempts where the caller retries anyway (the notification queue redelivers an email). */
export const MAX_ATTEMPTS = {
  sqs: 5,
  ssm: 5,
  sesv2: 3,
  eventbridge: 5,
  secretsManager: 3,
} as const

export const createSqsClient = (override: SQSClientConfig = {}): SQSClient =>
  new SQSClient({ ...AWS_CLIENT_DEFAULTS, maxAttempts: MAX_ATTEMPTS.sqs, ...override })

export const createSsmClient = (override: SSMClientConfig = {}): SSMClient =>
  new SSMClient({ ...AWS_CLIENT_DEFAULTS, maxAttempts: MAX_ATTEMPTS.ssm, ...override })

export const createSesClient = (override: SESv2ClientConfig = {}): SESv2Client =>
  new SESv2Client({ ...AWS_CLIENT_DEFAULTS, maxAttempts: MAX_ATTEMPTS.sesv2, ...override })

export const createEventBridgeClient = (override: EventBridgeClientConfig = {}): EventBridgeClient =>
  new EventBridgeClient({ ...AWS_CLIENT_DEFAULTS, maxAttempts: MAX_ATTEMPTS.eventbridge, ...override })

export const createSecretsManagerClient = (override: SecretsManagerClientConfig = {}): SecretsManagerClient =>
  new SecretsManagerClient({ ...AWS_CLIENT_DEFAULTS, maxAttempts: MAX_ATTEMPTS.secretsManager, ...override })
