/**
 * The SSM adapter (SsmCommandRunner) with the real SDK client: what SendCommand carries (moto records it; the
 * client's middleware shows the fields moto does not keep), how invocations map, and how SSM errors become
 * PortErrors. DescribeInstanceInformation is answered by a stub: moto 5.2 does not implement it.
 */
import { ListCommandsCommand, SSMClient } from '@aws-sdk/client-ssm'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { createSsmClient } from '../../functions/adapters/aws-clients.ts'
import { SsmCommandRunner } from '../../functions/adapters/ssm-command-runner.ts'
import { type CommandRequest, PortError } from '../../shared/ports/fleet.ts'
import { startMotoOrSkip } from '../support/moto.ts'
import { failCalls, recordCalls, sdkError, stubCommand } from './aws-stubs.ts'

const HOST = 'i-0a1b2c3d4e5f60718'

const request = (over: Partial<CommandRequest> = {}): CommandRequest => ({
  host: HOST,
  document: 'ANSAI-RestartService',
  parameters: { Key: 'r-0123456789abcdef', Unit: 'nginx.service', DryRun: 'false' },
  timeoutSeconds: 600,
  comment: 'ANSAI r-0123456789abcdef',
  ...over,
})

const offline = () => new SSMClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } })

describe('SsmCommandRunner without a server', () => {
  it('maps a finished invocation, and an exit code SSM has not given yet is -1', async () => {
    const client = offline()
    let answer: Record<string, unknown> = {}
    stubCommand(client, 'GetCommandInvocation', () => answer)
    const runner = new SsmCommandRunner({ client })
    answer = {
      CommandId: 'c-1',
      InstanceId: HOST,
      Status: 'Failed',
      ResponseCode: 2,
      StandardOutputContent: '{"schema":"ansai.remediation-result.v1"}\n',
      StandardErrorContent: 'boom',
    }
    expect(await runner.getInvocation('c-1', HOST)).toEqual({
      commandId: 'c-1',
      host: HOST,
      status: 'Failed',
      responseCode: 2,
      stdout: '{"schema":"ansai.remediation-result.v1"}\n',
      stderr: 'boom',
    })
    answer = { CommandId: 'c-1', InstanceId: HOST, Status: 'InProgress' }
    expect(await runner.getInvocation('c-1', HOST)).toEqual({
      commandId: 'c-1',
      host: HOST,
      status: 'InProgress',
      responseCode: -1,
      stdout: '',
      stderr: '',
    })
    answer = { CommandId: 'c-1', InstanceId: HOST, Status: 'Exploded' }
    await expect(runner.getInvocation('c-1', HOST)).rejects.toMatchObject({
      name: 'PortError',
      code: 'UnknownStatus',
      retryable: false,
    })
  })

  it('SendCommand errors: throttling is retryable; a wrong instance, document or parameter is not', async () => {
    const cases = [
      ['ThrottlingException', 400, true],
      ['InternalServerError', 500, true],
      ['InvalidInstanceId', 400, false],
      ['InvalidDocument', 400, false],
      ['InvalidParameters', 400, false],
      ['UnsupportedPlatformType', 400, false],
      ['ValidationException', 400, false],
    ] as const
    for (const [name, status, retryable] of cases) {
      const client = offline()
      failCalls(client, { command: 'SendCommand', times: 1, error: () => sdkError(name, { status }) })
      const err = await new SsmCommandRunner({ client }).send(request()).catch((e: unknown) => e)
      expect(err, name).toBeInstanceOf(PortError)
      expect(err, name).toMatchObject({ code: name, retryable })
      expect((err as PortError).cause, name).toMatchObject({ name, $metadata: { httpStatusCode: status } })
      expect((err as Error).message, name).toContain('ANSAI-RestartService')
    }
  })

  it('pingStatus asks in chunks of 50, follows NextToken, and sends no id SSM could not know', async () => {
    const client = offline()
    const calls = recordCalls(client)
    stubCommand(client, 'DescribeInstanceInformation', (input) => {
      const ids = (input.Filters as { Key: string; Values: string[] }[])[0]!.Values
      const token = input.NextToken === undefined ? 0 : Number(input.NextToken)
      // Pages of 20 whatever MaxResults says, to make the adapter follow NextToken.
      const page = ids.slice(token, token + 20)
      return {
        InstanceInformationList: page.map((InstanceId) => ({ InstanceId, PingStatus: 'Online' })),
        ...(token + 20 < ids.length ? { NextToken: String(token + 20) } : {}),
      }
    })
    const hosts = Array.from({ length: 120 }, (_, i) => `i-${(i + 1).toString(16).padStart(17, '0')}`)
    const got = await new SsmCommandRunner({ client }).pingStatus([...hosts, 'laptop', 'mi-0123456789abcdef0'])
    expect(Object.values(got).filter((s) => s === 'Online')).toHaveLength(121)
    expect(got.laptop).toBe('Unknown')
    const sent = calls.map((c) => (c.input.Filters as { Key: string; Values: string[] }[])[0]!)
    expect(sent.every((f) => f.Key === 'InstanceIds' && f.Values.length <= 50)).toBe(true)
    expect(new Set(sent.flatMap((f) => f.Values))).toEqual(new Set([...hosts, 'mi-0123456789abcdef0']))
    expect(sent.flatMap((f) => f.Values)).not.toContain('laptop')
    // 121 ids: chunks of 50, 50, 21; pages of 20 → 3 + 3 + 2 requests.
    expect(calls).toHaveLength(8)
    expect(calls.every((c) => c.input.MaxResults === 50)).toBe(true)
  })

  it('pingStatus: a PingStatus SSM may add later is Unknown; throttling is a retryable PortError', async () => {
    const client = offline()
    stubCommand(client, 'DescribeInstanceInformation', () => ({
      InstanceInformationList: [{ InstanceId: HOST, PingStatus: 'Hibernating' }],
    }))
    expect(await new SsmCommandRunner({ client }).pingStatus([HOST])).toEqual({ [HOST]: 'Unknown' })
    const throttled = offline()
    failCalls(throttled, { times: 1, error: () => sdkError('ThrottlingException') })
    await expect(new SsmCommandRunner({ client: throttled }).pingStatus([HOST])).rejects.toMatchObject({
      name: 'PortError',
      retryable: true,
      code: 'ThrottlingException',
    })
  })
})

