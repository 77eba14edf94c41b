import { X509Certificate } from 'node:crypto'
import type { ObservationOf } from '../../shared/contracts/index.ts'
import { failed, type ParseResult, parsed } from './parse-result.ts'

const PROBE = 'certificate'

export type CertificateObservation = ObservationOf<'certificate'>

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/

/** node prints a distinguished name one attribute per line (`C=DE\nO=Acme\, Inc.\nCN=a.example`); one line here. */
const formatName = (name: string | undefined): string =>
  (name ?? '')
    .split('\n')
    .filter((part) => part.length > 0)
    .join(', ')

/**
 * node's `subjectAltName`: `DNS:a.example, IP Address:127.0.0.1, email:x@y` where a value with special characters
 * is a JSON string (`DNS:"a, b"`). DNS names and IP addresses come back bare (`a.example`, `127.0.0.1`), so a
 * policy can ask `"a.example" in sans`; other kinds keep their prefix (`email:x@y`, `URI:https://…`).
 */
export function splitSubjectAltName(san: string | undefined): string[] {
  if (!san) return []
  const out: string[] = []
  let i = 0
  while (i < san.length) {
    while (san[i] === ' ' || san[i] === ',') i++
    if (i >= san.length) break
    const colon = san.indexOf(':', i)
    if (colon < 0) {
      out.push(san.slice(i).trim())
      break
    }
    const type = san.slice(i, colon)
    let value: string
    let next: number
    if (san[colon + 1] === '"') {
      // A JSON string: find its closing quote, skipping escaped characters.
      let j = colon + 2
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1
      const raw = san.slice(colon + 1, j + 1)
      try {
        value = JSON.parse(raw) as string
      } catch {
        value = raw
      }
      next = j + 1
    } else {
      const end = san.indexOf(', ', colon + 1)
      next = end < 0 ? san.length : end
      value = san.slice(colon + 1, next)
    }
    out.push(type === 'DNS' || type === 'IP Address' ? value : `${type}:${value}`)
    i = next
  }
  return out
}

export interface CertificateSource {
  /** A file path or `host:port`. */
  source: string
  sourceType: 'file' | 'endpoint'
}

/**
 * PEM text → CertificateObservation of its FIRST certificate (the leaf, in a chain file or a `fullchain.pem`).
 * Text before it (a private key, comments) is ignored. Fails, never throws, when there is no certificate block or
 * the block does not decode.
 */
export function parsePemCertificate(pem: string, from: CertificateSource): ParseResult<CertificateObservation> {
  if (typeof pem !== 'string') return failed(PROBE, 'PEM is not text')
  const block = PEM_CERTIFICATE.exec(pem)
  if (!block) return failed(PROBE, `${from.source}: no PEM certificate block`)
  let cert: X509Certificate
  try {
    cert = new X509Certificate(block[0])
  } catch (err) {
    return failed(PROBE, `${from.source}: certificate does not decode: ${(err as Error)?.message ?? String(err)}`)
  }
  try {
    return parsed(x509ToObservation(cert, from))
  } catch (err) {
    return failed(PROBE, `${from.source}: unusable certificate: ${(err as Error)?.message ?? String(err)}`)
  }
}

/**
 * Also used for a certificate read from a TLS endpoint (`tlsSocket.getPeerX509Certificate()`). Throws a RangeError
 * on a validity date JavaScript cannot represent; {@link parsePemCertificate} turns that into a failure.
 */
export function x509ToObservation(cert: X509Certificate, from: CertificateSource): CertificateObservation {
  return {
    kind: 'certificate',
    source: from.source,
    sourceType: from.sourceType,
    subject: formatName(cert.subject),
    sans: splitSubjectAltName(cert.subjectAltName),
    issuer: formatName(cert.issuer),
    notBefore: cert.validFromDate.toISOString(),
    notAfter: cert.validToDate.toISOString(),
    fingerprint: cert.fingerprint256.toUpperCase(),
  }
}
