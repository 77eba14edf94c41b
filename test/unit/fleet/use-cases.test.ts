import { describe, expect, it } from 'vitest'
import { MemoryCommandRunner } from '../../../shared/adapters/fleet/memory-command-runner.ts'
import { MemoryEventPublisher } from '../../../shared/adapters/fleet/memory-event-publisher.ts'
import { MemoryFleetStore } from '../../../shared/adapters/fleet/memory-fleet-store.ts'
import {
  MemoryActionQueue,
  MemoryEvaluationQueue,
  MemoryNotificationQueue,
} from '../../../shared/adapters/fleet/memory-queues.ts'
import {
  applyToHost,
  CommandRateLimitedError,
  deliverNotification,
  dispatchRemediation,
  evaluateShard,
  hostOfSender,
  InvalidReportError,
  ingestReport,
  planRound,
  recordCommandResult,
  sendDigest,
  shardOf,
} from '../../../shared/app/fleet/index.ts'
import type {
  Observation,
  RemediateDecision,
  RemediationResultV1,
  ReportBatchV1,
  ReportV1,
} from '../../../shared/contracts/index.ts'
import type { Notifier } from '../../../shared/ports/notifier.ts'
import { NotifierError } from '../../../shared/ports/notifier.ts'
import { FakeClock, fs, HOST, policiesFrom } from '../../support/builders.ts'

const POLICIES = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: root-disk }
spec:
  observe: filesystem
  match: { mount: / }
  severity:
    critical: { when: "usedPercent >= 90.0" }
  remediate:
    - run: disk-cleanup
      params: { roots: [/var/log], logsOlderThan: 30d }
    - escalate: page
  guards:
    limit: { max: 2, within: 1h, then: escalate }
  allowDestructive: true
  notify: [ops]
---
apiVersion: ansai/v1
kind: Policy
metadata: { name: host-silent }
spec:
  observe: host
  severity:
    critical: { when: "silentMinutes > 15" }
  notify: [ops]
