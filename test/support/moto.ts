import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import { requireOrSkip } from './require.ts'

/**
 * `moto_server` (Python moto: DynamoDB, SQS, SES, SSM, EventBridge, Secrets Manager, S3) on a free loopback port,
 * one per test file. AWS SDK v3 clients talk to it through {@link MotoServer.clientConfig}.
 *
 *   const moto = await startMotoOrSkip()            // undefined → skipped (fails under ANSAI_REQUIRE_ALL=1)
 *   afterAll(() => moto?.stop())                     // top level: it runs even when every test is filtered out
 *   describe.skipIf(!moto)('...', () => { ... })
 */
export interface MotoServer {
  endpoint: string
  region: string
  /** Config for any SDK v3 client: endpoint, region and dummy credentials. */
  clientConfig: {
    endpoint: string
    region: string
    credentials: { accessKeyId: string; secretAccessKey: string }
  }
  /** Everything moto recorded (e.g. SES messages under `ses.sent_emails`, SSM commands), from `/moto-api/data.json`. */
  data(): Promise<Record<string, unknown>>
  /** Drop every resource (between tests). */
  reset(): Promise<void>
  stop(): Promise<void>
}

export const MOTO_REGION = 'us-east-1'

export const hasMotoServer = (): boolean => spawnSync('moto_server', ['--help'], { stdio: 'ignore' }).status === 0

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })

const waitUntilUp = async (endpoint: string, child: ChildProcess, output: () => string): Promise<void> => {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${output()}`)
    try {
      const res = await fetch(`${endpoint}/moto-api/`)
      if (res.ok) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`moto_server did not answer at ${endpoint} within 30 s: ${output()}`)
}

export const startMoto = async (): Promise<MotoServer> => {
  const port = await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AWS_DEFAULT_REGION: MOTO_REGION },
  })
  let log = ''
  const keep = (b: Buffer) => {
    log = (log + b.toString()).slice(-4000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  // Never leave a server behind, even when no afterAll ran (a -t filter that skips every test of a file).
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  child.once('exit', () => process.off('exit', killOnExit))
  await waitUntilUp(endpoint, child, () => log)
  return {
    endpoint,
    region: MOTO_REGION,
    clientConfig: {
      endpoint,
      region: MOTO_REGION,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    },
    data: async () => (await (await fetch(`${endpoint}/moto-api/data.json`)).json()) as Record<string, unknown>,
    reset: async () => {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' })
      if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`)
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

/** Starts moto, or returns undefined after `requireOrSkip` said to skip (it throws under ANSAI_REQUIRE_ALL=1). */
export const startMotoOrSkip = async (): Promise<MotoServer | undefined> => {
  if (!requireOrSkip('moto_server', hasMotoServer(), 'moto_server not on PATH: pip install "moto[server]"')) {
    return undefined
  }
  return startMoto()
}
