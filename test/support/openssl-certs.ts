/**
 * Real X.509 certificates for tests, made with the `openssl` CLI (spawned with argv arrays, never a shell) in a
 * directory the caller owns: a throwaway CA, and leaf certificates it signs (EC P-256 keys, the name as CN and as a
 * DNS subjectAltName, serverAuth).
 *
 * - A certificate valid for N more days: `openssl x509 -req -days N` (N ≥ 1).
 * - Any other validity, in the past included: OpenSSL 3.0 (Debian 12) has no `-not_before/-not_after` (3.4+) and
 *   refuses a negative `-days`, so {@link issueCertificate} with `notBefore`/`notAfter` signs with `openssl ca
 *   -startdate -enddate`, with a minimal CA configuration (index, serial, policy) written next to the CA.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface TestCa {
  dir: string
  cert: string
  key: string
  config: string
}

export interface IssuedCertificate {
  /** The DNS name (CN and subjectAltName). */
  name: string
  /** PEM file of the leaf certificate alone. */
  cert: string
  /** PEM file of its private key. */
  key: string
  certPem: string
  keyPem: string
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

export function openssl(args: readonly string[], cwd: string): string {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 30_000 })
  if (r.status !== 0)
    throw new Error(`openssl ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.error}`)
  return r.stdout
}

/** A CA certificate (valid `days`, default 400) and key in `dir`, with what `openssl ca` needs beside them. */
export function makeTestCa(dir: string, days = 400): TestCa {
  mkdirSync(join(dir, 'issued'), { recursive: true })
  openssl(
    [
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      String(days),
      '-subj',
      '/CN=ANSAI test CA',
    ],
    dir,
  )
  writeFileSync(join(dir, 'index.txt'), '')
  writeFileSync(join(dir, 'serial'), '1000\n')
  const config = join(dir, 'ca.cnf')
  writeFileSync(
    config,
    [
      '[ ca ]',
      'default_ca = test_ca',
      '[ test_ca ]',
      `database = ${join(dir, 'index.txt')}`,
      `new_certs_dir = ${join(dir, 'issued')}`,
      `certificate = ${join(dir, 'ca.pem')}`,
      `private_key = ${join(dir, 'ca.key')}`,
      `serial = ${join(dir, 'serial')}`,
      'default_md = sha256',
      'policy = policy_any',
      'unique_subject = no',
      '[ policy_any ]',
      'commonName = supplied',
      '',
    ].join('\n'),
  )
  return { dir, cert: join(dir, 'ca.pem'), key: join(dir, 'ca.key'), config }
}

/** `YYYYMMDDHHMMSSZ` (ASN.1 GeneralizedTime), what `openssl ca -startdate/-enddate` takes. */
const generalizedTime = (d: Date): string => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`

export type Validity = { days: number } | { notBefore: Date; notAfter: Date }

/** A leaf certificate for `name` signed by `ca`, written to `<outDir>/<name>.pem` and `<outDir>/<name>.key`. */
export function issueCertificate(ca: TestCa, name: string, validity: Validity, outDir: string): IssuedCertificate {
  const cert = join(outDir, `${name}.pem`)
  const key = join(outDir, `${name}.key`)
  const csr = join(ca.dir, `${name}.csr`)
  const ext = join(ca.dir, `${name}.ext`)
  writeFileSync(
    ext,
    `subjectAltName=DNS:${name}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`,
  )
  openssl(['req', '-new', ...EC_KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], ca.dir)
  if ('days' in validity) {
    if (!Number.isInteger(validity.days) || validity.days < 1) throw new RangeError('days: a whole number ≥ 1')
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        ca.cert,
        '-CAkey',
        ca.key,
        '-CAserial',
        join(ca.dir, 'serial'),
        '-days',
        String(validity.days),
        '-extfile',
        ext,
        '-out',
        cert,
      ],
      ca.dir,
    )
  } else {
    openssl(
      [
        'ca',
        '-batch',
        '-config',
        ca.config,
        '-notext',
        '-in',
        csr,
        '-out',
        cert,
        '-startdate',
        generalizedTime(validity.notBefore),
        '-enddate',
        generalizedTime(validity.notAfter),
        '-extfile',
        ext,
      ],
      ca.dir,
    )
  }
  return { name, cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') }
}

/** The certificate's notAfter as openssl reads it (`openssl x509 -noout -enddate`), as a Date. */
export function notAfterOf(certFile: string, cwd: string): Date {
  const out = openssl(['x509', '-in', certFile, '-noout', '-enddate'], cwd).trim()
  const m = /^notAfter=(.+)$/.exec(out)
  if (!m) throw new Error(`unexpected openssl output: ${out}`)
  return new Date(m[1]!)
}
