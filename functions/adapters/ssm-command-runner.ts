import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm'
import {
  COMMAND_STATUSES,
  type CommandInvocation,
  type CommandRequest,
  type CommandRunner,
  type CommandStatus,
  type PingStatus,
  PortError,
} from '../../shared/ports/fleet.ts'
import { toPortError } from './aws-errors.ts'

export interface SsmCommandRunnerOptions {
  client: SSMClient
  /** Where SSM writes the full output of each command (it keeps only the first 24,000 characters itself). */
  outputS3?: { bucket: string; keyPrefix?: string }
}

/** SSM's limit for a command comment. */
export const SSM_COMMENT_MAX = 100
/** DescribeInstanceInformation takes at most 50 ids per filter value list and returns at most 50 per page. */
export const SSM_DESCRIBE_CHUNK = 50

/** EC2 instance ids and hybrid managed-instance ids, the only host ids SSM knows. */
const MANAGED_INSTANCE_ID = /^(?:i-[0-9a-f]{8}(?:[0-9a-f]{9})?|mi-[0-9a-f]{17})$/

/**
 * `send` errors: a wrong instance, document or parameter is the decision's or the deployment's fault, not a passing
 * state (ValidationException: a parameter outside SSM's constraints).
 */
const SEND_PERMANENT = new Set([
  'InvalidInstanceId',
  'InvalidDocument',
  'InvalidDocumentVersion',
  'InvalidParameters',
  'InvalidRole',
  'InvalidOutputFolder',
  'InvalidNotificationConfig',
  'UnsupportedPlatformType',
  'MaxDocumentSizeExceeded',
  'DuplicateInstanceId',
  'ValidationException',
  'AccessDeniedException',
])
/** `getInvocation` errors: the invocation appears a moment after SendCommand, so its absence is worth a retry. */
const INVOCATION_RETRYABLE = new Set(['InvocationDoesNotExist'])
const INVOCATION_PERMANENT = new Set(['InvalidCommandId', 'InvalidInstanceId', 'InvalidPluginName'])

const PING_STATUSES: ReadonlySet<string> = new Set<PingStatus>(['Online', 'ConnectionLost', 'Inactive'])
const STATUSES: ReadonlySet<string> = new Set(COMMAND_STATUSES)

/** Cut to at most `max` UTF-16 code units without leaving half a surrogate pair. */
const cut = (s: string, max: number): string => {
  if (s.length <= max) return s
  const last = s.charCodeAt(max - 1)
  return s.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max)
}

/**
 * SSM Run Command: one command per remediation and host, through the remediation's `ANSAI-*` document. Output goes
 * to S3 when a bucket is given; CloudWatch output is off (the remediation result is one JSON line in stdout).
 */
export class SsmCommandRunner implements CommandRunner {
  private readonly options: SsmCommandRunnerOptions

  constructor(options: SsmCommandRunnerOptions) {
    this.options = options
  }

  async send(request: CommandRequest): Promise<{ commandId: string }> {
    const where = `SSM SendCommand ${request.document} to ${request.host}`
    const s3 = this.options.outputS3
    let commandId: string | undefined
    try {
      const out = await this.options.client.send(
        new SendCommandCommand({
          DocumentName: request.document,
          InstanceIds: [request.host],
          Parameters: Object.fromEntries(Object.entries(request.parameters).map(([k, v]) => [k, [v]])),
          TimeoutSeconds: request.timeoutSeconds,
          Comment: cut(request.comment, SSM_COMMENT_MAX),
          CloudWatchOutputConfig: { CloudWatchOutputEnabled: false },
          ...(s3 ? { OutputS3BucketName: s3.bucket } : {}),
          ...(s3?.keyPrefix ? { OutputS3KeyPrefix: s3.keyPrefix } : {}),
        }),
      )
      commandId = out.Command?.CommandId
    } catch (err) {
      throw toPortError(err, where, { permanent: SEND_PERMANENT })
    }
    if (!commandId)
      throw new PortError(`${where}: SSM answered without a command id`, { retryable: true, code: 'NoCommandId' })
    return { commandId }
  }

  async getInvocation(commandId: string, host: string): Promise<CommandInvocation> {
    const where = `SSM GetCommandInvocation ${commandId} on ${host}`
    let out: GetCommandInvocationCommandOutput
    try {
      out = await this.options.client.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: host }))
    } catch (err) {
      throw toPortError(err, where, { retryable: INVOCATION_RETRYABLE, permanent: INVOCATION_PERMANENT })
    }
    const status = out.Status ?? 'Pending'
    if (!STATUSES.has(status)) {
      throw new PortError(`${where}: unknown status ${status}`, { retryable: false, code: 'UnknownStatus' })
    }
    return {
      commandId: out.CommandId ?? commandId,
      host: out.InstanceId ?? host,
      status: status as CommandStatus,
      responseCode: typeof out.ResponseCode === 'number' ? out.ResponseCode : -1,
      stdout: out.StandardOutputContent ?? '',
      stderr: out.StandardErrorContent ?? '',
    }
  }

  /**
   * DescribeInstanceInformation filtered by instance ids, 50 at a time. Hosts SSM does not list, and host ids that
   * are no SSM instance id at all (never sent: one would fail the whole filter), are `Unknown`.
   */
  async pingStatus(hosts: readonly string[]): Promise<Record<string, PingStatus>> {
    const out: Record<string, PingStatus> = {}
    for (const h of hosts) out[h] = 'Unknown'
    const ids = [...new Set(hosts)].filter((h) => MANAGED_INSTANCE_ID.test(h))
    for (let i = 0; i < ids.length; i += SSM_DESCRIBE_CHUNK) {
      const chunk = ids.slice(i, i + SSM_DESCRIBE_CHUNK)
      let token: string | undefined
      do {
        try {
          const page = await this.options.client.send(
            new DescribeInstanceInformationCommand({
              Filters: [{ Key: 'InstanceIds', Values: chunk }],
              MaxResults: SSM_DESCRIBE_CHUNK,
              ...(token ? { NextToken: token } : {}),
            }),
          )
          for (const info of page.InstanceInformationList ?? []) {
            const id = info.InstanceId
            if (id === undefined || !Object.hasOwn(out, id)) continue
            out[id] =
              info.PingStatus && PING_STATUSES.has(info.PingStatus) ? (info.PingStatus as PingStatus) : 'Unknown'
          }
          token = page.NextToken || undefined
        } catch (err) {
          throw toPortError(err, `SSM DescribeInstanceInformation (${chunk.length} hosts)`)
        }
      } while (token)
    }
    return out
  }
}
