import { type AnsaiEvent, type EventPublisher, PortError } from '../../ports/fleet.ts'

/** EventBridge's limit for one event (the EventBridge adapter refuses bigger ones the same way). */
export const MEMORY_EVENT_MAX_BYTES = 256 * 1024

const utf8 = new TextEncoder()

/**
 * The in-memory twin of the EventPublisher port: keeps a JSON copy of every event published, in order. An event
 * over the size limit is refused before anything is kept (non-retryable PortError `EventTooLarge`); `fail` holds
 * errors the next publishes throw, one per call.
 */
export class MemoryEventPublisher implements EventPublisher {
  readonly published: AnsaiEvent[] = []
  readonly fail: Error[] = []

  async publish(events: readonly AnsaiEvent[]): Promise<void> {
    const err = this.fail.shift()
    if (err) throw err
    const big = events
      .map((e) => ({ e, bytes: utf8.encode(JSON.stringify(e)).length }))
      .filter((s) => s.bytes > MEMORY_EVENT_MAX_BYTES)
    if (big.length > 0) {
      const list = big.map((s) => `${s.e.type} of ${s.e.incidentId} on ${s.e.host} (${s.bytes} bytes)`).join(', ')
      throw new PortError(
        `memory event bus: over the limit of ${MEMORY_EVENT_MAX_BYTES} bytes, nothing sent: ${list}`,
        {
          retryable: false,
          code: 'EventTooLarge',
        },
      )
    }
    this.published.push(...events.map((e) => JSON.parse(JSON.stringify(e)) as AnsaiEvent))
  }

  /** The events of one type, in order. */
  ofType(type: AnsaiEvent['type']): AnsaiEvent[] {
    return this.published.filter((e) => e.type === type)
  }
}
