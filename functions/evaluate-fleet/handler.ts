import { composeEvaluateFleet, observabilityFor } from '../platform/compose.ts'
import { createEvaluateFleetHandler } from './app.ts'

/** The Lambda entry: dependencies composed once, at cold start (a bad environment fails here, loudly). */
export const handler = createEvaluateFleetHandler(composeEvaluateFleet(), observabilityFor('evaluate-fleet'))
