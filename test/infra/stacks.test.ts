// biome-ignore-all lint/suspicious/noExplicitAny: CloudFormation templates are untyped JSON
/**
 * The fleet stacks, by their CloudFormation templates (Template.fromStack), built from the example config with fake
 * function assets: the table, the queues and their DLQs, the functions and their triggers, the SSM documents, the
 * IAM scopes, alarms and dashboard.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Match, Template } from 'aws-cdk-lib/assertions'
import { beforeAll, describe, expect, it } from 'vitest'
import { CONFIG_FILE_NAME, ENV, FUNCTION_NAMES, TABLE } from '../../functions/platform/names.ts'
import { INSTALL_AGENT_DOCUMENT } from '../../infra/constructs/ssm-documents.ts'
import { DENIED_AWS_DOCUMENTS } from '../../infra/control-plane-stack.ts'
import { FUNCTION_SPECS } from '../../infra/layout.ts'
import { REMEDIATIONS } from '../../shared/registry/remediations/index.ts'
import { withSsmDocuments } from '../../shared/registry/ssm.ts'
import { buildFleet, type FleetFixture } from './fleet-fixture.ts'

type Resources = Record<string, { Type: string; Properties: Record<string, any>; DeletionPolicy?: string }>
type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: Record<string, any> }

const resourcesOf = (t: Template, type: string): [string, Resources[string]][] =>
  Object.entries(t.toJSON().Resources as Resources).filter(([, r]) => r.Type === type)

const actions = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action])
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v])
/** A CloudFormation value as one string: Fn::Join flattened, references as <Ref> / <Logical.Attr> / import:<name>. */
const flat = (v: unknown): string => {
  if (typeof v === 'string') return v
  const o = v as Record<string, any>
  if (o['Fn::Join']) return (o['Fn::Join'][1] as unknown[]).map(flat).join(o['Fn::Join'][0])
  if (o.Ref) return `<${o.Ref}>`
  if (o['Fn::GetAtt']) return `<${o['Fn::GetAtt'].join('.')}>`
  if (o['Fn::ImportValue']) return `import:${flat(o['Fn::ImportValue'])}`
  return JSON.stringify(v)
}

