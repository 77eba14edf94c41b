import type { NotificationV1 } from '../../contracts/index.ts'
import type { DedupStore, DeliveryResult, Notifier } from '../../ports/notifier.ts'

/** The in-memory twin of the DedupStore port (tests, dry runs); the SQLite store keeps them across runs. */
export class InMemoryDedupStore implements DedupStore {
  private readonly ids = new Map<string, string>()

  async seen(id: string): Promise<boolean> {
    return this.ids.has(id)
  }

  async remember(id: string, at: string): Promise<void> {
    if (!this.ids.has(id)) this.ids.set(id, at)
  }

  /** When an id was first remembered. */
  rememberedAt(id: string): string | undefined {
    return this.ids.get(id)
  }

  get size(): number {
    return this.ids.size
  }
}

/**
 * The in-memory twin of the Notifier port: keeps every message it was given. `fail` makes the next sends throw
 * (one error per call, in order), to test what a failing channel does.
 */
export class MemoryNotifier implements Notifier {
  readonly sent: NotificationV1[] = []
  readonly fail: Error[] = []

  async send(message: NotificationV1): Promise<DeliveryResult> {
    const err = this.fail.shift()
    if (err) throw err
    this.sent.push(message)
    return { channel: message.channel, messageId: message.id, attempts: 1, detail: 'kept in memory' }
  }
}
