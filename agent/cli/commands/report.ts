import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { AgentConfig } from '../../config/config.ts'
import { loadAgentConfigLazily } from '../../config/load.ts'
import { UsageError } from '../output.ts'

export const REPORT_HELP = `Usage: ansai-agent report [--config <file>] [--now] [--json]

Collect this host and report it.
  Single host (no \`fleet:\` section in the config): one local cycle, as \`ansai run --once\`.
  Fleet (\`fleet.reportsQueueUrl\` set): the report is spooled; the spool is sent to the control plane's reports queue
  at once when a policy's state changed (the same policies, evaluated locally), else with the heartbeat (15 min),
  with the host's own AWS credentials. Each send also carries again the reports already sent within
  fleet.resendMinutes (default 90m; 0: off): the control plane writes a quiet host's state at most hourly, and these
  carry the trend samples it did not write. A send that fails is retried with jitter; the reports stay spooled (bounded)
  until the queue takes them. Exit 75 when the queue could not be reached (nothing is lost).

Options:
  --config <file>   default /etc/ansai/config.yaml
  --now             send the spool now, whatever changed (after an install, or by hand)
  --json            print the outcome as JSON`

/** EX_TEMPFAIL: try again later. */
const EXIT_UNREACHABLE = 75

export const runReport = async (argv: string[]): Promise<number> => {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      now: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(REPORT_HELP)
    return 0
  }
  const { config } = await loadAgentConfigLazily(values.config)
  if (!config.fleet) {
    const { runRun } = await import('./host.ts')
    return runRun(['--once', ...(values.config ? ['--config', values.config] : []), ...(values.json ? ['--json'] : [])])
  }
  return reportToFleet(config, config.fleet, { force: values.now, json: values.json })
}

const reportToFleet = async (
  config: AgentConfig,
  fleet: NonNullable<AgentConfig['fleet']>,
  opts: { force: boolean; json: boolean },
): Promise<number> => {
  const [{ readInstanceId, regionOfQueueUrl }, { loadHostPolicies }, { collectReport }] = await Promise.all([
    import('../../transport/identity.ts'),
    import('../../policy/load-config.ts'),
    import('./collect.ts'),
  ])
  const hostId = config.host.id ?? readInstanceId()
  if (!hostId) {
    throw new UsageError(
      'this host has no SSM instance id (no /var/lib/amazon/ssm/registration or /var/lib/cloud/data/instance-id): set host.id in the config to its i-… or mi-… id',
    )
  }
  const region = fleet.region ?? regionOfQueueUrl(fleet.reportsQueueUrl)
  if (!region) throw new UsageError(`fleet.region is needed: no region in ${fleet.reportsQueueUrl}`)

  const { set } = loadHostPolicies(config, { forExecution: false })
  const { report } = await collectReport({ ...config, host: { ...config.host, id: hostId } }, config.state.dir)
  const [{ ReportSpool }, { transportReport }, { SqsReportSender }, { createSqsClient }, { parseDuration }] =
    await Promise.all([
      import('../../transport/spool.ts'),
      import('../../transport/transport.ts'),
      import('../../../functions/adapters/sqs-queues.ts'),
      import('../../../functions/adapters/aws-clients.ts'),
      import('../../../shared/engine/duration.ts'),
    ])
  const out = await transportReport(
    {
      policies: set,
      spool: new ReportSpool(join(config.state.dir, 'spool'), fleet.spool),
      // The transport retries with jitter itself (and keeps the spool): the SDK tries each send only twice.
      sender: new SqsReportSender({
        client: createSqsClient({ region, maxAttempts: 2 }),
        queueUrl: fleet.reportsQueueUrl,
      }),
      statePath: join(config.state.dir, 'transport.json'),
      heartbeatMs: parseDuration(fleet.heartbeat),
      resendMs: parseDuration(fleet.resendMinutes),
      now: () => Date.now(),
    },
    report,
    { force: opts.force },
  )
  if (opts.json)
    console.log(
      JSON.stringify({
        host: hostId,
        seq: report.seq,
        ...out,
        drain: out.drain && { ...out.drain, error: out.drain.error?.message },
      }),
    )
  else {
    const resent = out.drain?.contextReports ? ` (+${out.drain.contextReports} re-sent)` : ''
    const sent = out.drain
      ? `sent ${out.drain.sentReports} report(s)${resent} in ${out.drain.batches} message(s)`
      : 'spooled'
    console.log(`${hostId} seq ${report.seq}: ${out.reason ?? 'no change'}; ${sent}`)
    for (const c of out.changes) console.log(`  ${c}`)
  }
  if (out.dropped > 0) console.error(`ansai-agent: the spool was full: dropped the ${out.dropped} oldest report(s)`)
  if (out.drain?.error) {
    console.error(
      `ansai-agent: the reports queue did not take the reports (kept, ${out.drain.left} spooled): ${out.drain.error.message}`,
    )
    return EXIT_UNREACHABLE
  }
  return 0
}
