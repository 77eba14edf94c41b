import { dirname, join } from 'node:path'
import { close, fsync, mkdir, open, readFile, rename, rm, stat, unlink, writeFile } from './fs-async.ts'

/**
 * The agent's own small state files: probe caches (JSON) and the report sequence counter. Written atomically (a
 * temp file in the same directory, fsync, rename), so a crash or a concurrent reader never sees half a file.
 */

let tempCounter = 0

/** Writes `text` to `path` atomically; creates the directory (0700) when missing. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const temp = `${path}.${process.pid}.${++tempCounter}.tmp`
  const fd = await open(temp, 'w', 0o600)
  try {
    await writeFile(fd, text, 'utf8')
    await fsync(fd)
  } finally {
    await close(fd)
  }
  try {
    await rename(temp, path)
  } catch (err) {
    await rm(temp, { force: true })
    throw err
  }
}

/** The parsed JSON in `path`, or undefined when it is missing or not JSON (a cache is only a cache). */
export async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown
  } catch {
    return undefined
  }
}

export const writeJson = (path: string, value: unknown): Promise<void> =>
  writeFileAtomic(path, `${JSON.stringify(value)}\n`)

const LOCK_STALE_MS = 10_000
const LOCK_WAIT_MS = 5_000

/**
 * Runs `fn` holding an exclusive lock file (O_EXCL create). Two agent processes at once (the timer's run and an
 * OnFailure= report) take turns. A lock older than 10 s belongs to a dead process and is broken.
 */
export async function withLockFile<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(lockPath), { recursive: true, mode: 0o700 })
  const started = Date.now()
  for (;;) {
    try {
      const fd = await open(lockPath, 'wx', 0o600)
      await writeFile(fd, String(process.pid))
      await close(fd)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const age = await stat(lockPath).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      )
      if (age > LOCK_STALE_MS) {
        await unlink(lockPath).catch(() => {})
        continue
      }
      if (Date.now() - started > LOCK_WAIT_MS) throw new Error(`${lockPath}: still locked after ${LOCK_WAIT_MS} ms`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  try {
    return await fn()
  } finally {
    await unlink(lockPath).catch(() => {})
  }
}

export const SEQ_FILE = 'seq'

/**
 * The next report sequence number of this host, from `<stateDir>/seq`: strictly increasing across runs and
 * restarts, written atomically under a lock. It is never lower than the current Unix time in seconds, so a lost or
 * reset state directory (a reinstall) cannot send the host back to a sequence the control plane has already seen:
 * the engine only moves a host's state forward on a newer sequence. (At more than one report per second on
 * average, the counter runs ahead of the clock, which is harmless.)
 */
export async function nextSeq(stateDir: string, now: Date): Promise<number> {
  const file = join(stateDir, SEQ_FILE)
  return withLockFile(`${file}.lock`, async () => {
    let previous = 0
    try {
      const text = (await readFile(file, 'utf8')).trim()
      if (/^\d+$/.test(text) && Number.isSafeInteger(Number(text))) previous = Number(text)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    const seq = Math.max(previous + 1, Math.floor(now.getTime() / 1000))
    await writeFileAtomic(file, `${seq}\n`)
    return seq
  })
}
