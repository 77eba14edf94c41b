/**
 * cdk-nag 3: the AwsSolutions and Serverless packs run as CDK validation plugins at synth; a finding fails the
 * synth. Every acknowledgement is narrow (on the construct that has the finding, with the finding id when the rule
 * reports several, e.g. `AwsSolutions-IAM5[Resource::*]`) and says why.
 */
import { Stack, Validations } from 'aws-cdk-lib'
import { AwsSolutionsChecks, type NagPack, ServerlessChecks } from 'cdk-nag'
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js'
import type { IConstruct } from 'constructs'

/** The packs ANSAI's infrastructure must pass. */
export const nagPacks = (scope: IConstruct): NagPack[] => [new AwsSolutionsChecks(scope), new ServerlessChecks(scope)]

/** Register the packs on the app: `cdk synth` fails on any unacknowledged finding. */
export const addNagPacks = (app: IConstruct): void => {
  Validations.of(app).addPlugins(...nagPacks(app))
}

let acknowledging = true

/** Acknowledge one finding on one construct, with the reason. */
export const acknowledge = (construct: IConstruct, id: string, reason: string): void => {
  if (acknowledging) Validations.of(construct).acknowledge({ id, reason })
}

/** Build constructs with `acknowledge` turned off (tests: every acknowledgement must match a real finding). */
export const withoutAcknowledgements = <T>(build: () => T): T => {
  acknowledging = false
  try {
    return build()
  } finally {
    acknowledging = true
  }
}

/**
 * The finding id of AwsSolutions-IAM5 for a wildcard resource, written the way cdk-nag writes it (the resolved
 * reference, flattened): `AwsSolutions-IAM5[Resource::<Bucket1234.Arn>/prefix/*]`. The ARN must be built in the
 * scope's own stack (cross-stack references are only turned into imports at synth).
 */
export const wildcardResourceFinding = (scope: IConstruct, arn: string): string =>
  `AwsSolutions-IAM5[Resource::${flattenCfnReference(Stack.of(scope).resolve(arn))}]`

export interface Acknowledgement {
  path: string
  id: string
  reason: string
}

/** Every acknowledgement in a construct tree (for the tests and the docs). */
export const listAcknowledgements = (root: IConstruct): Acknowledgement[] =>
  root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY && m.data)
      .flatMap((m) =>
        Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({
          path: c.node.path,
          id: id.replace(/^annotation::/i, ''),
          reason,
        })),
      ),
  )
