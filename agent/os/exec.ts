import { spawn } from 'node:child_process'

/**
 * The one place in ANSAI that starts processes (DESIGN.md, house style 14).
 *
 * - argv arrays only, `shell: false`: no argument is ever seen by a shell, so there is nothing to quote or escape;
 * - a mandatory timeout: SIGTERM to the child's whole process group, SIGKILL after a grace period;
 * - output captured up to a cap per stream (the rest is read and dropped, so the child never blocks on a full
 *   pipe), reported with `truncated`;
 * - a non-zero exit, a signal or a timeout is a result, never an exception. Only a command that cannot be started
 *   at all (bad file name, missing binary, no permission) throws an {@link ExecError}.
 */

export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024
export const DEFAULT_KILL_GRACE_MS = 2_000

export interface RunOptions {
  /** Mandatory. After this many milliseconds the process group gets SIGTERM, then SIGKILL after `killGraceMs`. */
  timeoutMs: number
  /** Written to the child's stdin, which is then closed. Without it stdin is /dev/null. */
  input?: string
  /** The child's WHOLE environment (not merged with the agent's); default: the agent's environment. */
  env?: Record<string, string>
  cwd?: string
  /** Cap on each of stdout and stderr, in bytes; default 4 MiB. */
  maxOutputBytes?: number
  /** Time between SIGTERM and SIGKILL once the timeout fires; default 2 s. */
  killGraceMs?: number
}

export interface RunResult {
  /** null when the process ended by a signal. */
  exitCode: number | null
  signal: string | null
  stdout: string
  stderr: string
  timedOut: boolean
  /** true when stdout or stderr went over `maxOutputBytes` and was cut. */
  truncated: boolean
  durationMs: number
}

export type ExecErrorCode = 'invalid-command' | 'spawn-failed'

/** The command could not be started. `cause` holds the underlying error (e.g. an ENOENT from spawn). */
export class ExecError extends Error {
  override readonly name = 'ExecError'
  readonly code: ExecErrorCode
  /** The OS error code when there is one, e.g. `ENOENT`, `EACCES`. */
  readonly errno: string | undefined
  readonly file: string

  constructor(code: ExecErrorCode, file: string, message: string, options?: { cause?: unknown; errno?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.file = file
    this.errno = options?.errno
  }
}

/** A bare command name looked up on PATH (`systemctl`, `apt-get`), or an absolute path. */
const BARE_NAME = /^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/

const hasNul = (s: string): boolean => s.includes('\0')

function validate(file: string, args: readonly string[], opts: RunOptions): void {
  const invalid = (message: string): ExecError => new ExecError('invalid-command', String(file), message)
  if (typeof file !== 'string' || file.length === 0) throw invalid('file must be a non-empty string')
  if (hasNul(file)) throw invalid('file contains a NUL byte')
  if (!(file.startsWith('/') || BARE_NAME.test(file)) || file === '.' || file === '..') {
    throw invalid(`file must be a bare command name or an absolute path, got ${JSON.stringify(file)}`)
  }
  if (!Array.isArray(args)) throw invalid('args must be an array')
  args.forEach((arg, i) => {
    if (typeof arg !== 'string') throw invalid(`args[${i}] is not a string`)
    if (hasNul(arg)) throw invalid(`args[${i}] contains a NUL byte`)
  })
  if (typeof opts?.timeoutMs !== 'number' || !Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
    throw invalid('timeoutMs must be a positive finite number')
  }
  if (opts.maxOutputBytes !== undefined && !(Number.isInteger(opts.maxOutputBytes) && opts.maxOutputBytes >= 0)) {
    throw invalid('maxOutputBytes must be a non-negative integer')
  }
  if (opts.killGraceMs !== undefined && !(Number.isFinite(opts.killGraceMs) && opts.killGraceMs >= 0)) {
    throw invalid('killGraceMs must be a non-negative number')
  }
  if (opts.input !== undefined && typeof opts.input !== 'string') throw invalid('input must be a string')
  if (opts.cwd !== undefined && (typeof opts.cwd !== 'string' || hasNul(opts.cwd))) {
    throw invalid('cwd must be a string without NUL')
  }
  if (opts.env !== undefined) {
    for (const [key, value] of Object.entries(opts.env)) {
      if (key.length === 0 || key.includes('=') || hasNul(key)) throw invalid(`bad environment variable name ${key}`)
      if (typeof value !== 'string' || hasNul(value)) throw invalid(`environment variable ${key} is not a clean string`)
    }
  }
}

/** Collects a stream up to `cap` bytes; keeps reading (and dropping) after that. */
class CappedBuffer {
  private readonly chunks: Buffer[] = []
  private size = 0
  truncated = false

