import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { parseTimeline, type SimulationResult, simulate } from '../../../shared/app/simulate.ts'
import { formatPolicyError, loadPolicies } from '../../../shared/policy/load.ts'
import { readPolicySources } from '../../policy/files.ts'
import { formatTable, printJson, UsageError } from '../output.ts'

export const SIMULATE_HELP = `Usage: ansai simulate --policies <file|dir> --observations <timeline.jsonl> [options]

Replay a recorded timeline through the policy engine and print what would have happened: incidents opened and
resolved, fixes started and verified, escalations and notifications. Nothing is executed: a backtest of your
policies against real history.

The timeline is JSON Lines: each line a report (schema "ansai.report.v1", as 'ansai-agent collect --json' prints)
or a tick {"tick": true, "time": "...", "host": "<id>"} when time passes without a report.

Options:
  --policies <path>        Policy file or directory (repeatable). Required.
  --observations <file>    The timeline (JSONL). Required.
  --fix-outcome <outcome>  What each fix is assumed to return: succeeded (default) or failed. Whether it would
                           have been verified still depends on the recorded observations after it.
  --dry-run                Mark fixes as dry-run in the output.
  --json                   Print {events, totals, findings} as JSON.
  -h, --help               Show this help.

Exit codes: 0 done, 1 invalid policies or timeline lines, 2 bad usage.`

const describe = (e: SimulationResult['events'][number]): [string, string] => {
  const d = e.decision
  if (d.type === 'remediate') return [`fix ${d.remediation}${d.dryRun ? ' (dry-run)' : ''}`, d.reason]
  return [d.event.replace(/^ansai\./, '').replace(/\.v1$/, ''), d.summary]
}

export const runSimulate = async (argv: string[]): Promise<number> => {
  const { values } = parseArgs({
    args: argv,
    options: {
      policies: { type: 'string', multiple: true },
      observations: { type: 'string' },
      'fix-outcome': { type: 'string', default: 'succeeded' },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(SIMULATE_HELP)
    return 0
  }
  if (!values.policies?.length) throw new UsageError('simulate needs --policies <file|dir>')
  if (!values.observations) throw new UsageError('simulate needs --observations <timeline.jsonl>')
  const outcome = values['fix-outcome']
  if (outcome !== 'succeeded' && outcome !== 'failed') {
    throw new UsageError(`--fix-outcome must be succeeded or failed, not '${outcome}'`)
  }
  const loaded = loadPolicies(readPolicySources(values.policies), { allowPlanned: true })
  if (loaded.errors.length) {
    for (const e of loaded.errors) console.error(formatPolicyError(e))
    return 1
  }
  let text: string
  try {
    text = readFileSync(values.observations, 'utf8')
  } catch (err) {
    throw new UsageError(`${values.observations}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`)
  }
  const timeline = parseTimeline(text)
  for (const e of timeline.errors) console.error(`${values.observations}:${e.line}: ${e.message}`)
  const result = simulate(loaded.set, timeline.entries, { fixOutcome: outcome, dryRun: values['dry-run'] })
  if (values.json) {
    printJson({
      events: result.events,
      totals: result.totals,
      findings: result.lastFindings,
      lineErrors: timeline.errors,
    })
    return timeline.errors.length ? 1 : 0
  }
  const rows = result.events.map((e) => {
    const [what, detail] = describe(e)
    return [e.time.replace('T', ' ').replace(/\.\d+Z$|Z$/, ''), e.host, what, detail]
  })
  console.log(
    rows.length
      ? formatTable(['time (UTC)', 'host', 'event', 'detail'], rows, 110)
      : 'nothing happened: no policy matched',
  )
  const t = result.totals
  console.log(
    `\n${t.reports} reports, ${t.ticks} ticks from ${values.observations}: ${t.incidentsOpened} incidents opened, ${t.incidentsResolved} resolved, ${t.fixes} fixes, ${t.escalations} escalations, ${t.notifications} notifications`,
  )
  console.log(
    `Nothing was executed: fixes were assumed to have ${outcome} and verified against the recorded observations.`,
  )
  return timeline.errors.length ? 1 : 0
}
