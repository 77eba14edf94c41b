import { toConsoleLine } from '../../app/notify/text.ts'
import type { NotificationV1 } from '../../contracts/index.ts'
import { type DeliveryResult, type Notifier, NotifierError } from '../../ports/notifier.ts'

/** What the console notifier writes to: process.stdout, process.stderr, or any writable stream. */
export interface LineSink {
  write(chunk: string, callback?: (err?: Error | null) => void): boolean
}

/** Writes one compact line per message (time, severity, subject, incident). */
export class ConsoleNotifier implements Notifier {
  private readonly stream: LineSink

  constructor(stream: LineSink) {
    this.stream = stream
  }

  send(message: NotificationV1): Promise<DeliveryResult> {
    const line = `${toConsoleLine(message)}\n`
    return new Promise((resolve, reject) => {
      const fail = (err: unknown): void =>
        reject(
          new NotifierError(`console: ${err instanceof Error ? err.message : String(err)}`, {
            retryable: false,
            channel: message.channel,
            code: 'EWRITE',
            cause: err,
          }),
        )
      try {
        this.stream.write(line, (err) => {
          if (err) fail(err)
          else resolve({ channel: message.channel, messageId: message.id, attempts: 1, detail: 'written' })
        })
      } catch (err) {
        fail(err)
      }
    })
  }
}
