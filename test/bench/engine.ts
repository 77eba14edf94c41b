/**
 * Engine benchmark: host reports per second through evaluate() on one core, with the baseline pack and 20
 * observations per report; the same including zod parsing of the raw JSON; and engine state memory per 10,000 hosts.
 */
import { readFileSync } from 'node:fs'
import { type Observation, type ReportV1, ReportV1Schema } from '../../shared/contracts/index.ts'
import { evaluate } from '../../shared/engine/evaluate.ts'
import type { HostState } from '../../shared/engine/state.ts'
import { loadPolicies } from '../../shared/policy/load.ts'

const GiB = 2 ** 30
const MiB = 2 ** 20
const HOSTS = 10_000
const CYCLES = 12

const baseline = readFileSync(new URL('../../shared/policies/baseline.yaml', import.meta.url), 'utf8')
const { set, errors } = loadPolicies([{ file: 'baseline.yaml', text: baseline }], { allowPlanned: true })
if (errors.length) throw new Error(`baseline pack does not load: ${errors[0]?.message}`)

const mix = (...n: number[]): number => n.reduce((a, b) => Math.imul(a ^ b, 2654435761) >>> 0, 0x9e3779b9)
const start = Date.parse('2026-11-23T00:00:00Z')

/**
 * Two fleets, 20 observations per report (4 filesystems, 8 services, host memory, 3 per-service memory,
 * 2 certificates, a backup, DNS):
 * - `typical`: 3 % of filesystems sit in the warning band, about 14 % of certificates are within 30 days (an open
 *   warning incident), a service fails in 0.05 % of its reports and is back the next cycle; everything else is
 *   healthy with small noise.
 * - `stressed`: about a quarter of reports open an incident (filesystems filling, a service failing in 8 % of
 *   reports, memory growing, certificates 5–85 days, stale backups): the slow paths of the engine, every cycle.
 */
export type Fleet = 'typical' | 'stressed'

const observationsFor = (fleet: Fleet, h: number, cycle: number, t: number): Observation[] => {
  const obs: Observation[] = []
  const stressed = fleet === 'stressed'
  for (const [i, mount] of ['/', '/var', '/home', '/srv'].entries()) {
    const base = stressed ? 40 + ((h + i * 7) % 45) + cycle * 0.1 : mix(h, i) % 100 < 3 ? 82 : 30 + (mix(h, i, 1) % 45)
    const used = (base + (stressed ? 0 : (cycle % 3) * 0.001)) * 0.01 * 100 * GiB
    obs.push({
      kind: 'filesystem',
      mount,
      fsType: 'ext4',
      bytesTotal: 100 * GiB,
      bytesUsed: Math.round(used),
      bytesAvailable: Math.round(100 * GiB - used),
      inodesTotal: 6_553_600,
      inodesUsed: 300_000 + h,
    })
  }
  for (let i = 0; i < 8; i++) {
    const failed = stressed ? (h + i + cycle) % 97 === 0 : mix(h, i, cycle) % 2000 === 0
    obs.push({
      kind: 'service',
      unit: `svc-${i}.service`,
      activeState: failed ? 'failed' : 'active',
      subState: failed ? 'failed' : 'running',
      restarts: 0,
      mainPid: failed ? 0 : 1000 + i,
      restartPolicy: 'no',
    })
  }
  obs.push({
    kind: 'memory',
    totalBytes: 16 * GiB,
    availableBytes: (6 + (h % 5)) * GiB,
    swapTotalBytes: 0,
    swapFreeBytes: 0,
  })
  for (let i = 0; i < 3; i++) {
    const mem = stressed ? 200 + i * 50 + (h % 13) * cycle : 200 + i * 50 + ((h + cycle) % 3)
    obs.push({
      kind: 'process-memory',
      unit: `svc-${i}.service`,
      memoryBytes: mem * MiB,
      limitBytes: 2048 * MiB,
      source: 'cgroup-v2',
    })
  }
  for (let i = 0; i < 2; i++) {
    const days = stressed ? 5 + ((h + i) % 80) : 20 + (mix(h, i, 2) % 70)
    const notAfter = new Date((stressed ? t : start) + days * 86_400_000).toISOString()
    obs.push({
      kind: 'certificate',
      source: `/etc/ssl/site-${i}.pem`,
      sourceType: 'file',
      subject: `CN=site-${i}`,
      sans: [`site-${i}.example`],
      issuer: 'CN=CA',
      notAfter,
      fingerprint: Array.from({ length: 32 }, () => '0A').join(':'),
    })
  }
  const backupAge = stressed ? (h % 30) + 1 : (mix(h, 3) % 20) + 1
  obs.push({
    kind: 'backup',
    job: 'nightly',
    newestArtifactAt: new Date((stressed ? t : start) - backupAge * 3_600_000).toISOString(),
    sizeBytes: 10 * GiB,
    integrity: 'ok',
    lastExitStatus: 0,
  })
  obs.push({ kind: 'dns', name: 'db.internal', resolved: true, addresses: ['10.0.0.5'], latencyMs: 2 })
  return obs
}

