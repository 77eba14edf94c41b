/**
 * The fleet stacks on an app: the stateful stack, the control plane on top of it, and the cdk-nag packs. Shared by
 * the real app (infra/app.ts: real config, esbuild bundles, the built agent) and the tests (fake bundles).
 */
import type { App, Environment } from 'aws-cdk-lib'
import type { RemediationDefinition } from '../shared/registry/types.ts'
import type { AgentArtifact } from './agent-artifact.ts'
import type { FunctionBundler } from './bundle.ts'
import type { LoadedFleetConfig } from './config.ts'
import { ControlPlaneStack } from './control-plane-stack.ts'
import { addNagPacks } from './nag.ts'
import { StatefulStack } from './stateful-stack.ts'

export interface FleetAppOptions {
  fleet: LoadedFleetConfig
  bundle: FunctionBundler
  agent: AgentArtifact
  env?: Environment
  /** Register the cdk-nag packs as validation plugins (default true). */
  nag?: boolean
  remediations?: readonly RemediationDefinition[]
}

export interface FleetStacks {
  stateful: StatefulStack
  controlPlane: ControlPlaneStack
}

/** Feature flags the stacks rely on, set on the app itself so tests and `cdk synth` build the same thing. */
export const FEATURE_FLAGS: Record<string, unknown> = {
  // server access logs delivered through the bucket policy (ACLs are disabled on ANSAI's buckets)
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
  // the control plane imports the stateful stack's exports; keep the producer protected (CloudFormation refuses to
  // delete an export in use)
  '@aws-cdk/core:defaultCrossStackReferences': 'strong',
}

export const addFleetStacks = (app: App, opts: FleetAppOptions): FleetStacks => {
  const { config } = opts.fleet
  for (const [key, value] of Object.entries(FEATURE_FLAGS)) app.node.setContext(key, value)
  const common = {
    ...(opts.env ? { env: opts.env } : {}),
    tags: { 'ansai:stack': config.name },
  }
  const stateful = new StatefulStack(app, `${config.name}Stateful`, {
    ...common,
    description: 'ANSAI fleet: state (DynamoDB table, SQS queues and DLQs, bucket, event bus, host policies)',
    config,
  })
  const controlPlane = new ControlPlaneStack(app, `${config.name}ControlPlane`, {
    ...common,
    description: 'ANSAI fleet: control plane (functions, schedules, SSM documents, alarms, dashboard)',
    fleet: opts.fleet,
    stateful,
    bundle: opts.bundle,
    agent: opts.agent,
    ...(opts.remediations ? { remediations: opts.remediations } : {}),
  })
  if (opts.nag !== false) addNagPacks(app)
  return { stateful, controlPlane }
}
