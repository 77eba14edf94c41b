import { describe, expect, it } from 'vitest'
import { buildNotifications, escapeMrkdwn, toSlackPayload } from '../../../shared/app/notify/index.ts'
import { escalated, HOSTS, resolved, result, verified } from './fixtures.ts'

const slackMessage = (decisions: Parameters<typeof buildNotifications>[0]) =>
  buildNotifications(decisions).find((m) => m.channel === 'slack')!

describe('Slack payload', () => {
  it('has a fallback text, a header, a section with fields, and a context', () => {
    const m = slackMessage({
      decisions: [verified, resolved],
      results: [{ incidentId: 'inc-disk', result }],
      hosts: HOSTS,
    })
    const payload = toSlackPayload(m)
    expect(payload).toEqual({
      text: '[ANSAI] RESOLVED disk-pressure /var on web-1 — recovered 1.2 GiB by disk-cleanup',
      blocks: [
        {
          type: 'header',
          text: {
            type: 'plain_text',
            text: 'RESOLVED disk-pressure /var on web-1 — recovered 1.2 GiB by disk-cleanup',
            emoji: true,
          },
        },
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text:
              '- disk-pressure: disk-cleanup fixed /var on web-1 [fix verified]\n' +
              '- disk-pressure: /var on web-1 is healthy again after disk-cleanup [incident resolved]',
          },
          fields: [
            { type: 'mrkdwn', text: '*Host*\nweb-1 (i-0123456789abcdef0)' },
            { type: 'mrkdwn', text: '*Severity*\ncritical' },
            { type: 'mrkdwn', text: '*Policy*\ndisk-pressure' },
            { type: 'mrkdwn', text: '*Resource*\n/var' },
            { type: 'mrkdwn', text: '*Event*\nincident resolved' },
            { type: 'mrkdwn', text: '*Recovered*\n1.2 GiB' },
          ],
        },
        {
          type: 'context',
          elements: [{ type: 'mrkdwn', text: `incident inc-disk · message ${m.id} · 2026-11-23 10:05:00 UTC` }],
        },
      ],
    })
  })

  it('names the escalation target', () => {
    const payload = toSlackPayload(slackMessage({ decisions: [escalated], hosts: HOSTS }))
    const section = payload.blocks[1]
    expect(section?.type === 'section' && section.fields?.at(-1)).toEqual({
      type: 'mrkdwn',
      text: '*Escalated to*\npage',
    })
  })

  it('escapes mrkdwn control characters and keeps to Slack limits', () => {
    expect(escapeMrkdwn('a < b && c > d')).toBe('a &lt; b &amp;&amp; c &gt; d')
    const long = { ...escalated, resource: `<${'r'.repeat(400)}>`, summary: 's'.repeat(5000) }
    const payload = toSlackPayload(slackMessage({ decisions: [long], hosts: HOSTS }))
    const [header, section] = payload.blocks
    expect(header?.type === 'header' && header.text.text.length).toBeLessThanOrEqual(150)
    if (section?.type !== 'section') throw new Error('no section')
    expect(section.text!.text.length).toBeLessThanOrEqual(3000)
    expect(section.fields!.length).toBeLessThanOrEqual(10)
    expect(section.fields!.find((f) => f.text.startsWith('*Resource*'))!.text).toMatch(/^\*Resource\*\n&lt;r+/)
  })
})