`)

const SENDER = `AROAEXAMPLEROLEID:${HOST.id}`

const setup = () => {
  const clock = new FakeClock()
  const now = () => new Date(clock.now())
  const store = new MemoryFleetStore()
  const actions = new MemoryActionQueue({ clock: now })
  const notifications = new MemoryNotificationQueue()
  const events = new MemoryEventPublisher()
  const commands = new MemoryCommandRunner()
  const evaluations = new MemoryEvaluationQueue()
  const fleet = {
    policies: POLICIES,
    store,
    actions,
    notifications,
    events,
    channels: ['ops'],
    defaultChannels: [],
    dryRun: false,
    clock: now,
  }
  let seq = 0
  let msg = 0
  const body = (observations: Observation[], n = 1): string => {
    const reports: ReportV1[] = []
    for (let i = 0; i < n; i++) {
      clock.advance(60_000)
      reports.push({
        schema: 'ansai.report.v1',
        host: HOST,
        agent: { version: 'test' },
        time: clock.iso(),
        seq: ++seq,
        observations,
        probeErrors: [],
      })
    }
    const batch: ReportBatchV1 = { schema: 'ansai.report-batch.v1', reason: 'change', reports }
    return JSON.stringify(batch)
  }
  const ingest = (b: string, senderId = SENDER) =>
    ingestReport({ ...fleet, shards: 4 }, { body: b, senderId, messageId: `m-${++msg}`, receivedAt: clock.iso() })
  return { clock, store, actions, notifications, events, commands, evaluations, fleet, body, ingest }
}

const dispatchDeps = (t: ReturnType<typeof setup>, over: { dryRun?: boolean; maxCommandsPerMinute?: number } = {}) => ({
  store: t.store,
  commands: t.commands,
  dryRun: over.dryRun ?? false,
  maxCommandsPerMinute: over.maxCommandsPerMinute ?? 100,
  clock: t.fleet.clock,
})

const resultLine = (d: RemediateDecision, over: Partial<RemediationResultV1> = {}): string =>
  JSON.stringify({
    schema: 'ansai.remediation-result.v1',
    key: d.key,
    remediation: d.remediation,
    host: d.host,
    status: 'succeeded',
    dryRun: false,
    startedAt: '2026-11-23T00:10:00.000Z',
    finishedAt: '2026-11-23T00:10:01.000Z',
    durationMs: 1000,
    summary: 'removed 12 files, 3.0 GiB',
    bytesRecovered: { logs: 3 * 2 ** 30 },
    evidence: {},
    ...over,
  })

/** The first queued fix sent as an SSM command, which SSM then reports done with the agent's result line. */
const runFirstFix = async (t: ReturnType<typeof setup>) => {
  const decision = t.actions.sent[0]!
  await dispatchRemediation(dispatchDeps(t), decision)
  const cmd = t.commands.commands[0]!
  t.commands.setInvocation(cmd.commandId, HOST.id, { status: 'Success', responseCode: 0, stdout: resultLine(decision) })
  return { decision, cmd }
}

describe('the fleet path, in memory', () => {
  it('report → decision → one command → result → verifying → resolved, told once per step', async () => {
    const t = setup()
    const first = await t.ingest(t.body([fs('/', 95)]))
    expect(first).toMatchObject({ status: 'applied', host: HOST.id, reports: 1 })
    expect(t.actions.sent).toHaveLength(1)
    const decision = t.actions.sent[0]!
    expect(decision).toMatchObject({ remediation: 'disk-cleanup', host: HOST.id, dryRun: false })
    expect(t.events.published.map((e) => e.type)).toContain('ansai.incident.opened.v1')
    expect(t.notifications.sent.map((n) => n.channel)).toEqual(['ops'])

    // Delivered twice (at-least-once): one command.
    const d1 = await dispatchRemediation(dispatchDeps(t, { dryRun: false }), decision)
    const d2 = await dispatchRemediation(dispatchDeps(t, { dryRun: false }), decision)
    expect(d1.status).toBe('sent')
    expect(d2.status).toBe('duplicate')
    expect(t.commands.commands).toHaveLength(1)
    const cmd = t.commands.commands[0]!
    expect(cmd.document).toBe('ANSAI-CleanupDisk')
    expect(cmd.parameters).toMatchObject({
      roots: '["/var/log"]',
      logsOlderThan: '30d',
      ansaiKey: decision.key,
      ansaiDryRun: 'false',
    })

    // SSM reports the command done, twice.
    t.commands.setInvocation(cmd.commandId, HOST.id, {
      status: 'Success',
      responseCode: 0,
      stdout: `progress…\n${resultLine(decision)}\n`,
    })
    const ev = { commandId: cmd.commandId, host: HOST.id, status: 'Success', document: cmd.document }
    const deps = { ...t.fleet, commands: t.commands }
    expect(await recordCommandResult(deps, ev)).toMatchObject({ status: 'recorded', result: 'succeeded' })
    expect(await recordCommandResult(deps, ev)).toMatchObject({ status: 'duplicate' })
    const verifying = await t.store.listIncidents({ status: 'open', limit: 10 })
    expect(verifying.map((i) => i.status)).toEqual(['verifying'])

    // The next report confirms it.
    t.notifications.drain()
    await t.ingest(t.body([fs('/', 60)]))
    const after = await t.store.listIncidents({ status: 'all', limit: 10 })
    expect(after.map((i) => i.status)).toEqual(['resolved'])
    const told = t.notifications.sent
    expect(told).toHaveLength(1)
    expect(told[0]!.text).toContain('disk-cleanup')
    expect(t.events.published.map((e) => e.type)).toEqual(
      expect.arrayContaining(['ansai.fix.verified.v1', 'ansai.incident.resolved.v1']),
    )
    expect(t.actions.sent).toHaveLength(1)
  })

  it('a redelivered report changes nothing and queues nothing new; an older one is stale', async () => {
    const t = setup()
    const b = t.body([fs('/', 95)])
    await t.ingest(b)
    const version = (await t.store.getHostState(HOST.id))!.version
    const again = await t.ingest(b)
    expect(again.status).toBe('stale')
    expect((await t.store.getHostState(HOST.id))!.version).toBe(version)
    expect(t.actions.sent).toHaveLength(1)
  })

  it('rejects and audits a report whose sender is another instance, and refuses garbage with a clear error', async () => {
    const t = setup()
    const out = await t.ingest(t.body([fs('/', 95)]), 'AROAEXAMPLEROLEID:i-0fedcba9876543210')
    expect(out).toMatchObject({ status: 'rejected', host: HOST.id })
    expect(await t.store.getHostState(HOST.id)).toBeUndefined()
    const audit = await t.store.listAudit({ hostId: HOST.id, limit: 10 })
    expect(audit[0]).toMatchObject({ kind: 'error' })
    expect(JSON.stringify(audit[0]!.data)).toContain('i-0fedcba9876543210')
    await expect(t.ingest('{"schema":"ansai.report.v1"')).rejects.toThrow(InvalidReportError)
    await expect(t.ingest(JSON.stringify({ schema: 'ansai.report.v1', host: { id: 'x' } }))).rejects.toThrow(
      /report\.host\.hostname/,
    )
  })

  it('refuses params that would not pass the SSM document before anything is sent', async () => {
    const t = setup()
    await t.ingest(t.body([fs('/', 95)]))
    const decision = t.actions.sent[0]!
    const evil = { ...decision, key: 'r-0000000000000001', params: { roots: ['/var/log; rm -rf /'] } }
    const out = await dispatchRemediation(dispatchDeps(t, { dryRun: false }), evil)
    expect(out.status).toBe('refused')
    expect(t.commands.commands).toHaveLength(0)
    const action = await t.store.getAction(evil.key)
    expect(action?.result).toMatchObject({ status: 'failed' })
    expect(action?.result?.error).toMatch(/refused before SendCommand/)
  })

  it('the fleet-wide breaker holds commands back past the minute’s budget, and lets them go the next minute', async () => {
    const t = setup()
    await t.ingest(t.body([fs('/', 95)]))
    const first = t.actions.sent[0]!
    const second = { ...first, key: 'r-00000000000000aa', host: 'i-0fedcba9876543210' }
    const deps = dispatchDeps(t, { maxCommandsPerMinute: 1 })
    expect((await dispatchRemediation(deps, first)).status).toBe('sent')
    await expect(dispatchRemediation(deps, second)).rejects.toThrow(CommandRateLimitedError)
    expect(t.commands.commands).toHaveLength(1)
    t.clock.advance(2 * 60_000) // the queue gives the message back after its visibility timeout
    expect((await dispatchRemediation(deps, second)).status).toBe('sent')
    expect(t.commands.commands.map((c) => c.host)).toEqual([HOST.id, 'i-0fedcba9876543210'])
  })

  it('a fleet in dry-run mode records a dry-run result and sends no command', async () => {
    const t = setup()
    await t.ingest(t.body([fs('/', 95)]))
    const out = await dispatchRemediation(dispatchDeps(t, { dryRun: true }), t.actions.sent[0]!)
    expect(out.status).toBe('dry-run')
    expect(t.commands.commands).toHaveLength(0)
  })

  it('a command that failed without a result line becomes a failed fix with what SSM said', async () => {
    const t = setup()
    await t.ingest(t.body([fs('/', 95)]))
    const decision = t.actions.sent[0]!
    await dispatchRemediation(dispatchDeps(t, { dryRun: false }), decision)
    const cmd = t.commands.commands[0]!
    t.commands.setInvocation(cmd.commandId, HOST.id, {
      status: 'Failed',
      responseCode: 127,
      stderr: 'ansai-agent: not found',
    })
    t.notifications.drain()
    const out = await recordCommandResult(
      { ...t.fleet, commands: t.commands },
      { commandId: cmd.commandId, host: HOST.id, status: 'Failed', document: cmd.document },
    )
    expect(out).toMatchObject({ status: 'recorded', result: 'failed' })
    const result = (await t.store.getAction(decision.key))?.result
    expect(result?.error).toContain('exit code 127: ansai-agent: not found')
    expect(t.events.published.map((e) => e.type)).toContain('ansai.fix.failed.v1')
  })

  it('the scheduled round escalates a fix that no report confirmed in time', async () => {
    const t = setup()
    await t.ingest(t.body([fs('/', 95)]))
    const { cmd, decision } = await runFirstFix(t)
    await recordCommandResult(
      { ...t.fleet, commands: t.commands },
      { commandId: cmd.commandId, host: HOST.id, status: 'Success', document: cmd.document },
    )
    expect((await t.store.getIncident(decision.incidentId))?.status).toBe('verifying')

    t.clock.advance(Date.parse(decision.verifyBy) - t.clock.now() + 60_000) // the host went quiet past verifyBy
    await evaluateShard({ ...t.fleet, commands: t.commands }, { shard: shardOf(HOST.id, 4), of: 4, at: t.clock.iso() })
    const inc = await t.store.getIncident(decision.incidentId)
    expect(inc?.status).toBe('escalated')
    expect(inc?.attempts.at(-1)?.status).toBe('unverified')
    expect(t.events.published.map((e) => e.type)).toContain('ansai.incident.escalated.v1')
  })

  it('scheduled rounds: one message per shard; a silent host is found and its SSM ping status looked up', async () => {
    const t = setup()
    await t.ingest(t.body([fs('/', 50)]))
    const tasks = await planRound({ evaluations: t.evaluations, shards: 4 }, t.clock.iso())
    expect(tasks.map((x) => x.shard)).toEqual([0, 1, 2, 3])
    expect(t.evaluations.sent).toHaveLength(4)

    t.commands.setPingStatus(HOST.id, 'ConnectionLost')
    t.clock.advance(25 * 60_000)
    const shard = shardOf(HOST.id, 4)
    const deps = { ...t.fleet, commands: t.commands }
    const out = await evaluateShard(deps, { shard, of: 4, at: t.clock.iso() })
    expect(out).toMatchObject({ hosts: 1, changed: 1, silent: [{ host: HOST.id, ping: 'ConnectionLost' }] })
    const open = await t.store.listIncidents({ status: 'open', limit: 10 })
    expect(open.map((i) => i.policy)).toEqual(['host-silent'])
    // The same task again (SQS redelivery) decides nothing new.
    const decisions = t.notifications.sent.length
    expect((await evaluateShard(deps, { shard, of: 4, at: t.clock.iso() })).changed).toBe(0)
    expect(t.notifications.sent.length).toBe(decisions)
    // Other shards hold no host.
    expect((await evaluateShard(deps, { shard: (shard + 1) % 4, of: 4, at: t.clock.iso() })).hosts).toBe(0)
  })

  it('a tick outside the round (a command result) does not make the round skip the host', async () => {
    const t = setup()
    await t.ingest(t.body([fs('/', 50)]))
    t.commands.setPingStatus(HOST.id, 'Online')
    t.clock.advance(25 * 60_000)
    const roundAt = t.clock.iso()
    t.clock.advance(30_000)
    await applyToHost(t.fleet, { host: HOST, now: t.clock.iso() }) // e.g. record-command-result's tick
    const out = await evaluateShard(
      { ...t.fleet, commands: t.commands },
      { shard: shardOf(HOST.id, 4), of: 4, at: roundAt },
    )
    expect(out).toMatchObject({ hosts: 1, changed: 1, silent: [{ host: HOST.id, ping: 'Online' }] })
    const stored = (await t.store.getHostState(HOST.id))!.state as { lastTickAt?: number }
    expect(stored.lastTickAt).toBe(Date.parse(roundAt))
  })

  it('delivers a message once; a transient failure is thrown for the queue to retry', async () => {
    const t = setup()
    await t.ingest(t.body([fs('/', 95)]))
    const message = t.notifications.sent[0]!
    const sent: string[] = []
    let failNext = true
    const notifier: Notifier = {
      send: async (m) => {
        if (failNext) {
          failNext = false
          throw new NotifierError('503', { retryable: true, status: 503 })
        }
        sent.push(m.id)
        return { channel: m.channel, messageId: m.id, attempts: 1 }
      },
    }
    const deps = { notifiers: new Map([['ops', notifier]]), store: t.store, clock: t.fleet.clock }
    await expect(deliverNotification(deps, message)).rejects.toThrow(/503/)
    expect((await deliverNotification(deps, message)).outcome).toBe('sent')
    expect((await deliverNotification(deps, message)).outcome).toBe('duplicate')
    expect(sent).toEqual([message.id])
  })

  it('holds "fix started": dropped once the fix resolved the incident, delivered while it is still open', async () => {
    const run = async (resolveFirst: boolean) => {
      const t = setup()
      const fleet = { ...t.fleet, holdFixStartedSeconds: 120 }
      await ingestReport(
        { ...fleet, shards: 4 },
        { body: t.body([fs('/', 95)]), senderId: SENDER, messageId: 'm-1', receivedAt: t.clock.iso() },
      )
      const queued = t.notifications.drain()
      expect(queued.map((m) => [m.body.event, m.delaySeconds])).toEqual([['ansai.fix.started.v1', 120]])
      const { cmd } = await runFirstFix(t)
      const ev = { commandId: cmd.commandId, host: HOST.id, status: 'Success', document: cmd.document }
      await recordCommandResult({ ...fleet, commands: t.commands }, ev)
      if (resolveFirst) {
        await ingestReport(
          { ...fleet, shards: 4 },
          { body: t.body([fs('/', 60)]), senderId: SENDER, messageId: 'm-2', receivedAt: t.clock.iso() },
        )
      }
      const sent: string[] = []
      const notifier: Notifier = {
        send: async (m) => {
          sent.push(m.event)
          return { channel: m.channel, messageId: m.id, attempts: 1 }
        },
      }
      const deps = {
        notifiers: new Map([['ops', notifier]]),
        store: t.store,
        clock: t.fleet.clock,
        holdFixStartedSeconds: 120,
      }
      const d = await deliverNotification(deps, queued[0]!.body)
      return { outcome: d.outcome, sent, t }
    }
    const resolved = await run(true)
    expect(resolved.outcome).toBe('superseded')
    expect(resolved.sent).toEqual([])
    expect(resolved.t.notifications.sent.map((m) => m.event)).toContain('ansai.incident.resolved.v1')
    const audit = await resolved.t.store.listAudit({ hostId: HOST.id, limit: 50 })
    expect(audit.some((a) => a.id?.endsWith(':superseded'))).toBe(true)
    const open = await run(false)
    expect(open.outcome).toBe('sent')
    expect(open.sent).toEqual(['ansai.fix.started.v1'])
  })

  it('the daily digest counts the day and goes out once per channel and day', async () => {
    const t = setup()
    await t.ingest(t.body([fs('/', 95)]))
    t.notifications.drain()
    const messages = await sendDigest({
      store: t.store,
      notifications: t.notifications,
      channels: ['ops'],
      clock: t.fleet.clock,
    })
    expect(messages).toHaveLength(1)
    expect(messages[0]!.text).toMatch(/Open incidents: 1 \(emergency 0, critical 1, warning 0\)/)
    expect(messages[0]!.id).toBe(`digest-${t.clock.iso().slice(0, 10)}-ops`)
  })

  it('sender ids: only instance and hybrid-node role sessions prove a host', () => {
    expect(hostOfSender('AROAEXAMPLE:i-0123456789abcdef0')).toBe('i-0123456789abcdef0')
    expect(hostOfSender('AROAEXAMPLE:mi-0123456789abcdef0')).toBe('mi-0123456789abcdef0')
    expect(hostOfSender('AIDAEXAMPLEUSER')).toBeUndefined()
    expect(hostOfSender('AROAEXAMPLE:i-0123456789abcdef0; x')).toBeUndefined()
  })
})
