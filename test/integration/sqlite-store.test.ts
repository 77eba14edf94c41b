/**
 * The SQLite StateStore of the single-host shape, on real files: the StateStore and DedupStore contracts, and what
 * only a real database shows: reopening, two connections and four threads racing the conditional write, a newer
 * schema refused, migrations all-or-nothing, file modes, a failing batch and a killed writer leaving nothing
 * half-written, errors translated with the path and the SQLite error as cause.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { Worker } from 'node:worker_threads'
import fc from 'fast-check'
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
import { MIGRATIONS, SCHEMA_VERSION, SqliteStore } from '../../agent/store/sqlite.ts'
import { ConflictError, StoreError } from '../../shared/ports/store.ts'
import { describeStateStoreContract } from '../contract/store-contract.ts'
import {
  at,
  HOST_A,
  hostState,
  incident,
  message,
  notifyDecision,
  remediate,
  result,
} from '../contract/store-fixtures.ts'
import { dedupStoreContract } from '../unit/notify/dedup-contract.ts'

const root = mkdtempSync(join(tmpdir(), 'ansai-sqlite-store-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let n = 0
/** A fresh path in a directory that does not exist yet (the store creates it). */
const freshPath = (): string => join(root, `case-${++n}`, 'state', 'ansai.db')

/** Open a store, closed again when the test ends. */
const open = (path: string, options?: Parameters<typeof SqliteStore.open>[1]): SqliteStore => {
  const store = SqliteStore.open(path, options)
  onTestFinished(() => store.close())
  return store
}

/** A raw connection beside the store, to look at rows the port does not show. */
const raw = (path: string): DatabaseSync => {
  const db = new DatabaseSync(path)
  onTestFinished(() => {
    if (db.isOpen) db.close()
  })
  return db
}

const count = (db: DatabaseSync, sql: string): number => Number((db.prepare(sql).get() as { n: number }).n)

const modeOf = (path: string): number => statSync(path).mode & 0o777

const failure = async (p: Promise<unknown> | (() => unknown)): Promise<unknown> => {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    return err
  }
  throw new Error('expected a failure, but it succeeded')
}

describeStateStoreContract('sqlite (file)', () => open(freshPath()))
describeStateStoreContract('sqlite (:memory:)', () => open(':memory:'))
dedupStoreContract('SqliteStore', () => open(freshPath()))

