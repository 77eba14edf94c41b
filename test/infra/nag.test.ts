/**
 * cdk-nag 3 (AwsSolutions and Serverless packs) on the fleet stacks: a synth with the packs registered succeeds, no
 * finding is left unacknowledged, every acknowledgement matches a real finding on its own construct (no blanket
 * or stale ones), and a new wildcard fails the synth.
 */
import { Stack } from 'aws-cdk-lib'
import { PolicyStatement } from 'aws-cdk-lib/aws-iam'
import { beforeAll, describe, expect, it } from 'vitest'
import { type Acknowledgement, listAcknowledgements, nagPacks, withoutAcknowledgements } from '../../infra/nag.ts'
import { buildFleet, type FleetFixture } from './fleet-fixture.ts'

interface Finding {
  rule: string
  path: string
  severity: string
}

const findingsOf = (f: FleetFixture): Finding[] => {
  f.app.synth({ force: true })
  return nagPacks(f.app).flatMap((pack) =>
    pack.validateScope(f.app).violations.flatMap((v) =>
      v.violatingResources.map((r) => ({
        rule: v.ruleName,
        path: r.constructPath ?? '',
        severity: v.severity ?? '',
      })),
    ),
  )
}

const covers = (ack: Acknowledgement, finding: Finding): boolean =>
  ack.id === finding.rule && (finding.path === ack.path || finding.path.startsWith(`${ack.path}/`))

let fleet: FleetFixture
let acknowledgements: Acknowledgement[]
let unacknowledged: Finding[]

beforeAll(() => {
  fleet = buildFleet({ nag: true })
  acknowledgements = listAcknowledgements(fleet.app)
  unacknowledged = withoutAcknowledgements(() => findingsOf(buildFleet({ nag: false })))
}, 180_000)

describe('cdk-nag', () => {
  it('synthesizes with the AwsSolutions and Serverless packs registered (a finding would fail the synth)', () => {
    expect(() => fleet.app.synth({ force: true })).not.toThrow()
  })

  it('leaves no finding, error or warning, unacknowledged', () => {
    expect(findingsOf(fleet)).toEqual([])
  })

  it('finds something to acknowledge without the acknowledgements (the check is live)', () => {
    expect(unacknowledged.length).toBeGreaterThan(10)
    expect(unacknowledged.map((u) => u.rule)).toContain('AwsSolutions-IAM5[Resource::*]')
  })

  it('acknowledges each finding by its own id on its own construct, with a reason', () => {
    for (const finding of unacknowledged) {
      expect(
        acknowledgements.some((a) => covers(a, finding)),
        `${finding.rule} at ${finding.path} has no acknowledgement`,
      ).toBe(true)
    }
    for (const ack of acknowledgements) {
      expect(
        unacknowledged.some((finding) => covers(ack, finding)),
        `${ack.id} at ${ack.path} acknowledges nothing`,
      ).toBe(true)
      expect(ack.reason.length, `${ack.id} at ${ack.path}`).toBeGreaterThan(30)
    }
  })

  it('acknowledges nothing on a whole stack or the app', () => {
    const stackPaths = new Set([fleet.app.node.path, fleet.stateful.node.path, fleet.controlPlane.node.path])
    expect(acknowledgements.filter((a) => stackPaths.has(a.path))).toEqual([])
    for (const a of acknowledgements) expect(Stack.isStack(fleet.app.node.findChild(a.path.split('/')[0]!))).toBe(true)
  })

  it('fails the synth when a new wildcard appears', () => {
    const f = buildFleet({ nag: true })
    f.controlPlane.functions['send-digest'].role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['s3:GetObject'], resources: ['arn:aws:s3:::somewhere/*'] }),
    )
    expect(() => f.app.synth({ force: true })).toThrow(/IAM entity contains wildcard permissions/)
  })
})
