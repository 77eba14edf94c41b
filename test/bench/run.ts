/**
 * `npm run bench`: prints the figures the README's performance section records. Run on an otherwise idle machine;
 * each figure says how it was measured. Benchmarks are never timed assertions in tests.
 *
 *   npm run bench                      the engine, the agent's collect, the crash bench (root, about 8 minutes)
 *   npm run bench -- --engine-only     the engine only
 *   npm run bench -- --collect-only    the agent's `collect` start only
 */
import os from 'node:os'
import { runEngineBench } from './engine.ts'

const engineOnly = process.argv.includes('--engine-only')
const collectOnly = process.argv.includes('--collect-only')

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : 'n/a (run with --expose-gc)'
const MB = 1024 * 1024

console.log(
  `ANSAI bench — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} (${os.cpus().length} cores), one thread\n`,
)
if (!collectOnly) {
  const rows: [string, string, string][] = []
  const notes: string[] = []
  for (const fleet of ['typical', 'stressed'] as const) {
    const e = runEngineBench(fleet)
    rows.push(
      [
        `engine (${fleet} fleet): evaluate() on parsed reports, fleet ingest (no findings)`,
        `${fmt(e.reportsPerSecond)} reports/s`,
        fleet === 'typical' ? 'goal ≥ 50,000' : '',
      ],
      [
        `engine (${fleet} fleet): evaluate() with every finding (ansai check)`,
        `${fmt(e.reportsPerSecondWithFindings)} reports/s`,
        '',
      ],
      [
        `engine (${fleet} fleet): zod parse of raw JSON + evaluate()`,
        `${fmt(e.reportsPerSecondWithParse)} reports/s`,
        '',
      ],
      [`engine (${fleet} fleet): state as JSON per 10,000 hosts`, `${fmt(e.stateBytesPer10kHostsJson / MB, 1)} MB`, ''],
      [
        `engine (${fleet} fleet): state in the V8 heap per 10,000 hosts`,
        `${fmt(e.stateHeapBytesPer10kHosts / MB, 1)} MB`,
        '',
      ],
    )
    notes.push(
      `${fleet}: ${e.hosts.toLocaleString('en-US')} hosts × ${e.cycles} cycles (first 2 warm-up), ${e.observationsPerReport} observations per report, baseline pack, ${fmt(e.decisionsPerCycle / e.hosts, 3)} decisions per report`,
    )
  }
  const w = Math.max(...rows.map((r) => r[0].length))
  const v = Math.max(...rows.map((r) => r[1].length))
  for (const [name, value, goal] of rows) console.log(`${name.padEnd(w)}  ${value.padStart(v)}  ${goal}`)
  console.log(`\n${notes.join('\n')}`)
}

// The bundled `ansai-agent collect` in fresh processes: CPU (children included), peak RSS, wall (about 5 s).
if (!engineOnly) {
  const { formatCollectBench, runCollectBench } = await import('./collect.ts')
  console.log(`${collectOnly ? '' : '\n'}ansai-agent collect, the bundle in a fresh process (default configuration):`)
  console.log(formatCollectBench(await runCollectBench()))
}

// The fleet: cost counted on the real handlers against moto_server, and scale in memory (about 2 minutes).
if (!engineOnly && !collectOnly) {
  const { formatRows, runFleetBench } = await import('./fleet.ts')
  console.log('\nFleet cost (real handlers, real SDK, moto_server; dated us-east-1 prices) and scale (in memory):')
  const { rows, notes } = await runFleetBench({ log: (l) => process.stderr.write(`${l}\n`) })
  console.log(`${formatRows(rows)}\n${notes.join('\n')}`)
}

// Service crash → restarted and verified, on a real systemd, against Monit on the same unit (about 8 minutes, root).
// `npm run bench -- --engine-only` and `-- --collect-only` skip it.
if (!engineOnly && !collectOnly) {
  const { formatCrashRestartBench, runCrashRestartBench } = await import('./crash-restart.ts')
  console.log('\nService crash → active again (real systemd 252 in a PID namespace; Monit 5.33 on the same unit):')
  console.log(formatCrashRestartBench(await runCrashRestartBench()))
}