const moto = await startMotoOrSkip()
// At the top level: runs even when a filter skips every test of the moto block.
afterAll(() => moto?.stop())

describe.skipIf(!moto)('SsmCommandRunner on moto', () => {
  beforeEach(() => moto!.reset())

  it('SendCommand carries the document, [host], parameters as lists, the timeout, CloudWatch off, S3 output', async () => {
    const client = createSsmClient({ ...moto!.clientConfig, maxAttempts: 1 })
    const calls = recordCalls(client)
    const runner = new SsmCommandRunner({ client, outputS3: { bucket: 'ansai-output', keyPrefix: 'commands/' } })
    const { commandId } = await runner.send(request())
    expect(calls[0]).toEqual({
      command: 'SendCommandCommand',
      input: {
        DocumentName: 'ANSAI-RestartService',
        InstanceIds: [HOST],
        Parameters: { Key: ['r-0123456789abcdef'], Unit: ['nginx.service'], DryRun: ['false'] },
        TimeoutSeconds: 600,
        Comment: 'ANSAI r-0123456789abcdef',
        CloudWatchOutputConfig: { CloudWatchOutputEnabled: false },
        OutputS3BucketName: 'ansai-output',
        OutputS3KeyPrefix: 'commands/',
      },
    })
    const listed = (await client.send(new ListCommandsCommand({ CommandId: commandId }))).Commands![0]!
    expect(listed).toMatchObject({
      CommandId: commandId,
      DocumentName: 'ANSAI-RestartService',
      InstanceIds: [HOST],
      OutputS3BucketName: 'ansai-output',
      OutputS3KeyPrefix: 'commands/',
      Parameters: { Key: ['r-0123456789abcdef'], Unit: ['nginx.service'], DryRun: ['false'] },
    })
  })

  it('without an output bucket, no S3 fields are sent', async () => {
    const client = createSsmClient({ ...moto!.clientConfig, maxAttempts: 1 })
    const calls = recordCalls(client)
    await new SsmCommandRunner({ client }).send(request())
    expect(Object.keys(calls[0]!.input)).not.toContain('OutputS3BucketName')
    expect(Object.keys(calls[0]!.input)).not.toContain('OutputS3KeyPrefix')
  })

  it("a SendCommand throttled once is absorbed by the client's adaptive retries", async () => {
    const client = createSsmClient(moto!.clientConfig)
    // Inside the SDK's retry loop: the first attempt is throttled, the second reaches moto.
    const throttle = failCalls(client, {
      command: 'SendCommand',
      times: 1,
      step: 'deserialize',
      error: () => sdkError('ThrottlingException'),
    })
    const { commandId } = await new SsmCommandRunner({ client }).send(request())
    expect(throttle).toEqual({ seen: 2, failed: 1 })
    expect((await client.send(new ListCommandsCommand({ CommandId: commandId }))).Commands).toHaveLength(1)
  })

  it("moto's invocation: Success, exit code 0, empty output", async () => {
    const client = createSsmClient({ ...moto!.clientConfig, maxAttempts: 1 })
    const runner = new SsmCommandRunner({ client })
    const { commandId } = await runner.send(request())
    expect(await runner.getInvocation(commandId, HOST)).toEqual({
      commandId,
      host: HOST,
      status: 'Success',
      responseCode: 0,
      stdout: '',
      stderr: '',
    })
  })

  it('GetCommandInvocation errors from moto keep the SDK error as cause', async () => {
    const client = createSsmClient({ ...moto!.clientConfig, maxAttempts: 1 })
    const runner = new SsmCommandRunner({ client })
    const { commandId } = await runner.send(request())
    const notYet = await runner.getInvocation(commandId, 'i-0123456789abcdef0').catch((e: unknown) => e)
    expect(notYet).toMatchObject({ name: 'PortError', code: 'InvocationDoesNotExist', retryable: true })
    expect((notYet as PortError).cause).toMatchObject({ name: 'InvocationDoesNotExist' })
    const unknown = await runner.getInvocation('00000000-0000-4000-8000-00000000dead', HOST).catch((e: unknown) => e)
    expect(unknown).toMatchObject({ name: 'PortError', code: 'InvalidCommandId', retryable: false })
  })
})