/** Every IAM statement of a role (inline policies attached to it), by the role's logical id. */
const statementsOfRole = (t: Template, roleId: string): Statement[] =>
  resourcesOf(t, 'AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[])

let f: FleetFixture
let cp: Template
let st: Template
let functionsByName: Record<string, { id: string; props: Record<string, any> }>

beforeAll(() => {
  f = buildFleet({ nag: false })
  cp = Template.fromStack(f.controlPlane)
  st = Template.fromStack(f.stateful)
  functionsByName = {}
  for (const name of FUNCTION_NAMES) {
    const fn = f.controlPlane.functions[name].fn
    const id = f.controlPlane.getLogicalId(fn.node.defaultChild as never)
    functionsByName[name] = { id, props: (cp.toJSON().Resources as Resources)[id]!.Properties }
  }
}, 120_000)

const roleIdOf = (name: string): string => {
  const role = functionsByName[name]!.props.Role as { 'Fn::GetAtt': [string, string] }
  return role['Fn::GetAtt'][0]
}

describe('the stateful stack', () => {
  it('has one DynamoDB table: pay per request, PITR, encrypted, TTL, the key names of names.ts, gsi1', () => {
    st.resourceCountIs('AWS::DynamoDB::Table', 1)
    st.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
      GlobalSecondaryIndexes: [
        {
          IndexName: 'gsi1',
          KeySchema: [
            { AttributeName: 'gsi1pk', KeyType: 'HASH' },
            { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    })
    expect(resourcesOf(st, 'AWS::DynamoDB::Table')[0]![1].DeletionPolicy).toBe('Retain')
  })

  it('has four work queues, each with its own DLQ (maxReceiveCount 5), all encrypted and TLS-only', () => {
    const queues = resourcesOf(st, 'AWS::SQS::Queue')
    expect(queues).toHaveLength(8)
    const work = queues.filter(([, q]) => q.Properties.RedrivePolicy)
    expect(work.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'Actions',
      'Evaluations',
      'Notifications',
      'Reports',
    ])
    const dlqIds = new Set<string>()
    for (const [id, q] of work) {
      expect(q.Properties.RedrivePolicy.maxReceiveCount, id).toBe(5)
      dlqIds.add(q.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0])
    }
    expect(dlqIds.size).toBe(4)
    for (const [id, q] of queues) expect(q.Properties.SqsManagedSseEnabled, id).toBe(true)
    for (const [id] of queues) {
      st.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      })
    }
  })

  it('makes actions a FIFO queue without content-based deduplication, with a FIFO DLQ', () => {
    const [[, actions]] = resourcesOf(st, 'AWS::SQS::Queue').filter(
      ([id]) => id.startsWith('Actions') && !id.includes('Dlq'),
    ) as [[string, Resources[string]]]
    expect(actions.Properties).toMatchObject({ FifoQueue: true, ContentBasedDeduplication: false })
    const dlqId = actions.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0] as string
    expect((st.toJSON().Resources as Resources)[dlqId]!.Properties).toMatchObject({ FifoQueue: true })
    const standard = resourcesOf(st, 'AWS::SQS::Queue').filter(([id]) => !id.startsWith('Actions'))
    for (const [id, q] of standard) expect(q.Properties.FifoQueue, id).toBeUndefined()
  })

  it('has a bucket that blocks public access, is encrypted, TLS-only, logged, and expires command output', () => {
    st.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: Match.anyValue(),
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      LoggingConfiguration: { DestinationBucketName: Match.anyValue() },
      LifecycleConfiguration: { Rules: [{ Prefix: 'command-output/', ExpirationInDays: 30, Status: 'Enabled' }] },
    })
    for (const [id] of resourcesOf(st, 'AWS::S3::Bucket')) {
      st.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: id },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      })
    }
  })

  it("has ANSAI's own event bus", () => {
    st.resourceCountIs('AWS::Events::EventBus', 1)
  })

  it('exports a host policy that allows only sqs:SendMessage on reports and s3:GetObject on agent-bundle/', () => {
    const [reportsId] = resourcesOf(st, 'AWS::SQS::Queue').find(
      ([id]) => id.startsWith('Reports') && !id.includes('Dlq'),
    )!
    const [bucketId] = resourcesOf(st, 'AWS::S3::Bucket').find(([, b]) => b.Properties.BucketName)!
    const hostPolicy = f.stateful.getLogicalId(f.stateful.hostPolicy.node.defaultChild as never)
    const doc = (st.toJSON().Resources as Resources)[hostPolicy]!.Properties.PolicyDocument
    expect(
      (doc.Statement as Statement[]).map((s) => ({
        effect: s.Effect,
        actions: actions(s),
        resources: list(s.Resource).map(flat),
      })),
    ).toEqual([
      { effect: 'Allow', actions: ['sqs:SendMessage'], resources: [`<${reportsId}.Arn>`] },
      { effect: 'Allow', actions: ['s3:GetObject'], resources: [`<${bucketId}.Arn>/agent-bundle/*`] },
    ])
    st.hasOutput('HostPolicyArn', { Export: { Name: 'Ansai-HostPolicyArn' } })
  })
})

