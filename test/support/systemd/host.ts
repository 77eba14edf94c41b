/**
 * Host-side helpers of the systemd test harness: run a host command (argv array, timeout), find a command, read
 * /proc. Test support only: the agent's own processes are spawned in agent/os/exec.ts.
 */
import { spawn } from 'node:child_process'
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface ExecResult {
  /** The exit status; 128 + the signal number when the process was killed by a signal (as a shell reports it). */
  exitCode: number
  stdout: string
  stderr: string
  timedOut: boolean
}

export interface RunOptions {
  timeoutMs?: number
  input?: string | Buffer
  env?: NodeJS.ProcessEnv
  /** Called with each complete line of stderr as it arrives (progress of long builds). */
  onStderrLine?: (line: string) => void
  /** Called with each complete line of stdout as it arrives. */
  onStdoutLine?: (line: string) => void
  /** Called with the pid when the command times out, instead of sending it `killSignal`. */
  onTimeout?: (pid: number) => void
  /** The signal sent on timeout (default SIGKILL; SIGTERM lets a command clean up, e.g. unmount). */
  killSignal?: NodeJS.Signals
}

export const log = (message: string): void => {
  process.stderr.write(`[systemd-harness] ${message}\n`)
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const SIGNALS: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1, SIGABRT: 6, SIGSEGV: 11 }

const lineSplitter = (onLine: (line: string) => void): ((chunk: Buffer) => void) => {
  let pending = ''
  return (chunk) => {
    pending += chunk.toString('utf8')
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) onLine(line.replace(/\r$/, ''))
  }
}

/** Runs argv[0] with argv[1..] (no shell), collects its output, kills it after `timeoutMs` (default 60 s). */
export const runHost = (argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> =>
  new Promise((resolve, reject) => {
    const [file, ...args] = argv
    if (file === undefined) {
      reject(new Error('runHost: empty argv'))
      return
    }
    const child = spawn(file, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    const onOut = opts.onStdoutLine ? lineSplitter(opts.onStdoutLine) : undefined
    const onErr = opts.onStderrLine ? lineSplitter(opts.onStderrLine) : undefined
    child.stdout.on('data', (chunk: Buffer) => {
      out.push(chunk)
      onOut?.(chunk)
    })
    child.stderr.on('data', (chunk: Buffer) => {
      err.push(chunk)
      onErr?.(chunk)
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      if (opts.onTimeout && child.pid !== undefined) opts.onTimeout(child.pid)
      else child.kill(opts.killSignal ?? 'SIGKILL')
    }, opts.timeoutMs ?? 60_000)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`cannot run ${file}: ${error.message}`, { cause: error }))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({
        exitCode: code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      })
    })
    child.stdin.on('error', () => {}) // the command may exit without reading its input
    child.stdin.end(opts.input ?? '')
  })

const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

/** The absolute path of an executable found on PATH or in the system directories, or undefined. */
export const findCommand = (name: string): string | undefined => {
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), ...SYSTEM_PATH]
  for (const dir of dirs) {
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** The absolute path of an executable, or an error naming the Debian package that has it. */
export const requireCommand = (name: string, debianPackage: string): string => {
  const path = findCommand(name)
  if (path === undefined) throw new Error(`${name} not found: apt-get install ${debianPackage}`)
  return path
}

const readOr = (path: string, fallback: string): string => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return fallback
  }
}

/** Host pids of every process, from /proc. */
export const listPids = (): number[] =>
  readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)

/** The parent pid of a host process, from /proc/<pid>/stat, or undefined when it is gone. */
export const parentPid = (pid: number): number | undefined => {
  const stat = readOr(`/proc/${pid}/stat`, '')
  // pid (comm) state ppid ...: comm may contain spaces and parentheses, so split after the last ')'
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ppid = Number(rest[1])
  return stat === '' || !Number.isInteger(ppid) ? undefined : ppid
}

/** The host pids of the direct children of a host process. */
export const childPids = (pid: number): number[] => listPids().filter((p) => parentPid(p) === pid)

/** The pids of a process in every PID namespace it is in, outermost (host) first: the NSpid line. */
export const namespacePids = (pid: number): number[] => {
  const line = readOr(`/proc/${pid}/status`, '')
    .split('\n')
    .find((l) => l.startsWith('NSpid:'))
  return line === undefined ? [] : line.slice('NSpid:'.length).trim().split(/\s+/).map(Number)
}

export const processExists = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export const readProcFile = (path: string): string => readOr(path, '')
