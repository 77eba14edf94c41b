/**
 * The stateless half of the fleet control plane: the six functions and their triggers (SQS event sources, one
 * EventBridge Scheduler schedule for the fleet round and one for the daily digest, the rule on SSM command status
 * events), the SSM documents, the agent bundle in the bucket, least-privilege IAM, alarms and a dashboard.
 */
import { Aws, Duration, RemovalPolicy, Stack, type StackProps, TimeZone } from 'aws-cdk-lib'
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch'
import { Table } from 'aws-cdk-lib/aws-dynamodb'
import { Match, Rule } from 'aws-cdk-lib/aws-events'
import { LambdaFunction as LambdaTarget } from 'aws-cdk-lib/aws-events-targets'
import { Effect, Policy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam'
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources'
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs'
import { Bucket } from 'aws-cdk-lib/aws-s3'
import { BucketDeployment, Source } from 'aws-cdk-lib/aws-s3-deployment'
import { Schedule, ScheduleExpression } from 'aws-cdk-lib/aws-scheduler'
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets'
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs'
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js'
import type { Construct } from 'constructs'
import { FUNCTION_NAMES, type FunctionName, TABLE } from '../functions/platform/names.ts'
import { parseDuration } from '../shared/engine/duration.ts'
import { REMEDIATIONS } from '../shared/registry/remediations/index.ts'
import type { RemediationDefinition } from '../shared/registry/types.ts'
import type { AgentArtifact } from './agent-artifact.ts'
import type { FunctionBundler } from './bundle.ts'
import type { LoadedFleetConfig } from './config.ts'
import { type EnvName, FleetFunction } from './constructs/fleet-function.ts'
import { SsmDocuments } from './constructs/ssm-documents.ts'
import { FUNCTION_SPECS, MANAGED_TAG, QUEUE_CONSUMERS, type QueueName, S3_PREFIX, stateNames } from './layout.ts'
import { acknowledge, wildcardResourceFinding } from './nag.ts'
import type { StatefulStack } from './stateful-stack.ts'

/** AWS documents that run arbitrary shell or code: never for ANSAI, whatever else its role is given. */
export const DENIED_AWS_DOCUMENTS = [
  'AWS-RunShellScript',
  'AWS-RunPowerShellScript',
  'AWS-RunRemoteScript',
  'AWS-RunDocument',
  'AWS-RunAnsiblePlaybook',
  'AWS-ApplyAnsiblePlaybooks',
  'AWS-RunSaltState',
  'AWS-InstallApplication',
] as const

export interface ControlPlaneStackProps extends StackProps {
  fleet: LoadedFleetConfig
  stateful: StatefulStack
  /** The directory of each function's bundled code (real esbuild bundles, or prebuilt/fake ones in tests). */
  bundle: FunctionBundler
  /** The host artifact the install document deploys. */
  agent: AgentArtifact
  /** The remediation registry (tests may pass another). */
  remediations?: readonly RemediationDefinition[]
}

/** The queues each function sends to (besides the one it consumes, if any). */
const SENDS_TO: Record<FunctionName, readonly QueueName[]> = {
  'ingest-reports': ['actions', 'notifications'],
  'evaluate-fleet': ['evaluations', 'actions', 'notifications'],
  'dispatch-remediation': [],
  'record-command-result': ['actions', 'notifications'],
  'send-notifications': [],
  'send-digest': ['notifications'],
}

/** Functions that publish ANSAI events to the custom bus. */
const PUBLISHERS: readonly FunctionName[] = [
  'ingest-reports',
  'evaluate-fleet',
  'dispatch-remediation',
  'record-command-result',
]
/** Functions that get the bucket (dispatch names it as SSM's output bucket, record-command-result reads it). */
const BUCKET_USERS: readonly FunctionName[] = ['dispatch-remediation', 'record-command-result']
/** Functions that send email and webhooks (the digest goes through the notifications queue). */
const SENDERS: readonly FunctionName[] = ['send-notifications']
/** Functions invoked asynchronously (schedules, rules): they get a dead-letter queue for failed events. */
const ASYNC_INVOKED: readonly FunctionName[] = ['evaluate-fleet', 'record-command-result', 'send-digest']

const QUEUE_ENV: Record<QueueName, Exclude<EnvName, 'config'>> = {
  reports: 'reportsQueue',
  evaluations: 'evaluationsQueue',
  actions: 'actionsQueue',
  notifications: 'notificationsQueue',
}

/** The ENV variables of a function: the table, the queues it consumes and sends to, the bus, the bucket. */
const environmentOf = (name: FunctionName): Exclude<EnvName, 'config'>[] => {
  const queues = (Object.keys(QUEUE_ENV) as QueueName[]).filter(
    (q) => QUEUE_CONSUMERS[q] === name || SENDS_TO[name].includes(q),
  )
  return [
    'table',
    ...queues.map((q) => QUEUE_ENV[q]),
    ...(PUBLISHERS.includes(name) ? (['eventBus'] as const) : []),
    ...(BUCKET_USERS.includes(name) ? (['outputBucket'] as const) : []),
  ]
}

/**
 * Event-source settings per queue: batch size 10, partial batch failures, a ceiling on pollers where it matters. The
 * reports queue waits up to 5 s to fill a batch: fewer invocations and receives, and a fault still acted on in
 * seconds.
 */
const EVENT_SOURCES: Record<QueueName, { maxConcurrency?: number; maxBatchingWindowSeconds?: number }> = {
  reports: { maxBatchingWindowSeconds: 5 },
  evaluations: { maxConcurrency: 10 },
  actions: { maxConcurrency: 5 },
  notifications: { maxConcurrency: 5 },
}

export class ControlPlaneStack extends Stack {
  readonly functions: Record<FunctionName, FleetFunction>
  readonly documents: SsmDocuments
  readonly asyncFailures: Queue
  readonly evaluateSchedule: Schedule
  readonly digestSchedule: Schedule
  readonly commandStatusRule: Rule
  readonly dashboard: Dashboard

  constructor(scope: Construct, id: string, props: ControlPlaneStackProps) {
    super(scope, id, props)
    const { fleet, stateful } = props
    const { config } = fleet
    const removalPolicy = config.storage.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY
    this.addStackDependency(stateful)
    // the table and the bucket by their fixed names: the statements about them are built here, in this stack
    const names = stateNames(config.name)
    const table = Table.fromTableAttributes(this, 'StateTable', {
      tableName: names.table,
      globalIndexes: TABLE.indexes.map((i) => i.name),
    })
    const bucket = Bucket.fromBucketName(this, 'StateBucket', names.bucket)

    // -- where failed asynchronous invocations and undeliverable scheduled/rule events end up
    this.asyncFailures = new Queue(this, 'AsyncFailures', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    })
    acknowledge(
      this.asyncFailures,
      'Serverless-SQSRedrivePolicy',
      'a dead-letter queue (of the async functions, schedules and rule): nothing consumes it, its depth alarm tells people',
    )

    // -- the documents
    this.documents = new SsmDocuments(this, 'Documents', {
      remediations: props.remediations ?? REMEDIATIONS,
      bucket,
      agent: props.agent,
    })

    // -- the functions
    const values: Record<Exclude<EnvName, 'config'>, string> = {
      table: table.tableName,
      reportsQueue: stateful.queues.reports.queue.queueUrl,
      evaluationsQueue: stateful.queues.evaluations.queue.queueUrl,
      actionsQueue: stateful.queues.actions.queue.queueUrl,
      notificationsQueue: stateful.queues.notifications.queue.queueUrl,
      eventBus: stateful.bus.eventBusName,
      outputBucket: bucket.bucketName,
    }
    const functions = {} as Record<FunctionName, FleetFunction>
    for (const name of FUNCTION_NAMES) {
      const reserved = config.functions.reservedConcurrency[name]
      functions[name] = new FleetFunction(this, pascal(name), {
        name,
        codeDir: props.bundle(name),
        runtimeConfig: fleet.runtime,
        environment: Object.fromEntries(environmentOf(name).map((k) => [k, values[k]])),
        memoryMb: config.functions.memoryMb,
        logRetention: config.functions.logRetentionDays as RetentionDays,
        logLevel: config.functions.logLevel,
        removalPolicy,
        ...(reserved !== undefined ? { reservedConcurrency: reserved } : {}),
        ...(ASYNC_INVOKED.includes(name) ? { deadLetterQueue: this.asyncFailures } : {}),
      })
    }
    this.functions = functions
    const role = (name: FunctionName) => functions[name].role

    // -- data: the table for all; the queues each function produces to; the bus for the publishers
    for (const name of FUNCTION_NAMES) {
      table.grantReadWriteData(role(name))
      for (const queue of SENDS_TO[name]) stateful.queues[queue].queue.grantSendMessages(role(name))
    }
    for (const name of PUBLISHERS) stateful.bus.grantPutEventsTo(role(name))

    // -- the queue consumers: SQS event sources with partial batch failures
    for (const [queue, consumer] of Object.entries(QUEUE_CONSUMERS) as [QueueName, FunctionName][]) {
      // never more pollers than the function may run at once (SQS event sources take 2 at least)
      const reserved = config.functions.reservedConcurrency[consumer]
      const ceiling = EVENT_SOURCES[queue].maxConcurrency ?? reserved
      const maxConcurrency = ceiling === undefined ? undefined : Math.max(2, Math.min(ceiling, reserved ?? ceiling))
      functions[consumer].fn.addEventSource(
        new SqsEventSource(stateful.queues[queue].queue, {
          batchSize: 10,
          reportBatchItemFailures: true,
          ...(maxConcurrency !== undefined ? { maxConcurrency } : {}),
          ...(EVENT_SOURCES[queue].maxBatchingWindowSeconds
            ? { maxBatchingWindow: Duration.seconds(EVENT_SOURCES[queue].maxBatchingWindowSeconds) }
            : {}),
        }),
      )
    }

    // -- schedules: one fleet round (not one per policy), one daily digest
    const scheduleTarget = (name: FunctionName) => {
      const schedulerRole = new Role(this, `${pascal(name)}SchedulerRole`, {
        assumedBy: new ServicePrincipal('scheduler.amazonaws.com'),
        description: `ANSAI: EventBridge Scheduler invokes ${name}`,
      })
      acknowledge(
        schedulerRole,
        wildcardResourceFinding(this, `${functions[name].fn.functionArn}:*`),
        `CDK's grantInvoke also covers the versions and aliases of ${name} (<arn>:*); the role can invoke that one function only`,
      )
      return new LambdaInvoke(functions[name].fn, {
        role: schedulerRole,
        deadLetterQueue: this.asyncFailures,
        retryAttempts: 2,
        maxEventAge: Duration.minutes(10),
      })
    }
    this.evaluateSchedule = new Schedule(this, 'EvaluateSchedule', {
      description: 'ANSAI: the scheduled evaluation round of the whole fleet',
      schedule: ScheduleExpression.rate(Duration.minutes(parseDuration(config.schedules.evaluate) / 60_000)),
      target: scheduleTarget('evaluate-fleet'),
    })
    const [hour, minute] = config.schedules.digest.at.split(':')
    this.digestSchedule = new Schedule(this, 'DigestSchedule', {
      description: 'ANSAI: the daily digest',
      schedule: ScheduleExpression.cron({
        minute: String(Number(minute)),
        hour: String(Number(hour)),
        timeZone: TimeZone.of(config.schedules.digest.timezone),
      }),
      target: scheduleTarget('send-digest'),
    })

    // -- SSM command status events of ANSAI's documents (default bus) → record-command-result
    this.commandStatusRule = new Rule(this, 'CommandStatusRule', {
      description: 'ANSAI: status changes of commands of ANSAI-* documents',
      eventPattern: {
        source: ['aws.ssm'],
        detailType: ['EC2 Command Invocation Status-change Notification'],
        detail: { 'document-name': Match.prefix('ANSAI-') },
      },
      targets: [
        new LambdaTarget(functions['record-command-result'].fn, {
          deadLetterQueue: this.asyncFailures,
          retryAttempts: 8,
          maxEventAge: Duration.hours(2),
        }),
      ],
    })

    // -- SSM: SendCommand only with ANSAI documents and only on hosts tagged for ANSAI; shell documents denied
    const documentArn = (name: string): string =>
      `arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:document/${name}`
    const dispatch = new Policy(this, 'DispatchSsmPolicy', {
      statements: [
        new PolicyStatement({
          sid: 'SendAnsaiDocuments',
          effect: Effect.ALLOW,
          actions: ['ssm:SendCommand'],
          resources: this.documents.remediationDocumentNames.map(documentArn),
        }),
        ...hostStatements(config.hostGroups),
        new PolicyStatement({
          sid: 'DenyShellDocuments',
          effect: Effect.DENY,
          actions: ['ssm:SendCommand'],
          resources: [
            ...DENIED_AWS_DOCUMENTS.map((d) => `arn:${Aws.PARTITION}:ssm:${Aws.REGION}::document/${d}`),
            `arn:${Aws.PARTITION}:ssm:*::document/AWS-Run*`,
            `arn:${Aws.PARTITION}:ssm:*:*:document/AWS-Run*`,
          ],
        }),
      ],
    })
    dispatch.attachToRole(role('dispatch-remediation'))
    for (const arn of MANAGED_HOST_ARNS) {
      acknowledge(
        dispatch,
        wildcardResourceFinding(this, arn),
        `hosts are not known at deploy time: SendCommand on any of them is allowed only with the condition ssm:resourceTag/${MANAGED_TAG.key} = ${MANAGED_TAG.value} (and the host groups' tags)`,
      )
    }

    const ssmRead = (name: FunctionName, action: string, why: string): void => {
      const policy = new Policy(this, `${pascal(name)}SsmRead`, {
        statements: [new PolicyStatement({ effect: Effect.ALLOW, actions: [action], resources: ['*'] })],
      })
      policy.attachToRole(role(name))
      acknowledge(policy, 'AwsSolutions-IAM5[Resource::*]', why)
    }
    ssmRead(
      'evaluate-fleet',
      'ssm:DescribeInstanceInformation',
      'ssm:DescribeInstanceInformation supports no resource-level permissions (AWS requires "*"); it only reads the ping status of managed nodes',
    )
    ssmRead(
      'record-command-result',
      'ssm:GetCommandInvocation',
      'ssm:GetCommandInvocation supports no resource-level permissions (AWS requires "*"); it only reads the result of a command',
    )

    // -- full command output: the hosts' SSM Agent writes it, record-command-result reads it
    role('record-command-result').addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ReadCommandOutput',
        actions: ['s3:GetObject'],
        resources: [bucket.arnForObjects(`${S3_PREFIX.commandOutput}*`)],
      }),
    )

    // -- SES and Secrets Manager, only the configured identities and secrets
    for (const name of SENDERS) {
      if (fleet.sesIdentities.length) {
        role(name).addToPrincipalPolicy(
          new PolicyStatement({
            sid: 'SendEmailFromConfiguredIdentities',
            actions: ['ses:SendEmail'],
            resources: [
              ...fleet.sesIdentities.map(
                (i) => `arn:${Aws.PARTITION}:ses:${Aws.REGION}:${Aws.ACCOUNT_ID}:identity/${i}`,
              ),
              ...fleet.sesConfigurationSets.map(
                (c) => `arn:${Aws.PARTITION}:ses:${Aws.REGION}:${Aws.ACCOUNT_ID}:configuration-set/${c}`,
              ),
            ],
          }),
        )
      }
      if (fleet.secretArns.length) {
        role(name).addToPrincipalPolicy(
          new PolicyStatement({
            sid: 'ReadChannelSecrets',
            actions: ['secretsmanager:GetSecretValue'],
            // a partial ARN (without the -XXXXXX suffix Secrets Manager adds) matches its secret through `-??????`
            resources: fleet.secretArns.flatMap((arn) => [arn, `${arn}-??????`]),
          }),
        )
      }
    }

    // -- the agent bundle in the bucket, for ANSAI-InstallAgent
    const deployLogs = new LogGroup(this, 'AgentBundleDeploymentLogs', {
      retention: config.functions.logRetentionDays as RetentionDays,
      removalPolicy,
    })
    const deployment = new BucketDeployment(this, 'AgentBundle', {
      sources: [Source.asset(props.agent.dir)],
      destinationBucket: bucket,
      destinationKeyPrefix: S3_PREFIX.agentBundle,
      prune: true,
      memoryLimit: 512,
      logGroup: deployLogs,
    })
    acknowledgeBucketDeployment(this, deployment, bucket.arnForObjects('*'))

    // -- nag: what the functions cannot avoid
    for (const name of FUNCTION_NAMES) {
      const defaultPolicy = functions[name].role.node.tryFindChild('DefaultPolicy')
      if (!defaultPolicy) continue
      acknowledge(
        defaultPolicy,
        'AwsSolutions-IAM5[Resource::*]',
        'X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions',
      )
      acknowledge(
        defaultPolicy,
        wildcardResourceFinding(this, `${table.tableArn}/index/*`),
        `the table's global secondary index (${TABLE.indexes.map((i) => i.name).join(', ')}) is queried by the code that owns the table`,
      )
      if (FUNCTION_SPECS[name].tracing === 'pass-through') {
        acknowledge(
          functions[name].fn,
          'Serverless-LambdaTracing',
          'X-Ray in pass-through mode: a high-volume function (a batch per host every 15 minutes, or a tick per host every round) whose every invocation default sampling would trace, at a cost above the rest of the control plane; its logs and metrics still cover it, and the low-volume functions trace actively',
        )
      }
      if (name === 'record-command-result') {
        acknowledge(
          defaultPolicy,
          wildcardResourceFinding(this, bucket.arnForObjects(`${S3_PREFIX.commandOutput}*`)),
          'full command output keys (<command id>/<instance id>/...) are not known in advance; only the command-output/ prefix is readable',
        )
      }
    }
    for (const [queue, consumer] of Object.entries(QUEUE_CONSUMERS) as [QueueName, FunctionName][]) {
      const fn = functions[consumer].fn
      for (const child of fn.node.children) {
        if (child.node.id.startsWith('SqsEventSource')) {
          acknowledge(
            child,
            'Serverless-LambdaEventSourceMappingDestination',
            `SQS event sources take no on-failure destination (only streams do): failed ${queue} messages go to the ${queue} queue's own DLQ after 5 receives`,
          )
        }
      }
      if (!ASYNC_INVOKED.includes(consumer)) {
        acknowledge(
          fn,
          'Serverless-LambdaDLQ',
          `invoked only by the ${queue} queue's event source (synchronously): a Lambda DLQ would never receive anything; the queue's redrive DLQ catches failures`,
        )
      }
    }

    // -- alarms and the dashboard
    const dlqAlarms: Alarm[] = []
    const dlqs: [string, Queue][] = [
      ...(Object.entries(stateful.queues).map(([n, q]) => [`${n} DLQ`, q.dlq]) as [string, Queue][]),
      ['async failures', this.asyncFailures],
    ]
    for (const [label, dlq] of dlqs) {
      dlqAlarms.push(
        new Alarm(this, `${pascal(label.replace(/ /g, '-'))}DepthAlarm`, {
          alarmDescription: `ANSAI: messages in the ${label} queue: something failed for good`,
          metric: dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
          threshold: 1,
          evaluationPeriods: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      )
    }
    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `${config.name}-control-plane`,
      defaultInterval: Duration.hours(6),
    })
    const perFunction = (metric: (f: FleetFunction) => IMetric) => FUNCTION_NAMES.map((n) => metric(functions[n]))
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# ANSAI control plane (${config.name})\nReports in, decisions, SSM commands, results, notifications. DLQ alarms mean a message failed 5 times.`,
        width: 24,
        height: 2,
      }),
    )
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Invocations',
        left: perFunction((f) => f.fn.metricInvocations({ label: f.node.id, period: Duration.minutes(5) })),
        width: 8,
      }),
      new GraphWidget({
        title: 'Errors',
        left: perFunction((f) => f.fn.metricErrors({ label: f.node.id, period: Duration.minutes(5) })),
        width: 8,
      }),
      new GraphWidget({
        title: 'Throttles',
        left: perFunction((f) => f.fn.metricThrottles({ label: f.node.id, period: Duration.minutes(5) })),
        width: 8,
      }),
    )
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Duration p90 (ms)',
        left: perFunction((f) =>
          f.fn.metricDuration({ label: f.node.id, statistic: 'p90', period: Duration.minutes(5) }),
        ),
        width: 8,
      }),
      new GraphWidget({
        title: 'Queue depth',
        left: (Object.entries(stateful.queues) as [QueueName, { queue: Queue }][]).map(([n, q]) =>
          q.queue.metricApproximateNumberOfMessagesVisible({ label: n, period: Duration.minutes(5) }),
        ),
        width: 8,
      }),
      new GraphWidget({
        title: 'Oldest message age (s)',
        left: (Object.entries(stateful.queues) as [QueueName, { queue: Queue }][]).map(([n, q]) =>
          q.queue.metricApproximateAgeOfOldestMessage({ label: n, period: Duration.minutes(5) }),
        ),
        width: 8,
      }),
    )
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Dead-letter queues',
        left: dlqs.map(([label, q]) =>
          q.metricApproximateNumberOfMessagesVisible({ label, period: Duration.minutes(5) }),
        ),
        width: 12,
      }),
      new AlarmStatusWidget({
        title: 'Alarms',
        alarms: [...dlqAlarms, ...FUNCTION_NAMES.flatMap((n) => functions[n].alarms)],
        width: 12,
      }),
    )
  }
}

