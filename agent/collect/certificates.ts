import type { X509Certificate } from 'node:crypto'
import type { ProbesConfig } from '../config/probes.ts'
import {
  type CollectContext,
  describeError,
  emptyOutput,
  errnoOf,
  fsReason,
  mapLimit,
  type ProbeOutput,
  type TlsTarget,
  withTimeout,
} from './context.ts'
import { expandGlob } from './glob.ts'

const PROBE = 'certificate'

/** The parser (node:crypto X509Certificate), loaded only when there is a certificate to read. */
const parser = () => import('../probes/certificate.ts')

/**
 * node:net's isIP, loaded at the first call: only TLS endpoints need it, and node:net at the top of this module would
 * cost every collect (a certbot-only host included) ~1 MB and 2 ms at start.
 */
const isIP = (host: string): number => process.getBuiltinModule('node:net').isIP(host)

/** How an endpoint names itself in observations: `host:port` (`[::1]:443`), `servername@host:port` with SNI. */
export const endpointSource = (t: TlsTarget): string => {
  const hostPort = `${isIP(t.host) === 6 ? `[${t.host}]` : t.host}:${t.port}`
  return t.servername && t.servername !== t.host ? `${t.servername}@${hostPort}` : hostPort
}

/**
 * Connects with node:tls and returns the certificate the server presents. SNI is the configured servername, else
 * the host when it is a name (TLS does not send an IP address as SNI). `rejectUnauthorized: false`: this reads the
 * certificate, it does not judge trust; an expired or self-signed certificate is exactly what must be observed.
 */
export async function fetchPeerCertificate(target: TlsTarget, timeoutMs: number): Promise<X509Certificate> {
  const tls = await import('node:tls')
  const servername = target.servername ?? (isIP(target.host) ? undefined : target.host)
  return new Promise<X509Certificate>((resolve, reject) => {
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      ...(servername ? { servername } : {}),
      rejectUnauthorized: false,
    })
    let done = false
    const finish = (err: Error | undefined, cert?: X509Certificate): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.on('error', () => {}) // late errors of a socket being torn down
      socket.destroy()
      if (err) reject(err)
      else resolve(cert!)
    }
    const timer = setTimeout(() => finish(new Error(`no certificate within ${timeoutMs} ms`)), timeoutMs)
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate()
      finish(cert ? undefined : new Error('the server presented no certificate'), cert)
    })
    socket.once('error', (err) => finish(err))
    socket.once('close', () => finish(new Error('connection closed before the TLS handshake finished')))
  })
}

async function collectFiles(globs: readonly string[], ctx: CollectContext, out: ProbeOutput): Promise<void> {
  const seen = new Set<string>()
  for (const glob of globs) {
    const expanded = await expandGlob(glob, ctx.fs)
    out.errors.push(...expanded.problems.map((reason) => ({ probe: PROBE, reason })))
    for (const { path, literal } of expanded.matches) {
      if (seen.has(path)) continue
      seen.add(path)
      let pem: string
      try {
        pem = await ctx.fs.readFile(path)
      } catch (err) {
        const code = errnoOf(err)
        // A glob that matched a directory or a dangling link found nothing; a named file that is missing is news.
        if (!literal && (code === 'EISDIR' || code === 'ENOENT' || code === 'ENOTDIR')) continue
        out.errors.push({ probe: PROBE, reason: fsReason(path, err) })
        continue
      }
      const parsed = (await parser()).parsePemCertificate(pem, { source: path, sourceType: 'file' })
      if (parsed.ok) out.observations.push(parsed.value)
      else out.errors.push(parsed.error)
    }
  }
}

/**
 * Certificates: PEM files (paths or globs; the first certificate of each file) via node:crypto X509Certificate,
 * and TLS endpoints (with SNI, no trust check, `timeoutMs` each, up to 8 at a time) via node:tls. Each file or
 * endpoint that cannot be read is its own ProbeError.
 */
export async function collectCertificates(
  config: ProbesConfig['certificates'],
  ctx: CollectContext,
): Promise<ProbeOutput> {
  const out = emptyOutput()
  await collectFiles(config.files, ctx, out)
  const fetch = ctx.peerCertificate ?? fetchPeerCertificate
  const results = await mapLimit(config.endpoints, 8, async (target) => {
    const source = endpointSource(target)
    try {
      // the fetcher has its own timeout; this one is a backstop for an injected one that hangs
      const cert = await withTimeout(fetch(target, config.timeoutMs), config.timeoutMs + 500, 'TLS handshake')
      return { ok: true as const, obs: (await parser()).x509ToObservation(cert, { source, sourceType: 'endpoint' }) }
    } catch (err) {
      return { ok: false as const, reason: `${source}: ${describeError(err)}` }
    }
  })
  for (const r of results) {
    if (r.ok) out.observations.push(r.obs)
    else out.errors.push({ probe: PROBE, reason: r.reason })
  }
  return out
}
