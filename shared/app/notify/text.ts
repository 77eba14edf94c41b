import type { EventType, NotificationV1, NotifyDecision, RemediationResultV1 } from '../../contracts/index.ts'
import type { MessageGroup } from './build.ts'
import { eventLabel, formatBytes, formatElapsed, formatTime, formatValue, formatValues, truncate } from './format.ts'

/** How many files of a fix a message lists (the full list is in the audit trail). */
export const MAX_ITEMS = 10

const TRIGGER_EVENTS: ReadonlySet<EventType> = new Set([
  'ansai.incident.opened.v1',
  'ansai.incident.worsened.v1',
  'ansai.fix.started.v1',
  'ansai.fix.failed.v1',
  'ansai.incident.failed.v1',
])
const NOW_EVENTS: ReadonlySet<EventType> = new Set(['ansai.fix.verified.v1', 'ansai.incident.resolved.v1'])

/** Evidence keys shown elsewhere in the body, or internal. */
const SKIPPED_KEYS = new Set(['incident', 'status', 'values', 'remediation', 'summary'])

const asRecord = (v: unknown): Record<string, unknown> | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined

const attemptLines = (label: string, list: unknown): string[] => {
  if (!Array.isArray(list) || list.length === 0) return []
  return [
    `- ${label}:`,
    ...list.slice(0, 10).map((a) => {
      const r = asRecord(a) ?? {}
      const summary = r.summary === undefined ? '' : ` — ${formatValue(r.summary, 300)}`
      return `    ${formatValue(r.remediation, 60)}: ${formatValue(r.status, 30)}${summary}`
    }),
    ...(list.length > 10 ? [`    … and ${list.length - 10} more`] : []),
  ]
}

const evidenceLines = (g: MessageGroup): string[] => {
  const lines: string[] = []
  const trigger = g.decisions.findLast((d) => TRIGGER_EVENTS.has(d.event) && asRecord(d.evidence.values))
  const now = g.decisions.findLast((d) => NOW_EVENTS.has(d.event) && asRecord(d.evidence.values))
  const tv = trigger ? asRecord(trigger.evidence.values) : undefined
  const nv = now ? asRecord(now.evidence.values) : undefined
  if (tv && Object.keys(tv).length) lines.push(`- Values that triggered it: ${formatValues(tv, 500)}`)
  if (nv && Object.keys(nv).length) lines.push(`- Values now: ${formatValues(nv, 500)}`)
  for (const d of g.decisions) {
    for (const [key, value] of Object.entries(d.evidence)) {
      if (SKIPPED_KEYS.has(key) || value === undefined) continue
      switch (key) {
        case 'durationMs':
          if (typeof value === 'number') lines.push(`- Open for: ${formatElapsed(value)}`)
          break
        case 'from':
          lines.push(`- Was: ${formatValue(value, 30)}`)
          break
        case 'flapping':
          if (value === true) lines.push('- Flapping: yes, held open until it is stable')
          break
        case 'dryRun':
          if (value === true) lines.push('- Dry-run: yes, nothing was changed')
          break
        case 'reason':
          lines.push(`- Reason: ${formatValue(value, 500)}`)
          break
        case 'error':
          lines.push(`- Error: ${formatValue(value, 1000)}`)
          break
        case 'params':
          lines.push(`- Parameters: ${formatValue(value, 500)}`)
          break
        case 'attempts':
          lines.push(...attemptLines('Fixes tried', value))
          break
        case 'fixes':
          lines.push(...attemptLines('Fixes', value))
          break
        case 'field':
        case 'point':
          break
        case 'value':
          lines.push(
            `- ${formatValue(d.evidence.field, 60)}: ${formatValue(value, 60)} (milestone ${formatValue(d.evidence.point, 30)})`,
          )
          break
        default:
          lines.push(`- ${key}: ${formatValue(value, 300)}`)
      }
    }
  }
  // A fix result summary the engine carried, when the runner gave no result to show in full.
  if (g.results.length === 0) {
    for (const d of g.decisions) {
      const summary = d.evidence.summary
      if (typeof summary !== 'string' || !summary) continue
      const line = `- Fix result: ${formatValue(summary, 500)}`
      if (!lines.some((l) => l.includes(formatValue(summary, 300)))) lines.push(line)
    }
  }
  return [...new Set(lines)]
}

const resultLines = (r: RemediationResultV1): string[] => {
  const head = `Fix: ${r.remediation} — ${r.status}${r.dryRun && r.status !== 'dry-run' ? ' (dry-run)' : ''} in ${formatElapsed(r.durationMs)}`
  const lines = [head]
  if (r.summary) lines.push(`  ${truncate(r.summary, 1000)}`)
  const bytes = Object.entries(r.bytesRecovered ?? {}).filter(([, n]) => n > 0)
  if (r.bytesRecovered) {
    const total = Object.values(r.bytesRecovered).reduce((s, n) => s + n, 0)
    lines.push(`  ${r.status === 'dry-run' ? 'Space it would recover' : 'Space recovered'}: ${formatBytes(total)}`)
    const width = Math.max(0, ...bytes.map(([k]) => k.length))
    for (const [category, n] of bytes.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) {
      lines.push(`    ${category.padEnd(width)}  ${formatBytes(n)}`)
    }
  }
  if (r.items?.length) {
    const total = r.itemsTotal ?? r.items.length
    const shown = r.items.slice(0, MAX_ITEMS)
    lines.push(`  First files (${shown.length} of ${total}):`)
    for (const item of shown) lines.push(`    ${truncate(item, 300)}`)
  }
  if (r.error) lines.push(`  Error: ${truncate(r.error, 1000)}`)
  const ev = Object.entries(r.evidence ?? {})
  if (ev.length) lines.push(`  Evidence: ${formatValues(Object.fromEntries(ev), 500)}`)
  return lines
}