describe('the functions', () => {
  it('are the six of names.ts, on nodejs24.x and arm64, handler index.handler, traced, with their own log group', () => {
    const node = resourcesOf(cp, 'AWS::Lambda::Function').filter(([, r]) =>
      String(r.Properties.Runtime).startsWith('nodejs'),
    )
    expect(node).toHaveLength(FUNCTION_NAMES.length)
    for (const [id, r] of node) {
      expect(r.Properties, id).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        LoggingConfig: { LogGroup: { Ref: expect.any(String) } },
        MemorySize: 512,
      })
      expect(r.Properties.Timeout, id).toBeGreaterThan(3)
    }
    // X-Ray: the two high-volume functions pass through (cost), the others trace every sampled invocation.
    const modes = Object.fromEntries(
      node.map(([, r]) => [String(r.Properties.Description), (r.Properties.TracingConfig as { Mode: string }).Mode]),
    )
    expect(Object.values(modes).sort()).toEqual(['Active', 'Active', 'Active', 'Active', 'PassThrough', 'PassThrough'])
    expect(modes[FUNCTION_SPECS['ingest-reports'].description]).toBe('PassThrough')
    expect(modes[FUNCTION_SPECS['evaluate-fleet'].description]).toBe('PassThrough')
    for (const [id, lg] of resourcesOf(cp, 'AWS::Logs::LogGroup')) expect(lg.Properties.RetentionInDays, id).toBe(30)
  })

  it('get environment variables only from names.ts ENV and Powertools', () => {
    const allowed = new Set<string>([
      ...Object.values(ENV),
      'POWERTOOLS_SERVICE_NAME',
      'POWERTOOLS_METRICS_NAMESPACE',
      'POWERTOOLS_LOG_LEVEL',
    ])
    for (const name of FUNCTION_NAMES) {
      const vars = functionsByName[name]!.props.Environment.Variables as Record<string, unknown>
      for (const key of Object.keys(vars)) expect(allowed.has(key), `${name}: ${key}`).toBe(true)
      expect(vars[ENV.config], name).toBe(CONFIG_FILE_NAME)
      expect(vars[ENV.table], name).toBe('Ansai-state')
    }
    const ingest = functionsByName['ingest-reports']!.props.Environment.Variables
    expect(flat(ingest[ENV.actionsQueue])).toMatch(/^import:AnsaiStateful:ExportsOutputRefActions[0-9A-F]{8}/)
    expect(flat(ingest[ENV.notificationsQueue])).toMatch(
      /^import:AnsaiStateful:ExportsOutputRefNotifications[0-9A-F]{8}/,
    )
    expect(Object.keys(functionsByName['send-notifications']!.props.Environment.Variables).sort()).toEqual(
      [
        ENV.config,
        ENV.table,
        ENV.notificationsQueue,
        'POWERTOOLS_LOG_LEVEL',
        'POWERTOOLS_METRICS_NAMESPACE',
        'POWERTOOLS_SERVICE_NAME',
      ].sort(),
    )
  })

  it('get every variable their composition reads at cold start (functions/platform/compose.ts)', async () => {
    const compose = await import('../../functions/platform/compose.ts')
    const composers: Record<string, (o: { env: NodeJS.ProcessEnv }) => unknown> = {
      'ingest-reports': compose.composeIngest,
      'evaluate-fleet': compose.composeEvaluateFleet,
      'dispatch-remediation': compose.composeDispatch,
      'record-command-result': compose.composeRecordCommandResult,
      'send-notifications': compose.composeSendNotifications,
      'send-digest': compose.composeSendDigest,
    }
    for (const name of FUNCTION_NAMES) {
      const vars = functionsByName[name]!.props.Environment.Variables as Record<string, unknown>
      const env: NodeJS.ProcessEnv = { AWS_REGION: 'eu-west-1' }
      // references resolve at deploy time; the actions queue is FIFO, so its URL ends in .fifo
      for (const [k, v] of Object.entries(vars)) {
        env[k] =
          typeof v === 'string'
            ? v
            : `https://sqs.eu-west-1.amazonaws.com/123456789012/${k}${k === ENV.actionsQueue ? '.fifo' : ''}`
      }
      env[ENV.config] = join(f.root, 'functions', name, CONFIG_FILE_NAME)
      expect(() => composers[name]!({ env }), name).not.toThrow()
      expect(() => composers[name]!({ env: { ...env, [ENV.table]: '' } }), name).toThrow(/ANSAI_TABLE_NAME/)
    }
  })

  it('ship the validated runtime config as fleet-config.json beside the code', () => {
    for (const name of FUNCTION_NAMES) {
      const written = JSON.parse(readFileSync(join(f.root, 'functions', name, CONFIG_FILE_NAME), 'utf8'))
      expect(written, name).toEqual(f.fleet.runtime)
    }
  })

  it('reserve concurrency where the config says so', () => {
    expect(functionsByName['dispatch-remediation']!.props.ReservedConcurrentExecutions).toBe(10)
    expect(functionsByName['send-digest']!.props.ReservedConcurrentExecutions).toBe(1)
    expect(functionsByName['ingest-reports']!.props.ReservedConcurrentExecutions).toBeUndefined()
  })
})

