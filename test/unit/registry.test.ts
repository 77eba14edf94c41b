import { describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { z } from 'zod'
import {
  GuardsSchema,
  LimitSchema,
  OBSERVATION_KINDS,
  type ObservationKind,
  ObservationSchema,
  type Policy,
  PolicySchema,
  RiskSchema,
} from '../../shared/contracts/index.ts'
import { formatPolicyError, loadPolicies } from '../../shared/policy/load.ts'
import { findProbe, PROBES, probeFor } from '../../shared/registry/probes/index.ts'
import { BackupRetryParamsSchema } from '../../shared/registry/remediations/backup-retry.ts'
import { CertificateRenewParamsSchema } from '../../shared/registry/remediations/certificate-renew.ts'
import { CustomScriptParamsSchema } from '../../shared/registry/remediations/custom-script.ts'
import {
  DB_OPERATIONS_BY_ENGINE,
  DbMaintenanceParamsSchema,
} from '../../shared/registry/remediations/db-maintenance.ts'
import {
  DISK_CLEANUP_CATEGORIES,
  DiskCleanupParamsSchema,
  selectedDiskCleanupCategories,
} from '../../shared/registry/remediations/disk-cleanup.ts'
import { findRemediation, REMEDIATIONS } from '../../shared/registry/remediations/index.ts'
import { MemoryReliefParamsSchema } from '../../shared/registry/remediations/memory-relief.ts'
import { NotifyOnlyParamsSchema } from '../../shared/registry/remediations/notify-only.ts'
import { ServiceRestartParamsSchema } from '../../shared/registry/remediations/service-restart.ts'
import type { ProbeDefinition, RemediationDefinition } from '../../shared/registry/types.ts'
import { SAMPLE_NOW, sampleObservations } from '../support/samples.ts'

// ---------------------------------------------------------------------------------------------------------------
// helpers

/** Parses a registry example: exactly one YAML document, no YAML errors, and a valid policy. */
const loadExample = (text: string): Policy => {
  const docs = parseAllDocuments(text)
  if (!Array.isArray(docs)) throw new Error('the example is an empty YAML stream')
  expect(docs).toHaveLength(1)
  const doc = docs[0]!
  expect(doc.errors.map((e) => e.message)).toEqual([])
  const parsed = PolicySchema.safeParse(doc.toJS())
  if (!parsed.success) throw new Error(`example is not a valid policy:\n${z.prettifyError(parsed.error)}`)
  return parsed.data
}

interface RunStep {
  run: string
  params: Record<string, unknown>
}

const runSteps = (policy: Policy): RunStep[] =>
  policy.spec.remediate.flatMap((step) => ('run' in step ? [{ run: step.run, params: step.params }] : []))

/** A step's params as the engine checks them: a param the remediation binds from the observation may be left out. */
const boundParams = (def: RemediationDefinition, observe: string, params: Record<string, unknown>) => {
  // As the engine does: the observed resource fills a param only when the params are incomplete without it.
  const binding = def.bind?.[observe as ObservationKind]
  if (!binding || binding.param in params || def.params.safeParse(params).success) return params
  return { ...params, [binding.param]: binding.placeholder }
}

/** The paths (dot-joined, '' for the object itself) of the issues a schema reports; [] when it accepts the input. */
const issuePaths = (schema: z.ZodType, input: unknown): string[] => {
  const result = schema.safeParse(input)
  return result.success ? [] : result.error.issues.map((i) => i.path.join('.'))
}

const refusedAt = (schema: z.ZodType, input: unknown, path: string): void => {
  expect(issuePaths(schema, input), JSON.stringify(input)).toContain(path)
}

const accepted = <S extends z.ZodType>(schema: S, input: unknown): z.output<S> => {
  const result = schema.safeParse(input)
  if (!result.success) throw new Error(`refused ${JSON.stringify(input)}:\n${z.prettifyError(result.error)}`)
  return result.data
}

const PROBE_LIST = PROBES.map((p) => [p.kind, p] as const)
const REMEDIATION_LIST = REMEDIATIONS.map((r) => [r.id, r] as const)

// ---------------------------------------------------------------------------------------------------------------
// the probe registry

/** What each probe must say about its sample (test/support/samples.ts) at SAMPLE_NOW. */
const EXPECTED_PROBE_OUTPUT: Record<string, { resource: string; derived: Record<string, unknown> }> = {
  service: { resource: 'nginx.service', derived: { down: true, selfHealing: false } },
  filesystem: {
    resource: '/var',
    derived: { usedPercent: expect.closeTo(90, 9), inodesUsedPercent: expect.closeTo(25, 9) },
  },
  memory: {
    resource: 'host',
    derived: {
      usedPercent: expect.closeTo(90, 9),
      availablePercent: expect.closeTo(10, 9),
      swapUsedPercent: expect.closeTo(25, 9),
    },
  },
  'process-memory': { resource: 'app.service', derived: { usedPercentOfLimit: expect.closeTo(75, 9) } },
  certificate: {
    resource: '/etc/letsencrypt/live/example.org/fullchain.pem',
    derived: { daysLeft: expect.closeTo(7, 9), expired: false },
  },
  database: { resource: 'postgresql:127.0.0.1:5432/app', derived: { connectionsPercent: expect.closeTo(80, 9) } },
  backup: { resource: 'pg-nightly', derived: { ageHours: expect.closeTo(12, 9), integrityFailed: true } },
  cron: { resource: 'logrotate', derived: { hoursSinceRun: expect.closeTo(6, 9), failed: true } },
  dns: { resource: 'api.example.org', derived: {} },
  packages: { resource: 'apt', derived: {} },
  container: { resource: 'docker:web', derived: { unhealthy: true } },
  custom: { resource: 'queue_depth', derived: {} },
}

describe('probe registry', () => {
  it('lists every observation kind exactly once', () => {
    const kinds = PROBES.map((p) => p.kind)
    expect(new Set(kinds).size).toBe(kinds.length)
    expect([...kinds].sort()).toEqual([...OBSERVATION_KINDS].sort())
    expect(Object.keys(EXPECTED_PROBE_OUTPUT).sort()).toEqual([...OBSERVATION_KINDS].sort())
  })

  it('finds probes by kind', () => {
    expect(findProbe('filesystem')?.kind).toBe('filesystem')
    expect(probeFor('certificate').kind).toBe('certificate')
    expect(findProbe('nope')).toBeUndefined()
  })

  it('has a sample observation for every kind, each a valid observation', () => {
    expect(Object.keys(sampleObservations).sort()).toEqual([...OBSERVATION_KINDS].sort())
    for (const [kind, sample] of Object.entries(sampleObservations)) {
      expect(sample.kind).toBe(kind)
      expect(ObservationSchema.safeParse(sample).success, kind).toBe(true)
    }
  })

  describe.each(PROBE_LIST)('%s', (kind, probe: ProbeDefinition) => {
    const sample = sampleObservations[kind]
    const expected = EXPECTED_PROBE_OUTPUT[kind]!

    it('documents itself', () => {
      expect(probe.title.length).toBeGreaterThan(0)
      expect(probe.description.length).toBeGreaterThan(10)
      expect(['available', 'planned']).toContain(probe.status)
      expect(['every-cycle', 'slow']).toContain(probe.schedule)
      for (const [name, doc] of Object.entries(probe.derived)) {
        expect(doc.description.length, name).toBeGreaterThan(0)
      }
    })

    it('has a strict schema that accepts its sample', () => {
      expect(probe.schema.safeParse(sample).success).toBe(true)
      expect(issuePaths(probe.schema, { ...sample, unexpected: 1 })).toEqual([''])
    })

    it('names the resource from its identity fields', () => {
      for (const field of probe.identity) expect(Object.keys(sample)).toContain(field)
      expect(probe.resource(sample)).toBe(expected.resource)
    })

    it('derives exactly the declared values', () => {
      const derived = probe.derive(sample, { now: SAMPLE_NOW })
      expect(derived).toEqual(expected.derived)
      const trendNames = probe.trend ? [probe.trend.eta.name, probe.trend.rate.name] : []
      for (const name of Object.keys(derived)) expect(Object.keys(probe.derived)).toContain(name)
      for (const name of Object.keys(probe.derived)) expect([...Object.keys(derived), ...trendNames]).toContain(name)
    })

    it('has an example policy that observes it and loads', () => {
      const policy = loadExample(probe.example)
      expect(policy.spec.observe).toBe(kind)
      for (const step of runSteps(policy)) {
        const remediation = findRemediation(step.run)
        expect(remediation, step.run).toBeDefined()
        accepted(remediation!.params, boundParams(remediation!, kind, step.params))
      }
    })
  })
})

// ---------------------------------------------------------------------------------------------------------------
// the remediation registry

const SSM_DOCUMENT = /^ANSAI-[A-Z][A-Za-z]+$/
const KEBAB_NOUN_VERB = /^[a-z][a-z0-9]*(-[a-z0-9]+)+$/

describe('remediation registry', () => {
  it('lists the remediations explicitly, each once', () => {
    expect(REMEDIATIONS.map((r) => r.id)).toEqual([
      'service-restart',
      'disk-cleanup',
      'memory-relief',
      'certificate-renew',
      'db-maintenance',
      'backup-retry',
      'notify-only',
      'custom-script',
    ])
    const ids = REMEDIATIONS.map((r) => r.id)
    expect(new Set(ids).size).toBe(ids.length)
    const documents = REMEDIATIONS.flatMap((r) => (r.ssmDocument ? [r.ssmDocument] : []))
    expect(new Set(documents).size).toBe(documents.length)
  })

  it('finds remediations by id', () => {
    expect(findRemediation('disk-cleanup')).toBe(REMEDIATIONS[1])
    expect(findRemediation('rm-rf')).toBeUndefined()
  })

  it('names SSM documents ANSAI-<Verb><Noun>; only notify-only has none', () => {
    expect(Object.fromEntries(REMEDIATIONS.map((r) => [r.id, r.ssmDocument]))).toEqual({
      'service-restart': 'ANSAI-RestartService',
      'disk-cleanup': 'ANSAI-CleanupDisk',
      'memory-relief': 'ANSAI-RelieveMemory',
      'certificate-renew': 'ANSAI-RenewCertificate',
      'db-maintenance': 'ANSAI-MaintainDatabase',
      'backup-retry': 'ANSAI-RetryBackup',
      'notify-only': null,
      'custom-script': 'ANSAI-RunCustomScript',
    })
  })

  describe.each(REMEDIATION_LIST)('%s', (id, remediation: RemediationDefinition) => {
    const example = (): { policy: Policy; ownSteps: RunStep[] } => {
      const policy = loadExample(remediation.example)
      return { policy, ownSteps: runSteps(policy).filter((s) => s.run === id) }
    }

    it('has a kebab-case <noun>-<verb> id a policy can name', () => {
      expect(id).toMatch(KEBAB_NOUN_VERB)
      expect(id.length).toBeLessThanOrEqual(32)
    })

    it('documents itself: title, description, risk, status, targets, permissions', () => {
      expect(remediation.title.length).toBeGreaterThan(0)
      expect(remediation.description.length).toBeGreaterThan(20)
      expect(RiskSchema.options).toContain(remediation.risk)
      expect(['available', 'planned']).toContain(remediation.status)
      expect(remediation.appliesTo.length).toBeGreaterThan(0)
      for (const kind of remediation.appliesTo) expect(['*', ...OBSERVATION_KINDS]).toContain(kind)
      // Whatever runs on a host says what it needs there; notify-only runs nothing.
      if (remediation.ssmDocument === null) expect(remediation.permissions).toEqual([])
      else expect(remediation.permissions.length).toBeGreaterThan(0)
    })

    it('has a valid SSM document name, or none only for notify-only', () => {
      if (id === 'notify-only') expect(remediation.ssmDocument).toBeNull()
      else expect(remediation.ssmDocument).toMatch(SSM_DOCUMENT)
    })

    it('has default guards the policy language accepts', () => {
      const guards = GuardsSchema.safeParse(remediation.defaultGuards)
      expect(guards.success, JSON.stringify(remediation.defaultGuards)).toBe(true)
    })

    it('has a strict params schema with a description on every field', () => {
      expect(remediation.params).toBeInstanceOf(z.ZodObject)
      const shape = (remediation.params as unknown as z.ZodObject).shape
      const { policy, ownSteps } = example()
      expect(Object.keys(shape).length).toBeGreaterThan(0)
      for (const [field, schema] of Object.entries(shape)) {
        expect(schema.description?.length ?? 0, `${id}.${field}`).toBeGreaterThan(10)
      }
      expect(ownSteps.length).toBeGreaterThan(0)
      for (const step of ownSteps) {
        const params = boundParams(remediation, policy.spec.observe, step.params)
        accepted(remediation.params, params)
        const withExtra = remediation.params.safeParse({ ...params, notAParam: 'x' })
        expect(withExtra.success).toBe(false)
        expect(withExtra.error?.issues.map((i) => i.code)).toContain('unrecognized_keys')
      }
    })

    it('has an example policy that loads and uses it with valid params', () => {
      const { policy } = example()
      expect(policy.metadata.name).toMatch(/^[a-z0-9-]+$/)
      const appliesToAll = remediation.appliesTo.includes('*')
      if (!appliesToAll) expect(remediation.appliesTo).toContain(policy.spec.observe)
      for (const step of runSteps(policy)) {
        const used = findRemediation(step.run)
        expect(used, step.run).toBeDefined()
        accepted(used!.params, boundParams(used!, policy.spec.observe, step.params))
      }
    })

    it('binds params only from identity fields of kinds it acts on, with valid placeholders', () => {
      for (const [kind, binding] of Object.entries(remediation.bind ?? {})) {
        expect(remediation.appliesTo).toContain(kind)
        expect(Object.keys((remediation.params as unknown as z.ZodObject).shape)).toContain(binding.param)
        expect(findProbe(kind)?.identity).toContain(binding.field)
        const sample = sampleObservations[kind as ObservationKind] as Record<string, unknown>
        // Both the load-time placeholder and a real observed value make valid params on their own.
        for (const value of [binding.placeholder, sample[binding.field]]) {
          expect(issuePaths(remediation.params, { [binding.param]: value }), String(value)).toEqual([])
        }
      }
    })

    it('opts in to destructive risk in its example when it is destructive', () => {
      const { policy, ownSteps } = example()
      const destructive = remediation.risk === 'destructive' || ownSteps.some((s) => s.params.risk === 'destructive')
      if (destructive) expect(policy.spec.allowDestructive).toBe(true)
      else expect(policy.spec.allowDestructive).toBe(false)
    })
  })

  it('binds the unit and the backup job from the observation', () => {
    expect(findRemediation('service-restart')?.bind?.service).toEqual({
      param: 'unit',
      field: 'unit',
      placeholder: 'example.service',
    })
    expect(findRemediation('backup-retry')?.bind?.backup?.field).toBe('job')
    expect(findRemediation('disk-cleanup')?.bind).toBeUndefined()
  })

  it('restarts a service at most 3 times an hour, 2 minutes apart, by default', () => {
    const guards = findRemediation('service-restart')?.defaultGuards
    expect(guards?.cooldown).toBe('2m')
    expect(guards?.limit).toEqual(LimitSchema.parse({ max: 3, within: '1h' }))
    expect(guards?.limit?.then).toBe('escalate')
  })

  it('marks disk-cleanup destructive and backup-retry and notify-only safe', () => {
    expect(Object.fromEntries(REMEDIATIONS.map((r) => [r.id, r.risk]))).toEqual({
      'service-restart': 'disruptive',
      'disk-cleanup': 'destructive',
      'memory-relief': 'disruptive',
      'certificate-renew': 'disruptive',
      'db-maintenance': 'disruptive',
      'backup-retry': 'safe',
      'notify-only': 'safe',
      'custom-script': 'disruptive',
    })
  })

  it.each([
    ...PROBES.map((p) => [`probe ${p.kind}`, p.example] as const),
    ...REMEDIATIONS.map((r) => [`remediation ${r.id}`, r.example] as const),
  ])('loads the %s example through loadPolicies with no errors', (label, text) => {
    const { policies, errors } = loadPolicies([{ file: `${label}.yaml`, text }], { allowPlanned: true })
    expect(errors.map(formatPolicyError)).toEqual([])
    expect(policies).toHaveLength(1)
  })

  it('refuses the remediation examples while their executors are planned', () => {
    const planned = REMEDIATIONS.filter((r) => r.status === 'planned')
    for (const r of planned) {
      const { errors } = loadPolicies([{ file: `${r.id}.yaml`, text: r.example }])
      expect(errors.map((e) => e.message).join('\n'), r.id).toContain(`remediation '${r.id}' is planned`)
    }
  })
})

// ---------------------------------------------------------------------------------------------------------------
// params schemas, one by one: what they accept, what they refuse

const UNIT_NAME_ATTACKS = [
  'nginx.service; rm -rf /',
  'nginx.service;reboot',
  '$(reboot).service',
  '`reboot`.service',
  'nginx .service',
  ' nginx.service',
  'nginx.service\n',
  '-nginx.service',
  '--now.service',
  '-.mount',
  'a|b.service',
  'a&b.service',
  'a>b.service',
  '/etc/systemd/system/nginx.service',
  '../nginx.service',
  'nginx',
  'nginx.scope',
  'getty@.service',
  '',
  `${'a'.repeat(250)}.service`,
]

describe('service-restart params', () => {
  it('accepts unit names of every supported type and fills in the defaults', () => {
    expect(accepted(ServiceRestartParamsSchema, { unit: 'nginx.service' })).toEqual({
      unit: 'nginx.service',
      waitActiveSeconds: 30,
      respectRestartPolicy: true,
    })
    for (const unit of [
      'getty@tty1.service',
      'systemd-journald.socket',
      'logrotate.timer',
      'multi-user.target',
      'var-lib-docker.mount',
      'cups.path',
      'user@1000.service',
      'dbus-:1.2-org.example.service',
    ]) {
      expect(accepted(ServiceRestartParamsSchema, { unit }).unit).toBe(unit)
    }
  })

  it.each(UNIT_NAME_ATTACKS)('refuses the unit %j', (unit) => {
    refusedAt(ServiceRestartParamsSchema, { unit }, 'unit')
  })

  it('bounds waitActiveSeconds to whole seconds in 1..300', () => {
    for (const waitActiveSeconds of [0, 301, 1.5, -1]) {
      refusedAt(ServiceRestartParamsSchema, { unit: 'a.service', waitActiveSeconds }, 'waitActiveSeconds')
    }
    expect(accepted(ServiceRestartParamsSchema, { unit: 'a.service', waitActiveSeconds: 300 }).waitActiveSeconds).toBe(
      300,
    )
  })
})

describe('disk-cleanup params', () => {
  const design = {
    roots: ['/var/log', '/tmp'],
    logsOlderThan: '30d',
    tempOlderThan: '7d',
    journalMaxSize: '100M',
    packageCache: true,
  }

  it('names its categories', () => {
    expect(DISK_CLEANUP_CATEGORIES).toEqual([
      'logs',
      'compressed-logs',
      'temp',
      'package-cache',
      'journal',
      'container-images',
      'core-dumps',
    ])
  })

  it('accepts the design example and fills in the defaults', () => {
    const params = accepted(DiskCleanupParamsSchema, design)
    expect(params.maxFiles).toBe(100_000)
    expect(selectedDiskCleanupCategories(params)).toEqual(['logs', 'temp', 'package-cache', 'journal'])
  })

  it('accepts root-less categories without roots', () => {
    const params = accepted(DiskCleanupParamsSchema, { containerImages: 'unused' })
    expect(params.packageCache).toBe(false)
    expect(selectedDiskCleanupCategories(params)).toEqual(['container-images'])
    expect(selectedDiskCleanupCategories(accepted(DiskCleanupParamsSchema, { coreDumps: '3d' }))).toEqual([
      'core-dumps',
    ])
  })

  it('refuses a cleanup with no category', () => {
    expect(issuePaths(DiskCleanupParamsSchema, { roots: ['/var/log'] })).toEqual([''])
    expect(issuePaths(DiskCleanupParamsSchema, { roots: ['/var/log'], packageCache: false })).toEqual([''])
  })

  it('refuses file categories without roots', () => {
    expect(issuePaths(DiskCleanupParamsSchema, { logsOlderThan: '30d' })).toEqual(['roots'])
    expect(issuePaths(DiskCleanupParamsSchema, { tempOlderThan: '7d', packageCache: true })).toEqual(['roots'])
  })

  it.each([
    '/',
    '//',
    '///',
    'var/log',
    './log',
    '~/logs',
    '/var/../etc',
    '/var/log/..',
    '/var/./log',
    '/var//log',
    '/var/log/',
    '/var/log\u0000/x',
    '/var/log\n/etc',
    '/proc',
    '/proc/1/root',
    '/sys/kernel',
    '/dev',
    '',
  ])('refuses the root %j', (root) => {
    refusedAt(DiskCleanupParamsSchema, { ...design, roots: [root] }, 'roots.0')
  })

  it('refuses no roots, more than 20 roots and duplicate roots', () => {
    refusedAt(DiskCleanupParamsSchema, { ...design, roots: [] }, 'roots')
    const many = Array.from({ length: 21 }, (_, i) => `/srv/app${i}/log`)
    refusedAt(DiskCleanupParamsSchema, { ...design, roots: many }, 'roots')
    expect(accepted(DiskCleanupParamsSchema, { ...design, roots: many.slice(0, 20) }).roots).toHaveLength(20)
    refusedAt(DiskCleanupParamsSchema, { ...design, roots: ['/tmp', '/tmp'] }, 'roots')
  })

  it('refuses zero and malformed durations', () => {
    for (const field of ['logsOlderThan', 'compressLogsOlderThan', 'tempOlderThan', 'coreDumps']) {
      for (const value of ['0d', '0h0m', '30', 'd', '30 days', '-1d', '1y', 30]) {
        refusedAt(DiskCleanupParamsSchema, { ...design, [field]: value }, field)
      }
    }
  })

  it('takes journal sizes as a number and K, M or G', () => {
    expect(accepted(DiskCleanupParamsSchema, { journalMaxSize: '1G' }).journalMaxSize).toBe('1G')
    expect(accepted(DiskCleanupParamsSchema, { journalMaxSize: '512K' }).journalMaxSize).toBe('512K')
    for (const size of ['0M', '100MB', '1T', '-1G', '1.5G', 'M', '100m', '100M; rm -rf /']) {
      refusedAt(DiskCleanupParamsSchema, { journalMaxSize: size }, 'journalMaxSize')
    }
  })

  it('only knows unused container images and bounds maxFiles', () => {
    refusedAt(DiskCleanupParamsSchema, { containerImages: 'all' }, 'containerImages')
    refusedAt(DiskCleanupParamsSchema, { ...design, maxFiles: 0 }, 'maxFiles')
    refusedAt(DiskCleanupParamsSchema, { ...design, maxFiles: 1_000_001 }, 'maxFiles')
    refusedAt(DiskCleanupParamsSchema, { ...design, packageCache: 'yes' }, 'packageCache')
  })
})

describe('memory-relief params', () => {
  it('restarts at once by default, or signals or reloads first', () => {
    expect(accepted(MemoryReliefParamsSchema, { unit: 'app.service' })).toEqual({ unit: 'app.service', reload: false })
    expect(
      accepted(MemoryReliefParamsSchema, { unit: 'app.service', signal: 'SIGUSR1', restartIfStillAbovePercent: 90 }),
    ).toEqual({ unit: 'app.service', signal: 'SIGUSR1', reload: false, restartIfStillAbovePercent: 90 })
    expect(accepted(MemoryReliefParamsSchema, { unit: 'app.service', reload: true }).reload).toBe(true)
  })

  it('only sends signals that do not kill', () => {
    for (const signal of ['SIGKILL', 'SIGTERM', 'SIGSTOP', '9', 'HUP', 'SIGHUP; reboot']) {
      refusedAt(MemoryReliefParamsSchema, { unit: 'app.service', signal }, 'signal')
    }
  })

  it('acts on services only, with a safe name', () => {
    for (const unit of ['app', 'app.socket', 'app.target', '-app.service', 'app.service && reboot']) {
      refusedAt(MemoryReliefParamsSchema, { unit }, 'unit')
    }
  })

  it('refuses restartIfStillAbovePercent out of 1..100 or without a signal or reload', () => {
    refusedAt(
      MemoryReliefParamsSchema,
      { unit: 'a.service', restartIfStillAbovePercent: 90 },
      'restartIfStillAbovePercent',
    )
    for (const restartIfStillAbovePercent of [0, 100.5, -5]) {
      refusedAt(
        MemoryReliefParamsSchema,
        { unit: 'a.service', reload: true, restartIfStillAbovePercent },
        'restartIfStillAbovePercent',
      )
    }
  })
})

describe('certificate-renew params', () => {
  it('accepts a cert name, a reload unit, an endpoint and an https ACME server', () => {
    const params = {
      certName: 'example.org',
      reloadUnit: 'nginx.service',
      verifyEndpoint: 'example.org:443',
      acmeServer: 'https://localhost:14000/dir',
    }
    expect(accepted(CertificateRenewParamsSchema, params)).toEqual(params)
    for (const verifyEndpoint of ['[2001:db8::1]:8443', '192.0.2.10:443', 'localhost:65535']) {
      expect(accepted(CertificateRenewParamsSchema, { certName: 'a', verifyEndpoint }).verifyEndpoint).toBe(
        verifyEndpoint,
      )
    }
  })

  it('refuses cert names that are options, paths or shell', () => {
    for (const certName of ['-d', '--force-renewal', '../live', 'a/b', 'a b', 'a;b', '$(id)', '', '.hidden']) {
      refusedAt(CertificateRenewParamsSchema, { certName }, 'certName')
    }
  })

  it('refuses endpoints without a valid port or with extra text', () => {
    for (const verifyEndpoint of [
      'example.org',
      'example.org:0',
      'example.org:65536',
      'example.org:443; id',
      'https://example.org:443',
      '-example.org:443',
      'example.org :443',
    ]) {
      refusedAt(CertificateRenewParamsSchema, { certName: 'a', verifyEndpoint }, 'verifyEndpoint')
    }
  })

  it('refuses ACME servers that are not plain https URLs', () => {
    for (const acmeServer of [
      'http://acme.example/dir',
      'file:///etc/passwd',
      'https://user:secret@acme.example/dir',
      'https://acme.example/dir#x',
      'not a url',
    ]) {
      refusedAt(CertificateRenewParamsSchema, { certName: 'a', acmeServer }, 'acmeServer')
    }
  })

  it('reloads services only', () => {
    refusedAt(CertificateRenewParamsSchema, { certName: 'a', reloadUnit: 'nginx' }, 'reloadUnit')
    refusedAt(CertificateRenewParamsSchema, { certName: 'a', reloadUnit: 'nginx.service;id' }, 'reloadUnit')
  })
})

describe('db-maintenance params', () => {
  it('accepts a named database for servers and a file for sqlite', () => {
    expect(
      accepted(DbMaintenanceParamsSchema, { engine: 'postgresql', database: 'app', operation: 'vacuum-analyze' }),
    ).toEqual({ engine: 'postgresql', database: 'app', operation: 'vacuum-analyze' })
    expect(
      accepted(DbMaintenanceParamsSchema, {
        engine: 'sqlite',
        database: '/var/lib/app/app.db',
        operation: 'integrity-check',
      }).database,
    ).toBe('/var/lib/app/app.db')
    expect(
      accepted(DbMaintenanceParamsSchema, {
        engine: 'mariadb',
        database: 'shop_2',
        operation: 'terminate-idle-in-transaction',
        idleLongerThan: '10m',
      }).idleLongerThan,
    ).toBe('10m')
  })

  it.each([
    'app; DROP TABLE users',
    "app'--",
    'app`id`',
    '$(id)',
    '-app',
    '--all',
    'my app',
    '/var/lib/postgresql',
    'a'.repeat(64),
  ])('refuses the database name %j', (database) => {
    refusedAt(DbMaintenanceParamsSchema, { engine: 'postgresql', database, operation: 'analyze' }, 'database')
  })

  it('refuses sqlite databases that are not canonical absolute paths', () => {
    for (const database of ['app', 'app.db', '/var/../etc/shadow', '/', '/var/lib/app/']) {
      refusedAt(DbMaintenanceParamsSchema, { engine: 'sqlite', database, operation: 'vacuum' }, 'database')
    }
  })

  it('refuses operations the engine does not offer', () => {
    expect(DB_OPERATIONS_BY_ENGINE.postgresql).not.toContain('optimize')
    refusedAt(DbMaintenanceParamsSchema, { engine: 'postgresql', database: 'app', operation: 'optimize' }, 'operation')
    refusedAt(DbMaintenanceParamsSchema, { engine: 'mysql', database: 'app', operation: 'vacuum' }, 'operation')
    refusedAt(
      DbMaintenanceParamsSchema,
      { engine: 'sqlite', database: '/a.db', operation: 'terminate-idle-in-transaction', idleLongerThan: '5m' },
      'operation',
    )
    refusedAt(DbMaintenanceParamsSchema, { engine: 'oracle', database: 'app', operation: 'analyze' }, 'engine')
    refusedAt(DbMaintenanceParamsSchema, { engine: 'postgresql', database: 'app', operation: 'drop' }, 'operation')
  })

  it('needs idleLongerThan with terminate-idle-in-transaction, and only there', () => {
    const terminate = { engine: 'postgresql', database: 'app', operation: 'terminate-idle-in-transaction' }
    expect(issuePaths(DbMaintenanceParamsSchema, terminate)).toEqual(['idleLongerThan'])
    refusedAt(DbMaintenanceParamsSchema, { ...terminate, idleLongerThan: '0s' }, 'idleLongerThan')
    expect(
      issuePaths(DbMaintenanceParamsSchema, {
        engine: 'postgresql',
        database: 'app',
        operation: 'vacuum',
        idleLongerThan: '10m',
      }),
    ).toEqual(['idleLongerThan'])
  })
})

describe('backup-retry params', () => {
  it('accepts a job and fills in the timeout', () => {
    expect(accepted(BackupRetryParamsSchema, { job: 'pg-nightly' })).toEqual({
      job: 'pg-nightly',
      timeoutSeconds: 3600,
    })
    expect(accepted(BackupRetryParamsSchema, { job: 'a', unit: 'pg-backup.service' }).unit).toBe('pg-backup.service')
  })

  it('refuses unsafe job names, non-service units and timeouts out of 1..86400', () => {
    for (const job of ['../etc', 'a b', '-x', 'a;b', '', '$(id)', 'a/b']) {
      refusedAt(BackupRetryParamsSchema, { job }, 'job')
    }
    refusedAt(BackupRetryParamsSchema, { job: 'a', unit: 'pg-backup.timer' }, 'unit')
    for (const timeoutSeconds of [0, 86_401, 2.5]) {
      refusedAt(BackupRetryParamsSchema, { job: 'a', timeoutSeconds }, 'timeoutSeconds')
    }
  })
})

describe('notify-only params', () => {
  it('takes an optional message of 1..500 characters', () => {
    expect(accepted(NotifyOnlyParamsSchema, {})).toEqual({})
    expect(accepted(NotifyOnlyParamsSchema, { message: 'check the disk' })).toEqual({ message: 'check the disk' })
    refusedAt(NotifyOnlyParamsSchema, { message: '' }, 'message')
    refusedAt(NotifyOnlyParamsSchema, { message: 'x'.repeat(501) }, 'message')
  })
})

describe('custom-script params', () => {
  it('accepts a script name and plain arguments, disruptive by default', () => {
    expect(
      accepted(CustomScriptParamsSchema, {
        script: 'drain-queue',
        args: ['queue=default', 'path=/srv/app', 'user@host', '50%', 'a,b', '+1', 'v1.2.3'],
      }),
    ).toEqual({
      script: 'drain-queue',
      args: ['queue=default', 'path=/srv/app', 'user@host', '50%', 'a,b', '+1', 'v1.2.3'],
      timeoutSeconds: 300,
      risk: 'disruptive',
    })
    expect(accepted(CustomScriptParamsSchema, { script: 'x', risk: 'destructive' }).risk).toBe('destructive')
  })

  it.each(['/usr/bin/rm', '../bin/sh', 'a/b', 'rm -rf /', 'Drain', '-x', '_x', 'x;id', '$(id)', '', 'a'.repeat(65)])(
    'refuses the script %j',
    (script) => {
      refusedAt(CustomScriptParamsSchema, { script }, 'script')
    },
  )

  it.each([
    '`id`',
    '$(id)',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell expansion is the input under test
    '${HOME}',
    '--force',
    '-rf',
    '-',
    'a b',
    'a;b',
    'a|b',
    'a&b',
    'a>b',
    "it's",
    '"x"',
    '~root',
    '*',
    'a?',
    '[ab]',
    '{a,b}',
    'a\\b',
    'a\nb',
    '!x',
    '#x',
    '../etc/passwd',
    '/srv/../etc',
    '',
    'x'.repeat(257),
  ])('refuses the argument %j', (arg) => {
    refusedAt(CustomScriptParamsSchema, { script: 'x', args: ['ok', arg] }, 'args.1')
  })

  it('takes at most 16 arguments, a timeout in 1..3600 and a known risk', () => {
    refusedAt(CustomScriptParamsSchema, { script: 'x', args: Array.from({ length: 17 }, () => 'a') }, 'args')
    expect(
      accepted(CustomScriptParamsSchema, { script: 'x', args: Array.from({ length: 16 }, () => 'a') }).args,
    ).toHaveLength(16)
    refusedAt(CustomScriptParamsSchema, { script: 'x', timeoutSeconds: 3601 }, 'timeoutSeconds')
    refusedAt(CustomScriptParamsSchema, { script: 'x', risk: 'reckless' }, 'risk')
    refusedAt(CustomScriptParamsSchema, { script: 'x', args: 'a b' }, 'args')
  })
})
