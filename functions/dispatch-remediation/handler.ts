import { composeDispatch, observabilityFor } from '../platform/compose.ts'
import { createDispatchHandler } from './app.ts'

/** The Lambda entry: dependencies composed once, at cold start (a bad environment fails here, loudly). */
export const handler = createDispatchHandler(composeDispatch(), observabilityFor('dispatch-remediation'))
