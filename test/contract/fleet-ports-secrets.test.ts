/**
 * The contract of the secret source the fleet's notifiers read (webhook secrets, Slack URLs), against the in-memory
 * twin and SecretsManagerSecrets on moto_server.
 */
import { CreateSecretCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { createSecretsManagerClient } from '../../functions/adapters/aws-clients.ts'
import { type SecretSource, SecretsManagerSecrets } from '../../functions/adapters/secrets.ts'
import { MemorySecrets } from '../../shared/adapters/fleet/memory-secrets.ts'
import { PortError } from '../../shared/ports/fleet.ts'
import { startMotoOrSkip } from '../support/moto.ts'

interface SecretsHarness {
  secrets: SecretSource
  /** Store a secret; returns the id to read it by (an ARN on AWS). */
  create(name: string, value: string): Promise<string>
  rotate(id: string, value: string): Promise<void>
  /** Let any cache forget (the TTL passes). */
  expire(): void
  /** An id nobody stored. */
  missing: string
}

const describeSecretsContract = (name: string, make: () => Promise<SecretsHarness>): void => {
  describe(`SecretSource contract: ${name}`, () => {
    it('reads back what was stored, exactly (whitespace and unicode included)', async () => {
      const h = await make()
      const value = ' whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ü\n'
      const id = await h.create('ansai/webhook', value)
      expect(await h.secrets.get(id)).toBe(value)
      expect(await h.secrets.get(id)).toBe(value)
    })

    it('an unknown secret is a non-retryable PortError ResourceNotFoundException', async () => {
      const h = await make()
      const err = await h.secrets.get(h.missing).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PortError)
      expect(err).toMatchObject({ retryable: false, code: 'ResourceNotFoundException' })
    })

    it('a rotated value shows once the cache has let the old one go', async () => {
      const h = await make()
      const id = await h.create('ansai/slack', 'https://hooks.example/1')
      expect(await h.secrets.get(id)).toBe('https://hooks.example/1')
      await h.rotate(id, 'https://hooks.example/2')
      h.expire()
      expect(await h.secrets.get(id)).toBe('https://hooks.example/2')
    })
  })
}

describeSecretsContract('in memory', async () => {
  const secrets = new MemorySecrets()
  return {
    secrets,
    create: async (name, value) => {
      secrets.set(name, value)
      return name
    },
    rotate: async (id, value) => secrets.set(id, value),
    expire: () => {},
    missing: 'nope',
  }
})

const moto = await startMotoOrSkip()
// At the top level: runs even when a filter skips every test of the moto block.
afterAll(() => moto?.stop())

describe.skipIf(!moto)('Secrets Manager on moto', () => {
  beforeEach(() => moto!.reset())

  describeSecretsContract('Secrets Manager on moto', async () => {
    const client = createSecretsManagerClient({ ...moto!.clientConfig, maxAttempts: 1 })
    let now = 0
    return {
      secrets: new SecretsManagerSecrets({ client, ttlMs: 60_000, now: () => now }),
      create: async (name, value) =>
        (await client.send(new CreateSecretCommand({ Name: name, SecretString: value }))).ARN!,
      rotate: async (id, value) => {
        await client.send(new PutSecretValueCommand({ SecretId: id, SecretString: value }))
      },
      expire: () => {
        now += 60_000
      },
      missing: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf',
    }
  })
})
