import { composeSendDigest } from '../platform/compose.ts'
import { createObservability } from '../platform/observability.ts'
import { createSendDigestHandler } from './app.ts'

/** The Lambda entry: dependencies composed once, at cold start (a bad environment fails here, loudly). */
export const handler = createSendDigestHandler(composeSendDigest(), createObservability('send-digest'))
