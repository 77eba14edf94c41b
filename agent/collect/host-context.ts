import { readdir, readFile, stat, statfs } from 'node:fs/promises'
import { runCommand } from '../os/exec.ts'
import type { CollectContext, CollectFs } from './context.ts'

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

/** The context `ansai-agent collect` runs with: this host, its clock, agent/os/exec.ts, the agent's environment. */
export const createHostContext = (opts: { cacheDir: string }): CollectContext => ({
  run: runCommand,
  now: () => new Date(),
  fs: hostFs,
  cacheDir: opts.cacheDir,
  env: process.env,
})