/** EC2 instances and hybrid managed nodes of this account and region. */
const MANAGED_HOST_ARNS = [
  `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:instance/*`,
  `arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:managed-instance/*`,
] as const

/**
 * SendCommand on hosts: EC2 instances and hybrid managed nodes tagged `ansai:managed=true`; with host groups, one
 * statement per group adding the group's tags (any of a list), so a host must match one whole group.
 */
const hostStatements = (groups: LoadedFleetConfig['config']['hostGroups']): PolicyStatement[] => {
  const resources = [...MANAGED_HOST_ARNS]
  const managed = { [`ssm:resourceTag/${MANAGED_TAG.key}`]: MANAGED_TAG.value }
  const entries = Object.entries(groups)
  if (entries.length === 0) {
    return [
      new PolicyStatement({
        sid: 'SendToManagedHosts',
        effect: Effect.ALLOW,
        actions: ['ssm:SendCommand'],
        resources,
        conditions: { StringEquals: managed },
      }),
    ]
  }
  return entries.map(
    ([group, { tags }]) =>
      new PolicyStatement({
        sid: `SendToHostGroup${pascal(group)}`,
        effect: Effect.ALLOW,
        actions: ['ssm:SendCommand'],
        resources,
        conditions: {
          StringEquals: {
            ...managed,
            ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`ssm:resourceTag/${k}`, v])),
          },
        },
      }),
  )
}

