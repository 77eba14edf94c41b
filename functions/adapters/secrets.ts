import {
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager'
import { toPortError } from './aws-errors.ts'

/** Reads a secret by id (an ARN in the fleet config). Failures are PortErrors. */
export interface SecretSource {
  get(id: string): Promise<string>
}

export interface SecretsManagerSecretsOptions {
  client: SecretsManagerClient
  /** How long a value is kept before Secrets Manager is asked again (a rotation shows after at most this). 5 min. */
  ttlMs?: number
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number
}

export const DEFAULT_SECRET_TTL_MS = 5 * 60_000

/** A missing, forbidden or undecryptable secret stays so until someone fixes the deployment. */
const PERMANENT = new Set([
  'ResourceNotFoundException',
  'AccessDeniedException',
  'DecryptionFailure',
  'InvalidRequestException',
  'InvalidParameterException',
])

/**
 * Secrets Manager with an in-process cache: the first `get` of an id in a Lambda environment (the cold start) asks
 * Secrets Manager, later ones within `ttlMs` reuse the value, and concurrent ones share one call. A failed read is
 * not cached. A binary secret is read as UTF-8.
 */
export class SecretsManagerSecrets implements SecretSource {
  private readonly options: SecretsManagerSecretsOptions
  private readonly cache = new Map<string, { value: Promise<string>; expiresAt: number }>()

  constructor(options: SecretsManagerSecretsOptions) {
    this.options = options
  }

  get(id: string): Promise<string> {
    const now = (this.options.now ?? Date.now)()
    const hit = this.cache.get(id)
    if (hit && now < hit.expiresAt) return hit.value
    const value = this.read(id)
    const entry = { value, expiresAt: now + (this.options.ttlMs ?? DEFAULT_SECRET_TTL_MS) }
    this.cache.set(id, entry)
    value.catch(() => {
      if (this.cache.get(id) === entry) this.cache.delete(id)
    })
    return value
  }

  private async read(id: string): Promise<string> {
    const where = `Secrets Manager GetSecretValue ${id}`
    let out: GetSecretValueCommandOutput
    try {
      out = await this.options.client.send(new GetSecretValueCommand({ SecretId: id }))
    } catch (err) {
      throw toPortError(err, where, { permanent: PERMANENT })
    }
    if (typeof out.SecretString === 'string') return out.SecretString
    if (out.SecretBinary) return Buffer.from(out.SecretBinary).toString('utf8')
    throw toPortError(Object.assign(new Error('the secret has no value'), { name: 'EmptySecret' }), where)
  }
}