describe('the triggers', () => {
  it('consume each queue with one function (batch 10, partial batch failures), visibility >= 6 x its timeout', () => {
    const queues = st.toJSON().Resources as Resources
    const mappings = resourcesOf(cp, 'AWS::Lambda::EventSourceMapping')
    expect(mappings).toHaveLength(4)
    const consumers: Record<string, string> = {}
    for (const [, m] of mappings) {
      expect(m.Properties).toMatchObject({ BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'] })
      const fnId = m.Properties.FunctionName.Ref as string
      const [name] = Object.entries(functionsByName).find(([, v]) => v.id === fnId)!
      const exportName = flat(m.Properties.EventSourceArn)
      const queueId = Object.keys(queues).find(
        (id) => queues[id]!.Type === 'AWS::SQS::Queue' && exportName.includes(`GetAtt${id}Arn`),
      )!
      expect(queueId, exportName).toBeDefined()
      consumers[queueId.replace(/[0-9A-F]{8}$/, '')] = name
      const visibility = queues[queueId]!.Properties.VisibilityTimeout as number
      const timeout = functionsByName[name]!.props.Timeout as number
      // Only the reports queue waits to fill its batches (fewer invocations at a heartbeat every 15 minutes).
      expect(m.Properties.MaximumBatchingWindowInSeconds, name).toBe(name === 'ingest-reports' ? 5 : undefined)
      expect(visibility, `${queueId} visibility vs ${name} timeout`).toBeGreaterThanOrEqual(6 * timeout)
    }
    expect(consumers).toEqual({
      Reports: 'ingest-reports',
      Evaluations: 'evaluate-fleet',
      Actions: 'dispatch-remediation',
      Notifications: 'send-notifications',
    })
  })

  it('run two schedules: the fleet round every 10 minutes to evaluate-fleet, the daily digest to send-digest', () => {
    cp.resourceCountIs('AWS::Scheduler::Schedule', 2)
    cp.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(10 minutes)',
      Target: Match.objectLike({
        Arn: { 'Fn::GetAtt': [functionsByName['evaluate-fleet']!.id, 'Arn'] },
        DeadLetterConfig: Match.anyValue(),
      }),
    })
    cp.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 8 * * ? *)',
      ScheduleExpressionTimezone: 'UTC',
      Target: Match.objectLike({ Arn: { 'Fn::GetAtt': [functionsByName['send-digest']!.id, 'Arn'] } }),
    })
  })

  it('send SSM status events of ANSAI-* documents (default bus) to record-command-result', () => {
    cp.resourceCountIs('AWS::Events::Rule', 1)
    cp.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ssm'],
        'detail-type': ['EC2 Command Invocation Status-change Notification'],
        detail: { 'document-name': [{ prefix: 'ANSAI-' }] },
      },
      EventBusName: Match.absent(),
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [functionsByName['record-command-result']!.id, 'Arn'] },
          DeadLetterConfig: Match.anyValue(),
        }),
      ],
    })
  })
})

describe('the SSM documents', () => {
  const documents = () => resourcesOf(cp, 'AWS::SSM::Document')

  it('are ANSAI-InstallAgent and one per available remediation, named and versioned in place', () => {
    const names = documents()
      .map(([, d]) => d.Properties.Name)
      .sort()
    expect(names).toEqual([...withSsmDocuments(REMEDIATIONS).map((r) => r.ssmDocument), INSTALL_AGENT_DOCUMENT].sort())
    for (const [, d] of documents())
      expect(d.Properties).toMatchObject({ DocumentType: 'Command', UpdateMethod: 'NewVersion' })
  })

  it('are schema 2.2, and every parameter is ENV_VAR with an allowedPattern anchored at both ends', () => {
    for (const [, d] of documents()) {
      const content = d.Properties.Content
      expect(content.schemaVersion, d.Properties.Name).toBe('2.2')
      for (const [param, spec] of Object.entries(content.parameters as Record<string, any>)) {
        expect(spec.interpolationType, `${d.Properties.Name}.${param}`).toBe('ENV_VAR')
        expect(spec.allowedPattern, `${d.Properties.Name}.${param}`).toMatch(/^\^.*\$$/)
      }
    }
  })

  it('install the agent from the bucket with fixed commands', () => {
    const [, install] = documents().find(([, d]) => d.Properties.Name === INSTALL_AGENT_DOCUMENT)!
    const [download, run] = install.Properties.Content.mainSteps
    expect(download.action).toBe('aws:downloadContent')
    expect(download.inputs.sourceType).toBe('S3')
    expect(flat(download.inputs.sourceInfo)).toMatch(
      /^\{"path":"https:\/\/ansai-<AWS::AccountId>-<AWS::Region>\.s3\..*\/agent-bundle\/ansai-0\.1\.0\.tar\.gz"\}$/,
    )
    expect(run.action).toBe('aws:runShellScript')
    expect(run.inputs.runCommand).toEqual([
      'set -eu',
      'cd /var/lib/ansai-install',
      'rm -rf ansai-0.1.0',
      'tar -xzf ansai-0.1.0.tar.gz',
      './ansai-0.1.0/install.sh',
    ])
  })
})

