import { Logger } from '@aws-lambda-powertools/logger'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import { Metrics } from '@aws-lambda-powertools/metrics'
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware'
import { Tracer } from '@aws-lambda-powertools/tracer'
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware'
import middy from '@middy/core'
import type { Context } from 'aws-lambda'

/** Powertools per function: JSON logs with the Lambda context, EMF metrics, X-Ray traces. */
export interface Observability {
  logger: Logger
  metrics: Metrics
  tracer: Tracer
}

/** One set per function, made at cold start; service name and namespace come from the POWERTOOLS_* variables. */
export const createObservability = (functionName: string): Observability => ({
  logger: new Logger({ serviceName: 'ansai', persistentKeys: { function: functionName } }),
  metrics: new Metrics({ namespace: 'ANSAI', serviceName: 'ansai', defaultDimensions: { function: functionName } }),
  tracer: new Tracer({ serviceName: 'ansai' }),
})

/**
 * The standard middy stack every handler wears (DESIGN.md rule 7): the Lambda context in every log line, metrics
 * flushed after each invocation, the handler traced. The handler itself stays a thin call into one use case.
 */
export const withStandardStack = <E, R>(obs: Observability, handler: (event: E, context: Context) => Promise<R>) =>
  middy(handler).use(injectLambdaContext(obs.logger)).use(captureLambdaHandler(obs.tracer)).use(logMetrics(obs.metrics))
