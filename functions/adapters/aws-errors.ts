import { PortError } from '../../shared/ports/fleet.ts'

/**
 * Translation of AWS SDK v3 errors for the adapters: what the error is called, the HTTP status, and whether the same
 * call may go through later. By the time an adapter sees an error the SDK has already retried it (adaptive mode), so
 * "retryable" here tells the caller (a Lambda handler) to let the message come back rather than to drop it.
 */

/** Names AWS services use for "slow down" (the SDK's own list, plus the ones of the services ANSAI calls). */
const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottledException',
  'RequestThrottled',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'SlowDown',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
  'KMSThrottlingException',
])

/** Errors of the network or the clock, not of the service's judgement. */
const TRANSIENT = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'AbortError',
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'InternalServiceError',
  'InternalServiceErrorException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
])

export interface AwsErrorInfo {
  /** The SDK error name (`ThrottlingException`, `QueueDoesNotExist`) or the network code (`ECONNREFUSED`). */
  code: string
  /** The HTTP status when the service answered. */
  status: number | undefined
  retryable: boolean
  message: string
}

export interface ClassifyOptions {
  /** Names that are worth another try for this call although the service sent a 4xx. */
  retryable?: ReadonlySet<string>
  /** Names that never are, whatever the status says. */
  permanent?: ReadonlySet<string>
}

interface SdkErrorShape {
  name?: unknown
  code?: unknown
  message?: unknown
  $fault?: unknown
  $retryable?: unknown
  $metadata?: { httpStatusCode?: unknown }
}

/** What an SDK error is, and whether it is worth another try. */
export const classifyAwsError = (err: unknown, options: ClassifyOptions = {}): AwsErrorInfo => {
  const e = (err && typeof err === 'object' ? err : {}) as SdkErrorShape
  const name = typeof e.name === 'string' && e.name !== 'Error' ? e.name : undefined
  const networkCode = typeof e.code === 'string' ? e.code : undefined
  const code = name ?? networkCode ?? 'Error'
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined
  const message = typeof e.message === 'string' && e.message ? e.message : String(err)
  let retryable: boolean
  if (options.permanent?.has(code)) retryable = false
  else if (options.retryable?.has(code)) retryable = true
  else if (THROTTLING.has(code) || TRANSIENT.has(code) || (networkCode && TRANSIENT.has(networkCode))) retryable = true
  else if (e.$retryable) retryable = true
  else if (status !== undefined) retryable = status >= 500 || status === 429
  else retryable = e.$fault === 'server'
  return { code, status, retryable, message }
}

/** An SDK error as a {@link PortError}: `where` says which call failed (`SQS SendMessageBatch to actions`). */
export const toPortError = (err: unknown, where: string, options: ClassifyOptions = {}): PortError => {
  if (err instanceof PortError) return err
  const info = classifyAwsError(err, options)
  const status = info.status === undefined ? '' : ` (HTTP ${info.status})`
  return new PortError(`${where}: ${info.code}${status}: ${info.message}`, {
    retryable: info.retryable,
    code: info.code,
    cause: err,
  })
}