describe('IAM', () => {
  const allStatements = (): { role: string; s: Statement }[] =>
    resourcesOf(cp, 'AWS::IAM::Policy').flatMap(([, p]) =>
      (p.Properties.PolicyDocument.Statement as Statement[]).map((s) => ({
        role: (p.Properties.Roles as { Ref: string }[]).map((r) => r.Ref).join(','),
        s,
      })),
    )

  it('lets only dispatch-remediation send commands: ANSAI documents, and hosts tagged ansai:managed=true', () => {
    const send = allStatements().filter(({ s }) => actions(s).includes('ssm:SendCommand'))
    expect(new Set(send.map((x) => x.role))).toEqual(new Set([roleIdOf('dispatch-remediation')]))
    const allow = send.filter(({ s }) => s.Effect === 'Allow').map(({ s }) => s)
    const [documentsStatement, ...hosts] = allow
    expect(documentsStatement!.Condition).toBeUndefined()
    expect(list(documentsStatement!.Resource).map(flat).sort()).toEqual(
      withSsmDocuments(REMEDIATIONS)
        .map((r) => `arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:document/${r.ssmDocument}`)
        .sort(),
    )
    expect(hosts.length).toBeGreaterThan(0)
    for (const s of hosts) {
      expect(list(s.Resource).map(flat)).toEqual([
        'arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*',
        'arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:managed-instance/*',
      ])
      expect(s.Condition?.StringEquals?.['ssm:resourceTag/ansai:managed']).toBe('true')
    }
    for (const { s } of send) expect(list(s.Resource)).not.toContain('*')
  })

  it('narrows commands to the host groups of the config: all of one group’s tags', () => {
    const hosts = allStatements()
      .filter(({ s }) => s.Effect === 'Allow' && actions(s).includes('ssm:SendCommand') && s.Condition)
      .map(({ s }) => s.Condition)
    expect(hosts).toEqual([
      { StringEquals: { 'ssm:resourceTag/ansai:managed': 'true', 'ssm:resourceTag/role': ['web', 'api'] } },
      {
        StringEquals: {
          'ssm:resourceTag/ansai:managed': 'true',
          'ssm:resourceTag/role': 'db',
          'ssm:resourceTag/env': 'prod',
        },
      },
    ])
  })

  it('denies SendCommand with AWS-RunShellScript and the other AWS shell documents', () => {
    const deny = allStatements().filter(({ s }) => s.Effect === 'Deny' && actions(s).includes('ssm:SendCommand'))
    expect(deny).toHaveLength(1)
    const resources = list(deny[0]!.s.Resource).map(flat)
    expect(resources).toContain('arn:<AWS::Partition>:ssm:<AWS::Region>::document/AWS-RunShellScript')
    for (const d of DENIED_AWS_DOCUMENTS)
      expect(
        resources.some((r) => r.endsWith(`/${d}`)),
        d,
      ).toBe(true)
    expect(resources).toContain('arn:<AWS::Partition>:ssm:*::document/AWS-Run*')
  })

  it('grants the SSM reads AWS allows only on "*" to the one function that needs each', () => {
    const reads = (action: string) =>
      allStatements()
        .filter(({ s }) => actions(s).includes(action))
        .map(({ role, s }) => ({ role, resource: s.Resource, actions: actions(s) }))
    expect(reads('ssm:DescribeInstanceInformation')).toEqual([
      { role: roleIdOf('evaluate-fleet'), resource: '*', actions: ['ssm:DescribeInstanceInformation'] },
    ])
    expect(reads('ssm:GetCommandInvocation')).toEqual([
      { role: roleIdOf('record-command-result'), resource: '*', actions: ['ssm:GetCommandInvocation'] },
    ])
  })

  it('lets exactly the publishing functions put events, on the ANSAI bus only', () => {
    const put = allStatements().filter(({ s }) => actions(s).includes('events:PutEvents'))
    expect(new Set(put.map((x) => x.role))).toEqual(
      new Set(['ingest-reports', 'evaluate-fleet', 'dispatch-remediation', 'record-command-result'].map(roleIdOf)),
    )
    for (const { s } of put)
      expect(flat(s.Resource)).toMatch(/^import:AnsaiStateful:ExportsOutputFnGetAttBus[0-9A-F]{8}Arn/)
  })

  it('scopes SES to the configured identities and Secrets Manager to the configured secrets', () => {
    const ses = allStatements().filter(({ s }) => actions(s).some((a) => a.startsWith('ses:')))
    expect(new Set(ses.map((x) => x.role))).toEqual(new Set([roleIdOf('send-notifications')]))
    for (const { s } of ses) {
      expect(actions(s)).toEqual(['ses:SendEmail'])
      expect(list(s.Resource).map(flat)).toEqual([
        'arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:identity/ansai@example.org',
        'arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:identity/example.org',
      ])
    }
    const secrets = allStatements().filter(({ s }) => actions(s).some((a) => a.startsWith('secretsmanager:')))
    expect(new Set(secrets.map((x) => x.role))).toEqual(new Set([roleIdOf('send-notifications')]))
    for (const { s } of secrets) {
      expect(actions(s)).toEqual(['secretsmanager:GetSecretValue'])
      expect(list(s.Resource).every((r) => String(r).startsWith(f.fleet.secretArns[0]!))).toBe(true)
    }
  })

  it('gives the function roles no managed policy and no Allow on "*" except X-Ray and the two SSM reads', () => {
    for (const name of FUNCTION_NAMES) {
      const roleId = roleIdOf(name)
      expect((cp.toJSON().Resources as Resources)[roleId]!.Properties.ManagedPolicyArns, name).toBeUndefined()
      const star = statementsOfRole(cp, roleId).filter((s) => s.Effect === 'Allow' && list(s.Resource).includes('*'))
      for (const s of star) {
        expect(
          actions(s).every(
            (a) => a.startsWith('xray:') || a === 'ssm:DescribeInstanceInformation' || a === 'ssm:GetCommandInvocation',
          ),
          `${name}: ${actions(s).join(', ')}`,
        ).toBe(true)
      }
    }
  })
})