  private readonly cap: number

  constructor(cap: number) {
    this.cap = cap
  }

  push(chunk: Buffer): void {
    const room = this.cap - this.size
    if (room <= 0) {
      if (chunk.length > 0) this.truncated = true
      return
    }
    if (chunk.length > room) {
      this.chunks.push(chunk.subarray(0, room))
      this.size += room
      this.truncated = true
      return
    }
    this.chunks.push(chunk)
    this.size += chunk.length
  }

  text(): string {
    return Buffer.concat(this.chunks, this.size).toString('utf8')
  }
}

/**
 * Runs `file` with `args`, no shell. Resolves with the outcome whatever the exit status; rejects with
 * {@link ExecError} only when the command is invalid or cannot be started.
 */
export function runCommand(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  try {
    validate(file, args, opts)
  } catch (err) {
    return Promise.reject(err)
  }
  const cap = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES
  const grace = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS
  // process.hrtime, not performance.now(): perf_hooks costs ~0.5 MB and 1 ms at the first command of a collect
  const started = process.hrtime.bigint()

  return new Promise<RunResult>((resolve, reject) => {
    let child: ReturnType<typeof spawn>
    try {
      child = spawn(file, [...args], {
        shell: false,
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        // Its own process group, so a timeout also ends the grandchildren (`sh -c 'sleep 5'`).
        detached: true,
      })
    } catch (err) {
      // Synchronous failures (e.g. EINVAL, a cwd that is not a string) surface here rather than on 'error'.
      const errno = (err as NodeJS.ErrnoException)?.code
      reject(new ExecError('spawn-failed', file, `cannot start ${file}: ${String(err)}`, { cause: err, errno }))
      return
    }

    const stdout = new CappedBuffer(cap)
    const stderr = new CappedBuffer(cap)
    let spawned = false
    let settled = false
    let timedOut = false
    let termTimer: NodeJS.Timeout | undefined
    let killTimer: NodeJS.Timeout | undefined
    let drainTimer: NodeJS.Timeout | undefined

    const clearTimers = (): void => {
      clearTimeout(termTimer)
      clearTimeout(killTimer)
      clearTimeout(drainTimer)
    }

    const signalGroup = (signal: NodeJS.Signals): void => {
      if (child.pid === undefined) return
      try {
        process.kill(-child.pid, signal)
      } catch {
        try {
          child.kill(signal)
        } catch {
          // already gone
        }
      }
    }

    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk))

    if (opts.input !== undefined && child.stdin) {
      // The child may exit without reading its input (EPIPE): that is its business, not an agent crash.
      child.stdin.on('error', () => {})
      child.stdin.end(opts.input, 'utf8')
    }

    child.once('spawn', () => {
      spawned = true
    })

    child.once('error', (err: NodeJS.ErrnoException) => {
      if (settled) return
      if (!spawned) {
        settled = true
        clearTimers()
        // spawn reports a missing cwd as ENOENT too: say which one it may be.
        const hint = err.code === 'ENOENT' && opts.cwd !== undefined ? ` (or missing cwd ${opts.cwd})` : ''
        reject(
          new ExecError('spawn-failed', file, `cannot start ${file}: ${err.code ?? err.message}${hint}`, {
            cause: err,
            errno: err.code,
          }),
        )
      }
      // After a successful spawn, 'error' only reports a failed kill; 'close' still follows.
    })

    child.once('exit', () => {
      // A grandchild that escaped the process group may keep our pipes open: do not wait for it forever.
      drainTimer = setTimeout(() => {
        child.stdout?.destroy()
        child.stderr?.destroy()
      }, grace)
      drainTimer.unref?.()
    })

    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return
      settled = true
      clearTimers()
      resolve({
        exitCode: code,
        signal,
        stdout: stdout.text(),
        stderr: stderr.text(),
        timedOut,
        truncated: stdout.truncated || stderr.truncated,
        durationMs: Math.round(Number(process.hrtime.bigint() - started) / 1000) / 1000,
      })
    })

    termTimer = setTimeout(() => {
      timedOut = true
      signalGroup('SIGTERM')
      killTimer = setTimeout(() => signalGroup('SIGKILL'), grace)
    }, opts.timeoutMs)
  })
}
