import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCommand } from '../../../agent/os/exec.ts'
import { parsePemCertificate, splitSubjectAltName } from '../../../agent/probes/certificate.ts'
import { CertificateObservationSchema } from '../../../shared/contracts/index.ts'
import { assertNeverThrows, expectFailure, expectOk } from './os-fixtures.ts'

const DAY_MS = 86_400_000
const dir = mkdtempSync(join(tmpdir(), 'ansai-cert-'))
const path = (name: string): string => join(dir, name)

async function openssl(...args: string[]): Promise<string> {
  const r = await runCommand('openssl', args, { timeoutMs: 20_000, cwd: dir })
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`)
  return r.stdout
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

/** The fingerprint as openssl computes it, to check node's against an independent tool. */
const opensslFingerprint = async (file: string): Promise<string> =>
  (await openssl('x509', '-in', file, '-noout', '-fingerprint', '-sha256')).trim().replace(/^.*Fingerprint=/i, '')

beforeAll(async () => {
  // A leaf valid for 5 days.
  await openssl(
    'req',
    '-x509',
    ...EC,
    '-keyout',
    path('leaf.key'),
    '-out',
    path('leaf.pem'),
    '-days',
    '5',
    '-subj',
    '/C=DE/O=Acme, Inc./CN=a.example',
    '-addext',
    'subjectAltName=DNS:a.example,DNS:www.a.example,IP:127.0.0.1,email:ops@a.example',
  )
  // A CA, and an expired leaf it signed with explicit dates (`openssl ca -startdate/-enddate`: OpenSSL 3.0 has no
  // `req -not_before/-not_after` yet, and `-days` refuses non-positive values).
  await openssl(
    'req',
    '-x509',
    ...EC,
    '-keyout',
    path('ca.key'),
    '-out',
    path('ca.pem'),
    '-days',
    '30',
    '-subj',
    '/CN=ANSAI Test CA',
  )
  await openssl(
    'req',
    '-new',
    ...EC,
    '-keyout',
    path('old.key'),
    '-out',
    path('old.csr'),
    '-subj',
    '/CN=old.example',
    '-addext',
    'subjectAltName=DNS:old.example',
  )
  writeFileSync(path('index.txt'), '')
  writeFileSync(path('serial'), '1000\n')
  writeFileSync(
    path('ca.cnf'),
    [
      '[ ca ]',
      'default_ca = test_ca',
      '[ test_ca ]',
      `database = ${path('index.txt')}`,
      `serial = ${path('serial')}`,
      `new_certs_dir = ${dir}`,
      'default_md = sha256',
      'policy = any_name',
      'copy_extensions = copy',
      'unique_subject = no',
      '[ any_name ]',
      'commonName = supplied',
      '',
    ].join('\n'),
  )
  await openssl(
    'ca',
    '-batch',
    '-config',
    path('ca.cnf'),
    '-cert',
    path('ca.pem'),
    '-keyfile',
    path('ca.key'),
    '-in',
    path('old.csr'),
    '-out',
    path('old.pem'),
    '-notext',
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200201000000Z',
  )
  // A chain file as certbot writes it (leaf first), preceded by the leaf's key as in a combined PEM.
  writeFileSync(
    path('combined.pem'),
    readFileSync(path('old.key'), 'utf8') +
      readFileSync(path('old.pem'), 'utf8') +
      readFileSync(path('ca.pem'), 'utf8'),
  )
}, 60_000)

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('parsePemCertificate', () => {
  it('reads a leaf valid for 5 days', async () => {
    const obs = expectOk(
      parsePemCertificate(readFileSync(path('leaf.pem'), 'utf8'), { source: path('leaf.pem'), sourceType: 'file' }),
    )
    expect(CertificateObservationSchema.parse(obs)).toEqual(obs)
    expect(obs).toMatchObject({
      kind: 'certificate',
      source: path('leaf.pem'),
      sourceType: 'file',
      subject: 'C=DE, O=Acme\\, Inc., CN=a.example',
      issuer: 'C=DE, O=Acme\\, Inc., CN=a.example',
      sans: ['a.example', 'www.a.example', '127.0.0.1', 'email:ops@a.example'],
    })
    const lifetime = Date.parse(obs.notAfter) - Date.parse(obs.notBefore!)
    expect(lifetime).toBe(5 * DAY_MS)
    expect(Math.abs(Date.parse(obs.notBefore!) - Date.now())).toBeLessThan(DAY_MS)
    expect(obs.fingerprint).toBe(await opensslFingerprint(path('leaf.pem')))
  })

  it('reads an expired certificate with exact dates', async () => {
    const obs = expectOk(
      parsePemCertificate(readFileSync(path('old.pem'), 'utf8'), { source: 'old.pem', sourceType: 'file' }),
    )
    CertificateObservationSchema.parse(obs)
    expect(obs).toMatchObject({
      subject: 'CN=old.example',
      issuer: 'CN=ANSAI Test CA',
      sans: ['old.example'],
      notBefore: '2020-01-01T00:00:00.000Z',
      notAfter: '2020-02-01T00:00:00.000Z',
    })
    expect(obs.fingerprint).toBe(await opensslFingerprint(path('old.pem')))
  })

  it('takes the first certificate of a chain (the leaf), skipping a key before it', () => {
    const obs = expectOk(
      parsePemCertificate(readFileSync(path('combined.pem'), 'utf8'), {
        source: 'example.com:443',
        sourceType: 'endpoint',
      }),
    )
    expect(obs).toMatchObject({ subject: 'CN=old.example', sourceType: 'endpoint', source: 'example.com:443' })
  })

  it('fails without a certificate, or with a broken one', () => {
    const from = { source: '/etc/ssl/x.pem', sourceType: 'file' } as const
    expectFailure(parsePemCertificate('', from), /\/etc\/ssl\/x.pem: no PEM certificate block/)
    expectFailure(parsePemCertificate(readFileSync(path('leaf.key'), 'utf8'), from), /no PEM certificate block/)
    expectFailure(
      parsePemCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', from),
      /does not decode/,
    )
  })

  it('splits subjectAltName, including quoted values', () => {
    expect(splitSubjectAltName(undefined)).toEqual([])
    expect(splitSubjectAltName('DNS:a.example, IP Address:0:0:0:0:0:0:0:1, URI:https://a.example/x')).toEqual([
      'a.example',
      '0:0:0:0:0:0:0:1',
      'URI:https://a.example/x',
    ])
    expect(splitSubjectAltName('DNS:"odd, name", DNS:b.example')).toEqual(['odd, name', 'b.example'])
  })

  it('never throws on arbitrary text', () => {
    const from = { source: 'x', sourceType: 'file' } as const
    assertNeverThrows(
      (t) => parsePemCertificate(t, from),
      ['-----BEGIN CERTIFICATE-----', '-----END CERTIFICATE-----', 'MIIB', '\n'],
      (o) => CertificateObservationSchema.parse(o),
    )
  })
})
