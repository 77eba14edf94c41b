/**
 * Builds the fleet stacks for template tests without the real handlers or the agent build: each function gets a
 * fake asset directory (an index.mjs exporting handler), the agent a fake tarball.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { App } from 'aws-cdk-lib'
import type { AgentArtifact } from '../../infra/agent-artifact.ts'
import type { FunctionBundler } from '../../infra/bundle.ts'
import { type LoadedFleetConfig, loadFleetConfig, parseFleetConfig } from '../../infra/config.ts'
import { addFleetStacks, type FleetStacks } from '../../infra/fleet-app.ts'

export const fakeBundler =
  (root: string): FunctionBundler =>
  (name) => {
    const dir = join(root, 'functions', name)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'index.mjs'), `export const handler = async () => ({ fake: '${name}' })\n`)
    return dir
  }

export const fakeAgent = (root: string): AgentArtifact => {
  const dir = join(root, 'agent-bundle')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'ansai-0.1.0.tar.gz'), 'not a real tarball')
  return { dir, fileName: 'ansai-0.1.0.tar.gz', version: '0.1.0' }
}

export interface FleetFixture extends FleetStacks {
  app: App
  fleet: LoadedFleetConfig
  root: string
}

/** The example config (or the given YAML text, relative to infra/), on a fresh app with fake assets. */
export const buildFleet = (opts: { yaml?: string; nag?: boolean } = {}): FleetFixture => {
  const root = mkdtempSync(join(tmpdir(), 'ansai-infra-'))
  const fleet =
    opts.yaml === undefined
      ? loadFleetConfig('infra/fleet.example.yaml')
      : parseFleetConfig(opts.yaml, 'test-fleet.yaml', join(process.cwd(), 'infra'))
  const app = new App({ outdir: join(root, 'cdk.out') })
  const stacks = addFleetStacks(app, {
    fleet,
    bundle: fakeBundler(root),
    agent: fakeAgent(root),
    nag: opts.nag ?? true,
  })
  return { app, fleet, root, ...stacks }
}
