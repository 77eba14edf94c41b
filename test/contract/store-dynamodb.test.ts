import { randomBytes } from 'node:crypto'
import { brotliCompressSync } from 'node:zlib'
/**
 * The DynamoDB FleetStore against moto_server: the StateStore, DedupStore and FleetStore contracts (the same suites
 * as the in-memory twin), then what only DynamoDB has: the documented item layout and TTLs, how writes spread over
 * partitions, throttling retried inside the SDK, the item size guard, error translation, several store instances on
 * one table, and the day-bucket walks checked against the in-memory twin over many days.
 */
import type { DynamoDBClient, DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb'
import fc from 'fast-check'
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
import { DynamoDbStoreError } from '../../functions/adapters/dynamodb-errors.ts'
import { shardOfId } from '../../functions/adapters/dynamodb-keys.ts'
import {
  createDynamoDbClient,
  DEFAULT_MAX_ATTEMPTS,
  DynamoDbFleetStore,
} from '../../functions/adapters/dynamodb-store.ts'
import { MemoryFleetStore } from '../../shared/adapters/fleet/memory-fleet-store.ts'
import type { Incident } from '../../shared/contracts/index.ts'
import type { FleetStore } from '../../shared/ports/fleet.ts'
import { type AuditRecord, ConflictError, type StateStore, StoreError } from '../../shared/ports/store.ts'
import { createFleetTable, deleteFleetTable } from '../support/fleet-table.ts'
import { startMotoOrSkip } from '../support/moto.ts'
import { failure } from '../support/rejection.ts'
import { dedupStoreContract } from '../unit/notify/dedup-contract.ts'
import { describeFleetStoreContract, fleetHost } from './fleet-store-contract.ts'
import { describeStateStoreContract } from './store-contract.ts'
import {
  at,
  attempt,
  HOST_A,
  HOST_B,
  hostState,
  incident,
  message,
  notifyDecision,
  remediate,
  result,
} from './store-fixtures.ts'

const moto = await startMotoOrSkip()
const DAY = 86_400_000

let tables = 0
const clientOf = (config: DynamoDBClientConfig = {}): DynamoDBClient =>
  createDynamoDbClient({ ...moto!.clientConfig, ...config })
const shared = moto ? clientOf() : undefined

/** A fresh table (the exact schema of names.ts), dropped when the test ends. */
const freshTable = async (): Promise<string> => {
  const name = `ansai-test-${++tables}`
  await createFleetTable(shared!, name)
  onTestFinished(() => deleteFleetTable(shared!, name))
  return name
}

const makeStore = async (): Promise<DynamoDbFleetStore> =>
  new DynamoDbFleetStore({ client: shared!, tableName: await freshTable() })

const scan = async (tableName: string): Promise<Record<string, unknown>[]> => {
  const doc = DynamoDBDocumentClient.from(shared!)
  const out: Record<string, unknown>[] = []
  let start: Record<string, unknown> | undefined
  do {
    const page = await doc.send(
      new ScanCommand({ TableName: tableName, ...(start ? { ExclusiveStartKey: start } : {}) }),
    )
    out.push(...(page.Items ?? []))
    start = page.LastEvaluatedKey
  } while (start)
  return out
}

/** An error shaped like the one DynamoDB answers a throttled request with. */
const throttlingError = (): Error =>
  Object.assign(new Error('The level of configured provisioned throughput for the table was exceeded.'), {
    name: 'ProvisionedThroughputExceededException',
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
  })

/**
 * Makes the first `times` calls of `command` (e.g. `TransactWriteItemsCommand`) fail as throttled, inside the SDK's
 * retry loop (the request never reaches the server, as with real throttling). Returns the attempts seen.
 */
const injectThrottling = (client: DynamoDBClient, command: string, times: number): { attempts: number } => {
  const seen = { attempts: 0 }
  let left = times
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === command) {
        seen.attempts += 1
        if (left > 0) {
          left -= 1
          throw throttlingError()
        }
      }
      return next(args)
    },
    { step: 'finalizeRequest', priority: 'low', name: `throttle-${command}` },
  )
  return seen
}

it('createDynamoDbClient retries adaptively (the SDK slows down when throttled), DEFAULT_MAX_ATTEMPTS times', async () => {
  const client = createDynamoDbClient({ region: 'us-east-1' })
  onTestFinished(() => client.destroy())
  expect(DEFAULT_MAX_ATTEMPTS).toBeGreaterThanOrEqual(3)
  expect(await client.config.maxAttempts()).toBe(DEFAULT_MAX_ATTEMPTS)
  expect(((await client.config.retryStrategy()) as { mode?: string }).mode).toBe('adaptive')
  const own = createDynamoDbClient({ region: 'us-east-1', maxAttempts: 2 })
  onTestFinished(() => own.destroy())
  expect(await own.config.maxAttempts()).toBe(2)
})

