/**
 * The host artifact (`ansai-<version>.tar.gz`, built by agent/build/build.ts) that the ANSAI-InstallAgent document
 * installs: built at synth into the cloud assembly's directory, then copied to the bucket under `agent-bundle/`.
 */
import { copyFileSync, mkdirSync, rmSync } from 'node:fs'
import { basename, join } from 'node:path'
import { buildBundles } from '../agent/build/build.ts'

export interface AgentArtifact {
  /** A directory holding only the tarball (what the bucket deployment uploads). */
  dir: string
  /** `ansai-<version>.tar.gz` */
  fileName: string
  version: string
}

/** Build the CLIs and pack the tarball under `<outRoot>/agent-build`, and stage it alone in `<outRoot>/agent-bundle`. */
export const buildAgentArtifact = async (outRoot: string): Promise<AgentArtifact> => {
  const built = await buildBundles({ outDir: join(outRoot, 'agent-build'), quiet: true })
  if (!built.tarball) throw new Error('agent build: no tarball was packed')
  const dir = join(outRoot, 'agent-bundle')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const fileName = basename(built.tarball.file)
  copyFileSync(built.tarball.file, join(dir, fileName))
  return { dir, fileName, version: built.version }
}
