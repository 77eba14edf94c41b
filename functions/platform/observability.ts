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
  /** Emit the activity counts too (the fleet config's `metrics: all`); problems are always counted. */
  activity: boolean
}

const EMPTY_METRICS = 'No application metrics to publish'

/**
 * One set per function, made at cold start; service name and namespace come from the POWERTOOLS_* variables. Most
 * invocations emit no metric at all (a custom metric is billed for every hour it has data, so problems are emitted
 * only when they happen): Powertools' warning about an empty flush goes to DEBUG, every other warning stays a warning.
 */
export const createObservability = (functionName: string, options: { activity?: boolean } = {}): Observability => {
  const logger = new Logger({ serviceName: 'ansai', persistentKeys: { function: functionName } })
  const metricsLogger = {
    debug: (...a: unknown[]) => logger.debug(String(a[0] ?? '')),
    info: (...a: unknown[]) => logger.info(String(a[0] ?? '')),
    warn: (...a: unknown[]) =>
      String(a[0] ?? '').startsWith(EMPTY_METRICS) ? logger.debug(String(a[0])) : logger.warn(String(a[0] ?? '')),
    error: (...a: unknown[]) => logger.error(String(a[0] ?? '')),
  }
  return {
    logger,
    metrics: new Metrics({
      namespace: 'ANSAI',
      serviceName: 'ansai',
      defaultDimensions: { function: functionName },
      logger: metricsLogger,
    }),
    tracer: new Tracer({ serviceName: 'ansai' }),
    activity: options.activity === true,
  }
}

/** Something went wrong (a rejected report, a failed fix, ...): counted whenever it happens, and only then. */
export const countProblem = (obs: Observability, name: string, n = 1): void => {
  if (n > 0) obs.metrics.addMetric(name, 'Count', n)
}

/** Ordinary activity (reports ingested, commands sent, ...): counted only with `metrics: all`. */
export const countActivity = (obs: Observability, name: string, n = 1): void => {
  if (obs.activity && n > 0) obs.metrics.addMetric(name, 'Count', n)
}

/**
 * The standard middy stack every handler wears (DESIGN.md rule 7): the Lambda context in every log line, metrics
 * flushed after each invocation, the handler traced. The handler itself stays a thin call into one use case.
 */
export const withStandardStack = <E, R>(obs: Observability, handler: (event: E, context: Context) => Promise<R>) =>
  middy(handler).use(injectLambdaContext(obs.logger)).use(captureLambdaHandler(obs.tracer)).use(logMetrics(obs.metrics))
