import { composeRecordCommandResult } from '../platform/compose.ts'
import { createObservability } from '../platform/observability.ts'
import { createRecordCommandResultHandler } from './app.ts'

/** The Lambda entry: dependencies composed once, at cold start (a bad environment fails here, loudly). */
export const handler = createRecordCommandResultHandler(
  composeRecordCommandResult(),
  createObservability('record-command-result'),
)
