import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { chunkEntries, drainSpool, fitContext } from '../../../agent/transport/drain.ts'
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

  it("moves what the queue took to sent/, and prunes sent/ by the reports' own time and by count", () => {
    const spool = new ReportSpool(join(dir, 'spool'), { maxReports: 4 })
    const clock = new FakeClock()
    for (let seq = 1; seq <= 3; seq++) spool.add(report(seq, clock.advance(60_000).iso()))
    spool.markSent(spool.list())
    expect(spool.list()).toEqual([])
    expect(readdirSync(spool.sentDir)).toHaveLength(3)
    // The window is by the report's `time` (minutes 1, 2, 3), not by the file's mtime (all just now).
    spool.pruneSent(clock.now() + 60_000, 2 * 60_000)
    const kept = spool.recentSent(clock.now() + 60_000, 2 * 60_000)
    expect(kept.map((s) => s.report.seq)).toEqual([2, 3])
    expect(readdirSync(spool.sentDir).sort()).toEqual(kept.map((s) => s.entry.file))

    for (let seq = 4; seq <= 9; seq++) spool.add(report(seq, clock.iso()))
    spool.markSent(spool.list())
    // All in the window, but sent/ keeps no more than the spool's limit: the oldest go.
    spool.pruneSent(clock.now(), 60 * 60_000)
    expect(readdirSync(spool.sentDir)).toHaveLength(4)
    expect(spool.recentSent(clock.now(), 60 * 60_000).map((s) => s.report.seq)).toEqual([6, 7, 8, 9])
    // A report dated after now (the clock went back) is outside the window too; 0 empties sent/.
    expect(spool.recentSent(clock.now() - 1, 60 * 60_000)).toEqual([])
    spool.add(report(10, clock.iso()))
    spool.markSent(spool.list())
    spool.pruneSent(clock.now(), 0)
    expect(readdirSync(spool.sentDir)).toEqual([])
  })

  it('removes a damaged file in sent/ (or one that is not the report its name says) instead of re-sending it', () => {
    const spool = new ReportSpool(join(dir, 'spool'))
    const clock = new FakeClock()
    for (let seq = 1; seq <= 5; seq++) spool.add(report(seq, clock.iso()))
    spool.markSent(spool.list())
    const [one, two, three, four] = readdirSync(spool.sentDir).sort()
    writeFileSync(join(spool.sentDir, one!), '{"half')
    writeFileSync(join(spool.sentDir, two!), JSON.stringify({ ...report(2, clock.iso()), observations: 'x' }))
    writeFileSync(join(spool.sentDir, three!), JSON.stringify(report(33, clock.iso())))
    writeFileSync(join(spool.sentDir, four!), JSON.stringify({ ...report(4, clock.iso()), time: 'yesterday' }))
    // Pruning (every run) removes what does not parse as the report its name says, with a time...
    spool.pruneSent(clock.now(), 60 * 60_000)
    expect(readdirSync(spool.sentDir).sort()).toEqual([two, '0000000000000005.json'])
    // ...and before a send, a report that is not valid goes too.
    expect(spool.recentSent(clock.now(), 60 * 60_000).map((s) => s.report.seq)).toEqual([5])
    expect(readdirSync(spool.sentDir)).toEqual(['0000000000000005.json'])
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
    expect(out).toEqual({ sentReports: 5, batches: 1, left: 0, contextReports: 0 })
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

describe('drain with context (already-sent reports re-sent)', () => {
  const MIN = 60_000
  /** Reports 1..sent sent (one a minute), then unsent..: what a spool looks like between two heartbeats. */
  const spoolWith = (sent: number, unsent: number, clock = new FakeClock()) => {
    const spool = new ReportSpool(join(dir, 'spool'))
    for (let seq = 1; seq <= sent; seq++) spool.add(report(seq, clock.advance(MIN).iso()))
    spool.markSent(spool.list())
    for (let seq = sent + 1; seq <= sent + unsent; seq++) spool.add(report(seq, clock.advance(MIN).iso()))
    return { spool, clock }
  }
  const seqs = (b: ReportBatchV1 | undefined) => b?.reports.map((r) => r.seq)
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

  it('puts the sent reports of the window first, sorted by seq, counted apart, and keeps what it sent in sent/', async () => {
    const { spool, clock } = spoolWith(100, 15) // minutes 1..100 sent, 101..115 waiting
    const sender = new FakeSender()
    const out = await drainSpool({
      spool,
      sender,
      reason: 'heartbeat',
      resend: { now: clock.now(), windowMs: 90 * MIN },
    })
    // now = minute 115: the window starts at minute 25.
    expect(seqs(sender.batches[0])).toEqual(range(25, 115))
    // The control plane may skip what it applied already among the re-sent ones, unchecked.
    expect(sender.batches[0]!.resentThrough).toBe(100)
    expect(out).toEqual({ sentReports: 15, batches: 1, left: 0, contextReports: 76 })
    expect(spool.list()).toEqual([])
    expect(readdirSync(spool.sentDir)).toHaveLength(91)
  })

  it('puts the context in the first message only', async () => {
    const { spool, clock } = spoolWith(3, 2)
    spool.add(
      report(
        6,
        clock.iso(),
        Array.from({ length: 60 }, (_, i) => fs(`/srv/${i}`, 50)),
      ),
    )
    const big = spool.list().at(-1)!.bytes
    const sender = new FakeSender()
    const out = await drainSpool({
      spool,
      sender,
      reason: 'change',
      resend: { now: clock.now(), windowMs: 90 * MIN },
      maxBatchBytes: big + 300, // the big report goes alone
    })
    expect(sender.batches.map(seqs)).toEqual([[1, 2, 3, 4, 5], [6]])
    expect(out).toMatchObject({ sentReports: 3, batches: 2, contextReports: 3 })
  })

  it('stays within 120 reports a batch: the oldest context goes first', async () => {
    const { spool, clock } = spoolWith(110, 30)
    const sender = new FakeSender()
    const out = await drainSpool({
      spool,
      sender,
      reason: 'heartbeat',
      resend: { now: clock.now(), windowMs: 24 * 60 * MIN },
    })
    expect(seqs(sender.batches[0])).toEqual(range(21, 140)) // 90 newest of the 110 sent, then the 30 waiting
    expect(out.contextReports).toBe(90)

    // The byte bound drops the oldest context first too.
    const sent = spool.recentSent(clock.now(), 24 * 60 * MIN)
    const chunk = sent.slice(-2).map((s) => ({ ...s.entry, seq: s.entry.seq + 1000 }))
    // Room for the 2 of the chunk and 3 of the context (each report costs its bytes and a comma), not one byte more.
    const cost = [...chunk, ...sent.slice(-3).map((s) => s.entry)].reduce((n, e) => n + e.bytes + 1, 256)
    const opts = { host: HOST.id, unsent: new Set<number>(), maxCount: 120 }
    const fit = fitContext(sent, chunk, { ...opts, maxBytes: cost })
    expect(fitContext(sent, chunk, { ...opts, maxBytes: cost - 1 })).toHaveLength(2)
    expect(fit.map((s) => s.entry.seq)).toEqual(sent.slice(-3).map((s) => s.entry.seq))
  })

  it("never puts a report twice in one batch, nor another host's report as context", async () => {
    const { spool, clock } = spoolWith(3, 2)
    // The same report both waiting and in sent/ (a crash between send and move, say): it goes once, as unsent.
    copyFileSync(join(spool.dir, '0000000000000004.json'), join(spool.sentDir, '0000000000000004.json'))
    spool.add(report(3, clock.iso())) // and seq 3 again, waiting
    writeFileSync(
      join(spool.sentDir, '0000000000000002.json'),
      JSON.stringify({ ...report(2, clock.iso()), host: { ...HOST, id: 'i-0fedcba9876543210' } }),
    )
    const sender = new FakeSender()
    const out = await drainSpool({ spool, sender, reason: 'change', resend: { now: clock.now(), windowMs: 90 * MIN } })
    expect(seqs(sender.batches[0])).toEqual([1, 3, 4, 5])
    expect(sender.batches[0]!.reports.every((r) => r.host.id === HOST.id)).toBe(true)
    expect(out).toMatchObject({ sentReports: 3, contextReports: 1 })
    expect(JSON.parse(readFileSync(join(spool.sentDir, '0000000000000003.json'), 'utf8')).time).toBe(clock.iso())
  })

  it('moves nothing to sent/ when the send fails; the next send carries the waiting reports and the context', async () => {
    const { spool, clock } = spoolWith(3, 2)
    const sender = new FakeSender()
    sender.failures = 2
    const resend = { now: clock.now(), windowMs: 90 * MIN }
    const failed = await drainSpool({ spool, sender, reason: 'change', resend, ...noSleep, maxAttempts: 2 })
    expect(failed.error).toBeDefined()
    expect(failed).toMatchObject({ sentReports: 0, left: 2, contextReports: 0 })
    expect(spool.list().map((e) => e.seq)).toEqual([4, 5])
    expect(readdirSync(spool.sentDir)).toHaveLength(3)

    spool.add(report(6, clock.advance(MIN).iso()))
    const out = await drainSpool({ spool, sender, reason: 'change', resend: { now: clock.now(), windowMs: 90 * MIN } })
    expect(seqs(sender.batches[0])).toEqual([1, 2, 3, 4, 5, 6])
    expect(out).toEqual({ sentReports: 3, batches: 1, left: 0, contextReports: 3 })
    expect(readdirSync(spool.sentDir)).toHaveLength(6)
  })

  it('re-sends nothing and keeps nothing with a window of 0', async () => {
    const { spool, clock } = spoolWith(3, 2)
    const sender = new FakeSender()
    const out = await drainSpool({ spool, sender, reason: 'heartbeat', resend: { now: clock.now(), windowMs: 0 } })
    expect(seqs(sender.batches[0])).toEqual([4, 5])
    expect(out.contextReports).toBe(0)
    expect(readdirSync(spool.sentDir)).toEqual([])
  })
})

describe('transportReport', () => {
  const setup = (resendMs = 90 * 60_000) => {
    const clock = new FakeClock()
    const sender = new FakeSender()
    const deps = {
      policies: POLICIES,
      spool: new ReportSpool(join(dir, 'spool')),
      sender,
      statePath: join(dir, 'transport.json'),
      heartbeatMs: 15 * 60_000,
      resendMs,
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
    const { sender, tick } = setup(0) // resendMinutes 0: each report goes once, and none is kept once sent
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
    expect(sender.batches.at(-1)!.reports.map((r) => r.seq)).toEqual([23])
    expect(readdirSync(join(dir, 'spool', 'sent'))).toEqual([])
  })

  it('carries the sent reports of the last 90 minutes with every heartbeat and change, and prunes sent/ at every run', async () => {
    const { sender, tick } = setup()
    const sentDir = join(dir, 'spool', 'sent')
    const seqs = (b: ReportBatchV1) => b.reports.map((r) => r.seq)
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
    let last: Awaited<ReturnType<typeof tick>> | undefined
    for (let minute = 1; minute <= 31; minute++) last = await tick(50)
    // Heartbeats at minutes 1, 16 and 31 (report seq = minute): the one at 31 carries all that went before.
    expect(last!.reason).toBe('heartbeat')
    expect(seqs(sender.batches[2]!)).toEqual(range(1, 31))
    expect(last!.drain).toMatchObject({ sentReports: 15, contextReports: 16 })

    for (let minute = 32; minute <= 181; minute++) last = await tick(50)
    expect(last!.reason).toBe('heartbeat')
    // Minute 181: the window starts at minute 91.
    expect(seqs(sender.batches.at(-1)!)).toEqual(range(91, 181))
    expect(readdirSync(sentDir)).toHaveLength(91)

    expect((await tick(50)).reason).toBeUndefined() // no send at minute 182, but sent/ loses minute 91
    expect(readdirSync(sentDir)).toHaveLength(90)
    expect(readdirSync(sentDir)).not.toContain('0000000000000091.json')

    const change = await tick(95)
    expect(change.reason).toBe('change')
    expect(seqs(sender.batches.at(-1)!)).toEqual(range(93, 183))
    expect(change.drain).toMatchObject({ sentReports: 2, contextReports: 89 })
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
    // Report 1 (sent with the first heartbeat) rides along again as context.
    expect(sender.batches.at(-1)!.reports.map((r) => r.seq)).toEqual([1, 2, 3])
    expect(retried.drain).toMatchObject({ sentReports: 2, contextReports: 1 })
    expect(readTransportState(deps.statePath).changePending).toBeUndefined()
    expect(readdirSync(join(dir, 'spool'))).toEqual(['sent'])
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
