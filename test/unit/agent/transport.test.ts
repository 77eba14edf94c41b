import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { chunkEntries, drainSpool } from '../../../agent/transport/drain.ts'
import { ReportSpool } from '../../../agent/transport/spool.ts'
import { readTransportState, transportReport } from '../../../agent/transport/transport.ts'
import type { Observation, ReportBatchV1, ReportV1 } from '../../../shared/contracts/index.ts'
import { ReportBatchV1Schema } from '../../../shared/contracts/index.ts'
import { PortError, type ReportSender } from '../../../shared/ports/fleet.ts'
import { FakeClock, fs, HOST, policiesFrom } from '../../support/builders.ts'

const POLICIES = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: root-disk }
spec:
  observe: filesystem
  match: { mount: / }
  severity:
    critical: { when: "usedPercent >= 90" }
  remediate:
    - escalate: page
`)

const report = (seq: number, at: string, observations: Observation[] = [fs('/', 50)]): ReportV1 => ({
  schema: 'ansai.report.v1',
  host: HOST,
  agent: { version: 'test' },
  time: at,
  seq,
  observations,
  probeErrors: [],
})

/** A queue that takes batches, or fails the next `failures` sends with the given error. */
class FakeSender implements ReportSender {
  batches: ReportBatchV1[] = []
  failures = 0
  error: Error = new PortError('queue unreachable', { retryable: true, code: 'ECONNREFUSED' })
  async send(batch: ReportBatchV1): Promise<void> {
    if (this.failures > 0) {
      this.failures--
      throw this.error
    }
    this.batches.push(ReportBatchV1Schema.parse(structuredClone(batch)))
  }
}

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ansai-transport-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const noSleep = { sleep: async () => {}, random: () => 0.5 }

describe('report spool', () => {
  it('keeps reports oldest first and drops the oldest past its limits', () => {
    const spool = new ReportSpool(join(dir, 'spool'), { maxReports: 3 })
    const clock = new FakeClock()
    let dropped = 0
    for (const seq of [12, 10, 11, 13, 14]) dropped += spool.add(report(seq, clock.iso())).dropped
    expect(dropped).toBe(2)
    expect(spool.list().map((e) => e.seq)).toEqual([12, 13, 14])
  })

  it('holds to its byte limit as well, and skips a damaged file instead of sending it', () => {
    const spool = new ReportSpool(join(dir, 'spool'), { maxBytes: 1500 })
    const clock = new FakeClock()
    for (let seq = 1; seq <= 10; seq++) spool.add(report(seq, clock.iso()))
    const entries = spool.list()
    expect(entries.reduce((n, e) => n + e.bytes, 0)).toBeLessThanOrEqual(1500)
    expect(entries.at(-1)?.seq).toBe(10)
    writeFileSync(join(dir, 'spool', entries[0]!.file), '{"half')
    expect(spool.read(entries).map((r) => r.seq)).toEqual(entries.slice(1).map((e) => e.seq))
    expect(spool.list()).toHaveLength(entries.length - 1)
  })
})

describe('drain', () => {
  it('splits by message size and count, oldest first', () => {
    const entries = Array.from({ length: 10 }, (_, i) => ({ file: `${i}.json`, seq: i, bytes: 1000 }))
    expect(chunkEntries(entries, 3500, 100).map((c) => c.map((e) => e.seq))).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
      [9],
    ])
    expect(chunkEntries(entries, 1_000_000, 4).map((c) => c.length)).toEqual([4, 4, 2])
  })

  it('bounds a batch by count, and by raw bytes only generously (the sender splits by its message size)', async () => {
    const spool = new ReportSpool(join(dir, 'spool'))
    const clock = new FakeClock()
    const many = Array.from({ length: 50 }, (_, i) => fs(`/srv/${i}`, 50))
    for (let seq = 1; seq <= 130; seq++) spool.add(report(seq, clock.iso(), many))
    expect(spool.list().reduce((n, e) => n + e.bytes, 0)).toBeGreaterThan(1024 * 1024)
    const sender = new FakeSender()
    const out = await drainSpool({ spool, sender, reason: 'spool-full', ...noSleep })
    expect(sender.batches.map((b) => b.reports.length)).toEqual([120, 10])
    expect(out).toMatchObject({ sentReports: 130, batches: 2, left: 0 })
  })

  it('retries a failed send with jittered backoff and removes reports only once the queue took them', async () => {
    const spool = new ReportSpool(join(dir, 'spool'))
    const clock = new FakeClock()
    for (let seq = 1; seq <= 5; seq++) spool.add(report(seq, clock.iso()))
    const sender = new FakeSender()
    sender.failures = 2
    const delays: number[] = []
    const out = await drainSpool({
      spool,
      sender,
      reason: 'heartbeat',
      sleep: async (ms) => {
        delays.push(ms)
      },
      random: () => 0.5,
      baseDelayMs: 100,
    })
    expect(out).toEqual({ sentReports: 5, batches: 1, left: 0 })
    expect(delays).toEqual([100, 200])
    expect(sender.batches[0]!.reports.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5])
    expect(spool.list()).toEqual([])
  })

  it('keeps everything spooled when the queue stays away, and stops at once on a refusal', async () => {
    const spool = new ReportSpool(join(dir, 'spool'))
    for (let seq = 1; seq <= 3; seq++) spool.add(report(seq, new FakeClock().iso()))
    const sender = new FakeSender()
    sender.failures = 100
    const out = await drainSpool({ spool, sender, reason: 'change', ...noSleep, maxAttempts: 3 })
    expect(out.error?.message).toBe('queue unreachable')
    expect(sender.failures).toBe(97)
    expect(spool.list()).toHaveLength(3)

    sender.error = new PortError('AccessDenied', { retryable: false })
    sender.failures = 1
    const refused = await drainSpool({ spool, sender, reason: 'change', ...noSleep })
    expect(refused.error?.message).toBe('AccessDenied')
    expect(sender.failures).toBe(0)
    expect(spool.list()).toHaveLength(3)
  })
})

describe('transportReport', () => {
  const setup = () => {
    const clock = new FakeClock()
    const sender = new FakeSender()
    const deps = {
      policies: POLICIES,
      spool: new ReportSpool(join(dir, 'spool')),
      sender,
      statePath: join(dir, 'transport.json'),
      heartbeatMs: 15 * 60_000,
      now: () => clock.now(),
      retry: { ...noSleep, maxAttempts: 2 },
    }
    let seq = 0
    const tick = (usedPercent: number) => {
      clock.advance(60_000)
      return transportReport(deps, report(++seq, clock.iso(), [fs('/', usedPercent)]))
    }
    return { clock, sender, deps, tick }
  }

  it('sends at once on a change of policy state, and otherwise only with the 15-minute heartbeat', async () => {
    const { sender, tick } = setup()
    expect((await tick(50)).reason).toBe('heartbeat') // first run: nothing sent yet
    for (let i = 0; i < 5; i++) expect((await tick(50)).reason).toBeUndefined()
    expect(sender.batches).toHaveLength(1)

    const change = await tick(95)
    expect(change.reason).toBe('change')
    expect(change.changes).toContain('root-disk//: ok → critical')
    // The samples of the quiet minutes ride along with the change.
    expect(sender.batches[1]!.reports.map((r) => r.seq)).toEqual([2, 3, 4, 5, 6, 7])
    expect(sender.batches[1]!.reason).toBe('change')

    // Still critical: no change, nothing sent until the heartbeat 15 minutes after the last send.
    const quiet = []
    for (let i = 0; i < 15; i++) quiet.push((await tick(95)).reason)
    expect(quiet.slice(0, 14).every((r) => r === undefined)).toBe(true)
    expect(quiet[14]).toBe('heartbeat')
    expect(sender.batches[2]!.reports).toHaveLength(15)

    expect((await tick(50)).reason).toBe('change') // back to ok is a change too
  })

  it('keeps a change that could not go out and retries it every run, not only at the heartbeat', async () => {
    const { sender, tick, deps } = setup()
    await tick(50)
    sender.failures = 2 // the next run's two attempts fail
    const failed = await tick(95)
    expect(failed.reason).toBe('change')
    expect(failed.drain?.error).toBeDefined()
    expect(readTransportState(deps.statePath).changePending).toBe(true)

    const retried = await tick(95)
    expect(retried.reason).toBe('change')
    expect(retried.drain?.error).toBeUndefined()
    expect(sender.batches.at(-1)!.reports.map((r) => r.seq)).toEqual([2, 3])
    expect(readTransportState(deps.statePath).changePending).toBeUndefined()
    expect(readdirSync(join(dir, 'spool'))).toEqual([])
  })
})

describe('host identity for the fleet', () => {
  it('reads a hybrid node registration first, then cloud-init’s EC2 id; nothing else passes', async () => {
    const { readInstanceId, regionOfQueueUrl } = await import('../../../agent/transport/identity.ts')
    const root = join(dir, 'root')
    expect(readInstanceId(root)).toBeUndefined()
    const { mkdirSync } = await import('node:fs')
    mkdirSync(join(root, 'var/lib/cloud/data'), { recursive: true })
    writeFileSync(join(root, 'var/lib/cloud/data/instance-id'), 'i-0abcdef1234567890\n')
    expect(readInstanceId(root)).toBe('i-0abcdef1234567890')
    mkdirSync(join(root, 'var/lib/amazon/ssm'), { recursive: true })
    writeFileSync(
      join(root, 'var/lib/amazon/ssm/registration'),
      '{"ManagedInstanceID":"mi-0123456789abcdef0","Region":"eu-west-1"}',
    )
    expect(readInstanceId(root)).toBe('mi-0123456789abcdef0')
    writeFileSync(join(root, 'var/lib/amazon/ssm/registration'), '{"ManagedInstanceID":"mi-x; reboot"}')
    expect(readInstanceId(root)).toBe('i-0abcdef1234567890')
    expect(regionOfQueueUrl('https://sqs.eu-west-1.amazonaws.com/123456789012/ansai-reports')).toBe('eu-west-1')
    expect(regionOfQueueUrl('http://127.0.0.1:4566/000000000000/ansai-reports')).toBeUndefined()
  })
})
