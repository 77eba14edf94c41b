import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const SPAWNER = 'agent/os/exec.ts'
/** Developer tooling that runs at build time on a developer's or CI's machine and is never shipped to a host. */
const BUILD_TOOLING = 'agent/build/'

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : tsFiles(path)
    return /\.[cm]?ts$/.test(e.name) ? [path] : []
  })
}

describe('process spawning (DESIGN.md, house style 14)', () => {
  it(`happens only in ${SPAWNER}`, () => {
    const offenders = tsFiles(join(root, 'agent'))
      .map((file) => relative(root, file))
      .filter((file) => file !== SPAWNER && !file.startsWith(BUILD_TOOLING))
      .filter((file) => /(['"])(node:)?child_process\1/.test(readFileSync(join(root, file), 'utf8')))
    expect(offenders).toEqual([])
  })

  it('the pure parsers of the probes do no I/O', () => {
    const parsers = [
      'parse-result',
      'systemd-show',
      'meminfo',
      'mountinfo',
      'cgroup-memory',
      'certificate',
      'apt-upgradable',
      'containers',
      'cron-heartbeat',
    ].map((name) => `agent/probes/${name}.ts`)
    const io = /(['"])(node:)?(fs|fs\/promises|child_process|net|tls|dgram|http|https|dns|os|process)\1|process\.env/
    const offenders = parsers.filter((file) => io.test(readFileSync(join(root, file), 'utf8')))
    expect(offenders).toEqual([])
  })
})
