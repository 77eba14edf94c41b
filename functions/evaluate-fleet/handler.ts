import { composeEvaluateFleet } from '../platform/compose.ts'
import { createObservability } from '../platform/observability.ts'
import { createEvaluateFleetHandler } from './app.ts'

/** The Lambda entry: dependencies composed once, at cold start (a bad environment fails here, loudly). */
export const handler = createEvaluateFleetHandler(composeEvaluateFleet(), createObservability('evaluate-fleet'))
