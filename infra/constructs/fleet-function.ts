/**
 * One ANSAI Lambda function, opinionated (DESIGN.md, rule 11): Node 24 on arm64, the locally bundled code with
 * `fleet-config.json` beside it, its own log group with a retention, X-Ray active tracing, a role of its own with
 * no managed policy (it may write to its log group and nothing else until granted), environment variables only
 * from names.ts `ENV` and Powertools', and alarms on errors and throttles.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Duration, type RemovalPolicy } from 'aws-cdk-lib'
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch'
import { type IRole, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam'
import { Architecture, Code, Function as LambdaFunction, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda'
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs'
import type { IQueue } from 'aws-cdk-lib/aws-sqs'
import { Construct } from 'constructs'
import { CONFIG_FILE_NAME, ENV, type FunctionName } from '../../functions/platform/names.ts'
import type { FleetRuntimeConfig } from '../../functions/platform/runtime-config.ts'
import { FUNCTION_SPECS, POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME } from '../layout.ts'

export type EnvName = keyof typeof ENV

/** Node.js 24 (aws-cdk-lib 2.276 has the constant; the literal is the same runtime). */
export const NODE_RUNTIME: Runtime = Runtime.NODEJS_24_X

export interface FleetFunctionProps {
  name: FunctionName
  /** The directory of the bundled code (`index.mjs`); `fleet-config.json` is written into it. */
  codeDir: string
  runtimeConfig: FleetRuntimeConfig
  /** ENV variables this function gets (their values: names, URLs, ARNs). `config` is always set. */
  environment: Partial<Record<Exclude<EnvName, 'config'>, string>>
  memoryMb: number
  logRetention: RetentionDays
  logLevel: string
  reservedConcurrency?: number
  /** For functions invoked asynchronously (schedules, rules): where failed events go after the retries. */
  deadLetterQueue?: IQueue
  removalPolicy: RemovalPolicy
}

export class FleetFunction extends Construct {
  readonly fn: LambdaFunction
  readonly role: IRole
  readonly logGroup: LogGroup
  readonly alarms: Alarm[]
  readonly timeout: Duration

  constructor(scope: Construct, id: string, props: FleetFunctionProps) {
    super(scope, id)
    const spec = FUNCTION_SPECS[props.name]
    this.timeout = Duration.seconds(spec.timeoutSeconds)
    writeFileSync(join(props.codeDir, CONFIG_FILE_NAME), `${JSON.stringify(props.runtimeConfig, null, 2)}\n`)

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    })
    const role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `ANSAI ${props.name}`,
    })
    this.logGroup.grantWrite(role)
    this.role = role

    const environment: Record<string, string> = {
      POWERTOOLS_SERVICE_NAME,
      POWERTOOLS_METRICS_NAMESPACE,
      POWERTOOLS_LOG_LEVEL: props.logLevel,
      [ENV.config]: CONFIG_FILE_NAME,
    }
    for (const [key, value] of Object.entries(props.environment)) {
      if (value !== undefined) environment[ENV[key as Exclude<EnvName, 'config'>]] = value
    }

    this.fn = new LambdaFunction(this, 'Function', {
      description: spec.description,
      runtime: NODE_RUNTIME,
      architecture: Architecture.ARM_64,
      handler: 'index.handler',
      code: Code.fromAsset(props.codeDir),
      memorySize: props.memoryMb,
      timeout: this.timeout,
      role,
      logGroup: this.logGroup,
      tracing: spec.tracing === 'active' ? Tracing.ACTIVE : Tracing.PASS_THROUGH,
      environment,
      ...(props.reservedConcurrency !== undefined ? { reservedConcurrentExecutions: props.reservedConcurrency } : {}),
      ...(props.deadLetterQueue ? { deadLetterQueue: props.deadLetterQueue } : {}),
    })

    const alarm = (alarmId: string, what: string, metric: ReturnType<LambdaFunction['metricErrors']>): Alarm =>
      new Alarm(this, alarmId, {
        alarmDescription: `ANSAI ${props.name}: ${what}`,
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      })
    this.alarms = [
      alarm('Errors', 'invocations failed', this.fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' })),
      alarm(
        'Throttles',
        'invocations throttled',
        this.fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }),
      ),
    ]
  }
}
