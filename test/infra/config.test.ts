/**
 * The fleet config (infra/config.ts): the shipped example loads (with its policies) into a valid runtime config, and
 * every mistake is reported as file:line:col path: message, all at once.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { FleetRuntimeConfigSchema } from '../../functions/platform/runtime-config.ts'
import { FleetConfigError, loadFleetConfig, parseFleetConfig } from '../../infra/config.ts'

const problemsOf = (text: string, dir = process.cwd()): string[] => {
  try {
    parseFleetConfig(text, 'fleet.yaml', dir)
  } catch (err) {
    if (err instanceof FleetConfigError) return err.problems
    throw err
  }
  throw new Error('the config was accepted')
}

describe('the example fleet config', () => {
  const loaded = loadFleetConfig('infra/fleet.example.yaml')

  it('validates, with the baseline pack and its own pack, into a runtime config the functions accept', () => {
    expect(FleetRuntimeConfigSchema.parse(loaded.runtime)).toEqual(loaded.runtime)
    expect(loaded.runtime.policies.map((p) => p.file)).toEqual(['baseline pack', 'policies/web.yaml'])
    expect(loaded.runtime.disable).toEqual(['inode-pressure'])
    expect(loaded.runtime.defaultChannels).toEqual(['ops-email'])
    expect(loaded.runtime.digestChannels).toEqual(['ops-email'])
    expect(Object.keys(loaded.runtime.channels)).toEqual(['ops-email', 'ops-webhook'])
    expect(loaded.policies.map((p) => p.metadata.name)).toContain('web-nginx-down')
  })

  it('derives the SES identities and the secret ARNs the functions may use', () => {
    expect(loaded.sesIdentities).toEqual(['ansai@example.org', 'example.org'])
    expect(loaded.secretArns).toEqual(['arn:aws:secretsmanager:eu-west-1:123456789012:secret:ansai/ops-webhook-AbCdEf'])
  })

  it('defaults everything but the version', () => {
    const minimal = parseFleetConfig('version: 1\npolicies: { baseline: false }\n', 'min.yaml', process.cwd())
    expect(minimal.config.name).toBe('Ansai')
    expect(minimal.config.schedules).toEqual({ evaluate: '10m', digest: { at: '08:00', timezone: 'UTC' } })
    expect(minimal.config.fleet).toEqual({
      shards: 16,
      dryRun: false,
      verifyWithin: '15m',
      maxCommandsPerMinute: 100,
      quietWriteEvery: '60m',
      metrics: 'problems',
    })
    expect(minimal.runtime.quietWriteEvery).toBe('60m')
    expect(minimal.runtime.metrics).toBe('problems')
    expect(minimal.runtime.policies).toEqual([])
  })
})

describe('errors name the file, line, column and path', () => {
  it('reports schema errors at their lines, every one of them', () => {
    const text = [
      'version: 1', // 1
      'notifications:', // 2
      '  chanels: {}', // 3
      'fleet:', // 4
      '  shards: 0', // 5
      '  dryRun: maybe', // 6
      'schedules:', // 7
      '  evaluate: 90s', // 8
    ].join('\n')
    expect(problemsOf(text)).toEqual([
      expect.stringMatching(/^fleet\.yaml:3:3 notifications\.chanels: unknown key 'chanels'/),
      expect.stringMatching(/^fleet\.yaml:5:11 fleet\.shards: Too small/),
      expect.stringMatching(/^fleet\.yaml:6:11 fleet\.dryRun: Invalid input: expected boolean/),
      'fleet.yaml:8:13 schedules.evaluate: whole minutes from 1m to 24h, e.g. 10m',
    ])
  })

  it('reports a channel with a bad address, and a webhook secret that is not an ARN', () => {
    const text = [
      'version: 1',
      'notifications:',
      '  channels:',
      '    ops:',
      '      type: email',
      '      from: not an address',
      '      to: [ops@example.org]',
      '    hook:',
      '      type: webhook',
      '      url: https://example.org/h',
      '      secretArn: whsec_abc',
    ].join('\n')
    expect(problemsOf(text)).toEqual([
      'fleet.yaml:6:13 notifications.channels.ops.from: an email address',
      'fleet.yaml:11:18 notifications.channels.hook.secretArn: a Secrets Manager secret ARN',
    ])
  })

  it('reports channels that are named but not defined', () => {
    const text = [
      'version: 1',
      'notifications:',
      '  channels: { ops: { type: email, from: a@example.org, to: [b@example.org] } }',
      '  default: [ops, pager]',
      '  digest: [daily]',
      'policies: { baseline: false }',
    ].join('\n')
    expect(problemsOf(text)).toEqual([
      "fleet.yaml:4:18 notifications.default[1]: no channel 'pager' (channels: ops)",
      "fleet.yaml:5:12 notifications.digest[0]: no channel 'daily' (channels: ops)",
    ])
  })

  it('refuses a reserved concurrency below the two pollers of an SQS event source', () => {
    expect(
      problemsOf('version: 1\nfunctions:\n  reservedConcurrency: { ingest-reports: 1, send-digest: 1 }\n'),
    ).toEqual([
      'fleet.yaml:3:42 functions.reservedConcurrency.ingest-reports: ingest-reports consumes an SQS queue: reserve 2 or more, or none',
    ])
  })

  it('refuses a quiet-write interval the agents could not cover, and an unknown metrics choice', () => {
    expect(problemsOf('version: 1\nfleet:\n  quietWriteEvery: 7h\n  metrics: some\n')).toEqual([
      expect.stringMatching(/^fleet\.yaml:3:20 fleet\.quietWriteEvery: at most 6h/),
      expect.stringMatching(/^fleet\.yaml:4:12 fleet\.metrics: /),
    ])
  })

  it('reports a YAML syntax error with its line', () => {
    expect(problemsOf('version: 1\nfleet:\n  shards: [1, 2\n')).toEqual([
      expect.stringMatching(/^fleet\.yaml:\d+:\d+: YAML: /),
    ])
  })

  it('reports policy paths that do not exist, unknown disabled names, and errors inside policy files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ansai-fleet-config-'))
    mkdirSync(join(dir, 'packs'))
    writeFileSync(
      join(dir, 'packs', 'bad.yaml'),
      [
        'apiVersion: ansai/v1', // 1
        'kind: Policy', // 2
        'metadata: { name: bad-one }', // 3
        'spec:', // 4
        '  observe: filesystem', // 5
        '  severity:', // 6
        '    warning: { when: "usedPercent >= " }', // 7
        '  notify: [nobody]', // 8
      ].join('\n'),
    )
    const text = [
      'version: 1', // 1
      'policies:', // 2
      '  baseline: false', // 3
      '  paths: [packs/bad.yaml, packs/missing.yaml]', // 4
      '  disable: [no-such-policy]', // 5
    ].join('\n')
    const problems = problemsOf(text, dir)
    expect(problems).toContainEqual(
      expect.stringMatching(/^fleet\.yaml:4:27 policies\.paths\[1\]: .*packs\/missing\.yaml: cannot read \(ENOENT\)/),
    )
    expect(problems).toContainEqual(expect.stringMatching(/packs\/bad\.yaml:7:\d+ spec\.severity\.warning\.when: /))
    expect(problems).toContainEqual("fleet.yaml:5:13 policies.disable[0]: no loaded policy is named 'no-such-policy'")
  })

  it('reports a policy that notifies a channel the fleet config does not define, in the policy file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ansai-fleet-config-'))
    writeFileSync(
      join(dir, 'p.yaml'),
      [
        'apiVersion: ansai/v1',
        'kind: Policy',
        'metadata: { name: p }',
        'spec:',
        '  observe: filesystem',
        '  severity:',
        '    warning: { when: "usedPercent >= 80.0" }',
        '  notify: [nobody]',
      ].join('\n'),
    )
    expect(problemsOf('version: 1\npolicies: { baseline: false, paths: [p.yaml] }\n', dir)).toEqual([
      expect.stringMatching(
        /p\.yaml:8:12 spec\.notify\[0\]: policy 'p' names channel 'nobody', which the fleet config does not define/,
      ),
    ])
  })

  it('says which file it could not read', () => {
    expect(() => loadFleetConfig('infra/no-such-fleet.yaml')).toThrow(
      /infra\/no-such-fleet\.yaml: cannot read the fleet config \(ENOENT\); give one with -c config=<file>/,
    )
  })
})
