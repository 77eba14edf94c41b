// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the self-tests hold TypeScript source text with templates
/**
 * Functional core, imperative shell (DESIGN.md, house style 1): everything in shared/ except shared/adapters/
 * imports no AWS SDK, no aws-cdk-lib, no I/O modules, never reads process.env, never reads the clock or makes
 * random ids; and it never imports shared/adapters, agent/, functions/ or infra/.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { type Breach, formatBreaches, lexSource, scanSource } from '../support/purity-scanner.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))

const coreFiles = (): string[] =>
  readdirSync(`${root}shared`, { recursive: true, encoding: 'utf8' })
    .map((f) => `shared/${f.split('\\').join('/')}`)
    .filter((f) => /\.[cm]?tsx?$/.test(f) && !f.startsWith('shared/adapters/'))
    .sort()

const assertPure = (breaches: readonly Breach[]): void => {
  if (breaches.length > 0) {
    throw new Error(`the functional core in shared/ has ${breaches.length} breach(es):\n${formatBreaches(breaches)}`)
  }
}

describe('shared/ is a pure functional core', () => {
  const files = coreFiles()

  it('finds the core files', () => {
    expect(files).toContain('shared/contracts/index.ts')
  })

  it('imports nothing impure, reads no environment, clock or randomness, and stays in its layer', () => {
    const breaches = files.flatMap((f) => scanSource(f, readFileSync(`${root}${f}`, 'utf8')))
    assertPure(breaches)
  })
})

describe('purity scanner (self-test: the architecture test can fail)', () => {
  const bad = [
    "import { S3Client } from '@aws-sdk/client-s3'", // 1
    "import { Stack } from 'aws-cdk-lib'", // 2
    "import { readFileSync } from 'node:fs'", // 3
    "import { spawn } from 'child_process'", // 4
    "import * as net from 'node:net'", // 5
    "import { request } from 'node:https'", // 6
    "import type { TLSSocket } from 'node:tls'", // 7
    "export { createSocket } from 'node:dgram'", // 8
    "import { readFile } from 'fs/promises'", // 9
    "const http = await import('node:http')", // 10
    'const region = process.env.AWS_REGION', // 11
    'const now = Date.now()', // 12
    'const id = Math.random().toString(36)', // 13
    'const today = new Date()', // 14
    "import { probe } from '../../agent/probes/disk.ts'", // 15
    "import { twin } from '../adapters/memory-store.ts'", // 16
    "import { handler } from '../../functions/ingest-reports/handler.ts'", // 17
    "import { app } from '../../infra/app.ts'", // 18
    'const later = `at ${new Date()}`', // 19
    'import {', // 20
    '  execFile,', // 21
    "} from 'node:child_process'", // 22
  ].join('\n')

  it('reports every breach with its line', () => {
    const found = scanSource('shared/engine/bad.ts', bad)
    const lines = [...new Set(found.map((b) => b.line))]
    expect(lines).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 22])
    expect(found.find((b) => b.line === 16)?.rule).toBe("core imports shared/adapters: '../adapters/memory-store.ts'")
    expect(found.find((b) => b.line === 12)?.text).toBe('const now = Date.now()')
  })

  it('fails the architecture test, listing file:line', () => {
    const found = scanSource('shared/engine/bad.ts', bad)
    expect(() => assertPure(found)).toThrow(/shared\/engine\/bad\.ts:3: impure Node built-in \(fs\): 'node:fs'/)
    expect(() => assertPure(found)).toThrow(/shared\/engine\/bad\.ts:11: process\.env/)
  })

  it('accepts pure code, and ignores breaches that are only mentioned in comments, strings and regexes', () => {
    const clean = [
      '/** Never call Date.now() or read process.env here; see node:fs in agent/. */',
      "import { z } from 'zod'",
      "import { createHash } from 'node:crypto'",
      "import { PolicySchema } from '../contracts/index.ts'",
      "import type { Clock } from '../ports/clock.ts'",
      '// import { readFileSync } from "node:fs"',
      "const hint = 'use new Date() in the shell, not Math.random()'",
      'const re = /Date\\.now\\(\\)|process\\.env/',
      'const ratio = a / b / c',
      "const at = new Date(now).toISOString() + `${'Date.now()'}`",
      'const epoch = Date.parse(at) + DateTime.now',
      "const t = `import x from 'fs' ${ { a: 1 }.a } process.env`",
    ].join('\n')
    expect(scanSource('shared/engine/clean.ts', clean)).toEqual([])
  })

  it('blanks comments and literals but keeps offsets and line breaks', () => {
    const src = "a // c\nb = 'x'\n/* d\n*/ `t${e}u`"
    const { code, strings } = lexSource(src)
    expect(code).toBe("a     \nb = ' '\n    \n   ` ${e} `")
    expect(code.length).toBe(src.length)
    expect(strings).toEqual([{ start: 11, value: 'x' }])
  })
})
