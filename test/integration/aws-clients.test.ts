/**
 * The SDK client factories: adaptive retries, and endpoints left to the SDK, so `AWS_ENDPOINT_URL` and
 * `AWS_ENDPOINT_URL_<SERVICE>` (LocalStack, moto) work without a line of ANSAI code. Checked against moto_server:
 * a client built with no endpoint reaches it through the environment alone.
 */
import { createServer } from 'node:net'
import { ListEventBusesCommand } from '@aws-sdk/client-eventbridge'
import { ListSecretsCommand } from '@aws-sdk/client-secrets-manager'
import { ListContactListsCommand } from '@aws-sdk/client-sesv2'
import { CreateQueueCommand, ListQueuesCommand } from '@aws-sdk/client-sqs'
import { ListCommandsCommand } from '@aws-sdk/client-ssm'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import {
  AWS_CLIENT_DEFAULTS,
  createEventBridgeClient,
  createSecretsManagerClient,
  createSesClient,
  createSqsClient,
  createSsmClient,
  MAX_ATTEMPTS,
} from '../../functions/adapters/aws-clients.ts'
import { startMotoOrSkip } from '../support/moto.ts'

const FACTORIES = {
  sqs: createSqsClient,
  ssm: createSsmClient,
  sesv2: createSesClient,
  eventbridge: createEventBridgeClient,
  secretsManager: createSecretsManagerClient,
} as const

/** The mode of the retry strategy the client resolved (`standard`, `adaptive`). */
const modeOf = async (client: { config: { retryStrategy: () => Promise<unknown> } }): Promise<unknown> =>
  ((await client.config.retryStrategy()) as { mode?: unknown }).mode

/** A loopback port nobody listens on. */
const deadEndpoint = (): Promise<string> =>
  new Promise((resolve) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(`http://127.0.0.1:${port}`))
    })
  })

describe('client factories', () => {
  it('every client retries adaptively, with its number of attempts, and sets no endpoint', async () => {
    for (const [name, create] of Object.entries(FACTORIES)) {
      const client = create({ region: 'eu-west-1' })
      expect(await modeOf(client), name).toBe('adaptive')
      expect(await client.config.maxAttempts(), name).toBe(MAX_ATTEMPTS[name as keyof typeof MAX_ATTEMPTS])
      expect(client.config.isCustomEndpoint, name).toBe(false)
      expect(client.config.endpoint, name).toBeUndefined()
    }
    expect(AWS_CLIENT_DEFAULTS.retryMode).toBe('adaptive')
  })

  it('an override wins over the defaults', async () => {
    const client = createSqsClient({ region: 'eu-west-1', maxAttempts: 1, retryMode: 'standard' })
    expect(await client.config.maxAttempts()).toBe(1)
    expect(await modeOf(client)).toBe('standard')
  })
})

const moto = await startMotoOrSkip()
// At the top level: runs even when a filter skips every test of the moto block.
afterAll(() => moto?.stop())

describe.skipIf(!moto)('endpoints from the environment, against moto', () => {
  afterEach(() => {
    vi.unstubAllEnvs()
  })
  const auth = () => ({ region: moto!.region, credentials: moto!.clientConfig.credentials, maxAttempts: 1 })

  it('AWS_ENDPOINT_URL sends every client to moto', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL', moto!.endpoint)
    await createSqsClient(auth()).send(new CreateQueueCommand({ QueueName: 'via-env' }))
    const queues = await createSqsClient(auth()).send(new ListQueuesCommand({}))
    expect(queues.QueueUrls?.some((u) => u.endsWith('/via-env'))).toBe(true)
    await createSsmClient(auth()).send(new ListCommandsCommand({}))
    await createSesClient(auth()).send(new ListContactListsCommand({}))
    expect((await createEventBridgeClient(auth()).send(new ListEventBusesCommand({}))).EventBuses?.[0]?.Name).toBe(
      'default',
    )
    await createSecretsManagerClient(auth()).send(new ListSecretsCommand({}))
  })

  it('AWS_ENDPOINT_URL_<SERVICE> wins over AWS_ENDPOINT_URL, for that service only', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL', await deadEndpoint())
    vi.stubEnv('AWS_ENDPOINT_URL_SQS', moto!.endpoint)
    vi.stubEnv('AWS_ENDPOINT_URL_SECRETS_MANAGER', moto!.endpoint)
    vi.stubEnv('AWS_ENDPOINT_URL_SESV2', moto!.endpoint)
    await createSqsClient(auth()).send(new ListQueuesCommand({}))
    await createSecretsManagerClient(auth()).send(new ListSecretsCommand({}))
    await createSesClient(auth()).send(new ListContactListsCommand({}))
    // SSM has no service-specific variable here: it goes to the dead global endpoint.
    await expect(createSsmClient(auth()).send(new ListCommandsCommand({}))).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    })
  })

  it('an explicit endpoint (what the tests pass) wins over the environment', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL', await deadEndpoint())
    vi.stubEnv('AWS_ENDPOINT_URL_SQS', await deadEndpoint())
    await createSqsClient({ ...moto!.clientConfig, maxAttempts: 1 }).send(new ListQueuesCommand({}))
  })
})
