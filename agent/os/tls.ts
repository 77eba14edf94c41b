import type { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import { connect, type TLSSocket } from 'node:tls'

/**
 * Reads the certificate a TLS endpoint serves: connect, handshake with SNI, take the peer's leaf certificate, close.
 *
 * The chain is NOT verified (`rejectUnauthorized: false`): the callers want to know WHICH certificate is served
 * (its fingerprint, its dates), also when it is expired, self-signed or issued by a private CA, which is exactly when
 * they need to know. Nothing is sent over the connection, so skipping verification exposes nothing.
 *
 * Never throws: a refused connection, a timeout, a failed handshake or a server without a certificate is a
 * `{ ok: false }` result with the reason.
 */

export interface ServedCertificateRequest {
  /** The address to connect to: a DNS name or an IP address (IPv6 without brackets). */
  host: string
  port: number
  /**
   * The SNI server name. Default: `host` when it is a DNS name; no SNI for an IP address (RFC 6066 allows none),
   * unless given here.
   */
  servername?: string
  /** Whole attempt (connect and handshake); default 5 s. */
  timeoutMs?: number
}

export type ServedCertificate =
  | { ok: true; certificate: X509Certificate; servername: string | undefined; protocol: string | null }
  | { ok: false; error: string; servername: string | undefined }

export const DEFAULT_TLS_TIMEOUT_MS = 5_000

/** `example.org:443` → `{ host: 'example.org', port: 443 }`; `[2001:db8::1]:443` → host `2001:db8::1`. */
export function splitHostPort(endpoint: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(endpoint)
  if (!m) return undefined
  const port = Number(m[3])
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return undefined
  return { host: (m[1] ?? m[2]) as string, port }
}

export function fetchServedCertificate(req: ServedCertificateRequest): Promise<ServedCertificate> {
  const servername = req.servername ?? (isIP(req.host) === 0 ? req.host : undefined)
  const timeoutMs = req.timeoutMs ?? DEFAULT_TLS_TIMEOUT_MS
  return new Promise<ServedCertificate>((resolve) => {
    let settled = false
    let socket: TLSSocket | undefined
    const finish = (outcome: ServedCertificate): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket?.destroy()
      resolve(outcome)
    }
    const timer = setTimeout(
      () => finish({ ok: false, error: `no TLS handshake within ${timeoutMs} ms`, servername }),
      timeoutMs,
    )
    try {
      socket = connect({
        host: req.host,
        port: req.port,
        ...(servername === undefined ? {} : { servername }),
        rejectUnauthorized: false,
      })
    } catch (err) {
      finish({ ok: false, error: `cannot connect: ${(err as Error)?.message ?? String(err)}`, servername })
      return
    }
    socket.once('secureConnect', () => {
      const certificate = socket?.getPeerX509Certificate()
      if (!certificate) finish({ ok: false, error: 'the server sent no certificate', servername })
      else finish({ ok: true, certificate, servername, protocol: socket?.getProtocol() ?? null })
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      finish({ ok: false, error: err.code ? `${err.code}: ${err.message}` : err.message, servername })
    })
    socket.once('close', () => finish({ ok: false, error: 'connection closed before the handshake', servername }))
  })
}
