/**
 * Drives the real `ansai` CLI (agent/cli/ansai.ts under the test's own Node) as a child process, asynchronously:
 * the test process keeps answering on its event loop meanwhile (SMTP, webhook and TLS servers the CLI talks to).
 */
import { spawn } from 'node:child_process'

export const ANSAI_CLI = new URL('../../agent/cli/ansai.ts', import.meta.url).pathname
export const ANSAI_AGENT_CLI = new URL('../../agent/cli/ansai-agent.ts', import.meta.url).pathname

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  out: string
  err: string
}

/** `ansai <args...>` (or `cli`: `ansai-agent`); `env` is added to the test's environment. Never rejects on a non-zero exit (the test looks). */
export function runAnsai(
  args: readonly string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; cli?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [opts.cli ?? ANSAI_CLI, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s
    })
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      err += s
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000)
    child.once('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, out, err })
    })
  })
}

/** The cycle outcome `ansai run --once --json` prints as its last stdout line. */
export interface RunOutcome {
  at: string
  rounds: number
  problems: { policy: string; resource: string; level: string }[]
  fixes: { remediation: string; resource: string; status: string; summary: string }[]
  incidents: { id: string; policy: string; resource: string; status: string; severity: string }[]
  notifications: { sent: number; failed: number }
  openCritical: boolean
}

/** `ansai run --once --json --config <config>`: fails the test with the CLI's output when it did not exit 0. */
export async function runOnce(config: string, env?: Record<string, string>): Promise<RunOutcome & { cli: CliResult }> {
  const r = await runAnsai(['run', '--once', '--json', '--config', config], env ? { env } : {})
  if (r.code !== 0)
    throw new Error(`ansai run --once exited ${r.code ?? r.signal}\nstdout:\n${r.out}\nstderr:\n${r.err}`)
  const line = r.out.trim().split('\n').at(-1) ?? ''
  let outcome: RunOutcome
  try {
    outcome = JSON.parse(line) as RunOutcome
  } catch {
    throw new Error(`ansai run --once --json printed no outcome line\nstdout:\n${r.out}\nstderr:\n${r.err}`)
  }
  return { ...outcome, cli: r }
}
