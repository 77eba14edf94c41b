/**
 * DynamoDB errors translated into the StateStore's typed errors (DESIGN.md rule 8): every SDK error leaves the
 * adapter as a {@link StoreError} with the SDK error as `cause`; throttling and other transient failures carry
 * `retryable: true` so a caller (or an SQS redelivery) knows the same call may go through later.
 */
import { ConflictError, StoreError, type StoreErrorCode } from '../../shared/ports/store.ts'
import { classifyAwsError } from './aws-errors.ts'

/** Error names DynamoDB throttles with (the SDK's own retry strategy retries these before they reach us). */
export const THROTTLING_ERRORS: ReadonlySet<string> = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
])

/** Cancellation reasons of a transaction that mean "try again", not "your data is wrong". */
const RETRYABLE_CANCELLATIONS: ReadonlySet<string> = new Set([
  'ThrottlingError',
  'TransactionConflict',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
])

interface SdkError {
  name?: string
  message?: string
  $metadata?: { attempts?: number }
  CancellationReasons?: { Code?: string; Message?: string }[]
}

/** A StoreError of the DynamoDB adapter: says whether the same call may go through later, and DynamoDB's code. */
export class DynamoDbStoreError extends StoreError {
  /** True for throttling, 5xx, timeouts and network failures: retry later (the SDK retried already). */
  readonly retryable: boolean
  /** DynamoDB's error name, e.g. `ProvisionedThroughputExceededException`. */
  readonly awsCode: string | undefined

  constructor(
    message: string,
    options: { code: StoreErrorCode; location?: string; cause?: unknown; retryable: boolean; awsCode?: string },
  ) {
    super(message, options)
    this.retryable = options.retryable
    this.awsCode = options.awsCode
  }
}

const nameOf = (err: unknown): string => String((err as SdkError)?.name ?? 'Error')

export const isConditionalCheckFailed = (err: unknown): boolean => nameOf(err) === 'ConditionalCheckFailedException'

/** The cancellation reason codes of a TransactionCanceledException (one per transaction item), else undefined. */
export const cancellationCodes = (err: unknown): (string | undefined)[] | undefined => {
  if (nameOf(err) !== 'TransactionCanceledException') return undefined
  const reasons = (err as SdkError).CancellationReasons
  if (Array.isArray(reasons)) return reasons.map((r) => r?.Code)
  // Some endpoints only put the reasons in the message: "... reasons [None, ConditionalCheckFailed]".
  const listed = /\[([^\]]*)\]\s*$/.exec(String((err as SdkError).message ?? ''))
  return listed ? listed[1]!.split(',').map((s) => s.trim()) : undefined
}

/** A transaction cancelled for a reason that is worth retrying as is (a conflict with another transaction, throttling). */
export const isRetryableCancellation = (err: unknown): boolean => {
  const codes = cancellationCodes(err)
  if (codes === undefined) return false
  return (
    codes.some((c) => c !== undefined && RETRYABLE_CANCELLATIONS.has(c)) &&
    codes.every((c) => c === undefined || c === 'None' || RETRYABLE_CANCELLATIONS.has(c))
  )
}

/**
 * Any error of a DynamoDB call as a StoreError. A StoreError passes through (with the table as its location); a
 * lost condition the caller did not handle is `conflict`; a refused request is `invalid`; everything else is
 * `unavailable`, retryable or not.
 */
export const translateDynamoDbError = (err: unknown, op: string, table: string): StoreError => {
  if (err instanceof StoreError) {
    if (err.location !== undefined) return err
    if (err instanceof DynamoDbStoreError) {
      return new DynamoDbStoreError(err.message, {
        code: err.code,
        location: table,
        cause: err.cause,
        retryable: err.retryable,
        ...(err.awsCode ? { awsCode: err.awsCode } : {}),
      })
    }
    if (err instanceof ConflictError) return err
    return new StoreError(err.message, { code: err.code, location: table, cause: err.cause ?? err })
  }
  const name = nameOf(err)
  const detail = String((err as SdkError)?.message ?? err)
  const where = `${op} on DynamoDB table ${table}`
  const make = (code: StoreErrorCode, message: string, retryable: boolean): DynamoDbStoreError =>
    new DynamoDbStoreError(message, { code, location: table, cause: err, retryable, awsCode: name })

  if (THROTTLING_ERRORS.has(name)) {
    const attempts = (err as SdkError).$metadata?.attempts
    return make(
      'unavailable',
      `${where}: throttled (${name})${attempts ? ` after ${attempts} attempts` : ''}; retry later`,
      true,
    )
  }
  if (name === 'ConditionalCheckFailedException') return make('conflict', `${where}: a condition failed`, false)
  if (name === 'TransactionCanceledException') {
    const codes = (cancellationCodes(err) ?? []).filter((c) => c && c !== 'None')
    if (isRetryableCancellation(err)) {
      return make('unavailable', `${where}: transaction cancelled (${codes.join(', ')}); retry later`, true)
    }
    if (codes.includes('ConditionalCheckFailed')) return make('conflict', `${where}: a condition failed`, false)
    return make('invalid', `${where}: transaction refused (${codes.join(', ') || detail})`, false)
  }
  if (name === 'ValidationException' && /item size|maximum allowed size/i.test(detail)) {
    return make('invalid', `${where}: the item is over DynamoDB's 400 KB item limit (${detail})`, false)
  }
  if (name === 'ValidationException' || name === 'ItemCollectionSizeLimitExceededException') {
    return make('invalid', `${where}: refused: ${detail}`, false)
  }
  if (name === 'ResourceNotFoundException') {
    return make('unavailable', `${where}: the table (or its index gsi1) does not exist: ${detail}`, false)
  }
  const retryable = classifyAwsError(err).retryable || isRetryableCancellation(err)
  return make('unavailable', `${where}: ${name}: ${detail}`, retryable)
}
