/**
 * The fleet writes a host's state when something that decides changes, and a quiet report (only trend samples, the
 * sequence and the last-seen time moved) at most every `quietWriteMs`. The agent re-sends its recent reports with
 * every batch, so the state written after a run of deferred heartbeats is exactly the state that writing every
 * heartbeat would have given.
 */
import { describe, expect, it } from 'vitest'
import { MemoryEventPublisher } from '../../../shared/adapters/fleet/memory-event-publisher.ts'
import { MemoryFleetStore } from '../../../shared/adapters/fleet/memory-fleet-store.ts'
import { MemoryActionQueue, MemoryNotificationQueue } from '../../../shared/adapters/fleet/memory-queues.ts'
import { applyToHost, evaluateShard, ingestReport, quietChange } from '../../../shared/app/fleet/index.ts'
import type { Host, Observation, ReportBatchV1, ReportV1 } from '../../../shared/contracts/index.ts'
import type { HostState } from '../../../shared/engine/state.ts'
import type { FleetHost } from '../../../shared/ports/fleet.ts'
import type { VersionedHostState } from '../../../shared/ports/store.ts'
import { FakeClock, fs, HOST, policiesFrom } from '../../support/builders.ts'

const POLICIES = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: root-disk }
spec:
  observe: filesystem
  match: { mount: / }
  trend: { window: 1h, minSamples: 4 }
  severity:
    warning: { when: "usedPercent >= 80" }
    critical: { when: "usedPercent >= 90 || hoursToFull < 6", for: 2 cycles }
  notify: [ops]
---
apiVersion: ansai/v1
kind: Policy
metadata: { name: host-silent }
spec:
  observe: host
  severity:
    critical: { when: "silentMinutes > 20" }
  notify: [ops]
