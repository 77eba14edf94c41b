/**
 * The CDK app of the ANSAI fleet control plane (cdk.json: `npx tsx infra/app.ts`).
 *
 *   npx cdk synth  [-c config=path/to/fleet.yaml]     default config: infra/fleet.example.yaml
 *   npx cdk deploy --all -c config=path/to/fleet.yaml
 *
 * At synth: the fleet config is validated (with its policies), the six functions are bundled locally with esbuild
 * and the host artifact is built; both go into the cloud assembly directory (cdk.out/.ansai-build/).
 */
import { join } from 'node:path'
import { App } from 'aws-cdk-lib'
import { FUNCTION_NAMES } from '../functions/platform/names.ts'
import { buildAgentArtifact } from './agent-artifact.ts'
import { BundleError, bundleFunctions } from './bundle.ts'
import { DEFAULT_CONFIG_PATH, FleetConfigError, loadFleetConfig } from './config.ts'
import { addFleetStacks } from './fleet-app.ts'

const main = async (): Promise<void> => {
  const app = new App()
  const configPath = (app.node.tryGetContext('config') as string | undefined) ?? DEFAULT_CONFIG_PATH
  const fleet = loadFleetConfig(configPath)
  const work = join(app.outdir, '.ansai-build')
  const bundle = await bundleFunctions(FUNCTION_NAMES, join(work, 'functions'))
  const agent = await buildAgentArtifact(work)
  const account = process.env.CDK_DEFAULT_ACCOUNT
  const region = process.env.CDK_DEFAULT_REGION
  addFleetStacks(app, {
    fleet,
    bundle,
    agent,
    ...(account || region ? { env: { ...(account ? { account } : {}), ...(region ? { region } : {}) } } : {}),
  })
  app.synth()
}

main().catch((err: unknown) => {
  if (err instanceof FleetConfigError || err instanceof BundleError) console.error(`ansai infra: ${err.message}`)
  else console.error(err)
  process.exitCode = 1
})
