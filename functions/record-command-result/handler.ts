import { composeRecordCommandResult, observabilityFor } from '../platform/compose.ts'
import { createRecordCommandResultHandler } from './app.ts'

/** The Lambda entry: dependencies composed once, at cold start (a bad environment fails here, loudly). */
export const handler = createRecordCommandResultHandler(
  composeRecordCommandResult(),
  observabilityFor('record-command-result'),
)