`)

const MIN = 60_000
const SENDER = `AROAEXAMPLEROLEID:${HOST.id}`

/** A store that counts writes and the consistency of each state read. */
class CountingStore extends MemoryFleetStore {
  puts: number[] = []
  reads: boolean[] = []
  touches: FleetHost[] = []
  failTouch = false
  override async putHostState(hostId: string, state: HostState, expected: number | undefined): Promise<number> {
    this.puts.push(state.lastSeq)
    return super.putHostState(hostId, state, expected)
  }
  private batchRead = false
  override async getHostState(hostId: string, options?: { consistent?: boolean }) {
    if (!this.batchRead) this.reads.push(options?.consistent !== false)
    return super.getHostState(hostId)
  }
  /** The twin's batch read goes through getHostState: not a read of its own. */
  override async getHostStates(ids: readonly string[]): Promise<Map<string, VersionedHostState>> {
    this.batchRead = true
    try {
      return await super.getHostStates(ids)
    } finally {
      this.batchRead = false
    }
  }
  override async touchHost(host: FleetHost): Promise<void> {
    if (this.failTouch) throw new Error('index unavailable')
    this.touches.push(host)
    return super.touchHost(host)
  }
}

const fleet = (quietWriteMs: number, clock: FakeClock) => {
  const now = () => new Date(clock.now())
  const store = new CountingStore()
  const notifications = new MemoryNotificationQueue()
  return {
    store,
    notifications,
    deps: {
      policies: POLICIES,
      store,
      actions: new MemoryActionQueue({ clock: now }),
      notifications,
      events: new MemoryEventPublisher(),
      channels: ['ops'],
      defaultChannels: [],
      dryRun: false,
      clock: now,
      quietWriteMs,
      shards: 4,
    },
  }
}

/** A disk filling slowly (0.5 % an hour: far from full), with a little noise. */
const disk = (minute: number): Observation => fs('/', 50 + minute / 120 + ((minute * 7) % 5) / 100)

const report = (host: Host, minute: number, t0: number): ReportV1 => ({
  schema: 'ansai.report.v1',
  host,
  agent: { version: 'test' },
  time: new Date(t0 + minute * MIN).toISOString(),
  seq: minute + 1,
  observations: [disk(minute)],
  probeErrors: [],
})

const batch = (reports: ReportV1[]): string =>
  JSON.stringify({ schema: 'ansai.report-batch.v1', reason: 'heartbeat', reports } satisfies ReportBatchV1)

/** One heartbeat of `reports` into the fleet, received now. */
const heartbeat = (q: ReturnType<typeof fleet>, clock: FakeClock, reports: ReportV1[], messageId: string) =>
  ingestReport(q.deps, { body: batch(reports), senderId: SENDER, messageId, receivedAt: clock.iso() })

describe('quiet writes', () => {
  it('defers quiet heartbeats and writes once an hour; what it writes equals writing every heartbeat', async () => {
    const clock = new FakeClock()
    const t0 = clock.now()
    const every = fleet(0, clock)
    const quiet = fleet(60 * MIN, clock)
    const history = new Map<number, HostState>()
    // Four hours of heartbeats every 15 minutes: the plain fleet gets each heartbeat's 15 reports; the quiet one also
    // the reports of the 90 minutes before (the agent's `resendMinutes`).
    for (let end = 15; end <= 240; end += 15) {
      clock.advance(t0 + end * MIN - clock.now())
      const fresh = Array.from({ length: 15 }, (_, i) => report(HOST, end - 15 + i, t0))
      const context = Array.from({ length: Math.min(90, end - 15) }, (_, i) => report(HOST, end - 15 - 1 - i, t0))
      const a = await ingestReport(every.deps, {
        body: batch(fresh),
        senderId: SENDER,
        messageId: `a-${end}`,
        receivedAt: clock.iso(),
      })
      const b = await ingestReport(quiet.deps, {
        body: batch([...context].reverse().concat(fresh)),
        senderId: SENDER,
        messageId: `b-${end}`,
        receivedAt: clock.iso(),
      })
      expect(a.status).toBe('applied')
      expect(['applied', 'deferred']).toContain(b.status)
      const s = (await every.store.getHostState(HOST.id))!.state
      history.set(s.lastSeq, s)
    }
    // 16 heartbeats: every one written by the plain fleet; the quiet one writes the first and then one an hour.
    expect(every.store.puts).toHaveLength(16)
    expect(quiet.store.puts.length).toBeLessThanOrEqual(5)
    expect(quiet.store.puts.length).toBeGreaterThanOrEqual(4)
    // Each state the quiet fleet wrote is the one the plain fleet had at the same sequence, samples and all.
    const written = (await quiet.store.getHostState(HOST.id))!.state
    const same = history.get(written.lastSeq)!
    const { indexed: _i, ...comparable } = written as HostState & { indexed?: string }
    const { indexed: _j, ...expected } = same as HostState & { indexed?: string }
    expect(comparable).toEqual(expected)
    expect(written.resources['root-disk']!['/']!.samples!.length).toBeGreaterThan(20)
  })

  it('writes a change at once, whatever the interval', async () => {
    const clock = new FakeClock()
    const t0 = clock.now()
    const q = fleet(60 * MIN, clock)
    const send = (reports: ReportV1[]) =>
      ingestReport(q.deps, {
        body: batch(reports),
        senderId: SENDER,
        messageId: `m-${clock.now()}`,
        receivedAt: clock.iso(),
      })
    expect((await send([report(HOST, 0, t0)])).status).toBe('applied')
    clock.advance(MIN)
    expect((await send([report(HOST, 1, t0)])).status).toBe('deferred')
    clock.advance(MIN)
    const full: ReportV1 = { ...report(HOST, 2, t0), observations: [fs('/', 85)] }
    expect((await send([full])).status).toBe('applied')
    expect(q.store.puts).toEqual([1, 3])
    expect((await q.store.getHostState(HOST.id))!.state.resources['root-disk']!['/']!.level).toBe('warning')
  })

  it('a tick counts host silence only beyond the quiet-write interval', async () => {
    const clock = new FakeClock()
    const t0 = clock.now()
    const q = fleet(60 * MIN, clock)
    await heartbeat(q, clock, [report(HOST, 0, t0)], 'm-0')
    const tick = (minutes: number) =>
      applyToHost(q.deps, { host: HOST, now: new Date(t0 + minutes * MIN).toISOString(), round: true })
    // 70 minutes without a write is 10 beyond the hour the host may have been quiet in: not silent (> 20) yet.
    expect((await tick(70)).out.incidents).toHaveLength(0)
    const late = await tick(85)
    expect(late.out.incidents.map((i) => `${i.policy} ${i.status}`)).toEqual(['host-silent open'])
    // The round asks SSM about it only past the interval too (the host's tick at 85 minutes is applied already).
    const round = (minutes: number) =>
      evaluateShard(
        {
          ...q.deps,
          commands: {
            pingStatus: async (ids: readonly string[]) => Object.fromEntries(ids.map((i) => [i, 'Online' as const])),
          } as never,
        },
        { shard: q.store.touches[0]!.shard, of: 4, at: new Date(t0 + minutes * MIN).toISOString() },
      )
    expect((await round(75)).silent).toEqual([])
    expect((await round(90)).silent).toEqual([{ host: HOST.id, ping: 'Online' }])
  })

  it('writes the host index before the state: for a new host, again when its tags change, never half', async () => {
    const clock = new FakeClock()
    const t0 = clock.now()
    const q = fleet(60 * MIN, clock)
    const send = (r: ReportV1) =>
      ingestReport(q.deps, { body: batch([r]), senderId: SENDER, messageId: `m-${r.seq}`, receivedAt: clock.iso() })
    q.store.failTouch = true
    await expect(send(report(HOST, 0, t0))).rejects.toThrow('index unavailable')
    expect(q.store.puts).toEqual([])
    q.store.failTouch = false
    await send(report(HOST, 0, t0))
    await send(report(HOST, 1, t0))
    await send(report(HOST, 2, t0))
    expect(q.store.touches.map((h) => h.tags)).toEqual([{ role: 'web' }])
    await send(report({ ...HOST, tags: { role: 'db' } }, 3, t0))
    expect(q.store.touches.map((h) => h.tags)).toEqual([{ role: 'web' }, { role: 'db' }])
    expect(q.store.puts).toEqual([1, 4])
  })

  it('reads eventually consistent first, and again strongly before carrying anything out', async () => {
    const clock = new FakeClock()
    const t0 = clock.now()
    const q = fleet(60 * MIN, clock)
    const send = (r: ReportV1) =>
      ingestReport(q.deps, { body: batch([r]), senderId: SENDER, messageId: `m-${r.seq}`, receivedAt: clock.iso() })
    await send(report(HOST, 0, t0))
    q.store.reads = []
    await send(report(HOST, 1, t0))
    expect(q.store.reads).toEqual([false])
    q.store.reads = []
    await send({ ...report(HOST, 2, t0), observations: [fs('/', 85)] })
    expect(q.store.reads).toEqual([false, true])
  })

  it('skips re-sent reports it has applied, unchecked; checks and applies re-sent ones it has not', async () => {
    const clock = new FakeClock()
    const t0 = clock.now()
    const q = fleet(60 * MIN, clock)
    const send = (reports: unknown[], resentThrough: number) =>
      ingestReport(q.deps, {
        body: JSON.stringify({ schema: 'ansai.report-batch.v1', reason: 'heartbeat', resentThrough, reports }),
        senderId: SENDER,
        messageId: `m-${resentThrough}`,
        receivedAt: clock.iso(),
      })
    clock.advance(10 * MIN)
    await heartbeat(
      q,
      clock,
      [0, 1, 2].map((m) => report(HOST, m, t0)),
      'first',
    )
    expect((await q.store.getHostState(HOST.id))!.state.lastSeq).toBe(3)
    // Seqs 1–3 come again (one of them damaged on the way: never looked at), with seq 4 new: a quiet heartbeat.
    const damaged = { ...report(HOST, 0, t0), observations: 'garbage' }
    const b = await send([damaged, report(HOST, 1, t0), report(HOST, 2, t0), report(HOST, 3, t0)], 3)
    expect(b).toMatchObject({ status: 'deferred', reports: 1, seq: 4 })
    // Deferred: the state still says 3, so a damaged re-sent seq 4 is checked, and refused with its place.
    const bad = { ...report(HOST, 3, t0), observations: 'garbage' }
    await expect(send([report(HOST, 2, t0), bad, report(HOST, 4, t0)], 4)).rejects.toThrow(
      /message does not match ansai\.report-batch\.v1: batch\.reports\[1\]\.observations/,
    )
    // Whole, the same batch is applied from seq 4 on, as if nothing had been deferred.
    const c = await send([report(HOST, 2, t0), report(HOST, 3, t0), report(HOST, 4, t0)], 4)
    expect(c).toMatchObject({ status: 'deferred', reports: 2, seq: 5 })
  })

  it('quietChange: samples, sequence and last-seen time are quiet; anything else is not', () => {
    const base: HostState = {
      v: 1,
      host: 'h',
      lastSeq: 1,
      lastSeenAt: 1,
      resources: { p: { r: { policy: 'p', resource: 'r', hist: [0], samples: [1, 2] } } },
    }
    const withResource = (over: object): HostState => ({
      ...base,
      resources: { p: { r: { ...base.resources.p!.r!, ...over } } },
    })
    expect(quietChange(base, { ...base, lastSeq: 9, lastSeenAt: 9 })).toBe(true)
    expect(quietChange(base, withResource({ samples: [1, 2, 3, 4] }))).toBe(true)
    expect(quietChange(base, withResource({ hist: [1] }))).toBe(false)
    expect(quietChange(base, withResource({ level: 'warning' }))).toBe(false)
    expect(quietChange(base, withResource({ last: { notAfter: 'x' } }))).toBe(false)
    expect(quietChange(base, { ...base, resources: {} })).toBe(false)
    expect(quietChange(base, { ...base, lastTickAt: 5 } as HostState)).toBe(false)
  })

  it('the round reads a page of states in one batch read', async () => {
    const clock = new FakeClock()
    const t0 = clock.now()
    const q = fleet(60 * MIN, clock)
    await heartbeat(q, clock, [report(HOST, 0, t0)], 'm')
    const shard = [0, 1, 2, 3].find((s) => q.store.touches[0]!.shard === s)!
    let batches = 0
    const getHostStates = q.store.getHostStates.bind(q.store)
    q.store.getHostStates = async (ids: readonly string[]): Promise<Map<string, VersionedHostState>> => {
      batches++
      return getHostStates(ids)
    }
    q.store.reads = []
    const out = await evaluateShard(
      { ...q.deps, commands: {} as never },
      { shard, of: 4, at: new Date(t0 + 5 * MIN).toISOString() },
    )
    expect(out.hosts).toBe(1)
    expect(batches).toBe(1)
    expect(q.store.reads).toEqual([])
  })
})
