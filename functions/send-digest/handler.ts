import { composeSendDigest, observabilityFor } from '../platform/compose.ts'
import { createSendDigestHandler } from './app.ts'

/** The Lambda entry: dependencies composed once, at cold start (a bad environment fails here, loudly). */
export const handler = createSendDigestHandler(composeSendDigest(), observabilityFor('send-digest'))
