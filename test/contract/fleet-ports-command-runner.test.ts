/**
 * The contract of the CommandRunner port (SSM Run Command), against the in-memory twin and the SSM adapter.
 *
 * - send / getInvocation: the twin, and the adapter on moto_server (moto records SendCommand, shows it in
 *   ListCommands with its parameters, and answers GetCommandInvocation with a "Success" and empty output).
 * - pingStatus: the twin, and the adapter with a real SSMClient whose DescribeInstanceInformation is answered by a
 *   stub in its middleware stack: moto 5.2 does not implement DescribeInstanceInformation.
 */
import { ListCommandsCommand, SSMClient } from '@aws-sdk/client-ssm'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { createSsmClient } from '../../functions/adapters/aws-clients.ts'
import { SsmCommandRunner } from '../../functions/adapters/ssm-command-runner.ts'
import { MemoryCommandRunner } from '../../shared/adapters/fleet/memory-command-runner.ts'
import {
  COMMAND_STATUSES,
  type CommandRequest,
  type CommandRunner,
  type PingStatus,
  PortError,
} from '../../shared/ports/fleet.ts'
import { stubCommand } from '../integration/aws-stubs.ts'
import { startMotoOrSkip } from '../support/moto.ts'
import { failure } from '../support/rejection.ts'

const HOST = 'i-0a1b2c3d4e5f60718'
const OTHER = 'i-0123456789abcdef0'

const request = (over: Partial<CommandRequest> = {}): CommandRequest => ({
  host: HOST,
  document: 'ANSAI-CleanupDisk',
  parameters: {
    Key: 'r-7f3a9c2e41b05d86',
    Roots: '/var/log,/tmp',
    LogsOlderThan: '30d',
    DryRun: 'false',
    Odd: 'quotes " and \\ and ünïcödé ✓',
  },
  timeoutSeconds: 600,
  comment: 'ANSAI r-7f3a9c2e41b05d86',
  ...over,
})

interface Recorded {
  hosts: string[]
  document: string
  parameters: Record<string, string[]>
  comment: string
  timeoutSeconds: number
}

interface RunnerHarness {
  runner: CommandRunner
  /** What the other side recorded for a command. */
  recorded(commandId: string): Promise<Recorded>
}

const describeRunnerContract = (name: string, make: () => Promise<RunnerHarness>): void => {
  describe(`CommandRunner contract (send, getInvocation): ${name}`, () => {
    it('send returns a command id, and the command is recorded with the document and the exact parameters', async () => {
      const { runner, recorded } = await make()
      const { commandId } = await runner.send(request())
      expect(commandId).toMatch(/\S/)
      expect(await recorded(commandId)).toEqual({
        hosts: [HOST],
        document: 'ANSAI-CleanupDisk',
        parameters: Object.fromEntries(Object.entries(request().parameters).map(([k, v]) => [k, [v]])),
        comment: 'ANSAI r-7f3a9c2e41b05d86',
        timeoutSeconds: 600,
      })
    })

    it('two sends are two commands', async () => {
      const { runner } = await make()
      const a = await runner.send(request())
      const b = await runner.send(request({ host: OTHER }))
      expect(a.commandId).not.toBe(b.commandId)
    })

    it('a comment longer than SSM takes is cut to 100 characters', async () => {
      const { runner, recorded } = await make()
      const long = `ANSAI ${'k'.repeat(150)}`
      const { commandId } = await runner.send(request({ comment: long }))
      expect((await recorded(commandId)).comment).toBe(long.slice(0, 100))
    })

    it('getInvocation tells the status of the command on the host', async () => {
      const { runner } = await make()
      const { commandId } = await runner.send(request())
      const inv = await runner.getInvocation(commandId, HOST)
      expect(inv).toMatchObject({ commandId, host: HOST })
      expect(COMMAND_STATUSES).toContain(inv.status)
      expect(typeof inv.responseCode).toBe('number')
      expect(typeof inv.stdout).toBe('string')
      expect(typeof inv.stderr).toBe('string')
    })

    it('no invocation on a host the command did not go to yet: retryable InvocationDoesNotExist', async () => {
      const { runner } = await make()
      const { commandId } = await runner.send(request())
      const err = await failure(runner.getInvocation(commandId, OTHER))
      expect(err).toBeInstanceOf(PortError)
      expect(err).toMatchObject({ retryable: true, code: 'InvocationDoesNotExist' })
    })

    it('an unknown command id: non-retryable InvalidCommandId', async () => {
      const { runner } = await make()
      const err = await failure(runner.getInvocation('8d7a9e8c-0000-4000-8000-000000000000', HOST))
      expect(err).toBeInstanceOf(PortError)
      expect(err).toMatchObject({ retryable: false, code: 'InvalidCommandId' })
    })
  })
}

