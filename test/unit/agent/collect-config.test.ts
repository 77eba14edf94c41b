import { describe, expect, it } from 'vitest'
import {
  DEFAULT_CERTIFICATE_FILES,
  defaultProbesConfig,
  ProbesConfigSchema,
  parseProbesConfig,
} from '../../../agent/config/probes.ts'

const errorsOf = (input: unknown): string[] => {
  const parsed = parseProbesConfig(input, 'agent.yaml')
  if (parsed.ok) expect.fail('expected errors')
  return parsed.errors
}

describe('ProbesConfigSchema', () => {
  it('an empty config works on any host: every default', () => {
    expect(defaultProbesConfig()).toEqual({
      services: { units: [], failedAny: true },
      filesystems: { enabled: true, exclude: [], includeTmpfs: false },
      memory: { enabled: true },
      processMemory: {},
      certificates: { files: [...DEFAULT_CERTIFICATE_FILES], endpoints: [], timeoutMs: 3000 },
      databases: [],
      backups: [],
      cron: { enabled: true, markerDir: '/var/lib/ansai/cron', expect: [] },
      dns: { names: [], timeoutMs: 2000 },
      packages: { enabled: true, every: '6h', timeoutSeconds: 300 },
      containers: { enabled: 'auto' },
      custom: { enabled: true, dir: '/var/lib/ansai/metrics' },
    })
    for (const empty of [undefined, null, {}]) {
      const parsed = parseProbesConfig(empty, 'agent.yaml')
      expect(parsed.ok && parsed.config).toEqual(defaultProbesConfig())
    }
  })

  it('normalizes unit names without a type to .service, keeps globs and other types', () => {
    const config = ProbesConfigSchema.parse({
      services: { units: ['nginx', 'app-*', 'app-*.service', 'docker.socket', 'getty@tty1.service'] },
      processMemory: { units: ['worker'] },
    })
    expect(config.services.units).toEqual([
      'nginx.service',
      'app-*.service',
      'app-*.service',
      'docker.socket',
      'getty@tty1.service',
    ])
    expect(config.processMemory.units).toEqual(['worker.service'])
  })

  it('takes endpoints as host:port text or objects, IPv6 in brackets', () => {
    const config = ProbesConfigSchema.parse({
      certificates: {
        endpoints: ['example.com:443', '[::1]:8443', { host: '127.0.0.1', port: 9443, servername: 'api.example.com' }],
      },
    })
    expect(config.certificates.endpoints).toEqual([
      { host: 'example.com', port: 443 },
      { host: '::1', port: 8443 },
      { host: '127.0.0.1', port: 9443, servername: 'api.example.com' },
    ])
  })

  it('fills backup job defaults', () => {
    const config = ProbesConfigSchema.parse({ backups: [{ job: 'nightly', dir: '/var/backups/app' }] })
    expect(config.backups).toEqual([
      {
        job: 'nightly',
        dir: '/var/backups/app',
        pattern: '*',
        integrity: 'auto',
        integrityTimeoutSeconds: 120,
        settleSeconds: 60,
      },
    ])
  })

  it('documents every field', () => {
    const undocumented: string[] = []
    type Node = { description?: string; def?: { type?: string; innerType?: unknown } }
    const documented = (schema: unknown): boolean => {
      const s = schema as Node
      if (s.description) return true
      const t = s.def?.type
      return (t === 'default' || t === 'prefault' || t === 'optional') && documented(s.def?.innerType)
    }
    const walk = (schema: unknown, path: string): void => {
      const s = schema as { description?: string; def?: Record<string, unknown>; shape?: Record<string, unknown> }
      const def = s.def as { type?: string; innerType?: unknown; element?: unknown; shape?: Record<string, unknown> }
      if (def?.type === 'default' || def?.type === 'prefault' || def?.type === 'optional') {
        walk(def.innerType, path)
        return
      }
      if (def?.type === 'object') {
        for (const [key, child] of Object.entries(def.shape ?? {})) {
          if (!documented(child)) undocumented.push(`${path}.${key}`)
          walk(child, `${path}.${key}`)
        }
      }
      if (def?.type === 'array') walk(def.element, `${path}[]`)
    }
    walk(ProbesConfigSchema, 'probes')
    expect(undocumented).toEqual([])
  })
})

describe('parseProbesConfig errors name the source and the path', () => {
  it('unknown keys (strict)', () => {
    expect(errorsOf({ services: { unit: ['nginx'] } })).toEqual([
      expect.stringMatching(/^agent\.yaml: probes\.services: Unrecognized key.*"unit"/),
    ])
    expect(errorsOf({ disks: {} })[0]).toMatch(/^agent\.yaml: probes: Unrecognized key.*"disks"/)
  })

  it('bad values, each with its path', () => {
    const errors = errorsOf({
      services: { units: ['nginx service'] },
      filesystems: { include: ['var'] },
      certificates: { files: ['/etc/**/cert.pem', 'relative.pem'], endpoints: ['example.com'] },
      backups: [
        { job: 'nightly', dir: 'backups' },
        { job: 'nightly', dir: '/b', pattern: 'a/b', integrity: 'zip' },
      ],
      packages: { every: '30s' },
      containers: { enabled: 'yes' },
      dns: { names: ['bad name'] },
    })
    const text = errors.join('\n')
    expect(text).toMatch(/probes\.services\.units\[0\]: a unit name or glob/)
    expect(text).toMatch(/probes\.filesystems\.include\[0\]: a mount point or glob/)
    expect(text).toMatch(/probes\.certificates\.files\[0\]: \*\* is not supported/)
    expect(text).toMatch(/probes\.certificates\.files\[1\]: an absolute path/)
    expect(text).toMatch(/probes\.certificates\.endpoints\[0\]: .*an endpoint host:port/)
    expect(text).toMatch(/probes\.backups\[0\]\.dir: an absolute directory path/)
    expect(text).toMatch(/probes\.backups\[1\]\.pattern: a file name glob, without \//)
    expect(text).toMatch(/probes\.backups\[1\]\.integrity: /)
    expect(text).toMatch(/probes\.packages\.every: at least 1m/)
    expect(text).toMatch(/probes\.containers\.enabled: /)
    expect(text).toMatch(/probes\.dns\.names\[0\]: a DNS name or an IP address/)
    for (const e of errors) expect(e.startsWith('agent.yaml: probes')).toBe(true)
  })

  it('a job listed twice', () => {
    const errors = errorsOf({
      backups: [
        { job: 'nightly', dir: '/a' },
        { job: 'nightly', dir: '/b' },
      ],
    })
    expect(errors).toEqual(['agent.yaml: probes.backups[1].job: job nightly is listed twice'])
  })
})
