/**
 * The stateful half of the fleet control plane: what holds data or what hosts are pointed at, deployed apart from
 * the functions so a redeploy of the control plane never replaces them. The DynamoDB table, the SQS queues and
 * their DLQs, the bucket (full command output, the agent bundle), ANSAI's own EventBridge bus, and the managed
 * policies host roles attach.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib'
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb'
import { EventBus } from 'aws-cdk-lib/aws-events'
import { Effect, ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam'
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3'
import { DeduplicationScope, FifoThroughputLimit, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs'
import type { Construct } from 'constructs'
import { TABLE } from '../functions/platform/names.ts'
import type { FleetConfig } from './config.ts'
import { DLQ_MAX_RECEIVE_COUNT, type QueueName, S3_PREFIX, stateNames, visibilityTimeoutSeconds } from './layout.ts'
import { acknowledge, wildcardResourceFinding } from './nag.ts'

export interface StatefulStackProps extends StackProps {
  config: FleetConfig
}

export interface WorkQueue {
  queue: Queue
  dlq: Queue
}

export class StatefulStack extends Stack {
  readonly table: Table
  readonly queues: Record<QueueName, WorkQueue>
  readonly bucket: Bucket
  readonly bus: EventBus
  /** What a host role needs: send reports, read the agent bundle. */
  readonly hostPolicy: ManagedPolicy
  /** Optional, for hosts whose full command output should land in S3 (SSM writes it with the host's credentials). */
  readonly hostCommandOutputPolicy: ManagedPolicy

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props)
    const { config } = props
    const removalPolicy = config.storage.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY
    const names = stateNames(config.name)

    this.table = new Table(this, 'Table', {
      tableName: names.table,
      partitionKey: { name: TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: TABLE.ttlAttribute,
      deletionProtection: config.storage.retain,
      removalPolicy,
    })
    for (const index of TABLE.indexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        projectionType: ProjectionType.ALL,
      })
    }

    const workQueue = (name: QueueName, fifo: boolean): WorkQueue => {
      const common = {
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        ...(fifo ? { fifo: true, contentBasedDeduplication: false } : {}),
      }
      const dlq = new Queue(this, `${pascal(name)}Dlq`, { ...common, retentionPeriod: Duration.days(14) })
      acknowledge(
        dlq,
        'Serverless-SQSRedrivePolicy',
        `the dead-letter queue of ${name}: a redrive policy on it would move poison messages in a loop; the DLQ depth alarm tells people`,
      )
      const queue = new Queue(this, pascal(name), {
        ...common,
        ...(fifo
          ? {
              // the code sets MessageDeduplicationId = decision key and MessageGroupId = host
              deduplicationScope: DeduplicationScope.MESSAGE_GROUP,
              fifoThroughputLimit: FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
            }
          : {}),
        visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(name)),
        retentionPeriod: Duration.days(4),
        deadLetterQueue: { queue: dlq, maxReceiveCount: DLQ_MAX_RECEIVE_COUNT },
      })
      return { queue, dlq }
    }
    this.queues = {
      reports: workQueue('reports', false),
      evaluations: workQueue('evaluations', false),
      actions: workQueue('actions', true),
      notifications: workQueue('notifications', false),
    }

    const accessLogs = new Bucket(this, 'AccessLogs', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy,
      autoDeleteObjects: false,
    })
    this.bucket = new Bucket(this, 'Bucket', {
      bucketName: names.bucket,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'ansai-bucket/',
      lifecycleRules: [
        { prefix: S3_PREFIX.commandOutput, expiration: Duration.days(config.storage.commandOutputDays) },
      ],
      removalPolicy,
    })

    this.bus = new EventBus(this, 'Bus', { description: "ANSAI's own events (source ansai) for users' integrations" })

    this.hostPolicy = new ManagedPolicy(this, 'HostPolicy', {
      description: 'ANSAI hosts: send reports to the reports queue, read the agent bundle',
      statements: [
        new PolicyStatement({
          sid: 'SendReports',
          effect: Effect.ALLOW,
          actions: ['sqs:SendMessage'],
          resources: [this.queues.reports.queue.queueArn],
        }),
        new PolicyStatement({
          sid: 'ReadAgentBundle',
          effect: Effect.ALLOW,
          actions: ['s3:GetObject'],
          resources: [this.bucket.arnForObjects(`${S3_PREFIX.agentBundle}*`)],
        }),
      ],
    })
    acknowledge(
      this.hostPolicy,
      wildcardResourceFinding(this, this.bucket.arnForObjects(`${S3_PREFIX.agentBundle}*`)),
      'hosts read the agent bundle of the deployed version; the key carries the version, so the grant is the agent-bundle/ prefix only',
    )
    this.hostCommandOutputPolicy = new ManagedPolicy(this, 'HostCommandOutputPolicy', {
      description:
        'ANSAI hosts (optional): let the SSM Agent upload the full output of ANSAI commands to the command-output/ prefix',
      statements: [
        new PolicyStatement({
          sid: 'WriteCommandOutput',
          effect: Effect.ALLOW,
          actions: ['s3:PutObject'],
          resources: [this.bucket.arnForObjects(`${S3_PREFIX.commandOutput}*`)],
        }),
      ],
    })
    acknowledge(
      this.hostCommandOutputPolicy,
      wildcardResourceFinding(this, this.bucket.arnForObjects(`${S3_PREFIX.commandOutput}*`)),
      'the SSM Agent writes <prefix>/<command id>/<instance id>/... keys that are not known in advance; only the command-output/ prefix is granted',
    )

    const out = (id: string, value: string, description: string): void => {
      new CfnOutput(this, id, { value, description, exportName: `${config.name}-${id}` })
    }
    out('HostPolicyArn', this.hostPolicy.managedPolicyArn, 'Attach to the IAM role of every ANSAI host')
    out(
      'HostCommandOutputPolicyArn',
      this.hostCommandOutputPolicy.managedPolicyArn,
      'Optional: attach to host roles so full command output lands in S3',
    )
    out('ReportsQueueUrl', this.queues.reports.queue.queueUrl, 'Where host agents send their reports')
    out(
      'BucketName',
      this.bucket.bucketName,
      'Full command output (command-output/) and the agent bundle (agent-bundle/)',
    )
    out('EventBusName', this.bus.eventBusName, "ANSAI's events for your integrations (source ansai)")
    out('TableName', this.table.tableName, 'The ANSAI state table')
  }
}

const pascal = (name: string): string => name.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase())