const verifyByOf = (g: MessageGroup): string | undefined => {
  const last = g.remediations[g.remediations.length - 1]
  return last ? formatTime(last.verifyBy) : undefined
}

/** What ANSAI does next, from the message's headline event. */
export const nextSteps = (g: MessageGroup): string => {
  const h = g.headline
  const r = h.resource
  switch (h.event) {
    case 'ansai.incident.resolved.v1':
      return `Nothing more: the incident is closed. ANSAI keeps watching ${r} and opens a new incident if the problem comes back.`
    case 'ansai.incident.escalated.v1':
      return `A human is needed: this is handed to ${h.escalateTo ?? 'the default escalation'}. ANSAI keeps watching ${r}, takes only the steps the policy still allows, and sends a RESOLVED message when it is healthy again.`
    case 'ansai.incident.failed.v1':
      return `Every fix the policy names was tried and ${r} is still ${h.severity}. ANSAI runs no more fixes for this incident; it keeps watching and sends a RESOLVED message when it is healthy again. Someone should look at it.`
    case 'ansai.fix.failed.v1':
      return `ANSAI takes the next step of the policy (another fix or an escalation) as soon as its guards allow, and tells you what it did.`
    case 'ansai.fix.verified.v1':
      return `The fix worked. ANSAI closes the incident once ${r} stays healthy, and tells you.`
    case 'ansai.fix.started.v1': {
      if (h.evidence.dryRun === true) {
        return 'Dry-run: nothing was changed on the host. ANSAI only reports the fixes it would make.'
      }
      const by = verifyByOf(g)
      return `ANSAI checks ${r} again on the next observation${by ? ` (by ${by})` : ''} to verify the fix. If it did not help, ANSAI takes the next step of the policy; either way it tells you.`
    }
    case 'ansai.fix.skipped.v1':
      return `The fix waits (${formatValue(h.evidence.reason, 300)}). ANSAI tries again when that clears and tells you what it did.`
    case 'ansai.milestone.reached.v1':
      return 'ANSAI tells you again at the next milestone, and when the incident is resolved.'
    default:
      return `ANSAI keeps watching ${r}. It runs the fixes the policy names when the level and the guards allow it, tells you what it did, and closes the incident when ${r} is healthy again.`
  }
}

const TRUNCATED = '\n\n… (message cut: the full evidence is in the audit trail)'

/** The plain-text body of an email (and of any channel that shows text): at most `maxChars` characters. */
export const renderText = (g: MessageGroup, opts: { id: string; title: string; maxChars: number }): string => {
  const h = g.headline
  const sections: string[] = []
  const head = [
    opts.title,
    '',
    `When: ${formatTime(h.at)}`,
    `Severity: ${g.severity}${h.event === 'ansai.incident.resolved.v1' ? ' (now resolved)' : ''}`,
  ]
  if (g.escalateTo) head.push(`Escalated to: ${g.escalateTo}`)
  sections.push(head.join('\n'))
  sections.push(
    [
      'What happened',
      ...g.decisions.map((d: NotifyDecision) => `- ${truncate(d.summary, 1000)} [${eventLabel(d.event)}]`),
    ].join('\n'),
  )
  const ev = evidenceLines(g)
  if (ev.length) sections.push(['Evidence', ...ev].join('\n'))
  for (const r of g.results) sections.push(resultLines(r).join('\n'))
  sections.push(['What ANSAI will do next', nextSteps(g)].join('\n'))
  sections.push(
    [
      `Incident: ${h.incidentId}`,
      `Policy: ${h.policy} · resource: ${h.resource} · host: ${g.hostname}${g.hostname === h.host ? '' : ` (${h.host})`}`,
      `Message: ${opts.id} (${g.decisions.map((d) => eventLabel(d.event)).join(', ')})`,
    ].join('\n'),
  )
  const text = `${sections.join('\n\n')}\n`
  if (text.length <= opts.maxChars) return text
  const footer = sections[sections.length - 1]!
  const room = opts.maxChars - TRUNCATED.length - footer.length - 3
  return `${truncate(text, Math.max(0, room))}${TRUNCATED}\n\n${footer}\n`.slice(0, opts.maxChars)
}

/** One compact line for a terminal or a log: `2026-11-23 10:05:00 UTC critical RESOLVED … (incident inc-…)`. */
export const toConsoleLine = (m: NotificationV1): string => {
  const subject = m.subject.startsWith('[ANSAI] ') ? m.subject.slice(8) : m.subject
  return `${formatTime(m.at)} ansai ${m.severity.padEnd(9)} ${subject.replace(/\s+/g, ' ')} (incident ${m.incidentId})`
}
