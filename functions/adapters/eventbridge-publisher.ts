import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandOutput,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge'
import type { AnsaiEvent, EventPublisher } from '../../shared/ports/fleet.ts'
import { EVENT_SOURCE } from '../platform/names.ts'
import { type EntryFailure, type EntryRetryOptions, refuseOversized, type Sized, sendInBatches } from './aws-batch.ts'
import { classifyAwsError, toPortError } from './aws-errors.ts'

/** PutEvents takes 10 entries and 256 KiB (by its own count, {@link eventBridgeEntryBytes}) per request. */
export const EVENTBRIDGE_MAX_ENTRIES = 10
export const EVENTBRIDGE_MAX_BYTES = 256 * 1024

export interface EventBridgePublisherOptions extends EntryRetryOptions {
  client: EventBridgeClient
  /** ANSAI's own bus (name or ARN). */
  eventBusName: string
}

/**
 * The `detail` of an ANSAI event on the bus; `detail-type` is the event type, `source` is `ansai`, `time` the event
 * time (EventBridge keeps it to the second). Users' rules match on `detail.host`, `detail.policy`, ...
 */
export interface AnsaiEventDetail {
  host: string
  incidentId: string
  policy: string
  resource: string
  detail: Record<string, unknown>
}

export const toEventBridgeEntry = (event: AnsaiEvent, eventBusName: string): PutEventsRequestEntry => {
  const detail: AnsaiEventDetail = {
    host: event.host,
    incidentId: event.incidentId,
    policy: event.policy,
    resource: event.resource,
    detail: event.detail,
  }
  return {
    EventBusName: eventBusName,
    Source: EVENT_SOURCE,
    DetailType: event.type,
    Detail: JSON.stringify(detail),
    Time: new Date(event.time),
  }
}

/** EventBridge's size of an entry: 14 bytes for Time, and the UTF-8 of Source, DetailType, Detail and Resources. */
export const eventBridgeEntryBytes = (e: PutEventsRequestEntry): number =>
  (e.Time ? 14 : 0) +
  Buffer.byteLength(e.Source ?? '', 'utf8') +
  Buffer.byteLength(e.DetailType ?? '', 'utf8') +
  Buffer.byteLength(e.Detail ?? '', 'utf8') +
  (e.Resources ?? []).reduce((n, r) => n + Buffer.byteLength(r, 'utf8'), 0)

/**
 * Publishes ANSAI events on its EventBridge bus: PutEvents in requests of 10, resending only the entries that came
 * back with a retryable ErrorCode (InternalFailure, ThrottlingException). An event too large for EventBridge is
 * refused before anything is published (non-retryable PortError `EventTooLarge`).
 */
export class EventBridgePublisher implements EventPublisher {
  private readonly options: EventBridgePublisherOptions
  private readonly where: string

  constructor(options: EventBridgePublisherOptions) {
    this.options = options
    this.where = `EventBridge PutEvents to ${options.eventBusName}`
  }

  async publish(events: readonly AnsaiEvent[]): Promise<void> {
    if (events.length === 0) return
    const sized: Sized<PutEventsRequestEntry>[] = events.map((ev) => {
      const entry = toEventBridgeEntry(ev, this.options.eventBusName)
      return { item: entry, bytes: eventBridgeEntryBytes(entry), label: `${ev.type} of ${ev.incidentId} on ${ev.host}` }
    })
    refuseOversized(sized, EVENTBRIDGE_MAX_BYTES, this.where, 'EventTooLarge')
    await sendInBatches(
      sized,
      { maxCount: EVENTBRIDGE_MAX_ENTRIES, maxBytes: EVENTBRIDGE_MAX_BYTES },
      (items) => this.put(items),
      this.options,
      this.where,
    )
  }

  private async put(items: readonly Sized<PutEventsRequestEntry>[]): Promise<EntryFailure[]> {
    let out: PutEventsCommandOutput
    try {
      out = await this.options.client.send(new PutEventsCommand({ Entries: items.map((s) => s.item) }))
    } catch (err) {
      throw toPortError(err, this.where)
    }
    if (!out.FailedEntryCount) return []
    const failures: EntryFailure[] = []
    items.forEach((_, index) => {
      const result = out.Entries?.[index]
      if (result?.EventId && !result.ErrorCode) return
      const code = result?.ErrorCode ?? 'NoAnswer'
      failures.push({
        index,
        code,
        message: result?.ErrorMessage ?? '',
        retryable: code === 'NoAnswer' || classifyAwsError({ name: code }).retryable,
      })
    })
    return failures
  }
}
