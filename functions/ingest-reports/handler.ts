import { composeIngest, observabilityFor } from '../platform/compose.ts'
import { createIngestHandler } from './app.ts'

/** The Lambda entry: dependencies composed once, at cold start (a bad environment fails here, loudly). */
export const handler = createIngestHandler(composeIngest(), observabilityFor('ingest-reports'))