/**
 * The bucket deployment's handler is CDK's own singleton function (at the stack's top level): its findings are
 * acknowledged on it, one by one.
 */
const acknowledgeBucketDeployment = (stack: Stack, deployment: BucketDeployment, destinationObjects: string): void => {
  const handler = stack.node.children.find((c) => c.node.id.startsWith('Custom::CDKBucketDeployment'))
  if (!handler) throw new Error('the BucketDeployment handler was not found: aws-cdk-lib changed its construct id')
  const why = 'CDK BucketDeployment handler, which copies the agent bundle into the bucket during deployments'
  const done = new Set<string>()
  const ack = (id: string, reason: string): void => {
    if (done.has(id)) return
    done.add(id)
    acknowledge(handler, id, `${why}: ${reason}`)
  }
  ack(
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'aws-cdk-lib gives its role the basic execution managed policy (logs only)',
  )
  // its wildcards, read from its own policy: the asset bucket (CDK bootstrap) and the destination, with s3:*Object*
  const policy = deployment.handlerRole.node.tryFindChild('DefaultPolicy') as Policy | undefined
  if (!policy) throw new Error('the BucketDeployment role has no default policy: aws-cdk-lib changed')
  const document = stack.resolve(policy.document.toJSON()) as {
    Statement: { Effect: string; Action: unknown; Resource: unknown }[]
  }
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v])
  const destination = stack.resolve(destinationObjects)
  for (const statement of document.Statement.filter((st) => st.Effect === 'Allow')) {
    for (const action of list(statement.Action).filter((a): a is string => typeof a === 'string' && a.includes('*'))) {
      ack(
        `AwsSolutions-IAM5[Action::${action}]`,
        `aws-cdk-lib grants ${action} to read the asset and to sync the destination`,
      )
    }
    for (const resource of list(statement.Resource)) {
      const id = `AwsSolutions-IAM5[Resource::${flattenCfnReference(resource)}]`
      if (!id.includes('*')) continue
      ack(
        id,
        JSON.stringify(resource) === JSON.stringify(destination)
          ? 'it writes (and prunes) the agent-bundle/ objects it deploys'
          : "it reads the bundle's asset from the CDK bootstrap assets bucket",
      )
    }
  }
  ack('AwsSolutions-L1', 'its Python runtime is chosen by aws-cdk-lib')
  ack('Serverless-LambdaLatestVersion', 'its Python runtime is chosen by aws-cdk-lib')
  ack('Serverless-LambdaDLQ', 'invoked synchronously by CloudFormation, which reports a failure itself')
  ack('Serverless-LambdaTracing', 'runs only during deployments, not on the request path')
}

const pascal = (name: string): string => name.replace(/(^|-)([a-z0-9])/g, (_m, _d, c: string) => c.toUpperCase())
