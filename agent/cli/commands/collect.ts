import { writeSync } from 'node:fs'
import { join } from 'node:path'
import type { ReportV1 } from '../../../shared/contracts/index.ts'
import { collectDetailed } from '../../collect/collect.ts'
import { createHostContext } from '../../collect/host-context.ts'
import type { AgentConfig } from '../../config/config.ts'

const VERSION = '0.1.0'

/**
 * Collect this host once with the configured probes. Its own module, apart from host.ts: `ansai-agent collect`
 * imports only this and the collector, never the policy engine that `ansai check` and `ansai run` need.
 *
 * `validate` (default true) checks every observation and the envelope against the v1 contract with zod (an adapter
 * bug then costs one observation, not the report); `ansai-agent collect` turns it off to keep zod out of its start
 * (whoever receives the report parses it anyway; a test checks the bundled command's output against ReportV1Schema).
 */
export const collectReport = async (
  config: AgentConfig,
  stateDir: string,
  opts: { validate?: boolean } = {},
): Promise<{ report: ReportV1; probes: { name: string; wallMs: number; outcome: string }[] }> => {
  const ctx = createHostContext({ cacheDir: join(stateDir, 'cache') })
  const r = await collectDetailed(
    {
      probes: config.probes,
      host: config.host,
      agentVersion: VERSION,
      stateDir,
      ...(opts.validate === undefined ? {} : { validate: opts.validate }),
    },
    ctx,
  )
  return { report: r.report, probes: r.probes }
}

/**
 * Writes `text` to standard output with write(2) on fd 1, all of it, before returning. `process.stdout` is a stream
 * whose first use, when stdout is a pipe (`ansai-agent collect --json | jq`, SSM, a test), loads node:net and the
 * stream internals: ~2.5 MB and ~4 ms of a collect that needs neither. EAGAIN (a non-blocking stdout whose reader is
 * slow) waits 1 ms and tries again; any other error (EPIPE: the reader is gone) is thrown.
 */
export const writeStdoutSync = (text: string): void => {
  const bytes = Buffer.from(text, 'utf8')
  let offset = 0
  while (offset < bytes.length) {
    try {
      offset += writeSync(1, bytes, offset, bytes.length - offset)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
    }
  }
}