describe('SqliteStore on a real file', () => {
  it('opens in WAL mode at the current schema version, with foreign keys on', () => {
    const path = freshPath()
    const store = open(path)
    expect(store.path).toBe(path)
    expect(store.journalMode).toBe('wal')
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION)
    expect(SCHEMA_VERSION).toBe(1)
    const db = raw(path)
    expect(db.prepare('SELECT version FROM schema_version ORDER BY version').all()).toEqual([{ version: 1 }])
    expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' })
  })

  it('finds everything again after closing and reopening the file', async () => {
    const path = freshPath()
    const first = SqliteStore.open(path)
    await first.putHostState(HOST_A, hostState(HOST_A, 4), undefined)
    await first.putHostState(HOST_A, hostState(HOST_A, 5), 1)
    await first.recordDecisions(HOST_A, [remediate('d-1'), notifyDecision('n-1')], at(0))
    await first.recordResult(result('d-1'))
    await first.upsertIncident(incident('inc-disk', { status: 'verifying', updatedAt: at(2) }))
    await first.appendAudit([
      { kind: 'action', at: at(1), hostId: HOST_A, key: 'd-1', data: { remediation: 'disk-cleanup' } },
    ])
    await first.remember('n-1', at(0))
    await first.enqueueNotifications([message('m-1'), message('m-2')])
    await first.markNotificationFailed('m-2', at(1), 'timeout', at(3))
    first.close()

    const again = open(path)
    expect(again.schemaVersion()).toBe(SCHEMA_VERSION)
    expect(await again.getHostState(HOST_A)).toEqual({ state: hostState(HOST_A, 5), version: 2 })
    expect(await again.getAction('d-1')).toEqual({
      key: 'd-1',
      hostId: HOST_A,
      incidentId: 'inc-disk',
      decision: remediate('d-1'),
      recordedAt: at(0),
      result: result('d-1'),
    })
    expect(await again.recordDecisions(HOST_A, [remediate('d-1'), notifyDecision('n-1')], at(5))).toEqual([])
    expect(await again.getIncident('inc-disk')).toEqual(incident('inc-disk', { status: 'verifying', updatedAt: at(2) }))
    expect((await again.listAudit({ limit: 10 })).map((e) => [e.kind, e.key, e.data])).toEqual([
      ['action', 'd-1', { remediation: 'disk-cleanup' }],
    ])
    expect(await again.seen('n-1')).toBe(true)
    expect((await again.pendingNotifications(10, at(4))).map((p) => [p.message.id, p.attempts])).toEqual([
      ['m-1', 0],
      ['m-2', 1],
    ])
  })

  it('two connections racing the conditional write: exactly one wins, on update and on create', async () => {
    const path = freshPath()
    const one = open(path)
    const two = open(path)
    await one.putHostState(HOST_A, hostState(HOST_A, 1), undefined)
    const seenByOne = (await one.getHostState(HOST_A))!
    const seenByTwo = (await two.getHostState(HOST_A))!
    const outcomes = await Promise.allSettled([
      one.putHostState(HOST_A, hostState(HOST_A, 2, 50), seenByOne.version),
      two.putHostState(HOST_A, hostState(HOST_A, 2, 60), seenByTwo.version),
    ])
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected'])
    const lost = (outcomes[1] as PromiseRejectedResult).reason
    expect(lost).toBeInstanceOf(ConflictError)
    expect(lost).toMatchObject({ expectedVersion: 1, actualVersion: 2, location: path })
    expect(await two.getHostState(HOST_A)).toEqual({ state: hostState(HOST_A, 2, 50), version: 2 })

    const creates = await Promise.allSettled([
      two.putHostState('i-0ccccccccccccccc3', hostState('i-0ccccccccccccccc3', 1), undefined),
      one.putHostState('i-0ccccccccccccccc3', hostState('i-0ccccccccccccccc3', 9), undefined),
    ])
    expect(creates.map((o) => o.status)).toEqual(['fulfilled', 'rejected'])
    const refused = (creates[1] as PromiseRejectedResult).reason as ConflictError
    expect(refused).toBeInstanceOf(ConflictError)
    expect(refused.actualVersion).toBe(1)
    // The SQLite error is kept: a primary key constraint (SQLITE_CONSTRAINT_PRIMARYKEY, 1555).
    expect(refused.cause).toMatchObject({ code: 'ERR_SQLITE_ERROR', errcode: 1555 })
    expect((await one.getHostState('i-0ccccccccccccccc3'))?.state.lastSeq).toBe(1)
  })

  it('four threads doing read-modify-write with retries lose no update', async () => {
    const path = freshPath()
    const store = open(path)
    await store.putHostState(HOST_A, hostState(HOST_A, 0), undefined)
    const perWorker = 25
    const workers = 4
    const code = `
      const { workerData, parentPort } = require('node:worker_threads')
      ;(async () => {
        const { SqliteStore } = await import(workerData.sqlite)
        const { ConflictError } = await import(workerData.port)
        const store = SqliteStore.open(workerData.path, { busyTimeoutMs: 20000 })
        // Start together: wait until every thread has opened its connection.
        const gate = new Int32Array(workerData.gate)
        Atomics.add(gate, 0, 1)
        while (Atomics.load(gate, 0) < workerData.workers) Atomics.wait(gate, 0, Atomics.load(gate, 0), 5)
        let conflicts = 0
        for (let i = 0; i < workerData.perWorker; i++) {
          for (;;) {
            const cur = await store.getHostState(workerData.host)
            try {
              await store.putHostState(workerData.host, { ...cur.state, lastSeq: cur.state.lastSeq + 1 }, cur.version)
              break
            } catch (err) {
              if (!(err instanceof ConflictError)) throw err
              conflicts++
            }
          }
        }
        store.close()
        parentPort.postMessage({ conflicts })
      })().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }))
    `
    const workerData = {
      gate: new SharedArrayBuffer(4),
      workers,
      sqlite: new URL('../../agent/store/sqlite.ts', import.meta.url).href,
      port: new URL('../../shared/ports/store.ts', import.meta.url).href,
      path,
      perWorker,
      host: HOST_A,
    }
    const replies = await Promise.all(
      Array.from(
        { length: workers },
        () =>
          new Promise<{ conflicts?: number; error?: string }>((resolve, reject) => {
            const w = new Worker(code, { eval: true, workerData })
            w.once('message', resolve)
            w.once('error', reject)
          }),
      ),
    )
    expect(replies.filter((r) => r.error)).toEqual([])
    const after = await store.getHostState(HOST_A)
    expect(after?.state.lastSeq).toBe(workers * perWorker)
    expect(after?.version).toBe(workers * perWorker + 1)
    // Every lost race was retried: successful writes = increments, whatever the number of conflicts.
    expect(replies.every((r) => typeof r.conflicts === 'number')).toBe(true)
  })

  it('refuses a database written by a newer version, and leaves it alone', async () => {
    const path = freshPath()
    const store = SqliteStore.open(path)
    await store.putHostState(HOST_A, hostState(HOST_A, 3), undefined)
    store.close()
    const db = new DatabaseSync(path)
    db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION + 1)
    db.close()

    const err = await failure(() => SqliteStore.open(path))
    expect(err).toBeInstanceOf(StoreError)
    expect(err).toMatchObject({ code: 'newer-schema', location: path })
    expect((err as Error).message).toBe(
      `the state store ${path} has schema version ${SCHEMA_VERSION + 1}, newer than this ANSAI understands (${SCHEMA_VERSION}): upgrade ANSAI, or move the file away to start afresh`,
    )
    const check = raw(path)
    expect(count(check, 'SELECT count(*) AS n FROM host_state')).toBe(1)
    expect(count(check, 'SELECT max(version) AS n FROM schema_version')).toBe(SCHEMA_VERSION + 1)
  })

  it('applies a migration all or nothing, and migrates an older file forward', async () => {
    const path = freshPath()
    const v1 = SqliteStore.open(path)
    await v1.recordDecisions(HOST_A, [remediate('d-1')], at(0))
    v1.close()

    const broken = [...MIGRATIONS, ['CREATE TABLE samples (host_id TEXT NOT NULL) STRICT', 'THIS IS NOT SQL']]
    const err = await failure(() => SqliteStore.open(path, { migrations: broken }))
    expect(err).toMatchObject({ name: 'StoreError', code: 'unavailable', location: path })
    expect((err as Error).message).toMatch(/^cannot open the state store .*: near "THIS": syntax error$/)
    let db = new DatabaseSync(path)
    expect(count(db, "SELECT count(*) AS n FROM sqlite_master WHERE name = 'samples'")).toBe(0)
    expect(count(db, 'SELECT max(version) AS n FROM schema_version')).toBe(1)
    db.close()

    const good = [
      ...MIGRATIONS,
      ['CREATE TABLE samples (host_id TEXT NOT NULL) STRICT', 'CREATE INDEX samples_host ON samples (host_id)'],
    ]
    const v2 = open(path, { migrations: good })
    expect(v2.schemaVersion()).toBe(2)
    expect((await v2.getAction('d-1'))?.decision).toEqual(remediate('d-1'))
    db = raw(path)
    expect(db.prepare('SELECT version FROM schema_version ORDER BY version').all()).toEqual([
      { version: 1 },
      { version: 2 },
    ])
    // And the code of version 1 now refuses the file.
    expect(await failure(() => SqliteStore.open(path))).toMatchObject({ code: 'newer-schema' })
  })

  it('creates its directory 0700 and its files 0600, and tightens a loose file', () => {
    const path = freshPath()
    open(path)
    expect(modeOf(join(path, '..'))).toBe(0o700)
    expect(modeOf(path)).toBe(0o600)
    expect(existsSync(`${path}-wal`)).toBe(true)
    expect(modeOf(`${path}-wal`)).toBe(0o600)
    expect(modeOf(`${path}-shm`)).toBe(0o600)

    const loose = join(root, `loose-${++n}.db`)
    writeFileSync(loose, '')
    chmodSync(loose, 0o644)
    open(loose)
    expect(modeOf(loose)).toBe(0o600)
  })

  it('a batch that fails part-way leaves nothing half-written, on disk', async () => {
    const path = freshPath()
    const store = open(path)
    const bad = remediate('d-2', { params: { size: 10n } })
    const err = await failure(store.recordDecisions(HOST_A, [remediate('d-1'), bad, remediate('d-3')], at(0)))
    expect(err).toMatchObject({ name: 'StoreError', code: 'invalid', location: path })
    expect((err as Error).message).toMatch(/^decision d-2: not JSON-serializable: /)
    expect((err as Error).cause).toBeInstanceOf(TypeError)
    await expect(
      store.appendAudit([
        { kind: 'observation', at: at(0), hostId: HOST_A, data: { n: 1 } },
        { kind: 'observation', at: at(0), hostId: HOST_A, data: { n: 2n } },
      ]),
    ).rejects.toMatchObject({ code: 'invalid' })
    const db = raw(path)
    expect(count(db, 'SELECT count(*) AS n FROM actions')).toBe(0)
    expect(count(db, 'SELECT count(*) AS n FROM audit')).toBe(0)
    // The connection is usable afterwards: no transaction was left open.
    expect(await store.recordDecisions(HOST_A, [remediate('d-1')], at(1))).toEqual(['d-1'])
    expect(count(db, 'SELECT count(*) AS n FROM actions')).toBe(1)
  })

  it('a writer killed inside its transaction leaves nothing behind, and no lock', async () => {
    const path = freshPath()
    const store = open(path)
    await store.appendAudit([{ kind: 'observation', at: at(0), hostId: HOST_A, data: { n: 0 } }])
    const child = spawnSync(
      process.execPath,
      [
        '-e',
        `const { DatabaseSync } = require('node:sqlite')
         const db = new DatabaseSync(process.argv[1])
         db.exec('BEGIN IMMEDIATE')
         const ins = db.prepare("INSERT INTO audit (kind, at, at_iso, host_id, data) VALUES ('error', 1, 'x', 'h', '{}')")
         for (let i = 0; i < 100; i++) ins.run()
         process.kill(process.pid, 'SIGKILL')`,
        path,
      ],
      { encoding: 'utf8', timeout: 20_000 },
    )
    expect(child.signal).toBe('SIGKILL')
    expect((await store.listAudit({ limit: 200 })).map((e) => e.data)).toEqual([{ n: 0 }])
    await store.appendAudit([{ kind: 'observation', at: at(1), hostId: HOST_A, data: { n: 1 } }])
    expect(count(raw(path), 'SELECT count(*) AS n FROM audit')).toBe(2)
  })

  it('keeps the audit trail append-only in the database itself', async () => {
    const path = freshPath()
    const store = open(path)
    await store.appendAudit([{ kind: 'result', at: at(0), hostId: HOST_A, data: { ok: true } }])
    const db = raw(path)
    expect(() => db.exec(`UPDATE audit SET data = '{"ok":false}'`)).toThrow('the audit trail is append-only')
    expect((await store.listAudit({ limit: 1 }))[0]?.data).toEqual({ ok: true })
  })

  it('removes the attempts of a pruned incident with it (foreign key cascade)', async () => {
    const path = freshPath()
    const store = open(path)
    await store.upsertIncident(
      incident('inc-1', {
        status: 'resolved',
        severity: 'ok',
        updatedAt: at(1),
        resolvedAt: at(1),
        attempts: [
          { key: 'd-1', step: 0, remediation: 'disk-cleanup', startedAt: at(0), verifyBy: at(5), status: 'verified' },
        ],
      }),
    )
    const db = raw(path)
    expect(count(db, 'SELECT count(*) AS n FROM incident_attempts')).toBe(1)
    await store.prune({ auditOlderThan: 0, resolvedIncidentsOlderThan: 0, now: at(2) })
    expect(count(db, 'SELECT count(*) AS n FROM incidents')).toBe(0)
    expect(count(db, 'SELECT count(*) AS n FROM incident_attempts')).toBe(0)
  })

  it('property: any interleaving of decisions and results, with duplicates, leaves exactly one row per key', async () => {
    const path = freshPath()
    const store = open(path)
    const db = raw(path)
    let round = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            kind: fc.constantFrom('decision', 'result'),
            key: fc.integer({ min: 0, max: 5 }),
            dup: fc.boolean(),
          }),
          { maxLength: 30 },
        ),
        async (ops) => {
          round += 1
          const prefix = `r${round}-`
          for (const op of ops) {
            const key = `${prefix}${op.key}`
            const times = op.dup ? 2 : 1
            for (let i = 0; i < times; i++) {
              if (op.kind === 'decision') await store.recordDecisions(HOST_A, [remediate(key), remediate(key)], at(i))
              else await store.recordResult(result(key, { durationMs: i }))
            }
          }
          const keys = new Set(ops.map((o) => `${prefix}${o.key}`))
          const rows = db
            .prepare(
              `SELECT key, count(*) AS n, decision IS NOT NULL AS d, result IS NOT NULL AS r FROM actions
               WHERE key LIKE ? GROUP BY key ORDER BY key`,
            )
            .all(`${prefix}%`) as { key: string; n: number; d: number; r: number }[]
          expect(rows.map((r) => r.key)).toEqual([...keys].sort())
          for (const row of rows) {
            expect(row.n).toBe(1)
            const mine = ops.filter((o) => `${prefix}${o.key}` === row.key)
            expect(row.d).toBe(mine.some((o) => o.kind === 'decision') ? 1 : 0)
            expect(row.r).toBe(mine.some((o) => o.kind === 'result') ? 1 : 0)
          }
        },
      ),
      { numRuns: 100 },
    )
  })

  describe('errors come out typed, with the path and the cause', () => {
    it('a file that is not a database', async () => {
      const path = join(root, `garbage-${++n}.db`)
      writeFileSync(path, 'this is not a SQLite database, just text that is long enough to have a header'.repeat(20))
      chmodSync(path, 0o600)
      const err = await failure(() => SqliteStore.open(path))
      expect(err).toBeInstanceOf(StoreError)
      expect(err).toMatchObject({ code: 'corrupt', location: path })
      expect((err as Error).message).toBe(`cannot open the state store ${path}: file is not a database`)
      expect((err as Error).cause).toMatchObject({ code: 'ERR_SQLITE_ERROR', errcode: 26 })
    })

    it('a directory that cannot be created', async () => {
      const file = join(root, `a-file-${++n}`)
      writeFileSync(file, 'x')
      const path = join(file, 'state', 'ansai.db')
      const err = await failure(() => SqliteStore.open(path))
      expect(err).toMatchObject({ name: 'StoreError', code: 'unavailable', location: path })
      expect((err as Error).cause).toMatchObject({ code: 'ENOTDIR' })
    })

    it('a closed store', async () => {
      const path = freshPath()
      const store = SqliteStore.open(path)
      store.close()
      store.close()
      const err = await failure(store.getHostState(HOST_A))
      expect(err).toMatchObject({ name: 'StoreError', code: 'closed', location: path })
      expect((err as Error).message).toBe(`getHostState: the state store ${path} is closed`)
    })

    it('a write that waits too long for another writer', async () => {
      const path = freshPath()
      const store = open(path, { busyTimeoutMs: 50 })
      const other = raw(path)
      other.exec('BEGIN IMMEDIATE')
      const err = await failure(store.recordDecisions(HOST_A, [remediate('d-1')], at(0)))
      other.exec('ROLLBACK')
      expect(err).toMatchObject({ name: 'StoreError', code: 'busy', location: path })
      expect((err as Error).cause).toMatchObject({ code: 'ERR_SQLITE_ERROR', errcode: 5 })
      expect(await store.recordDecisions(HOST_A, [remediate('d-1')], at(0))).toEqual(['d-1'])
    })
  })
})
