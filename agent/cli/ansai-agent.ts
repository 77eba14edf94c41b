#!/usr/bin/env node
/**
 * ansai-agent: the small program on each host. `collect` prints a report, `remediate` runs one fix and prints one
 * JSON result line (what SSM Run Command captures), `report` sends a report to the configured destination.
 */
import { parseArgs } from 'node:util'
import { runCli, UsageError } from './output.ts'

const VERSION = '0.1.0'

const HELP = `ansai-agent ${VERSION} — the ANSAI host agent

Usage: ansai-agent <command> [options]

Commands:
  collect [--json]                     Observe this host and print the report (ansai.report.v1).
  remediate <type> [--params <json>] [--dry-run]
                                       Run one remediation and print exactly one JSON result line
                                       (ansai.remediation-result.v1). Params come from --params, or from the
                                       environment: the SSM_<name> variables an ANSAI-* SSM document sets
                                       (interpolationType ENV_VAR), ANSAI_PARAMS (JSON), or one ANSAI_PARAM_<NAME>
                                       variable per param; the key comes from --key, SSM_ansaiKey or ANSAI_KEY. Exit 0 when the fix succeeded (or dry-run), 1 otherwise.
  report [--now] [--json]              Collect and report: on a single host, one local cycle (ansai run --once);
                                       with a fleet: section, spool the report and send it to the control plane's
                                       queue at once on a change, else with the 15-minute heartbeat
                                       (ansai-agent report --help).
  version                              Print the version.

Options common to collect and report: --config <file> (default /etc/ansai/config.yaml).`

/** ANSAI_PARAM_WAIT_ACTIVE_SECONDS → waitActiveSeconds; values are JSON when they parse (numbers, booleans, lists). */
export const paramsFromEnv = (env: NodeJS.ProcessEnv): Record<string, unknown> | undefined => {
  if (env.ANSAI_PARAMS) return JSON.parse(env.ANSAI_PARAMS) as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('ANSAI_PARAM_') || v === undefined || v === '') continue
    const name = k
      .slice('ANSAI_PARAM_'.length)
      .toLowerCase()
      .replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
    let value: unknown = v
    try {
      value = JSON.parse(v)
    } catch {
      // a plain string
    }
    out[name] = value
  }
  return Object.keys(out).length ? out : undefined
}

const remediate = async (argv: string[]): Promise<number> => {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      params: { type: 'string' },
      key: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(HELP)
    return 0
  }
  const [type] = positionals
  if (!type) throw new UsageError('remediate needs a remediation type, e.g. ansai-agent remediate service-restart')
  // Run by an ANSAI-* SSM document, the params arrive as SSM_<name> variables (interpolationType ENV_VAR).
  const { ansaiEnvFromSsm } = await import('./ssm-env.ts')
  const env: NodeJS.ProcessEnv = { ...process.env, ...ansaiEnvFromSsm(process.env, type) }
  let params: Record<string, unknown>
  try {
    params =
      values.params !== undefined ? (JSON.parse(values.params) as Record<string, unknown>) : (paramsFromEnv(env) ?? {})
  } catch (err) {
    throw new UsageError(`--params / ANSAI_PARAMS is not JSON: ${(err as Error).message}`)
  }
  const key = values.key ?? env.ANSAI_KEY ?? `manual-${type}`
  const dryRun = values['dry-run'] || env.ANSAI_DRY_RUN === 'true'
  const { runRemediation } = await import('../remediations/runner.ts')
  const { result } = await runRemediation(
    { key, remediation: type, params, dryRun },
    { log: (line) => process.stderr.write(`${line}\n`) },
  )
  process.stdout.write(`${JSON.stringify(result)}\n`)
  return result.status === 'succeeded' || result.status === 'dry-run' ? 0 : 1
}

const collectCmd = async (argv: string[]): Promise<number> => {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(HELP)
    return 0
  }
  // Without a config file, neither YAML nor zod is loaded, nor the policy engine: see agent/config/load.ts
  const { loadAgentConfigLazily } = await import('../config/load.ts')
  const { collectReport, writeStdoutSync } = await import('./commands/collect.ts')
  const { config } = await loadAgentConfigLazily(values.config)
  const { report, probes } = await collectReport(config, config.state.dir, { validate: false })
  if (values.json) writeStdoutSync(`${JSON.stringify(report)}\n`)
  else {
    console.log(`${report.host.hostname} (${report.host.id}) at ${report.time}, seq ${report.seq}`)
    for (const p of probes) console.log(`  ${p.name.padEnd(15)} ${p.outcome.padEnd(9)} ${p.wallMs} ms`)
    console.log(
      `${report.observations.length} observations, ${report.probeErrors.length} probe errors (--json prints the report)`,
    )
    for (const e of report.probeErrors) console.log(`  ${e.probe}: ${e.reason}`)
  }
  return 0
}

const main = async (argv: string[]): Promise<number> => {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(HELP)
      return cmd === undefined ? 2 : 0
    case 'version':
    case '--version':
      console.log(VERSION)
      return 0
    case 'collect':
      return collectCmd(rest)
    case 'remediate':
      return remediate(rest)
    case 'report': {
      const { runReport } = await import('./commands/report.ts')
      return runReport(rest)
    }
    default:
      throw new UsageError(`unknown command '${cmd}'. Run 'ansai-agent --help' for the list.`)
  }
}

runCli('ansai-agent', main, ['ConfigError', 'PolicyFileError', 'PolicyLoadError'])
