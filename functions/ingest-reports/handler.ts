import { composeIngest } from '../platform/compose.ts'
import { createObservability } from '../platform/observability.ts'
import { createIngestHandler } from './app.ts'

/** The Lambda entry: dependencies composed once, at cold start (a bad environment fails here, loudly). */
export const handler = createIngestHandler(composeIngest(), createObservability('ingest-reports'))