describe('observability', () => {
  it('alarms on every DLQ, and on the errors and throttles of every function', () => {
    const alarms = resourcesOf(cp, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties)
    const dlqAlarms = alarms.filter((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible')
    expect(dlqAlarms).toHaveLength(5)
    for (const metric of ['Errors', 'Throttles']) {
      const fnAlarms = alarms.filter((a) => a.MetricName === metric && a.Namespace === 'AWS/Lambda')
      expect(fnAlarms.map((a) => a.Dimensions[0].Value.Ref).sort(), metric).toEqual(
        FUNCTION_NAMES.map((n) => functionsByName[n]!.id).sort(),
      )
    }
    for (const a of alarms)
      expect(a).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' })
  })

  it('has a dashboard for the control plane', () => {
    cp.resourceCountIs('AWS::CloudWatch::Dashboard', 1)
    cp.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'Ansai-control-plane' })
  })
})

describe('config knobs', () => {
  it('without host groups, allows commands on every host tagged ansai:managed=true; without reservations, reserves none', () => {
    const g = buildFleet({
      nag: false,
      yaml: 'version: 1\nname: Small\nfunctions: { reservedConcurrency: {} }\nschedules: { evaluate: 15m }\n',
    })
    const t = Template.fromStack(g.controlPlane)
    const send = resourcesOf(t, 'AWS::IAM::Policy')
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[])
      .filter((s) => s.Effect === 'Allow' && actions(s).includes('ssm:SendCommand') && s.Condition)
    expect(send.map((s) => s.Condition)).toEqual([{ StringEquals: { 'ssm:resourceTag/ansai:managed': 'true' } }])
    for (const [, fn] of resourcesOf(t, 'AWS::Lambda::Function'))
      expect(fn.Properties.ReservedConcurrentExecutions).toBeUndefined()
    t.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(15 minutes)' })
    expect(g.stateful.stackName).toBe('SmallStateful')
    expect(g.controlPlane.stackName).toBe('SmallControlPlane')
  })
})
