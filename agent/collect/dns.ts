import { performance } from 'node:perf_hooks'
import type { ObservationOf } from '../../shared/contracts/index.ts'
import type { ProbesConfig } from '../config/probes.ts'
import { type CollectContext, emptyOutput, errnoOf, mapLimit, type ProbeOutput, withTimeout } from './context.ts'

type DnsObservation = ObservationOf<'dns'>

/** The system resolver (getaddrinfo: /etc/hosts, nsswitch, DNS), every address. */
export async function systemLookup(name: string): Promise<string[]> {
  const { lookup } = await import('node:dns/promises')
  const found = await lookup(name, { all: true, verbatim: true })
  return found.map((a) => a.address)
}

/**
 * DNS: each name through the system resolver, with a timeout. A name that does not resolve is an observation with
 * `resolved: false` and the resolver's error (ENOTFOUND, EAI_AGAIN, a timeout), not a ProbeError: that is what a
 * policy watches. (A getaddrinfo call cannot be cancelled: after a timeout it finishes in the background.)
 */
export async function collectDns(config: ProbesConfig['dns'], ctx: CollectContext): Promise<ProbeOutput> {
  const out = emptyOutput()
  const lookup = ctx.lookup ?? systemLookup
  out.observations = await mapLimit(config.names, 8, async (name): Promise<DnsObservation> => {
    const started = performance.now()
    const latency = (): number => Math.round((performance.now() - started) * 10) / 10
    try {
      const addresses = await withTimeout(lookup(name), config.timeoutMs, `lookup ${name}`)
      return {
        kind: 'dns',
        name,
        resolved: addresses.length > 0,
        addresses: [...new Set(addresses)],
        latencyMs: latency(),
      }
    } catch (err) {
      const code = errnoOf(err)
      const error =
        err instanceof Error && err.name === 'TimeoutError'
          ? `no answer within ${config.timeoutMs} ms`
          : (code ?? (err instanceof Error ? err.message : String(err)))
      return { kind: 'dns', name, resolved: false, addresses: [], latencyMs: latency(), error }
    }
  })
  return out
}
