/**
 * agent/cli/ssm-env.ts: what `ansai-agent remediate <type>` reads when an ANSAI-* document runs it. With
 * interpolationType ENV_VAR the SSM Agent sets SSM_<parameter> for every document parameter (the optional ones
 * empty); they become ANSAI_PARAMS, ANSAI_KEY and ANSAI_DRY_RUN, decoded by the same module that encoded them.
 */
import { describe, expect, it } from 'vitest'
import { ansaiEnvFromSsm } from '../../agent/cli/ssm-env.ts'
import { findRemediation } from '../../shared/registry/remediations/index.ts'
import { encodeSsmParameters, ssmDocumentFor } from '../../shared/registry/ssm.ts'

/** The environment the SSM Agent gives the script: every document parameter, '' where none was sent. */
const ssmEnv = (type: string, sent: Record<string, string>): Record<string, string> => {
  const def = findRemediation(type)!
  const env: Record<string, string> = { PATH: '/usr/bin', AWS_SSM_INSTANCE_ID: 'i-0123456789abcdef0' }
  for (const name of Object.keys(ssmDocumentFor(def).content.parameters)) env[`SSM_${name}`] = sent[name] ?? ''
  return env
}

describe('ansaiEnvFromSsm', () => {
  it('turns the SSM_* variables of the document into ANSAI_PARAMS, ANSAI_KEY and ANSAI_DRY_RUN', () => {
    const env = ssmEnv('service-restart', {
      unit: 'nginx.service',
      waitActiveSeconds: '60',
      respectRestartPolicy: 'false',
      ansaiKey: 'r-0123456789abcdef',
      ansaiDryRun: 'true',
    })
    expect(ansaiEnvFromSsm(env, 'service-restart')).toEqual({
      ANSAI_PARAMS: JSON.stringify({ unit: 'nginx.service', waitActiveSeconds: 60, respectRestartPolicy: false }),
      ANSAI_KEY: 'r-0123456789abcdef',
      ANSAI_DRY_RUN: 'true',
    })
  })

  it('leaves out empty parameters, so the params schema defaults apply', () => {
    const out = ansaiEnvFromSsm(ssmEnv('service-restart', { unit: 'nginx.service' }), 'service-restart')
    expect(out).toEqual({ ANSAI_PARAMS: JSON.stringify({ unit: 'nginx.service' }) })
    const def = findRemediation('service-restart')!
    expect(def.params.parse(JSON.parse(out.ANSAI_PARAMS!))).toEqual({
      unit: 'nginx.service',
      waitActiveSeconds: 30,
      respectRestartPolicy: true,
    })
  })

  it('decodes arrays from JSON and keeps strings as strings', () => {
    const def = findRemediation('disk-cleanup')!
    const params = { roots: ['/var/log', '/tmp'], logsOlderThan: '30d', packageCache: true, maxFiles: 1000 }
    const out = ansaiEnvFromSsm(ssmEnv('disk-cleanup', encodeSsmParameters(def, params)), 'disk-cleanup')
    expect(JSON.parse(out.ANSAI_PARAMS!)).toEqual(params)
    const cert = ansaiEnvFromSsm(ssmEnv('certificate-renew', { certName: '2026' }), 'certificate-renew')
    expect(JSON.parse(cert.ANSAI_PARAMS!)).toEqual({ certName: '2026' })
  })

  it('reads only the parameters of the remediation it runs', () => {
    const env = { ...ssmEnv('service-restart', { unit: 'nginx.service' }), SSM_roots: '["/"]', SSM_other: 'x' }
    expect(JSON.parse(ansaiEnvFromSsm(env, 'service-restart').ANSAI_PARAMS!)).toEqual({ unit: 'nginx.service' })
  })

  it('returns nothing when not run by an ANSAI document (or by an SSM Agent without ENV_VAR support)', () => {
    expect(ansaiEnvFromSsm({ PATH: '/usr/bin', ANSAI_PARAMS: '{"unit":"a.service"}' }, 'service-restart')).toEqual({})
    expect(ansaiEnvFromSsm({ SSM_message: 'hello' }, 'notify-only')).toEqual({})
    expect(ansaiEnvFromSsm({ SSM_unit: 'a.service' }, 'no-such-thing')).toEqual({})
  })

  it('hands a refused value to the params schema unchanged, which refuses it', () => {
    const out = ansaiEnvFromSsm(ssmEnv('service-restart', { unit: 'x', waitActiveSeconds: 'soon' }), 'service-restart')
    const def = findRemediation('service-restart')!
    expect(JSON.parse(out.ANSAI_PARAMS!)).toEqual({ unit: 'x', waitActiveSeconds: 'soon' })
    expect(def.params.safeParse(JSON.parse(out.ANSAI_PARAMS!)).success).toBe(false)
  })
})
