import type { Host } from '../../shared/contracts/index.ts'

/** What the agent's config says about this host. */
export interface HostConfig {
  /** A stable id; default: the host name. In the fleet, the SSM managed-instance id (`i-…`, `mi-…`). */
  id?: string | undefined
  tags?: Record<string, string> | undefined
}

const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/

/** A host name as a host id (`letters, digits and . _ : -`, ≤ 128): other characters become `-`. */
export function hostIdFromHostname(hostname: string): string {
  const cleaned = hostname
    .trim()
    .replace(/[^A-Za-z0-9._:-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 128)
  return HOST_ID.test(cleaned) ? cleaned : 'localhost'
}

/** The report's `host`: `config.id ?? hostname`, the host name, the configured tags. */
export function hostIdentity(config: HostConfig | undefined, hostname: string): Host {
  const name = hostname.trim().slice(0, 255) || 'localhost'
  return {
    id: config?.id ?? hostIdFromHostname(name),
    hostname: name,
    tags: { ...(config?.tags ?? {}) },
  }
}
