import { PortError } from '../../ports/fleet.ts'

/**
 * The in-memory twin of the secrets source the fleet's notifiers read (Secrets Manager in the Lambda): values by id,
 * a non-retryable `ResourceNotFoundException` PortError for an unknown id, `reads` counting the reads of each id,
 * and `fail` holding errors the next reads throw, one per call.
 */
export class MemorySecrets {
  readonly reads = new Map<string, number>()
  readonly fail: Error[] = []
  private readonly values: Map<string, string>

  constructor(values: Readonly<Record<string, string>> = {}) {
    this.values = new Map(Object.entries(values))
  }

  async get(id: string): Promise<string> {
    this.reads.set(id, (this.reads.get(id) ?? 0) + 1)
    const err = this.fail.shift()
    if (err) throw err
    const value = this.values.get(id)
    if (value === undefined) {
      throw new PortError(`memory secrets: no secret ${id}`, { retryable: false, code: 'ResourceNotFoundException' })
    }
    return value
  }

  /** Store or rotate a value. */
  set(id: string, value: string): void {
    this.values.set(id, value)
  }
}
