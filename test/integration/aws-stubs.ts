/**
 * Test doubles inside real AWS SDK v3 clients, through their middleware stack: the adapters under test call the real
 * client, with its real serialisation, retries and error types; these only record or replace what goes over the wire.
 *
 * - {@link recordCalls}: every command's name and input, as the adapter built it.
 * - {@link failCalls}: throw an SDK-shaped error (a ServiceException with `$fault` and `$metadata`) for the first
 *   `times` calls of a command, either before the SDK's retries (`initialize`: the adapter sees it at once) or
 *   inside them (`deserialize`: each attempt fails, so the SDK's retry strategy is exercised too).
 * - {@link stubCommand}: answer a command without sending it (an operation the emulator lacks).
 */
import { SQSServiceException } from '@aws-sdk/client-sqs'

type Args = { input: Record<string, unknown> }
type Next = (args: Args) => Promise<{ output: Record<string, unknown>; response?: unknown }>
type Middleware = (next: Next, context: { commandName?: string }) => (args: Args) => ReturnType<Next>

/** Any SDK v3 client (the middleware stack's types differ per client; these helpers need none of them). */
export interface StackClient {
  middlewareStack: { add(middleware: never, options: never): void }
}

/** Adds an anonymous middleware (a named one may be added only once per stack). */
const add = (client: StackClient, middleware: Middleware, options: Record<string, unknown>): void =>
  client.middlewareStack.add(middleware as never, options as never)

/** The SDK's command name of an operation: `SendMessageBatch` → `SendMessageBatchCommand`. */
const commandName = (operation: string): string => `${operation}Command`

export interface Call {
  command: string
  input: Record<string, unknown>
}

/** Every call's command name and a deep copy of its input, in order (including calls another stub answers). */
export const recordCalls = (client: StackClient): Call[] => {
  const calls: Call[] = []
  add(
    client,
    (next, context) => async (args) => {
      calls.push({ command: context.commandName ?? '?', input: structuredClone(args.input) })
      return next(args)
    },
    { step: 'initialize', priority: 'high' },
  )
  return calls
}

/** An error shaped as the SDK throws it for a service's answer. */
export const sdkError = (
  name: string,
  options: { status?: number; fault?: 'client' | 'server'; message?: string } = {},
): Error =>
  new SQSServiceException({
    name,
    $fault: options.fault ?? ((options.status ?? 400) >= 500 ? 'server' : 'client'),
    $metadata: { httpStatusCode: options.status ?? 400, requestId: 'test-request', attempts: 1, totalRetryDelay: 0 },
    message: options.message ?? `${name} (test)`,
  })

/**
 * Fail the first `times` calls of `command` (every command when omitted) with `error()`. Returns a counter of the
 * calls seen and failed. `step: 'deserialize'` fails inside the SDK's retry loop (each attempt counts).
 */
export const failCalls = (
  client: StackClient,
  options: { command?: string; times: number; error: () => Error; step?: 'initialize' | 'deserialize' },
): { seen: number; failed: number } => {
  const counter = { seen: 0, failed: 0 }
  const wanted = options.command === undefined ? undefined : commandName(options.command)
  add(
    client,
    (next, context) => async (args) => {
      if (wanted !== undefined && context.commandName !== wanted) return next(args)
      counter.seen += 1
      if (counter.failed < options.times) {
        counter.failed += 1
        throw options.error()
      }
      return next(args)
    },
    options.step === 'deserialize'
      ? { step: 'deserialize', priority: 'high' }
      : { step: 'initialize', priority: 'low' },
  )
  return counter
}

/** Answer `command` with `answer(input)` instead of sending it. */
export const stubCommand = (
  client: StackClient,
  command: string,
  answer: (input: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>,
): void => {
  const wanted = commandName(command)
  add(
    client,
    (next, context) => async (args) => {
      if (context.commandName !== wanted) return next(args)
      const output = await answer(args.input)
      return { output: { $metadata: { httpStatusCode: 200, attempts: 1 }, ...output }, response: {} }
    },
    { step: 'initialize', priority: 'low' },
  )
}

/**
 * Rewrite a command's input before it is sent and its output after, e.g. to drop entries from a batch and report
 * them as failed (what a partial SendMessageBatch or PutEvents failure looks like, without sending them).
 */
export const interceptCommand = (
  client: StackClient,
  command: string,
  intercept: (
    input: Record<string, unknown>,
    send: (input: Record<string, unknown>) => Promise<Record<string, unknown>>,
    call: number,
  ) => Promise<Record<string, unknown>>,
): void => {
  const wanted = commandName(command)
  let call = 0
  add(
    client,
    (next, context) => async (args) => {
      if (context.commandName !== wanted) return next(args)
      call += 1
      let response: unknown
      const output = await intercept(
        args.input,
        async (input) => {
          const r = await next({ ...args, input })
          response = r.response
          return r.output
        },
        call,
      )
      return { output, response }
    },
    { step: 'initialize', priority: 'low' },
  )
}