describe.skipIf(!moto)('DynamoDbFleetStore on moto_server', () => {
  afterAll(async () => {
    shared?.destroy()
    await moto?.stop()
  })

  describeStateStoreContract('DynamoDB (moto_server)', makeStore)
  dedupStoreContract('DynamoDbFleetStore', makeStore)
  describeFleetStoreContract('DynamoDB (moto_server)', makeStore)

  describe('item layout (as documented in dynamodb-store.ts)', () => {
    it('stores each item type under its keys, index partitions and TTL', async () => {
      const tableName = await freshTable()
      const store = new DynamoDbFleetStore({ client: shared!, tableName })
      await store.putHostState(HOST_A, hostState(HOST_A, 1), undefined)
      await store.touchHost(fleetHost(HOST_A, { shard: 5 }))
      await store.recordDecisions(HOST_A, [remediate('d-1')], at(0))
      await store.recordResult(result('d-1'))
      await store.claimDispatch('d-1', at(1), 60_000)
      await store.recordCommand('d-1', 'cmd-1', HOST_A, at(1))
      await store.upsertIncident(incident('inc-1'))
      await store.appendAudit([
        { kind: 'decision', at: at(0), hostId: HOST_A, incidentId: 'inc-1', key: 'd-1', id: 'decision:d-1', data: {} },
      ])
      await store.remember('m-1', at(2))
      await store.enqueueNotifications([message('m-1'), message('m-2')])
      await store.markNotificationSent('m-2', at(3))

      const items = await scan(tableName)
      const item = (pk: string, sk: string): Record<string, unknown> => {
        const found = items.find((i) => i.pk === pk && i.sk === sk)
        expect(found, `${pk} / ${sk}`).toBeDefined()
        return found!
      }
      const ttl = (ms: number): number => Math.ceil(ms / 1000)
      const bucket = (prefix: string): RegExp => new RegExp(`^${prefix}#2026-11-23#[0-7]$`)

      const state = item(`HOST#${HOST_A}`, 'STATE')
      expect(state).toMatchObject({ type: 'host-state', version: 1 })
      expect(state).not.toHaveProperty('gsi1pk') // the big item stays out of the index
      expect(item(`HOST#${HOST_A}`, 'INDEX')).toMatchObject({
        type: 'host',
        gsi1pk: 'SHARD#5',
        gsi1sk: `HOST#${HOST_A}`,
      })
      expect(item(`HOST#${HOST_A}`, 'INCIDENT#inc-1')).toMatchObject({ type: 'host-incident' })
      expect(item('ACTION#d-1', 'DECISION')).toMatchObject({
        type: 'decision',
        gsi1pk: expect.stringMatching(bucket('DECISIONS')),
      })
      expect(item('ACTION#d-1', 'DECISION')).not.toHaveProperty('expiresAt')
      expect(item('ACTION#d-1', 'RESULT')).toMatchObject({
        type: 'result',
        gsi1pk: expect.stringMatching(bucket('RESULTS')),
      })
      expect(item('ACTION#d-1', 'CLAIM')).toMatchObject({
        type: 'claim',
        commandId: 'cmd-1',
        expiresAt: ttl(Date.parse(at(1)) + 60_000 + 14 * DAY),
      })
      expect(item('CMD#cmd-1', 'CMD')).toMatchObject({
        type: 'command',
        key: 'd-1',
        expiresAt: ttl(Date.parse(at(1)) + 14 * DAY),
      })
      expect(item('INCIDENT#inc-1', 'INCIDENT')).toMatchObject({
        type: 'incident',
        gsi1pk: expect.stringMatching(/^INCIDENTS-OPEN#[0-7]$/),
      })
      const audit = items.find((i) => i.type === 'audit')!
      expect(audit).toMatchObject({
        pk: `AUDIT#${HOST_A}#2026-11-23`,
        gsi1pk: expect.stringMatching(bucket('AUDIT-LOG')),
        expiresAt: ttl(Date.parse(at(0)) + 90 * DAY),
      })
      expect(audit.sk).toBe(audit.gsi1sk)
      expect(item('AUDITID#decision:d-1', 'AUDITID')).toMatchObject({ expiresAt: ttl(Date.parse(at(0)) + 90 * DAY) })
      expect(item('DEDUP#m-1', 'DEDUP')).toMatchObject({
        gsi1pk: expect.stringMatching(bucket('DEDUP-LOG')),
        expiresAt: ttl(Date.parse(at(2)) + 14 * DAY),
      })
      expect(item('OUTBOX#m-1', 'OUTBOX')).toMatchObject({
        status: 'pending',
        gsi1pk: expect.stringMatching(/^OUTBOX-PENDING#[0-7]$/),
      })
      expect(item('OUTBOX#m-2', 'OUTBOX')).toMatchObject({
        status: 'sent',
        gsi1pk: expect.stringMatching(bucket('OUTBOX-DONE')),
      })

      // Resolved: the incident moves from the open index to its day bucket.
      await store.upsertIncident(
        incident('inc-1', { status: 'resolved', severity: 'ok', updatedAt: at(30), resolvedAt: at(30) }),
      )
      const resolved = (await scan(tableName)).find((i) => i.pk === 'INCIDENT#inc-1')!
      expect(resolved.gsi1pk).toMatch(bucket('INCIDENTS-RESOLVED'))

      const documented = new Set([
        'host-state',
        'host',
        'host-incident',
        'decision',
        'result',
        'claim',
        'command',
        'incident',
        'audit',
        'audit-id',
        'dedup',
        'outbox',
        'calendar',
        'counter',
      ])
      expect(items.filter((i) => !documented.has(String(i.type)))).toEqual([])
      expect(items.filter((i) => i.pk === 'CALENDAR').map((i) => i.sk)).toEqual(
        expect.arrayContaining(['decisions', 'results', 'audit', 'dedup', 'outbox-done']),
      )
    })

    it('spreads a burst of reports from many hosts: no partition takes more than its share', async () => {
      const tableName = await freshTable()
      const client = clientOf()
      onTestFinished(() => client.destroy())
      const writes = new Map<string, number>()
      const indexWrites = new Map<string, number>()
      const count = (m: Map<string, number>, k: unknown): void => {
        const key = typeof k === 'string' ? k : (k as { S?: string } | undefined)?.S
        if (key) m.set(key, (m.get(key) ?? 0) + 1)
      }
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const input = args.input as Record<string, unknown>
          const one = (i: Record<string, unknown> | undefined): void => {
            const item = (i?.Item ?? i?.Key) as Record<string, unknown> | undefined
            count(writes, item?.pk)
            count(indexWrites, (i?.Item as Record<string, unknown> | undefined)?.gsi1pk)
          }
          if (['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand'].includes(String(context.commandName))) {
            one(input)
          }
          if (context.commandName === 'TransactWriteItemsCommand') {
            for (const t of input.TransactItems as Record<string, Record<string, unknown>>[]) one(t.Put ?? t.Update)
          }
          return next(args)
        },
        { step: 'initialize', name: 'count-writes' },
      )
      const store = new DynamoDbFleetStore({ client, tableName })
      const HOSTS = 48
      for (let n = 0; n < HOSTS; n++) {
        const host = `i-${n.toString(16).padStart(17, '0')}`
        await store.touchHost(fleetHost(host, { shard: n % 16 }))
        const stored = await store.getHostState(host)
        await store.putHostState(host, hostState(host, 1), stored?.version)
        await store.recordDecisions(host, [remediate(`d-${host}`, { host, incidentId: `inc-${host}` })], at(0))
        await store.upsertIncident(incident(`inc-${host}`, { host }))
        await store.appendAudit([{ kind: 'decision', at: at(0), hostId: host, key: `d-${host}`, data: {} }])
        await store.recordResult(result(`d-${host}`, { host, finishedAt: at(2) }))
      }
      const sharedItems = new Set(['CALENDAR', 'COUNTER'])
      const perHost = [...writes].filter(([pk]) => !sharedItems.has(pk))
      // Every other partition belongs to one host, decision, incident or audit day of a host.
      expect(Math.max(...perHost.map(([, n]) => n))).toBeLessThanOrEqual(3)
      // The shared items: one calendar write per family and day, one counter block.
      expect(writes.get('CALENDAR')).toBeLessThanOrEqual(4)
      expect(writes.get('COUNTER')).toBe(1)
      // Index partitions: the host shards exactly even, the buckets within twice their fair share.
      for (let s = 0; s < 16; s++) expect(indexWrites.get(`SHARD#${s}`)).toBe(HOSTS / 16)
      for (const [pk, n] of indexWrites) {
        if (!pk.startsWith('SHARD#')) expect(n, pk).toBeLessThanOrEqual((2 * HOSTS) / 8)
      }
    }, 120_000)
  })

  describe('throttling', () => {
    it('retries a throttled write inside the SDK (adaptive retries) and the write lands exactly once', async () => {
      const tableName = await freshTable()
      const client = clientOf({ maxAttempts: 4 })
      onTestFinished(() => client.destroy())
      const tx = injectThrottling(client, 'TransactWriteItemsCommand', 2)
      const put = injectThrottling(client, 'PutItemCommand', 2)
      const store = new DynamoDbFleetStore({ client, tableName })
      const check = new DynamoDbFleetStore({ client: shared!, tableName })

      // An audit entry without id is appended every time it is written: a double write would show as two entries.
      const [entry] = await store.appendAudit([{ kind: 'observation', at: at(0), hostId: HOST_A, data: { n: 1 } }])
      expect(tx.attempts).toBe(3)
      expect((await check.listAudit({ limit: 10 })).map((e) => [e.seq, e.data])).toEqual([[entry!.seq, { n: 1 }]])

      expect(await store.putHostState(HOST_A, hostState(HOST_A, 1), undefined)).toBe(1)
      expect(put.attempts).toBe(3)
      expect(await check.getHostState(HOST_A)).toEqual({ state: hostState(HOST_A, 1), version: 1 })
    }, 60_000)

    it('gives up after maxAttempts with a retryable StoreError and nothing stored; the redelivery lands once', async () => {
      const tableName = await freshTable()
      const client = clientOf({ maxAttempts: 2 })
      onTestFinished(() => client.destroy())
      const tx = injectThrottling(client, 'TransactWriteItemsCommand', 2)
      const store = new DynamoDbFleetStore({ client, tableName })
      const check = new DynamoDbFleetStore({ client: shared!, tableName })
      const decisions = [remediate('d-1'), notifyDecision('n-1')]

      const err = await failure(store.recordDecisions(HOST_A, decisions, at(0)))
      expect(err).toBeInstanceOf(DynamoDbStoreError)
      expect(err).toBeInstanceOf(StoreError)
      expect(err).toMatchObject({
        code: 'unavailable',
        retryable: true,
        awsCode: 'ProvisionedThroughputExceededException',
        location: tableName,
      })
      expect((err as Error).message).toMatch(/throttled.*after 2 attempts/)
      expect((err as Error).cause).toMatchObject({ name: 'ProvisionedThroughputExceededException' })
      expect(tx.attempts).toBe(2)
      expect(await check.getAction('d-1')).toBeUndefined()
      expect(await check.getAction('n-1')).toBeUndefined()

      // At-least-once: the message comes back, the same call goes through once, and a third changes nothing.
      expect(await store.recordDecisions(HOST_A, decisions, at(0))).toEqual(['d-1', 'n-1'])
      expect(await store.recordDecisions(HOST_A, decisions, at(1))).toEqual([])
      expect((await check.getAction('d-1'))?.recordedAt).toBe(at(0))
    }, 60_000)
  })

  describe('large items and batches', () => {
    it('refuses an item over the 400 KB limit with a clear StoreError, storing nothing', async () => {
      const store = await makeStore()
      const huge = hostState(HOST_A, 1)
      // Incompressible: the limit is on the stored (compressed) item.
      huge.resources.big = {
        x: { policy: 'big', resource: 'x', hist: [0], last: { blob: randomBytes(450_000).toString('base64') } },
      }
      const err = await failure(store.putHostState(HOST_A, huge, undefined))
      expect(err).toBeInstanceOf(StoreError)
      expect(err).toMatchObject({ code: 'invalid' })
      expect((err as Error).message).toMatch(/host state of i-0a+1: \d+ bytes .*over the 400 KB/)
      expect(await store.getHostState(HOST_A)).toBeUndefined()

      // A very busy host (a few hundred KB) still fits.
      const busy = hostState(HOST_A, 1)
      busy.resources.big = { x: { policy: 'big', resource: 'x', hist: [0], last: { blob: 'y'.repeat(300_000) } } }
      expect(await store.putHostState(HOST_A, busy, undefined)).toBe(1)
      expect(await store.getHostState(HOST_A)).toEqual({ state: busy, version: 1 })

      const bigAudit: AuditRecord = { kind: 'result', at: at(0), hostId: HOST_A, data: { out: 'z'.repeat(410_000) } }
      const small: AuditRecord = { kind: 'result', at: at(0), hostId: HOST_A, data: {} }
      await expect(store.appendAudit([small, bigAudit])).rejects.toMatchObject({ code: 'invalid' })
      expect(await store.listAudit({ limit: 10 })).toEqual([])
    })

    it('stores a host state slim and compressed (a write costs a WRU per KB), and still reads the layouts of earlier versions', async () => {
      const tableName = await freshTable()
      const store = new DynamoDbFleetStore({ client: shared!, tableName })
      const state = hostState(HOST_A, 1)
      for (let i = 0; i < 40; i++) {
        state.resources[`policy-${i % 8}`] ??= {}
        state.resources[`policy-${i % 8}`]![`/mnt/disk-${i}`] = {
          policy: `policy-${i % 8}`,
          resource: `/mnt/disk-${i}`,
          hist: [i, 0, 0],
          samples: [1_763_856_000 + i * 60, 41.5 + i, 1_763_856_060 + i * 60, 41.7 + i],
        }
      }
      await store.putHostState(HOST_A, state, undefined)
      const [item] = (await scan(tableName)).filter((i) => i.sk === 'STATE')
      expect(item!.data).toBeUndefined()
      expect(item!.st).toBeInstanceOf(Uint8Array)
      const json = Buffer.byteLength(JSON.stringify(state))
      expect((item!.st as Uint8Array).byteLength).toBeLessThan(json / 3)
      expect(await store.getHostState(HOST_A)).toEqual({ state, version: 1 })

      // States written by earlier versions read the same (plain JSON in `data`, Brotli of the JSON in `dataZ`), and
      // the next write stores the slim form.
      const doc = DynamoDBDocumentClient.from(shared!)
      const { st: _s, ...rest } = item!
      await doc.send(new PutCommand({ TableName: tableName, Item: { ...rest, data: JSON.stringify(state) } }))
      expect(await store.getHostState(HOST_A)).toEqual({ state, version: 1 })
      await doc.send(
        new PutCommand({
          TableName: tableName,
          Item: { ...rest, dataZ: new Uint8Array(brotliCompressSync(JSON.stringify(state))) },
        }),
      )
      expect(await store.getHostState(HOST_A)).toEqual({ state, version: 1 })
      expect(await store.putHostState(HOST_A, state, 1)).toBe(2)
      const rewritten = (await scan(tableName)).find((i) => i.sk === 'STATE')!
      expect(rewritten.st).toBeInstanceOf(Uint8Array)
      expect(rewritten.dataZ).toBeUndefined()
    })

    it('writes a batch larger than one transaction, and a replay of it adds nothing', async () => {
      const store = await makeStore()
      const entries: AuditRecord[] = Array.from({ length: 130 }, (_, n) => ({
        kind: 'decision',
        at: at(n % 7),
        hostId: n % 2 ? HOST_A : HOST_B,
        id: `decision:${n}`,
        data: { n },
      }))
      const stored = await store.appendAudit(entries)
      expect(stored.map((e) => e.data.n)).toEqual(entries.map((e) => e.data.n))
      expect(stored.map((e) => e.seq)).toEqual([...stored.map((e) => e.seq)].sort((a, b) => a - b))
      expect(await store.appendAudit(entries)).toEqual([])
      expect(await store.listAudit({ limit: 500 })).toHaveLength(130)

      const decisions = Array.from({ length: 120 }, (_, n) => remediate(`d-${n}`))
      expect(await store.recordDecisions(HOST_A, decisions.slice(0, 50), at(0))).toHaveLength(50)
      expect(await store.recordDecisions(HOST_A, decisions, at(1))).toEqual(decisions.slice(50).map((d) => d.key))
    }, 60_000)
  })

  describe('errors', () => {
    it('translates a missing table into StoreError unavailable with the SDK error as cause', async () => {
      const store = new DynamoDbFleetStore({ client: shared!, tableName: 'no-such-table' })
      const err = await failure(store.getHostState(HOST_A))
      expect(err).toBeInstanceOf(DynamoDbStoreError)
      expect(err).toMatchObject({ code: 'unavailable', retryable: false, location: 'no-such-table' })
      expect((err as Error).cause).toMatchObject({ name: 'ResourceNotFoundException' })
    })

    it('a lost conditional write is a ConflictError with the condition failure as cause', async () => {
      const store = await makeStore()
      await store.putHostState(HOST_A, hostState(HOST_A, 1), undefined)
      const err = await failure(store.putHostState(HOST_A, hostState(HOST_A, 2), undefined))
      expect(err).toBeInstanceOf(ConflictError)
      expect(err).toMatchObject({ actualVersion: 1, location: store.tableName })
      expect((err as Error).cause).toMatchObject({ name: 'ConditionalCheckFailedException' })
    })

    it('refuses a table name it cannot use', () => {
      expect(() => new DynamoDbFleetStore({ client: shared!, tableName: '' })).toThrow(StoreError)
      expect(() => new DynamoDbFleetStore({ client: shared!, tableName: 't', retention: { auditMs: -1 } })).toThrow(
        /retention.auditMs/,
      )
    })
  })

  describe('several store instances on one table (Lambda containers)', () => {
    it('share state, race fairly, and each keeps its own append order', async () => {
      const tableName = await freshTable()
      const a = new DynamoDbFleetStore({ client: shared!, tableName })
      const b = new DynamoDbFleetStore({ client: DynamoDBDocumentClient.from(shared!), tableName })

      await a.putHostState(HOST_A, hostState(HOST_A, 1), undefined)
      const [ra, rb] = [(await a.getHostState(HOST_A))!, (await b.getHostState(HOST_A))!]
      const outcomes = await Promise.allSettled([
        a.putHostState(HOST_A, hostState(HOST_A, 2), ra.version),
        b.putHostState(HOST_A, hostState(HOST_A, 3), rb.version),
      ])
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1)
      expect(outcomes.find((o) => o.status === 'rejected')).toMatchObject({ reason: expect.any(ConflictError) })

      const [x] = await a.appendAudit([{ kind: 'observation', at: at(0), hostId: HOST_A, data: { from: 'a' } }])
      const [y] = await b.appendAudit([{ kind: 'observation', at: at(0), hostId: HOST_B, data: { from: 'b' } }])
      const [z] = await a.appendAudit([{ kind: 'observation', at: at(0), hostId: HOST_A, data: { from: 'a2' } }])
      expect(new Set([x!.seq, y!.seq, z!.seq]).size).toBe(3)
      expect(z!.seq).toBeGreaterThan(x!.seq)
      // b writes a day a has never seen; a still finds it (the calendar is read on every listing).
      await b.appendAudit([{ kind: 'error', at: at(3 * 24 * 60), hostId: HOST_B, data: { from: 'b-later' } }])
      // Same instant: by append order within a writer; across writers by their seq blocks (b reserved after a).
      expect(y!.seq).toBeGreaterThan(z!.seq)
      expect((await a.listAudit({ limit: 10 })).map((e) => e.data.from)).toEqual(['b-later', 'b', 'a2', 'a'])

      await b.recordDecisions(HOST_A, [remediate('d-1')], at(0))
      expect(await a.recordDecisions(HOST_A, [remediate('d-1'), remediate('d-2')], at(1))).toEqual(['d-2'])
      expect(await b.claimDispatch('d-1', at(0), 60_000)).toBe(true)
      expect(await a.claimDispatch('d-1', at(0), 60_000)).toBe(false)
    })
  })

  describe('walks over day buckets and index shards', () => {
    const H = 60
    const ids = (list: { id: string }[]): string[] => list.map((i) => i.id)

    it('finds a resolved incident that opened after the newest open one on the same day', async () => {
      const store = await makeStore()
      await store.upsertIncident(incident('open-1', { openedAt: at(10 * H), updatedAt: at(10 * H) }))
      await store.upsertIncident(
        incident('res-1', {
          openedAt: at(11 * H),
          updatedAt: at(12 * H),
          status: 'resolved',
          resolvedAt: at(12 * H),
          severity: 'ok',
        }),
      )
      expect(ids(await store.listIncidents({ status: 'all', limit: 1 }))).toEqual(['res-1'])
      expect(ids(await store.listIncidents({ status: 'all', limit: 2 }))).toEqual(['res-1', 'open-1'])
      expect(ids(await store.listIncidents({ status: 'open', limit: 2 }))).toEqual(['open-1'])
    })

    it('orders by openedAt, not by the day a resolved incident was filed under', async () => {
      const store = await makeStore()
      // Opened on day 0, resolved on day 5: filed under day 5, listed by its opening.
      await store.upsertIncident(
        incident('old-long', {
          openedAt: at(0),
          updatedAt: at(5 * 24 * H),
          status: 'resolved',
          resolvedAt: at(5 * 24 * H),
          severity: 'ok',
        }),
      )
      for (const d of [1, 2, 3, 4]) {
        await store.upsertIncident(incident(`open-d${d}`, { openedAt: at(d * 24 * H), updatedAt: at(d * 24 * H) }))
      }
      await store.upsertIncident(
        incident('res-d3', {
          openedAt: at(3 * 24 * H + 1),
          updatedAt: at(3 * 24 * H + 2),
          status: 'resolved',
          resolvedAt: at(3 * 24 * H + 2),
          severity: 'ok',
        }),
      )
      expect(ids(await store.listIncidents({ status: 'all', limit: 10 }))).toEqual([
        'open-d4',
        'res-d3',
        'open-d3',
        'open-d2',
        'open-d1',
        'old-long',
      ])
      expect(ids(await store.listIncidents({ status: 'all', limit: 2, before: at(3 * 24 * H + 1) }))).toEqual([
        'open-d3',
        'open-d2',
      ])
      expect(ids(await store.listIncidents({ status: 'all', limit: 3, before: at(2 * 24 * H) }))).toEqual([
        'open-d1',
        'old-long',
      ])
      // The summary of day 5 counts the resolution, of day 0 not (it resolved later).
      const day5 = await store.summarize({ since: at(5 * 24 * H), now: at(6 * 24 * H) })
      expect(day5.resolvedIncidents).toBe(1)
      expect((await store.summarize({ since: at(0), now: at(24 * H) })).resolvedIncidents).toBe(0)
    })

    it('orders a same-time group by id across the limit, within one index shard', async () => {
      const store = await makeStore()
      // Ids that land in the same shard, stored in reverse order, all opened at the same instant.
      const same = Array.from({ length: 400 }, (_, n) => `inc-${n}`)
        .filter((id) => shardOfId(id) === shardOfId('inc-0'))
        .slice(0, 5)
      expect(same).toHaveLength(5)
      for (const id of [...same].reverse())
        await store.upsertIncident(incident(id, { openedAt: at(5), updatedAt: at(5) }))
      await store.upsertIncident(incident('inc-newer', { openedAt: at(6), updatedAt: at(6) }))
      const sorted = [...same].sort()
      expect(ids(await store.listIncidents({ limit: 1 }))).toEqual(['inc-newer'])
      expect(ids(await store.listIncidents({ limit: 3 }))).toEqual(['inc-newer', ...sorted.slice(0, 2)])
      expect(ids(await store.listIncidents({ limit: 3, before: at(6) }))).toEqual(sorted.slice(0, 3))
    })

    it('finds audit entries of any day, newest first, per host, per incident and since a time', async () => {
      const store = await makeStore()
      await store.upsertIncident(incident('inc-9', { openedAt: at(2 * 24 * H), updatedAt: at(2 * 24 * H) }))
      await store.appendAudit([
        { kind: 'observation', at: at(0), hostId: HOST_A, data: { n: 0 } },
        { kind: 'decision', at: at(2 * 24 * H + 5), hostId: HOST_A, incidentId: 'inc-9', data: { n: 1 } },
        { kind: 'observation', at: at(7 * 24 * H), hostId: HOST_B, data: { n: 2 } },
        { kind: 'result', at: at(9 * 24 * H), hostId: HOST_A, incidentId: 'inc-9', data: { n: 3 } },
      ])
      const ns = (list: { data: Record<string, unknown> }[]): unknown[] => list.map((e) => e.data.n)
      expect(ns(await store.listAudit({ limit: 10 }))).toEqual([3, 2, 1, 0])
      expect(ns(await store.listAudit({ limit: 2 }))).toEqual([3, 2])
      expect(ns(await store.listAudit({ hostId: HOST_A, limit: 10 }))).toEqual([3, 1, 0])
      expect(ns(await store.listAudit({ incidentId: 'inc-9', limit: 10 }))).toEqual([3, 1])
      expect(ns(await store.listAudit({ since: at(2 * 24 * H + 5), limit: 10 }))).toEqual([3, 2, 1])
      expect(ns(await store.listAudit({ hostId: HOST_B, since: at(8 * 24 * H), limit: 10 }))).toEqual([])
    })
  })

  describe('day buckets, checked against the in-memory twin over many days', () => {
    const DAYS = 9
    const time = (minutes: number): string => at(minutes)

    const incidentArb = fc
      .record({
        host: fc.constantFrom(HOST_A, HOST_B),
        openedMin: fc.integer({ min: 0, max: DAYS * 24 * 60 }),
        resolvedAfter: fc.option(fc.integer({ min: 1, max: 3 * 24 * 60 }), { nil: undefined }),
        severity: fc.constantFrom('warning' as const, 'critical' as const, 'emergency' as const),
        verified: fc.boolean(),
      })
      .map((r): Omit<Incident, 'id'> => {
        const openedAt = time(r.openedMin)
        const resolvedAt = r.resolvedAfter === undefined ? undefined : time(r.openedMin + r.resolvedAfter)
        return {
          ...incident('x', {
            host: r.host,
            openedAt,
            updatedAt: resolvedAt ?? openedAt,
            severity: resolvedAt ? 'ok' : r.severity,
            status: resolvedAt ? 'resolved' : 'open',
            ...(resolvedAt ? { resolvedAt } : {}),
            attempts: [
              attempt('k', {
                status: r.verified ? 'verified' : 'unverified',
                startedAt: time(r.openedMin + 1),
                remediation: r.verified ? 'disk-cleanup' : 'service-restart',
              }),
            ],
          }),
        }
      })

    const auditArb = fc.record({
      host: fc.constantFrom(HOST_A, HOST_B),
      minute: fc.integer({ min: 0, max: DAYS * 24 * 60 }),
      incident: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    })

    const fill = async (
      stores: StateStore[],
      incidents: Omit<Incident, 'id'>[],
      audit: { host: string; minute: number; incident: number | undefined }[],
    ): Promise<void> => {
      // An incident's entries are its host's and come after it opened (the DynamoDB store looks for them there).
      const entries = audit.map((e) => {
        const owner = e.incident === undefined ? undefined : incidents[e.incident]
        return owner
          ? {
              ...e,
              host: owner.host,
              minute: Math.max(e.minute, Date.parse(owner.openedAt) / 60_000 - Date.parse(at(0)) / 60_000),
            }
          : e
      })
      for (const store of stores) {
        for (const [n, i] of incidents.entries()) await store.upsertIncident({ ...i, id: `inc-${n}` })
        // In a few batches, so seqs of both stores follow the same order.
        for (let k = 0; k < entries.length; k += 4) {
          await store.appendAudit(
            entries.slice(k, k + 4).map((e, j) => ({
              kind: 'observation' as const,
              at: time(e.minute),
              hostId: e.host,
              ...(e.incident === undefined ? {} : { incidentId: `inc-${e.incident}` }),
              data: { n: k + j },
            })),
          )
        }
        for (const [n, i] of incidents.entries()) {
          await store.recordResult(result(`r-${n}`, { host: i.host, finishedAt: i.resolvedAt ?? i.openedAt }))
        }
      }
    }

    it('lists incidents and audit entries, pages back and summarizes exactly as the twin', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(incidentArb, { maxLength: 14 }),
          fc.array(auditArb, { maxLength: 14 }),
          fc.integer({ min: 1, max: 6 }),
          fc.integer({ min: 0, max: DAYS * 24 * 60 }),
          fc.constantFrom(undefined, HOST_A, HOST_B),
          async (incidents, audit, limit, pivot, hostId) => {
            const twin: FleetStore = new MemoryFleetStore()
            const store = await makeStore()
            await fill([twin, store], incidents, audit)
            const host = hostId === undefined ? {} : { hostId }
            for (const status of ['open', 'all'] as const) {
              const q = { ...host, status, limit }
              expect(await store.listIncidents(q)).toEqual(await twin.listIncidents(q))
              const back = { ...q, before: time(pivot) }
              expect(await store.listIncidents(back)).toEqual(await twin.listIncidents(back))
            }
            const strip = (list: { seq: number }[]): unknown[] => list.map(({ seq: _, ...e }) => e)
            for (const q of [
              { ...host, limit },
              { ...host, limit, since: time(pivot) },
              { limit, incidentId: 'inc-1' },
              { ...host, limit, incidentId: 'inc-0', since: time(pivot) },
            ]) {
              expect(strip(await store.listAudit(q))).toEqual(strip(await twin.listAudit(q)))
            }
            const window = { ...host, since: time(pivot), now: time(pivot + 2 * 24 * 60) }
            expect(await store.summarize(window)).toEqual(await twin.summarize(window))
            const cut = {
              auditOlderThan: 4 * DAY,
              resolvedIncidentsOlderThan: 2 * DAY,
              actionsOlderThan: 5 * DAY,
              now: time(pivot + 24 * 60),
            }
            expect(await store.prune(cut)).toEqual(await twin.prune(cut))
            expect(await store.listIncidents({ status: 'all', limit: 50 })).toEqual(
              await twin.listIncidents({ status: 'all', limit: 50 }),
            )
            expect(strip(await store.listAudit({ limit: 50 }))).toEqual(strip(await twin.listAudit({ limit: 50 })))
          },
        ),
        { numRuns: 20 },
      )
    }, 180_000)
  })
})
