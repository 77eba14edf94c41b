import {
  close as closeCallback,
  fsync as fsyncCallback,
  mkdir as mkdirCallback,
  open as openCallback,
  readdir as readdirCallback,
  readFile as readFileCallback,
  rename as renameCallback,
  rm as rmCallback,
  stat as statCallback,
  statfs as statfsCallback,
  unlink as unlinkCallback,
  writeFile as writeFileCallback,
} from 'node:fs'
import { promisify } from 'node:util'

/**
 * The promise forms of the node:fs calls the collector makes, over node:fs's callback API: same arguments, results
 * and errors as node:fs/promises. Not node:fs/promises itself: loading it also loads readline, the REPL history and
 * the fs watchers, ~1 MB and ~2 ms at the start of `ansai-agent collect` (goal: ≤ 50 MB, ≤ 80 ms), for nothing the
 * collector uses. Files are opened as descriptors (`open` → fd), not FileHandles.
 */
export const close = promisify(closeCallback)
export const fsync = promisify(fsyncCallback)
export const mkdir = promisify(mkdirCallback)
export const open = promisify(openCallback)
export const readdir = promisify(readdirCallback)
export const readFile = promisify(readFileCallback)
export const rename = promisify(renameCallback)
export const rm = promisify(rmCallback)
export const stat = promisify(statCallback)
export const statfs = promisify(statfsCallback)
export const unlink = promisify(unlinkCallback)
export const writeFile = promisify(writeFileCallback)