interface PingHarness {
  runner: CommandRunner
  setPing(host: string, status: Exclude<PingStatus, 'Unknown'>): void
}

const idOf = (n: number): string => `i-${n.toString(16).padStart(17, '0')}`

const describePingContract = (name: string, make: () => PingHarness): void => {
  describe(`CommandRunner contract (pingStatus): ${name}`, () => {
    it('hosts SSM does not know are Unknown; the others have their status', async () => {
      const h = make()
      h.setPing(HOST, 'Online')
      h.setPing(OTHER, 'ConnectionLost')
      h.setPing('mi-0123456789abcdef0', 'Inactive')
      expect(await h.runner.pingStatus([HOST, OTHER, 'mi-0123456789abcdef0', 'i-00000000000000000'])).toEqual({
        [HOST]: 'Online',
        [OTHER]: 'ConnectionLost',
        'mi-0123456789abcdef0': 'Inactive',
        'i-00000000000000000': 'Unknown',
      })
    })

    it('a host id that is no SSM instance id is Unknown', async () => {
      const h = make()
      h.setPing(HOST, 'Online')
      expect(await h.runner.pingStatus(['laptop', HOST, 'web-1.example.internal'])).toEqual({
        laptop: 'Unknown',
        [HOST]: 'Online',
        'web-1.example.internal': 'Unknown',
      })
    })

    it('answers for 120 hosts (more than one request), each once, duplicates too', async () => {
      const h = make()
      const hosts = Array.from({ length: 120 }, (_, i) => idOf(i + 1))
      hosts.forEach((host, i) => {
        if (i % 3 === 0) h.setPing(host, 'Online')
        if (i % 3 === 1) h.setPing(host, 'ConnectionLost')
      })
      const got = await h.runner.pingStatus([...hosts, hosts[0]!])
      expect(Object.keys(got).sort()).toEqual([...hosts].sort())
      hosts.forEach((host, i) => {
        expect(got[host], host).toBe(i % 3 === 0 ? 'Online' : i % 3 === 1 ? 'ConnectionLost' : 'Unknown')
      })
    })

    it('no hosts, no answer', async () => {
      expect(await make().runner.pingStatus([])).toEqual({})
    })
  })
}

// ---------- the twin ----------

describeRunnerContract('in memory', async () => {
  const runner = new MemoryCommandRunner()
  return {
    runner,
    recorded: async (commandId) => {
      const c = runner.commands.find((x) => x.commandId === commandId)!
      return {
        hosts: [c.host],
        document: c.document,
        parameters: Object.fromEntries(Object.entries(c.parameters).map(([k, v]) => [k, [v]])),
        comment: c.comment,
        timeoutSeconds: c.timeoutSeconds,
      }
    },
  }
})

describePingContract('in memory', () => {
  const runner = new MemoryCommandRunner()
  return { runner, setPing: (host, status) => runner.setPingStatus(host, status) }
})

