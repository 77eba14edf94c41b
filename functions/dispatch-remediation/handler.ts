import { composeDispatch } from '../platform/compose.ts'
import { createObservability } from '../platform/observability.ts'
import { createDispatchHandler } from './app.ts'

/** The Lambda entry: dependencies composed once, at cold start (a bad environment fails here, loudly). */
export const handler = createDispatchHandler(composeDispatch(), createObservability('dispatch-remediation'))
