import {
  type CommandInvocation,
  type CommandRequest,
  type CommandRunner,
  type PingStatus,
  PortError,
} from '../../ports/fleet.ts'

/** A command the twin was asked to send, with the id it answered. */
export interface RecordedCommand extends CommandRequest {
  commandId: string
}

/** SSM's limit for a command comment (the SSM adapter cuts to it too). */
const COMMENT_MAX = 100

/**
 * The in-memory twin of the CommandRunner port (SSM Run Command), for the use cases' unit tests. It records every
 * command; a test sets what an invocation looks like (`setInvocation`) and each host's ping status
 * (`setPingStatus`). Until set, an invocation is `Pending` with exit code -1, and a host is `Unknown`. Errors as SSM
 * gives them: an unknown command id is a non-retryable `InvalidCommandId`, a host the command was not sent to a
 * retryable `InvocationDoesNotExist`. `fail` holds errors the next calls throw (any method), one per call.
 */
export class MemoryCommandRunner implements CommandRunner {
  readonly commands: RecordedCommand[] = []
  readonly fail: Error[] = []
  private readonly invocations = new Map<string, CommandInvocation>()
  private readonly pings = new Map<string, PingStatus>()
  private readonly newId: () => string
  private counter = 0

  /** `newId`: the command ids to answer; default `00000000-0000-4000-8000-000000000001`, `…002`, … */
  constructor(options: { newId?: () => string } = {}) {
    this.newId = options.newId ?? (() => `00000000-0000-4000-8000-${String(++this.counter).padStart(12, '0')}`)
  }

  async send(request: CommandRequest): Promise<{ commandId: string }> {
    this.failIfTold()
    const commandId = this.newId()
    this.commands.push({
      host: request.host,
      document: request.document,
      parameters: { ...request.parameters },
      timeoutSeconds: request.timeoutSeconds,
      comment: request.comment.slice(0, COMMENT_MAX),
      commandId,
    })
    return { commandId }
  }

  async getInvocation(commandId: string, host: string): Promise<CommandInvocation> {
    this.failIfTold()
    const command = this.commands.find((c) => c.commandId === commandId)
    if (!command) {
      throw new PortError(`memory SSM: no command ${commandId}`, { retryable: false, code: 'InvalidCommandId' })
    }
    if (command.host !== host) {
      throw new PortError(`memory SSM: command ${commandId} has no invocation on ${host}`, {
        retryable: true,
        code: 'InvocationDoesNotExist',
      })
    }
    return {
      ...(this.invocations.get(key(commandId, host)) ?? {
        commandId,
        host,
        status: 'Pending',
        responseCode: -1,
        stdout: '',
        stderr: '',
      }),
    }
  }

  async pingStatus(hosts: readonly string[]): Promise<Record<string, PingStatus>> {
    this.failIfTold()
    return Object.fromEntries(hosts.map((h) => [h, this.pings.get(h) ?? 'Unknown']))
  }

  /** What `getInvocation` answers for a command on a host from now on. */
  setInvocation(commandId: string, host: string, result: Partial<Omit<CommandInvocation, 'commandId' | 'host'>>): void {
    const before = this.invocations.get(key(commandId, host))
    this.invocations.set(key(commandId, host), {
      commandId,
      host,
      status: 'Pending',
      responseCode: -1,
      stdout: '',
      stderr: '',
      ...before,
      ...result,
    })
  }

  setPingStatus(host: string, status: PingStatus): void {
    this.pings.set(host, status)
  }

  /** The last command sent to a host, if any. */
  lastTo(host: string): RecordedCommand | undefined {
    return this.commands.findLast((c) => c.host === host)
  }

  private failIfTold(): void {
    const err = this.fail.shift()
    if (err) throw err
  }
}

const key = (commandId: string, host: string): string => `${commandId}\u0000${host}`