export const reportFor = (fleet: Fleet, h: number, cycle: number): ReportV1 => {
  const t = start + cycle * 60_000
  return {
    schema: 'ansai.report.v1',
    host: { id: `i-${h.toString(16).padStart(17, '0')}`, hostname: `host-${h}`, tags: { role: 'web' } },
    agent: { version: 'bench' },
    time: new Date(t).toISOString(),
    seq: cycle + 1,
    observations: observationsFor(fleet, h, cycle, t),
    probeErrors: [],
  }
}

export interface EngineBenchResult {
  fleet: Fleet
  hosts: number
  cycles: number
  observationsPerReport: number
  reportsPerSecond: number
  reportsPerSecondWithFindings: number
  reportsPerSecondWithParse: number
  decisionsPerCycle: number
  stateBytesPer10kHostsJson: number
  stateHeapBytesPer10kHosts: number
}

const gc = (globalThis as { gc?: () => void }).gc

/**
 * CPU time of this thread (user + system), in ms: the engine runs on one core, and this figure does not change
 * when other processes compete for the machine, as wall time does.
 */
export const threadCpuMs = (): number => {
  const u = process.threadCpuUsage()
  return (u.user + u.system) / 1000
}

/** Time evaluate() over CYCLES cycles of HOSTS reports; each cycle's reports are built (untimed) just before it. */
const timeCycles = (fleet: Fleet, withParse: boolean, findings: 'all' | 'none') => {
  const states: (HostState | undefined)[] = new Array(HOSTS).fill(undefined)
  const warm = 2
  let seconds = 0
  let reports = 0
  let decisions = 0
  for (let c = 0; c < CYCLES; c++) {
    const cycle = Array.from({ length: HOSTS }, (_, h) => reportFor(fleet, h, c))
    const raw = withParse ? cycle.map((r) => JSON.stringify(r)) : []
    const t0 = threadCpuMs()
    for (let h = 0; h < HOSTS; h++) {
      const r = withParse ? ReportV1Schema.parse(JSON.parse(raw[h] as string)) : (cycle[h] as ReportV1)
      const out = evaluate({
        policies: set,
        host: r.host,
        observations: r.observations,
        seq: r.seq,
        state: states[h],
        now: r.time,
        findings,
      })
      states[h] = out.nextState
      decisions += out.decisions.length
    }
    if (c >= warm) {
      seconds += (threadCpuMs() - t0) / 1000
      reports += HOSTS
    }
  }
  return { states, perSecond: reports / seconds, decisions }
}

export const runEngineBench = (fleet: Fleet): EngineBenchResult => {
  const plain = timeCycles(fleet, false, 'none')
  const withFindings = timeCycles(fleet, false, 'all')
  withFindings.states.length = 0
  const parsed = timeCycles(fleet, true, 'none')
  const jsonBytes = plain.states.reduce((sum, s) => sum + JSON.stringify(s).length, 0)
  // State heap: what the live states hold, measured by dropping them.
  gc?.()
  const withStates = process.memoryUsage().heapUsed
  plain.states.length = 0
  parsed.states.length = 0
  gc?.()
  const withoutStates = process.memoryUsage().heapUsed
  return {
    hosts: HOSTS,
    cycles: CYCLES,
    observationsPerReport: observationsFor(fleet, 0, 0, start).length,
    fleet,
    reportsPerSecond: plain.perSecond,
    reportsPerSecondWithFindings: withFindings.perSecond,
    reportsPerSecondWithParse: parsed.perSecond,
    decisionsPerCycle: plain.decisions / CYCLES,
    stateBytesPer10kHostsJson: (jsonBytes / HOSTS) * 10_000,
    // two sets of states were live: halve
    stateHeapBytesPer10kHosts: gc ? ((withStates - withoutStates) / 2 / HOSTS) * 10_000 : Number.NaN,
  }
}
