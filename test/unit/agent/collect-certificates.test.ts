import { X509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { collectCertificates, endpointSource } from '../../../agent/collect/certificates.ts'
import { CertificateObservationSchema } from '../../../shared/contracts/index.ts'
import { collectFixture, fakeContext } from '../../fixtures/collect/fakes.ts'

/** Generated with openssl 3.0 for these tests: CN app.example.test, SANs app/www.example.test and 127.0.0.1. */
const PEM = collectFixture('cert-example.pem')
const CERT = new X509Certificate(PEM)
const EXPECTED = {
  kind: 'certificate',
  subject: 'O=ANSAI test, CN=app.example.test',
  sans: ['app.example.test', 'www.example.test', '127.0.0.1'],
  issuer: 'O=ANSAI test, CN=app.example.test',
  notBefore: '2026-11-23T01:35:18.000Z',
  notAfter: '2027-11-23T01:35:18.000Z',
  fingerprint: 'E3:4C:A9:FE:78:85:DC:4F:91:75:8A:03:A1:E8:EA:CF:D2:EF:97:5B:F0:80:82:F9:C4:A1:DC:05:17:0A:07:79',
}
const defaults = { files: [] as string[], endpoints: [], timeoutMs: 3000 }

describe('collectCertificates: files', () => {
  it('reads the first certificate of every file a glob matches (a chain with its key is fine)', async () => {
    const ctx = fakeContext({
      tree: {
        files: {
          '/etc/letsencrypt/live/a.example/cert.pem': PEM,
          '/etc/letsencrypt/live/b.example/cert.pem': `-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n${PEM}${PEM}`,
          '/etc/letsencrypt/live/README': 'not a directory',
        },
      },
    })
    const out = await collectCertificates({ ...defaults, files: ['/etc/letsencrypt/live/*/cert.pem'] }, ctx)
    expect(out.errors).toEqual([])
    expect(out.observations).toEqual([
      { ...EXPECTED, source: '/etc/letsencrypt/live/a.example/cert.pem', sourceType: 'file' },
      { ...EXPECTED, source: '/etc/letsencrypt/live/b.example/cert.pem', sourceType: 'file' },
    ])
    for (const o of out.observations) CertificateObservationSchema.parse(o)
  })

  it('the default glob matching nothing is not an error; a named file that is missing is', async () => {
    const ctx = fakeContext()
    expect(await collectCertificates({ ...defaults, files: ['/etc/letsencrypt/live/*/cert.pem'] }, ctx)).toEqual({
      observations: [],
      errors: [],
    })
    expect((await collectCertificates({ ...defaults, files: ['/etc/nginx/site.pem'] }, ctx)).errors).toEqual([
      { probe: 'certificate', reason: '/etc/nginx/site.pem: does not exist (ENOENT)' },
    ])
  })

  it('permission denied (file or directory) and a file that is not a certificate: one ProbeError each', async () => {
    const ctx = fakeContext({
      tree: {
        files: { '/etc/tls/a.pem': { error: 'EACCES' }, '/etc/tls/b.pem': 'hello', '/etc/tls/c.pem': PEM },
        dirs: { '/etc/letsencrypt/live': { error: 'EACCES' } },
      },
    })
    const out = await collectCertificates(
      { ...defaults, files: ['/etc/tls/*.pem', '/etc/letsencrypt/live/*/cert.pem', '/etc/tls/c.pem'] },
      ctx,
    )
    expect(out.observations).toHaveLength(1) // c.pem once, although two patterns name it
    expect(out.errors).toEqual([
      { probe: 'certificate', reason: '/etc/tls/a.pem: permission denied (EACCES)' },
      { probe: 'certificate', reason: '/etc/tls/b.pem: no PEM certificate block' },
      { probe: 'certificate', reason: '/etc/letsencrypt/live: permission denied (EACCES)' },
    ])
  })
})

describe('collectCertificates: endpoints', () => {
  it('reads the served certificate; the source names host:port, and the SNI name when it differs', async () => {
    const asked: unknown[] = []
    const ctx = fakeContext({
      peerCertificate: async (target, timeoutMs) => {
        asked.push({ ...target, timeoutMs })
        return CERT
      },
    })
    const out = await collectCertificates(
      {
        ...defaults,
        endpoints: [
          { host: 'app.example.test', port: 443 },
          { host: '127.0.0.1', port: 8443, servername: 'app.example.test' },
          { host: '::1', port: 443 },
        ],
      },
      ctx,
    )
    expect(out.errors).toEqual([])
    expect(out.observations.map((o) => (o.kind === 'certificate' ? [o.source, o.sourceType] : []))).toEqual([
      ['app.example.test:443', 'endpoint'],
      ['app.example.test@127.0.0.1:8443', 'endpoint'],
      ['[::1]:443', 'endpoint'],
    ])
    expect(out.observations[0]).toMatchObject({ notAfter: EXPECTED.notAfter, fingerprint: EXPECTED.fingerprint })
    expect(asked).toContainEqual({ host: '127.0.0.1', port: 8443, servername: 'app.example.test', timeoutMs: 3000 })
  })

  it('refused, reset or silent endpoints are ProbeErrors, the others still observed', async () => {
    const ctx = fakeContext({
      peerCertificate: async (target) => {
        if (target.port === 1)
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
        if (target.port === 2) return new Promise(() => {}) // never answers: the backstop timeout ends it
        return CERT
      },
    })
    const out = await collectCertificates(
      {
        ...defaults,
        timeoutMs: 100,
        endpoints: [
          { host: '127.0.0.1', port: 1 },
          { host: '127.0.0.1', port: 2 },
          { host: '127.0.0.1', port: 3 },
        ],
      },
      ctx,
    )
    expect(out.observations).toHaveLength(1)
    expect(out.errors).toEqual([
      { probe: 'certificate', reason: '127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1' },
      { probe: 'certificate', reason: '127.0.0.1:2: TLS handshake timed out after 600 ms' },
    ])
  })

  it('endpointSource', () => {
    expect(endpointSource({ host: 'a.example', port: 443, servername: 'a.example' })).toBe('a.example:443')
    expect(endpointSource({ host: '10.0.0.1', port: 443 })).toBe('10.0.0.1:443')
  })
})
