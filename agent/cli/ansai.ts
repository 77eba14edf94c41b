#!/usr/bin/env node
import { runCli, UsageError } from './output.ts'

const VERSION = '0.1.0'

const HELP = `ansai ${VERSION} — self-healing for Linux hosts and fleets

Usage: ansai <command> [options]

Commands:
  check                           Look at this host now: what is wrong, what ANSAI would fix (changes nothing).
  run [--once] [--dry-run]        Heal this host: collect, evaluate, fix, verify, notify (state in SQLite).
  status                          Open incidents, fixes, bytes recovered, time saved.
  history                         The audit trail, newest first.
  policy validate <file|dir>...   Check policy files; every error with file, line, path and a hint.
  policy schema                   Print the JSON Schema of policy files.
  simulate                        Replay a recorded timeline through the policies (a backtest).
  version                         Print the version.

Run 'ansai <command> --help' for a command's options. Output is a table for people; --json for scripts.`

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
    case 'policy':
      return (await import('./commands/policy.ts')).runPolicy(rest)
    case 'simulate':
      return (await import('./commands/simulate.ts')).runSimulate(rest)
    case 'check':
      return (await import('./commands/host.ts')).runCheck(rest)
    case 'run':
      return (await import('./commands/host.ts')).runRun(rest)
    case 'status':
      return (await import('./commands/records.ts')).runStatus(rest)
    case 'history':
      return (await import('./commands/records.ts')).runHistory(rest)
    default:
      throw new UsageError(`unknown command '${cmd}'. Run 'ansai --help' for the list.`)
  }
}

runCli('ansai', main, ['PolicyFileError', 'ConfigError', 'PolicyLoadError'])