describe('MemoryCommandRunner: what use-case tests set and read', () => {
  it('setInvocation shapes what getInvocation answers; fail makes the next call throw, once', async () => {
    const runner = new MemoryCommandRunner()
    const { commandId } = await runner.send(request())
    expect(await runner.getInvocation(commandId, HOST)).toEqual({
      commandId,
      host: HOST,
      status: 'Pending',
      responseCode: -1,
      stdout: '',
      stderr: '',
    })
    runner.setInvocation(commandId, HOST, { status: 'Success', responseCode: 0, stdout: '{"ok":true}\n' })
    runner.setInvocation(commandId, HOST, { stderr: 'warning' })
    expect(await runner.getInvocation(commandId, HOST)).toEqual({
      commandId,
      host: HOST,
      status: 'Success',
      responseCode: 0,
      stdout: '{"ok":true}\n',
      stderr: 'warning',
    })
    const throttled = new PortError('throttled', { retryable: true, code: 'ThrottlingException' })
    runner.fail.push(throttled)
    await expect(runner.send(request())).rejects.toBe(throttled)
    expect(runner.commands).toHaveLength(1)
    await runner.send(request({ host: OTHER }))
    expect(runner.lastTo(OTHER)?.commandId).toBe('00000000-0000-4000-8000-000000000002')
  })
})

// ---------- the SSM adapter: pingStatus through a stubbed DescribeInstanceInformation ----------

/**
 * A fake of SSM's DescribeInstanceInformation behind a real client: filters by `InstanceIds` (at most 50 values,
 * as SSM's filter allows), pages of `MaxResults` (5 to 50) with NextToken, in its own order.
 */
const fakeInstanceInformation = (client: SSMClient, table: Map<string, string>): void => {
  stubCommand(client, 'DescribeInstanceInformation', (input) => {
    const filters = (input.Filters ?? []) as { Key: string; Values: string[] }[]
    const ids = filters.find((f) => f.Key === 'InstanceIds')?.Values
    if (!ids || ids.length === 0 || ids.length > 50) throw new Error(`stub: bad InstanceIds filter (${ids?.length})`)
    const max = Number(input.MaxResults ?? 50)
    if (max < 5 || max > 50) throw new Error(`stub: MaxResults ${max} out of range`)
    const known = [...table.keys()].filter((id) => ids.includes(id)).sort()
    const start = Number(input.NextToken ?? 0)
    const page = known.slice(start, start + max)
    return {
      InstanceInformationList: page.map((InstanceId) => ({ InstanceId, PingStatus: table.get(InstanceId) })),
      ...(start + max < known.length ? { NextToken: String(start + max) } : {}),
    }
  })
}

describePingContract('SSM adapter, stubbed DescribeInstanceInformation', () => {
  const client = new SSMClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } })
  const table = new Map<string, string>()
  fakeInstanceInformation(client, table)
  return { runner: new SsmCommandRunner({ client }), setPing: (host, status) => void table.set(host, status) }
})

// ---------- the SSM adapter on moto ----------

const moto = await startMotoOrSkip()
// At the top level: runs even when a filter skips every test of the moto block.
afterAll(() => moto?.stop())

describe.skipIf(!moto)('SSM adapter on moto', () => {
  beforeEach(() => moto!.reset())

  describeRunnerContract('SSM on moto', async () => {
    const client = createSsmClient({ ...moto!.clientConfig, maxAttempts: 1 })
    return {
      runner: new SsmCommandRunner({ client }),
      recorded: async (commandId) => {
        const res = await client.send(new ListCommandsCommand({ CommandId: commandId }))
        expect(res.Commands).toHaveLength(1)
        const c = res.Commands![0]!
        return {
          hosts: c.InstanceIds ?? [],
          document: c.DocumentName ?? '',
          parameters: (c.Parameters ?? {}) as Record<string, string[]>,
          comment: c.Comment ?? '',
          timeoutSeconds: c.TimeoutSeconds ?? -1,
        }
      },
    }
  })
})
