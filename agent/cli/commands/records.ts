import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseDuration } from '../../../shared/engine/duration.ts'
import { loadAgentConfig } from '../../config/config.ts'
import { formatTable, printJson, UsageError } from '../output.ts'

export const STATUS_HELP = `Usage: ansai status [--since <duration>] [--config <file>] [--json]

What ANSAI has been doing on this host: open incidents, recent fixes, bytes recovered, the share of incidents
resolved by a verified fix, and an estimate of the hands-on time saved.

Options:
  --since <d>      The window for the figures (default 7d).
  --config <file>  The configuration (its state.dir holds the state).
  --json           Print the figures and the open incidents as JSON.`

export const HISTORY_HELP = `Usage: ansai history [--limit N] [--incident <id>] [--config <file>] [--json]

The audit trail, newest first: observations (with the problems seen), decisions, fixes and their results,
notifications. With --incident, only that incident's entries.`

const openStore = async (configPath: string | undefined) => {
  const { config } = loadAgentConfig(configPath)
  const path = join(config.state.dir, 'state.db')
  if (!existsSync(path)) throw new UsageError(`no state at ${path}: run 'ansai run --once' first (or pass --config)`)
  const { SqliteStore } = await import('../../store/sqlite.ts')
  return SqliteStore.open(path)
}

const mib = (bytes: number) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`

export const runStatus = async (argv: string[]): Promise<number> => {
  const { values } = parseArgs({
    args: argv,
    options: {
      since: { type: 'string', default: '7d' },
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(STATUS_HELP)
    return 0
  }
  const store = await openStore(values.config)
  try {
    const now = new Date()
    const since = new Date(now.getTime() - parseDuration(values.since)).toISOString()
    const summary = await store.summarize({ since, now: now.toISOString() })
    const open = await store.listIncidents({ status: 'open', limit: 100 })
    if (values.json) {
      printJson({ since, summary, open })
      return 0
    }
    console.log(`Since ${since}:`)
    console.log(`  open incidents: ${summary.openIncidents.total} ${JSON.stringify(summary.openIncidents.bySeverity)}`)
    console.log(`  fixes: ${summary.fixes.map((f) => `${f.remediation} ${f.status} ×${f.count}`).join(', ') || 'none'}`)
    console.log(
      `  verified fixes: ${summary.verifiedFixes.map((f) => `${f.remediation} ×${f.count}`).join(', ') || 'none'}; bytes recovered: ${mib(summary.bytesRecovered)}`,
    )
    console.log(
      `  resolved: ${summary.resolvedIncidents}, by a verified fix: ${summary.autoResolved}${summary.autoResolvedShare === null ? '' : ` (${Math.round(summary.autoResolvedShare * 100)} %)`}`,
    )
    console.log(`  estimated hands-on time saved: ${summary.timeSavedMinutes} min`)
    if (open.length) {
      console.log('')
      console.log(
        formatTable(
          ['severity', 'status', 'policy', 'resource', 'opened', 'id'],
          open.map((i) => [i.severity, i.status, i.policy, i.resource, i.openedAt, i.id]),
          70,
        ),
      )
    }
    return 0
  } finally {
    store.close()
  }
}

export const runHistory = async (argv: string[]): Promise<number> => {
  const { values } = parseArgs({
    args: argv,
    options: {
      limit: { type: 'string', default: '50' },
      incident: { type: 'string' },
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(HISTORY_HELP)
    return 0
  }
  const limit = Number(values.limit)
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
    throw new UsageError(`--limit must be 1..10000, not '${values.limit}'`)
  const store = await openStore(values.config)
  try {
    const entries = await store.listAudit({ limit, ...(values.incident ? { incidentId: values.incident } : {}) })
    if (values.json) {
      printJson(entries)
      return 0
    }
    const what = (e: (typeof entries)[number]): string => {
      const d = e.data as Record<string, unknown>
      if (e.kind === 'decision' || e.kind === 'action') {
        const dec = d.decision as {
          type: string
          event?: string
          remediation?: string
          summary?: string
          reason?: string
        }
        return dec.type === 'remediate'
          ? `fix ${dec.remediation}: ${dec.reason}`
          : `${dec.event?.replace(/^ansai\.|\.v1$/g, '')}: ${dec.summary}`
      }
      if (e.kind === 'result')
        return `${(d.result as { status: string; summary: string }).status}: ${(d.result as { summary: string }).summary}`
      if (e.kind === 'observation')
        return `report #${d.seq}: ${d.observations} observations, ${(d.problems as unknown[]).length} problem(s)`
      return JSON.stringify(d).slice(0, 200)
    }
    console.log(
      formatTable(
        ['at', 'kind', 'what'],
        entries.map((e) => [e.at, e.kind, what(e)]),
        120,
      ),
    )
    return 0
  } finally {
    store.close()
  }
}
