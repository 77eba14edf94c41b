import type { CollectContext, CollectFs } from './context.ts'
import { readdir, readFile, stat, statfs } from './fs-async.ts'

/** The real host's files, read-only. */
export const hostFs: CollectFs = {
  readFile: (path) => readFile(path, 'utf8'),
  readdir: (path) => readdir(path),
  stat: async (path) => {
    const s = await stat(path)
    return { size: s.size, mtimeMs: s.mtimeMs, isFile: s.isFile(), isDirectory: s.isDirectory() }
  },
  statfs: (path) => statfs(path, { bigint: true }),
}

/**
 * The context `ansai-agent collect` runs with: this host, its clock, agent/os/exec.ts, the agent's environment.
 * exec.ts (node:child_process, and with it net, dgram and the stream internals: ~3 MB and ~5 ms at start) is
 * loaded at the first command a probe runs; a host where no probe needs one never loads it.
 */
export const createHostContext = (opts: { cacheDir: string }): CollectContext => ({
  run: async (file, args, runOpts) => (await import('../os/exec.ts')).runCommand(file, args, runOpts),
  now: () => new Date(),
  fs: hostFs,
  cacheDir: opts.cacheDir,
  env: process.env,
})
