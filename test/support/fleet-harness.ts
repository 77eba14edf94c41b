import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { CreateEventBusCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge'
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { CreateEmailIdentityCommand, SESv2Client } from '@aws-sdk/client-sesv2'
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs'
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import { createFleetTable } from './fleet-table.ts'
import type { MotoServer } from './moto.ts'

/**
 * The fleet's AWS resources in moto, as the CDK stack makes them (queues with their DLQs and redrive, the FIFO
 * actions queue, the table, the bus, an SES identity, a webhook secret), and a stand-in for what moto does not run:
 * Lambda's SQS event source mapping ({@link pumpQueue}).
 */
export interface FleetResources {
  queues: {
    reports: string
    reportsDlq: string
    evaluations: string
    evaluationsDlq: string
    actions: string
    actionsDlq: string
    notifications: string
    notificationsDlq: string
  }
  table: string
  bus: string
  /** The environment the CDK app gives the functions. */
  env: Record<string, string>
  sqs: SQSClient
  dynamo: DynamoDBClient
}

/** Receives before a message goes to its DLQ (the stack uses 5; fewer keeps the tests short). */
export const TEST_MAX_RECEIVE_COUNT = 3

const createQueuePair = async (sqs: SQSClient, name: string, fifo: boolean): Promise<{ url: string; dlq: string }> => {
  const suffix = fifo ? '.fifo' : ''
  const fifoAttrs: Record<string, string> = fifo ? { FifoQueue: 'true', ContentBasedDeduplication: 'false' } : {}
  const dlq = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq${suffix}`, Attributes: fifoAttrs })))
    .QueueUrl!
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['QueueArn'] })))
    .Attributes!.QueueArn!
  const url = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: `${name}${suffix}`,
        Attributes: {
          ...fifoAttrs,
          VisibilityTimeout: '30',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: TEST_MAX_RECEIVE_COUNT }),
        },
      }),
    )
  ).QueueUrl!
  return { url, dlq }
}

export const createFleetResources = async (moto: MotoServer): Promise<FleetResources> => {
  const sqs = new SQSClient(moto.clientConfig)
  const dynamo = new DynamoDBClient(moto.clientConfig)
  const [reports, evaluations, actions, notifications] = [
    await createQueuePair(sqs, 'ansai-reports', false),
    await createQueuePair(sqs, 'ansai-evaluations', false),
    await createQueuePair(sqs, 'ansai-actions', true),
    await createQueuePair(sqs, 'ansai-notifications', false),
  ]
  const table = 'ansai-fleet'
  await createFleetTable(dynamo, table)
  const bus = 'ansai-events'
  await new EventBridgeClient(moto.clientConfig).send(new CreateEventBusCommand({ Name: bus }))
  return {
    queues: {
      reports: reports.url,
      reportsDlq: reports.dlq,
      evaluations: evaluations.url,
      evaluationsDlq: evaluations.dlq,
      actions: actions.url,
      actionsDlq: actions.dlq,
      notifications: notifications.url,
      notificationsDlq: notifications.dlq,
    },
    table,
    bus,
    env: {
      ANSAI_TABLE_NAME: table,
      ANSAI_REPORTS_QUEUE_URL: reports.url,
      ANSAI_EVALUATIONS_QUEUE_URL: evaluations.url,
      ANSAI_ACTIONS_QUEUE_URL: actions.url,
      ANSAI_NOTIFICATIONS_QUEUE_URL: notifications.url,
      ANSAI_EVENT_BUS_NAME: bus,
    },
    sqs,
    dynamo,
  }
}

/** Verify an SES sender identity (moto refuses mail from unverified ones, as SES's sandbox does). */
export const verifySesIdentity = async (moto: MotoServer, address: string): Promise<void> => {
  await new SESv2Client(moto.clientConfig).send(new CreateEmailIdentityCommand({ EmailIdentity: address }))
}

export const createSecret = async (moto: MotoServer, name: string, value: string): Promise<string> =>
  (await new SecretsManagerClient(moto.clientConfig).send(new CreateSecretCommand({ Name: name, SecretString: value })))
    .ARN!

/** A Lambda context good enough for Powertools and middy. */
export const lambdaContext = (functionName: string): Context => ({
  callbackWaitsForEmptyEventLoop: false,
  functionName,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
  memoryLimitInMB: '512',
  awsRequestId: `req-${Math.random().toString(16).slice(2)}`,
  logGroupName: `/aws/lambda/${functionName}`,
  logStreamName: 'test',
  getRemainingTimeInMillis: () => 30_000,
  done: () => {},
  fail: () => {},
  succeed: () => {},
})

const toRecord = (m: Message, queueArn: string, senderIdOf?: (m: Message) => string | undefined): SQSRecord => {
  const a = m.Attributes ?? {}
  const senderId = senderIdOf?.(m) ?? a.SenderId ?? 'AIDAMOTO'
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
      SentTimestamp: a.SentTimestamp ?? String(Date.now()),
      SenderId: senderId,
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      ...(a.MessageGroupId ? { MessageGroupId: a.MessageGroupId } : {}),
      ...(a.MessageDeduplicationId ? { MessageDeduplicationId: a.MessageDeduplicationId } : {}),
      ...(a.SequenceNumber ? { SequenceNumber: a.SequenceNumber } : {}),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [
        k,
        {
          dataType: v.DataType ?? 'String',
          stringValue: v.StringValue ?? '',
          stringListValues: [],
          binaryListValues: [],
        },
      ]),
    ),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: 'us-east-1',
  }
}

export interface PumpResult {
  invocations: number
  succeeded: number
  failed: number
}

type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined | unknown>

/**
 * What Lambda's SQS event source mapping does, against moto: receive up to `batchSize` messages, invoke the handler
 * with an SQS event built from them, delete the ones that succeeded, and make the reported failures visible again
 * (as their visibility timeout running out would), until the queue is empty. moto counts the receives and moves a
 * message to the DLQ after maxReceiveCount, as SQS does. `senderIdOf` stands in for the credentials each message
 * was sent with (moto gives every message one fixed SenderId).
 */
export const pumpQueue = async (
  sqs: SQSClient,
  queueUrl: string,
  handler: SqsHandler,
  opts: { batchSize?: number; senderIdOf?: (m: Message) => string | undefined; maxInvocations?: number } = {},
): Promise<PumpResult> => {
  const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] })))
    .Attributes!.QueueArn!
  const out: PumpResult = { invocations: 0, succeeded: 0, failed: 0 }
  for (let i = 0; i < (opts.maxInvocations ?? 50); i++) {
    const got = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: opts.batchSize ?? 10,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 0,
      }),
    )
    const messages = got.Messages ?? []
    if (messages.length === 0) break
    const event: SQSEvent = { Records: messages.map((m) => toRecord(m, queueArn, opts.senderIdOf)) }
    out.invocations++
    let failedIds: Set<string>
    try {
      const res = (await handler(event, lambdaContext('harness'))) as SQSBatchResponse | undefined
      failedIds = new Set((res?.batchItemFailures ?? []).map((f) => f.itemIdentifier))
    } catch {
      failedIds = new Set(messages.map((m) => m.MessageId!)) // the whole invocation failed
    }
    const done = messages.filter((m) => !failedIds.has(m.MessageId!))
    if (done.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: done.map((m, n) => ({ Id: String(n), ReceiptHandle: m.ReceiptHandle! })),
        }),
      )
    }
    for (const m of messages.filter((m) => failedIds.has(m.MessageId!))) {
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl,
          ReceiptHandle: m.ReceiptHandle!,
          VisibilityTimeout: 0,
        }),
      )
    }
    out.succeeded += done.length
    out.failed += messages.length - done.length
  }
  return out
}

/** Every message on a queue right now, read without consuming (made visible again at once). */
export const peekQueue = async (sqs: SQSClient, queueUrl: string): Promise<Message[]> => {
  const seen: Message[] = []
  for (let i = 0; i < 20; i++) {
    const got = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['All'],
        VisibilityTimeout: 30,
      }),
    )
    if (!got.Messages?.length) break
    seen.push(...got.Messages)
  }
  for (const m of seen) {
    await sqs.send(
      new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 }),
    )
  }
  return seen
}

export { CreateTableCommand }
