import type { NotificationV1 } from '../../contracts/index.ts'
import { eventLabel, formatBytes, formatTime, truncate } from './format.ts'

/** A Slack (or Mattermost, Rocket.Chat, …) incoming-webhook payload: `text` is the fallback for notifications. */
export interface SlackPayload {
  text: string
  blocks: SlackBlock[]
}

type PlainText = { type: 'plain_text'; text: string; emoji?: boolean }
type Mrkdwn = { type: 'mrkdwn'; text: string }
export type SlackBlock =
  | { type: 'header'; text: PlainText }
  | { type: 'section'; text?: Mrkdwn; fields?: Mrkdwn[] }
  | { type: 'context'; elements: Mrkdwn[] }

/** Slack's limits: header 150 characters, section text 3,000, a field 2,000, at most 10 fields. */
const HEADER_MAX = 150
const SECTION_MAX = 3000
const FIELD_MAX = 2000

/** Slack mrkdwn needs &, < and > escaped; nothing else. */
export const escapeMrkdwn = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

const field = (label: string, value: string): Mrkdwn => ({
  type: 'mrkdwn',
  text: truncate(`*${label}*\n${escapeMrkdwn(value)}`, FIELD_MAX),
})

/** The "What happened" lines of the text body, or the subject when the text has none. */
const happenedOf = (m: NotificationV1): string[] => {
  const lines = m.text.split('\n')
  const start = lines.indexOf('What happened')
  if (start < 0) return []
  const out: string[] = []
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('- ')) break
    out.push(line)
  }
  return out
}

export const toSlackPayload = (m: NotificationV1): SlackPayload => {
  const title = m.subject.startsWith('[ANSAI] ') ? m.subject.slice(8) : m.subject
  const hostname = typeof m.evidence.hostname === 'string' ? m.evidence.hostname : m.host
  const fields = [
    field('Host', hostname === m.host ? m.host : `${hostname} (${m.host})`),
    field('Severity', m.severity),
    field('Policy', m.policy),
    field('Resource', m.resource || '-'),
    field('Event', eventLabel(m.event)),
  ]
  if (typeof m.evidence.bytesRecovered === 'number')
    fields.push(field('Recovered', formatBytes(m.evidence.bytesRecovered)))
  if (m.escalateTo) fields.push(field('Escalated to', m.escalateTo))
  const happened = happenedOf(m)
  const section: SlackBlock = {
    type: 'section',
    ...(happened.length
      ? { text: { type: 'mrkdwn' as const, text: truncate(escapeMrkdwn(happened.join('\n')), SECTION_MAX) } }
      : {}),
    fields: fields.slice(0, 10),
  }
  return {
    text: truncate(m.subject, SECTION_MAX),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: truncate(title, HEADER_MAX), emoji: true } },
      section,
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: escapeMrkdwn(`incident ${m.incidentId} · message ${m.id} · ${formatTime(m.at)}`),
          },
        ],
      },
    ],
  }
}
