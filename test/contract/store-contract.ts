/**
 * The StateStore contract: one suite every implementation passes (the in-memory twin, the SQLite store of the
 * single-host shape, and the DynamoDB one of the fleet when it comes). `makeStore` gives a fresh, empty store on
 * every call; a factory that needs cleanup registers it itself (vitest's `onTestFinished`).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DEFAULT_MANUAL_MINUTES, estimateMinutesSaved, MANUAL_MINUTES } from '../../shared/adapters/store/time-saved.ts'
import type { Decision } from '../../shared/contracts/index.ts'
import { ConflictError, type StateStore, StoreError } from '../../shared/ports/store.ts'
import { failure } from '../support/rejection.ts'
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

export type MakeStore = () => StateStore | Promise<StateStore>

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** Resolves to the error a promise rejected with; fails when it resolved. */

const expectStoreError = async (p: Promise<unknown>, code: StoreError['code']): Promise<StoreError> => {
  const err = await failure(p)
  expect(err).toBeInstanceOf(StoreError)
  expect((err as StoreError).code).toBe(code)
  return err as StoreError
}

export const describeStateStoreContract = (name: string, makeStore: MakeStore): void => {
  describe(`StateStore contract: ${name}`, () => {
    describe('host state (conditional writes)', () => {
      it('has no state for an unknown host', async () => {
        const store = await makeStore()
        expect(await store.getHostState(HOST_A)).toBeUndefined()
      })

      it('creates at version 1 and moves one version per write', async () => {
        const store = await makeStore()
        expect(await store.putHostState(HOST_A, hostState(HOST_A, 1), undefined)).toBe(1)
        expect(await store.getHostState(HOST_A)).toEqual({ state: hostState(HOST_A, 1), version: 1 })
        expect(await store.putHostState(HOST_A, hostState(HOST_A, 2), 1)).toBe(2)
        expect(await store.putHostState(HOST_A, hostState(HOST_A, 3), 2)).toBe(3)
        expect(await store.getHostState(HOST_A)).toEqual({ state: hostState(HOST_A, 3), version: 3 })
      })

      it('refuses to create what exists, with a ConflictError that says what it found', async () => {
        const store = await makeStore()
        await store.putHostState(HOST_A, hostState(HOST_A, 1), undefined)
        const err = await failure(store.putHostState(HOST_A, hostState(HOST_A, 9), undefined))
        expect(err).toBeInstanceOf(ConflictError)
        expect(err).toBeInstanceOf(StoreError)
        expect(err).toMatchObject({
          name: 'ConflictError',
          code: 'conflict',
          hostId: HOST_A,
          expectedVersion: undefined,
          actualVersion: 1,
        })
        expect((await store.getHostState(HOST_A))?.state.lastSeq).toBe(1)
      })

      it('refuses a stale version and keeps the newer state', async () => {
        const store = await makeStore()
        await store.putHostState(HOST_A, hostState(HOST_A, 1), undefined)
        await store.putHostState(HOST_A, hostState(HOST_A, 2), 1)
        const err = await failure(store.putHostState(HOST_A, hostState(HOST_A, 7), 1))
        expect(err).toBeInstanceOf(ConflictError)
        expect(err).toMatchObject({ expectedVersion: 1, actualVersion: 2 })
        expect((err as Error).message).toBe(
          `host state of ${HOST_A} changed underneath: expected version 1, found version 2`,
        )
        expect(await store.getHostState(HOST_A)).toEqual({ state: hostState(HOST_A, 2), version: 2 })
      })

      it('refuses an update of a host that has no state', async () => {
        const store = await makeStore()
        const err = await failure(store.putHostState(HOST_A, hostState(HOST_A, 1), 4))
        expect(err).toMatchObject({ code: 'conflict', expectedVersion: 4, actualVersion: undefined })
        expect(await store.getHostState(HOST_A)).toBeUndefined()
      })

      it('lets the loser of a race re-read and retry (what the runner does)', async () => {
        const store = await makeStore()
        await store.putHostState(HOST_A, hostState(HOST_A, 1), undefined)
        const a = (await store.getHostState(HOST_A))!
        const b = (await store.getHostState(HOST_A))!
        expect(await store.putHostState(HOST_A, { ...a.state, lastSeq: 2 }, a.version)).toBe(2)
        await expect(store.putHostState(HOST_A, { ...b.state, lastSeq: 3 }, b.version)).rejects.toBeInstanceOf(
          ConflictError,
        )
        const again = (await store.getHostState(HOST_A))!
        expect(again.state.lastSeq).toBe(2)
        expect(await store.putHostState(HOST_A, { ...again.state, lastSeq: 3 }, again.version)).toBe(3)
        expect((await store.getHostState(HOST_A))?.state.lastSeq).toBe(3)
      })

      it('keeps hosts apart', async () => {
        const store = await makeStore()
        await store.putHostState(HOST_A, hostState(HOST_A, 5), undefined)
        await store.putHostState(HOST_B, hostState(HOST_B, 8), undefined)
        await store.putHostState(HOST_B, hostState(HOST_B, 9), 1)
        expect(await store.getHostState(HOST_A)).toEqual({ state: hostState(HOST_A, 5), version: 1 })
        expect(await store.getHostState(HOST_B)).toEqual({ state: hostState(HOST_B, 9), version: 2 })
      })

      it('stores copies: changing what went in or came out changes nothing stored', async () => {
        const store = await makeStore()
        const state = hostState(HOST_A, 1)
        await store.putHostState(HOST_A, state, undefined)
        state.lastSeq = 99
        state.resources['disk-pressure']!['/var']!.hist[0] = 0
        const got = (await store.getHostState(HOST_A))!
        got.state.resources['disk-pressure']!['/var']!.level = 'ok'
        expect(await store.getHostState(HOST_A)).toEqual({ state: hostState(HOST_A, 1), version: 1 })
      })

      it('refuses the state of another host, and a version that is not a positive integer', async () => {
        const store = await makeStore()
        await expectStoreError(store.putHostState(HOST_A, hostState(HOST_B, 1), undefined), 'invalid')
        await expectStoreError(store.putHostState(HOST_A, hostState(HOST_A, 1), 0), 'invalid')
        expect(await store.getHostState(HOST_A)).toBeUndefined()
      })
    })

    describe('actions (decisions and results by key)', () => {
      it('records each decision key once and says which were new', async () => {
        const store = await makeStore()
        const fix = remediate('d-fix-1')
        const tell = notifyDecision('d-tell-1')
        expect(await store.recordDecisions(HOST_A, [fix, tell, fix], at(0))).toEqual(['d-fix-1', 'd-tell-1'])
        expect(await store.recordDecisions(HOST_A, [tell, remediate('d-fix-2')], at(1))).toEqual(['d-fix-2'])
        expect(await store.recordDecisions(HOST_A, [], at(2))).toEqual([])
        expect(await store.getAction('d-fix-1')).toEqual({
          key: 'd-fix-1',
          hostId: HOST_A,
          incidentId: 'inc-disk',
          decision: fix,
          recordedAt: at(0),
        })
        // The second delivery changed nothing: still recorded at(0), not at(1).
        expect((await store.getAction('d-tell-1'))?.recordedAt).toBe(at(0))
        expect(await store.getAction('d-unknown')).toBeUndefined()
      })

      it('keeps the first decision stored under a key', async () => {
        const store = await makeStore()
        await store.recordDecisions(HOST_A, [remediate('d-1', { attempt: 1 })], at(0))
        expect(await store.recordDecisions(HOST_A, [remediate('d-1', { attempt: 2 })], at(1))).toEqual([])
        expect((await store.getAction('d-1'))?.decision).toMatchObject({ attempt: 1 })
      })

      it('refuses a batch that holds another host decision, storing none of it', async () => {
        const store = await makeStore()
        const err = await expectStoreError(
          store.recordDecisions(HOST_A, [remediate('d-ok'), remediate('d-other', { host: HOST_B })], at(0)),
          'invalid',
        )
        expect(err.message).toContain(`decision d-other belongs to host ${HOST_B}`)
        expect(await store.getAction('d-ok')).toBeUndefined()
      })

      it('refuses a time that is not a timestamp', async () => {
        const store = await makeStore()
        await expectStoreError(store.recordDecisions(HOST_A, [remediate('d-1')], 'yesterday'), 'invalid')
        expect(await store.getAction('d-1')).toBeUndefined()
      })

      it('records each result once (first wins), and joins it to its decision', async () => {
        const store = await makeStore()
        const fix = remediate('d-fix')
        await store.recordDecisions(HOST_A, [fix], at(0))
        const first = result('d-fix')
        expect(await store.recordResult(first)).toBe(true)
        expect(await store.recordResult(result('d-fix', { status: 'failed', summary: 'late copy' }))).toBe(false)
        expect(await store.getAction('d-fix')).toEqual({
          key: 'd-fix',
          hostId: HOST_A,
          incidentId: 'inc-disk',
          decision: fix,
          recordedAt: at(0),
          result: first,
        })
      })

      it('takes a result before its decision, then the decision', async () => {
        const store = await makeStore()
        const r = result('d-early', { host: HOST_B })
        expect(await store.recordResult(r)).toBe(true)
        expect(await store.getAction('d-early')).toEqual({ key: 'd-early', hostId: HOST_B, result: r })
        const d = remediate('d-early', { host: HOST_B, incidentId: 'inc-b' })
        expect(await store.recordDecisions(HOST_B, [d], at(3))).toEqual(['d-early'])
        expect(await store.getAction('d-early')).toEqual({
          key: 'd-early',
          hostId: HOST_B,
          incidentId: 'inc-b',
          decision: d,
          recordedAt: at(3),
          result: r,
        })
        expect(await store.recordResult(r)).toBe(false)
      })

      it('keeps a result without a host until the decision names it', async () => {
        const store = await makeStore()
        const { host: _dropped, ...hostless } = result('d-anon')
        await store.recordResult(hostless)
        expect(await store.getAction('d-anon')).toEqual({ key: 'd-anon', result: hostless })
        await store.recordDecisions(HOST_A, [remediate('d-anon')], at(0))
        expect((await store.getAction('d-anon'))?.hostId).toBe(HOST_A)
      })

      it('stores copies of decisions and results', async () => {
        const store = await makeStore()
        const fix = remediate('d-copy')
        const r = result('d-copy')
        await store.recordDecisions(HOST_A, [fix], at(0))
        await store.recordResult(r)
        ;(fix.params as { roots: string[] }).roots.push('/')
        r.bytesRecovered!.logs = 0
        const got = (await store.getAction('d-copy'))!
        ;(got.decision as unknown as { params: { roots: string[] } }).params.roots.push('/etc')
        expect((await store.getAction('d-copy'))?.decision).toEqual(remediate('d-copy'))
        expect((await store.getAction('d-copy'))?.result).toEqual(result('d-copy'))
      })

      it('property: any interleaving of decisions and results, with duplicates, stores one action per key', async () => {
        const keys = ['k-a', 'k-b', 'k-c', 'k-d']
        const op = fc.record({
          kind: fc.constantFrom('decision', 'result'),
          key: fc.constantFrom(...keys),
          variant: fc.integer({ min: 1, max: 3 }),
        })
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.array(op, { minLength: 1, maxLength: 3 }), { maxLength: 12 }),
            async (batches) => {
              const store = await makeStore()
              const newDecisions: string[] = []
              const newResults: string[] = []
              const firstDecision = new Map<string, number>()
              const firstResult = new Map<string, number>()
              for (const batch of batches) {
                const decisions = batch.filter((o) => o.kind === 'decision')
                const results = batch.filter((o) => o.kind === 'result')
                // A batch of decisions goes in at once (duplicates inside it too); results one by one, as they come.
                for (const d of decisions) if (!firstDecision.has(d.key)) firstDecision.set(d.key, d.variant)
                newDecisions.push(
                  ...(await store.recordDecisions(
                    HOST_A,
                    decisions.map((d): Decision => remediate(d.key, { attempt: d.variant })),
                    at(0),
                  )),
                )
                for (const r of results) {
                  if (!firstResult.has(r.key)) firstResult.set(r.key, r.variant)
                  if (await store.recordResult(result(r.key, { durationMs: r.variant }))) newResults.push(r.key)
                }
              }
              expect([...newDecisions].sort()).toEqual([...firstDecision.keys()].sort())
              expect([...newResults].sort()).toEqual([...firstResult.keys()].sort())
              for (const key of keys) {
                const action = await store.getAction(key)
                if (!firstDecision.has(key) && !firstResult.has(key)) {
                  expect(action).toBeUndefined()
                  continue
                }
                expect(action?.key).toBe(key)
                expect((action?.decision as { attempt?: number } | undefined)?.attempt).toBe(firstDecision.get(key))
                expect(action?.result?.durationMs).toBe(firstResult.get(key))
              }
            },
          ),
          { numRuns: 60 },
        )
      })
    })

    describe('incidents', () => {
      it('stores and gives back an incident, as a copy', async () => {
        const store = await makeStore()
        const inc = incident('inc-1', { attempts: [attempt('d-1', { status: 'pending' })], stepsDone: [0] })
        expect(await store.upsertIncident(inc)).toBe(true)
        inc.stepsDone.push(1)
        const got = (await store.getIncident('inc-1'))!
        got.attempts[0]!.status = 'verified'
        expect(await store.getIncident('inc-1')).toEqual(
          incident('inc-1', { attempts: [attempt('d-1', { status: 'pending' })], stepsDone: [0] }),
        )
        expect(await store.getIncident('inc-none')).toBeUndefined()
      })

      it('lets a newer version win and never an older one; an equal time overwrites (a replay)', async () => {
        const store = await makeStore()
        await store.upsertIncident(incident('inc-1', { updatedAt: at(5), status: 'remediating' }))
        expect(await store.upsertIncident(incident('inc-1', { updatedAt: at(4), status: 'open' }))).toBe(false)
        expect((await store.getIncident('inc-1'))?.status).toBe('remediating')
        expect(await store.upsertIncident(incident('inc-1', { updatedAt: at(5), status: 'verifying' }))).toBe(true)
        expect((await store.getIncident('inc-1'))?.status).toBe('verifying')
        const resolved = incident('inc-1', { updatedAt: at(9), status: 'resolved', resolvedAt: at(9), severity: 'ok' })
        expect(await store.upsertIncident(resolved)).toBe(true)
        expect(await store.getIncident('inc-1')).toEqual(resolved)
      })

      it('compares times as instants, not as text', async () => {
        const store = await makeStore()
        // 11:00+02:00 is 09:00Z: older than 10:30Z, although the text sorts after it.
        await store.upsertIncident(incident('inc-tz', { updatedAt: '2026-11-23T11:00:00+02:00', status: 'open' }))
        expect(
          await store.upsertIncident(incident('inc-tz', { updatedAt: '2026-11-23T10:30:00Z', status: 'escalated' })),
        ).toBe(true)
        expect((await store.getIncident('inc-tz'))?.status).toBe('escalated')
        expect(await store.upsertIncident(incident('inc-tz', { updatedAt: '2026-11-23T12:00:00+03:00' }))).toBe(false)
      })

      it('lists open incidents newest opened first, by host, with a limit and paging back', async () => {
        const store = await makeStore()
        await store.upsertIncident(incident('inc-a1', { openedAt: at(1), updatedAt: at(1) }))
        await store.upsertIncident(incident('inc-a2', { openedAt: at(2), updatedAt: at(2), status: 'failed' }))
        await store.upsertIncident(incident('inc-a3', { openedAt: at(3), updatedAt: at(3), status: 'escalated' }))
        await store.upsertIncident(
          incident('inc-a4', { openedAt: at(4), updatedAt: at(6), status: 'resolved', resolvedAt: at(6) }),
        )
        await store.upsertIncident(incident('inc-b1', { host: HOST_B, openedAt: at(5), updatedAt: at(5) }))
        await store.upsertIncident(incident('inc-a0', { openedAt: at(3), updatedAt: at(3) }))
        const ids = (list: { id: string }[]): string[] => list.map((i) => i.id)
        expect(ids(await store.listIncidents({ limit: 10 }))).toEqual([
          'inc-b1',
          'inc-a0',
          'inc-a3',
          'inc-a2',
          'inc-a1',
        ])
        expect(ids(await store.listIncidents({ status: 'all', limit: 10 }))).toEqual([
          'inc-b1',
          'inc-a4',
          'inc-a0',
          'inc-a3',
          'inc-a2',
          'inc-a1',
        ])
        expect(ids(await store.listIncidents({ hostId: HOST_A, status: 'all', limit: 2 }))).toEqual([
          'inc-a4',
          'inc-a0',
        ])
        expect(ids(await store.listIncidents({ hostId: HOST_A, status: 'all', limit: 10, before: at(3) }))).toEqual([
          'inc-a2',
          'inc-a1',
        ])
        expect(ids(await store.listIncidents({ hostId: HOST_B, status: 'open', limit: 10, before: at(5) }))).toEqual([])
        expect(await store.listIncidents({ hostId: 'i-nobody', limit: 10 })).toEqual([])
      })

      it('refuses a limit that is not a positive integer', async () => {
        const store = await makeStore()
        await expectStoreError(store.listIncidents({ limit: 0 }), 'invalid')
        await expectStoreError(store.listAudit({ limit: 1.5 }), 'invalid')
      })
    })

    describe('audit trail (append-only)', () => {
      it('appends in order and lists newest first, by host, incident and time', async () => {
        const store = await makeStore()
        const stored = await store.appendAudit([
          { kind: 'observation', at: at(0), hostId: HOST_A, data: { usedPercent: 92.5 } },
          { kind: 'decision', at: at(0), hostId: HOST_A, incidentId: 'inc-1', key: 'd-1', data: { type: 'remediate' } },
          {
            kind: 'action',
            at: at(1),
            hostId: HOST_A,
            incidentId: 'inc-1',
            key: 'd-1',
            data: { remediation: 'disk-cleanup' },
          },
        ])
        await store.appendAudit([
          { kind: 'result', at: at(2), hostId: HOST_A, incidentId: 'inc-1', key: 'd-1', data: { status: 'succeeded' } },
          { kind: 'observation', at: at(2), hostId: HOST_B, data: { usedPercent: 10 } },
          { kind: 'error', at: at(3), hostId: HOST_B, data: { message: 'probe dns: timeout' } },
        ])
        expect(stored.map((e) => e.kind)).toEqual(['observation', 'decision', 'action'])
        expect(stored[1]).toEqual({
          kind: 'decision',
          at: at(0),
          hostId: HOST_A,
          incidentId: 'inc-1',
          key: 'd-1',
          data: { type: 'remediate' },
          seq: stored[1]!.seq,
        })
        expect(stored[0]!.seq).toBeLessThan(stored[1]!.seq)
        expect(stored[1]!.seq).toBeLessThan(stored[2]!.seq)

        const kinds = (list: { kind: string; hostId: string }[]): string[] => list.map((e) => `${e.kind}@${e.hostId}`)
        expect(kinds(await store.listAudit({ limit: 10 }))).toEqual([
          `error@${HOST_B}`,
          `observation@${HOST_B}`, // same time as the result, appended after it: newer
          `result@${HOST_A}`,
          `action@${HOST_A}`,
          `decision@${HOST_A}`,
          `observation@${HOST_A}`,
        ])
        expect(kinds(await store.listAudit({ hostId: HOST_A, limit: 2 }))).toEqual([
          `result@${HOST_A}`,
          `action@${HOST_A}`,
        ])
        expect((await store.listAudit({ incidentId: 'inc-1', limit: 10 })).map((e) => e.kind)).toEqual([
          'result',
          'action',
          'decision',
        ])
        expect(kinds(await store.listAudit({ since: at(2), limit: 10 }))).toEqual([
          `error@${HOST_B}`,
          `observation@${HOST_B}`,
          `result@${HOST_A}`,
        ])
      })

      it('orders by instant: an entry with an offset sorts by its UTC time', async () => {
        const store = await makeStore()
        await store.appendAudit([
          { kind: 'observation', at: '2026-11-23T12:00:00+03:00', hostId: HOST_A, data: { n: 1 } }, // 09:00Z
          { kind: 'observation', at: '2026-11-23T10:00:00Z', hostId: HOST_A, data: { n: 2 } },
        ])
        expect((await store.listAudit({ limit: 10 })).map((e) => [e.data.n, e.at])).toEqual([
          [2, '2026-11-23T10:00:00Z'],
          [1, '2026-11-23T12:00:00+03:00'],
        ])
        expect((await store.listAudit({ since: '2026-11-23T09:30:00Z', limit: 10 })).map((e) => e.data.n)).toEqual([2])
      })

      it('appends an entry with an id once (replays), and entries without id every time', async () => {
        const store = await makeStore()
        const e = { kind: 'notification' as const, at: at(1), hostId: HOST_A, id: 'audit-m-1', data: { sent: true } }
        expect(await store.appendAudit([e, e])).toHaveLength(1)
        expect(await store.appendAudit([e])).toEqual([])
        const plain = { kind: 'observation' as const, at: at(1), hostId: HOST_A, data: {} }
        await store.appendAudit([plain])
        await store.appendAudit([plain])
        const all = await store.listAudit({ limit: 10 })
        expect(all.map((x) => x.kind)).toEqual(['observation', 'observation', 'notification'])
        expect(all[2]?.id).toBe('audit-m-1')
      })

      it('stores nothing of a batch that fails part-way', async () => {
        const store = await makeStore()
        await store.appendAudit([{ kind: 'observation', at: at(0), hostId: HOST_A, data: { before: true } }])
        await expectStoreError(
          store.appendAudit([
            { kind: 'observation', at: at(1), hostId: HOST_A, data: { n: 1 } },
            { kind: 'decision', at: at(1), hostId: HOST_A, data: { n: 2 } },
            { kind: 'result', at: at(1), hostId: HOST_A, data: { bytes: 10n } },
          ]),
          'invalid',
        )
        await expectStoreError(
          store.appendAudit([
            { kind: 'observation', at: at(1), hostId: HOST_A, data: { n: 3 } },
            { kind: 'oops' as 'error', at: at(1), hostId: HOST_A, data: {} },
          ]),
          'invalid',
        )
        await expectStoreError(
          store.appendAudit([
            { kind: 'observation', at: at(1), hostId: HOST_A, data: { n: 4 } },
            { kind: 'error', at: 'soon', hostId: HOST_A, data: {} },
          ]),
          'invalid',
        )
        expect((await store.listAudit({ limit: 10 })).map((e) => e.data)).toEqual([{ before: true }])
      })

      it('gives copies: changing a listed entry changes nothing stored', async () => {
        const store = await makeStore()
        const data = { files: ['/var/log/a.gz'] }
        await store.appendAudit([{ kind: 'result', at: at(0), hostId: HOST_A, data }])
        data.files.push('/etc/passwd')
        const [first] = await store.listAudit({ limit: 1 })
        ;(first!.data.files as string[]).push('/etc/shadow')
        expect((await store.listAudit({ limit: 1 }))[0]?.data).toEqual({ files: ['/var/log/a.gz'] })
      })
    })

    describe('retention', () => {
      it('removes old audit entries and old resolved incidents, never open ones, and counts them', async () => {
        const store = await makeStore()
        const now = at(10 * 24 * 60) // ten days after at(0)
        await store.appendAudit([
          { kind: 'observation', at: at(0), hostId: HOST_A, data: { n: 1 } },
          { kind: 'observation', at: at(2 * 24 * 60), hostId: HOST_A, data: { n: 2 } },
          { kind: 'observation', at: at(9 * 24 * 60), hostId: HOST_A, data: { n: 3 } },
        ])
        await store.upsertIncident(incident('inc-old-open', { openedAt: at(0), updatedAt: at(0) }))
        await store.upsertIncident(
          incident('inc-old-resolved', { updatedAt: at(60), status: 'resolved', resolvedAt: at(60), severity: 'ok' }),
        )
        await store.upsertIncident(
          incident('inc-new-resolved', {
            updatedAt: at(9 * 24 * 60),
            status: 'resolved',
            resolvedAt: at(9 * 24 * 60),
            severity: 'ok',
          }),
        )
        const pruned = await store.prune({ auditOlderThan: 7 * DAY, resolvedIncidentsOlderThan: 3 * DAY, now })
        expect(pruned).toEqual({ audit: 2, incidents: 1, actions: 0, notifications: 0, dedup: 0 })
        expect((await store.listAudit({ limit: 10 })).map((e) => e.data.n)).toEqual([3])
        expect((await store.listIncidents({ status: 'all', limit: 10 })).map((i) => i.id).sort()).toEqual([
          'inc-new-resolved',
          'inc-old-open',
        ])
        expect(await store.prune({ auditOlderThan: 7 * DAY, resolvedIncidentsOlderThan: 3 * DAY, now })).toEqual({
          audit: 0,
          incidents: 0,
          actions: 0,
          notifications: 0,
          dedup: 0,
        })
      })

      it('removes old actions, finished messages and dedup ids only when asked, and never a pending message', async () => {
        const store = await makeStore()
        const now = at(30 * 24 * 60)
        await store.recordDecisions(HOST_A, [remediate('d-old'), notifyDecision('n-old')], at(0))
        await store.recordResult(result('r-orphan-old', { finishedAt: at(5) }))
        await store.recordDecisions(HOST_A, [remediate('d-new')], at(29 * 24 * 60))
        await store.enqueueNotifications([message('m-sent'), message('m-dead'), message('m-pending')])
        await store.markNotificationSent('m-sent', at(1))
        await store.markNotificationFailed('m-dead', at(1), '550 mailbox unavailable', null)
        await store.markNotificationFailed('m-pending', at(1), 'ECONNREFUSED', at(2))
        await store.remember('m-sent', at(1))
        await store.remember('m-recent', at(29 * 24 * 60))

        const bounds = { auditOlderThan: DAY, resolvedIncidentsOlderThan: DAY, now }
        expect(await store.prune(bounds)).toEqual({ audit: 0, incidents: 0, actions: 0, notifications: 0, dedup: 0 })
        expect(await store.getAction('d-old')).toBeDefined()

        const pruned = await store.prune({ ...bounds, actionsOlderThan: 7 * DAY, notificationsOlderThan: 7 * DAY })
        expect(pruned).toEqual({ audit: 0, incidents: 0, actions: 3, notifications: 2, dedup: 1 })
        expect(await store.getAction('d-old')).toBeUndefined()
        expect(await store.getAction('r-orphan-old')).toBeUndefined()
        expect(await store.getAction('d-new')).toBeDefined()
        expect(await store.getNotification('m-sent')).toBeUndefined()
        expect(await store.getNotification('m-dead')).toBeUndefined()
        expect((await store.getNotification('m-pending'))?.status).toBe('pending')
        expect(await store.seen('m-sent')).toBe(false)
        expect(await store.seen('m-recent')).toBe(true)
      })

      it('refuses a negative retention bound', async () => {
        const store = await makeStore()
        await expectStoreError(
          store.prune({ auditOlderThan: -1, resolvedIncidentsOlderThan: DAY, now: at(0) }),
          'invalid',
        )
      })
    })

    describe('summary (ansai status)', () => {
      it('is all zeros on an empty store, with no share to tell', async () => {
        const store = await makeStore()
        expect(await store.summarize({ since: at(0), now: at(60) })).toEqual({
          since: at(0),
          now: at(60),
          openIncidents: { total: 0, bySeverity: { ok: 0, warning: 0, critical: 0, emergency: 0 } },
          fixes: [],
          verifiedFixes: [],
          bytesRecovered: 0,
          resolvedIncidents: 0,
          autoResolved: 0,
          autoResolvedShare: null,
          timeSavedMinutes: 0,
        })
      })

      it('counts open incidents, fixes, bytes, the auto-resolved share and time saved, in the window', async () => {
        const store = await makeStore()
        const since = at(60)
        const now = at(24 * 60)
        const inWindow = (m: number) => at(60 + m)
        // Open (failed and escalated count as open): host A warning, critical, emergency; host B critical.
        await store.upsertIncident(incident('o-warn', { severity: 'warning' }))
        await store.upsertIncident(incident('o-crit', { severity: 'critical', status: 'escalated' }))
        await store.upsertIncident(
          incident('o-emerg', {
            severity: 'emergency',
            status: 'failed',
            attempts: [attempt('d-o1', { remediation: 'service-restart', startedAt: inWindow(5) })],
          }),
        )
        await store.upsertIncident(incident('o-b', { host: HOST_B, severity: 'critical' }))
        // Resolved in the window: one by a verified fix (plus an unverified one), one by itself.
        await store.upsertIncident(
          incident('r-fixed', {
            status: 'resolved',
            severity: 'ok',
            updatedAt: inWindow(30),
            resolvedAt: inWindow(30),
            attempts: [
              attempt('d-r1', { remediation: 'service-restart', status: 'unverified', startedAt: inWindow(1) }),
              attempt('d-r2', { remediation: 'disk-cleanup', status: 'verified', startedAt: inWindow(10) }),
            ],
          }),
        )
        await store.upsertIncident(
          incident('r-itself', {
            status: 'resolved',
            severity: 'ok',
            updatedAt: inWindow(40),
            resolvedAt: inWindow(40),
          }),
        )
        // Resolved before the window, by a fix also before it: counts nowhere.
        await store.upsertIncident(
          incident('r-before', {
            status: 'resolved',
            severity: 'ok',
            updatedAt: at(30),
            resolvedAt: at(30),
            attempts: [attempt('d-r0', { startedAt: at(10) })],
          }),
        )
        // Host B, resolved in the window by a verified fix.
        await store.upsertIncident(
          incident('r-b', {
            host: HOST_B,
            status: 'resolved',
            severity: 'ok',
            updatedAt: inWindow(50),
            resolvedAt: inWindow(50),
            attempts: [attempt('d-b1', { remediation: 'memory-relief', startedAt: inWindow(45) })],
          }),
        )
        await store.recordDecisions(HOST_A, [remediate('d-r2'), remediate('d-dry'), remediate('d-svc')], at(0))
        await store.recordResult(result('d-r2', { finishedAt: inWindow(11), bytesRecovered: { logs: 1000, temp: 24 } }))
        await store.recordResult(
          result('d-dry', {
            status: 'dry-run',
            dryRun: true,
            finishedAt: inWindow(12),
            bytesRecovered: { logs: 5000 },
          }),
        )
        await store.recordResult(
          result('d-svc', {
            remediation: 'service-restart',
            status: 'failed',
            finishedAt: inWindow(2),
            bytesRecovered: undefined,
          }),
        )
        await store.recordResult(result('d-early', { finishedAt: at(30), bytesRecovered: { logs: 777 } }))
        await store.recordResult(result('d-late', { finishedAt: at(24 * 60 + 1), bytesRecovered: { logs: 888 } }))
        await store.recordResult(result('d-b', { host: HOST_B, finishedAt: inWindow(46), bytesRecovered: { heap: 7 } }))

        const a = await store.summarize({ hostId: HOST_A, since, now })
        expect(a).toEqual({
          since,
          now,
          openIncidents: { total: 3, bySeverity: { ok: 0, warning: 1, critical: 1, emergency: 1 } },
          fixes: [
            { remediation: 'disk-cleanup', status: 'dry-run', count: 1 },
            { remediation: 'disk-cleanup', status: 'succeeded', count: 1 },
            { remediation: 'service-restart', status: 'failed', count: 1 },
          ],
          verifiedFixes: [
            { remediation: 'disk-cleanup', count: 1 },
            { remediation: 'service-restart', count: 1 },
          ],
          bytesRecovered: 1024,
          resolvedIncidents: 2,
          autoResolved: 1,
          autoResolvedShare: 0.5,
          timeSavedMinutes: 30,
        })

        const all = await store.summarize({ since, now })
        expect(all.openIncidents).toEqual({ total: 4, bySeverity: { ok: 0, warning: 1, critical: 2, emergency: 1 } })
        expect(all.bytesRecovered).toBe(1031)
        expect(all.resolvedIncidents).toBe(3)
        expect(all.autoResolved).toBe(2)
        expect(all.autoResolvedShare).toBeCloseTo(2 / 3, 12)
        expect(all.verifiedFixes).toEqual([
          { remediation: 'disk-cleanup', count: 1 },
          { remediation: 'memory-relief', count: 1 },
          { remediation: 'service-restart', count: 1 },
        ])
        expect(all.timeSavedMinutes).toBe(45)
        expect(all.fixes).toContainEqual({ remediation: 'disk-cleanup', status: 'succeeded', count: 2 })
      })

      it('estimates time saved from the documented table', () => {
        expect(MANUAL_MINUTES['disk-cleanup']).toBe(20)
        expect(MANUAL_MINUTES['service-restart']).toBe(10)
        expect(MANUAL_MINUTES['notify-only']).toBe(0)
        expect(
          estimateMinutesSaved([
            { remediation: 'disk-cleanup', count: 3 },
            { remediation: 'notify-only', count: 4 },
            { remediation: 'some-future-fix', count: 2 },
            { remediation: 'toString', count: 1 },
          ]),
        ).toBe(60 + 0 + 2 * DEFAULT_MANUAL_MINUTES + DEFAULT_MANUAL_MINUTES)
      })
    })

    describe('notification outbox', () => {
      it('queues each message once and hands out pending ones in order', async () => {
        const store = await makeStore()
        expect(await store.enqueueNotifications([message('m-1'), message('m-2'), message('m-1')])).toEqual([
          'm-1',
          'm-2',
        ])
        expect(await store.enqueueNotifications([message('m-2'), message('m-3', { channel: 'slack' })])).toEqual([
          'm-3',
        ])
        const pending = await store.pendingNotifications(10, at(0))
        expect(pending.map((p) => p.message.id)).toEqual(['m-1', 'm-2', 'm-3'])
        expect(pending[2]).toEqual({ message: message('m-3', { channel: 'slack' }), status: 'pending', attempts: 0 })
        expect((await store.pendingNotifications(2, at(0))).map((p) => p.message.id)).toEqual(['m-1', 'm-2'])
      })

      it('never hands out a sent message again; marking twice keeps the first time', async () => {
        const store = await makeStore()
        await store.enqueueNotifications([message('m-1'), message('m-2')])
        await store.markNotificationSent('m-1', at(1))
        await store.markNotificationSent('m-1', at(2))
        expect((await store.pendingNotifications(10, at(3))).map((p) => p.message.id)).toEqual(['m-2'])
        expect(await store.getNotification('m-1')).toEqual({
          message: message('m-1'),
          status: 'sent',
          attempts: 0,
          sentAt: at(1),
        })
        // Sent is final: a late failure report changes nothing, and enqueueing again does not revive it.
        await store.markNotificationFailed('m-1', at(4), 'timeout', at(5))
        expect(await store.enqueueNotifications([message('m-1')])).toEqual([])
        expect((await store.getNotification('m-1'))?.status).toBe('sent')
      })

      it('retries a failed delivery once it is due, and is never lost', async () => {
        const store = await makeStore()
        await store.enqueueNotifications([message('m-1'), message('m-2')])
        await store.markNotificationFailed('m-1', at(1), 'smtp: ECONNREFUSED', at(6))
        expect((await store.pendingNotifications(10, at(5))).map((p) => p.message.id)).toEqual(['m-2'])
        const due = await store.pendingNotifications(10, at(6))
        expect(due.map((p) => p.message.id)).toEqual(['m-1', 'm-2'])
        expect(due[0]).toEqual({
          message: message('m-1'),
          status: 'pending',
          attempts: 1,
          lastError: 'smtp: ECONNREFUSED',
          lastAttemptAt: at(1),
          retryAt: at(6),
        })
        await store.markNotificationFailed('m-1', at(6), 'smtp: timeout', at(16))
        expect(await store.getNotification('m-1')).toMatchObject({
          attempts: 2,
          lastError: 'smtp: timeout',
          retryAt: at(16),
        })
        await store.markNotificationSent('m-1', at(16))
        expect(await store.getNotification('m-1')).toEqual({
          message: message('m-1'),
          status: 'sent',
          attempts: 2,
          lastError: 'smtp: timeout',
          lastAttemptAt: at(6),
          sentAt: at(16),
        })
      })

      it('gives up on a refused message (retryAt null) but keeps it for the record', async () => {
        const store = await makeStore()
        await store.enqueueNotifications([message('m-1')])
        await store.markNotificationFailed('m-1', at(1), "no notification channel named 'pager'", null)
        expect(await store.pendingNotifications(10, at(100))).toEqual([])
        expect(await store.getNotification('m-1')).toEqual({
          message: message('m-1'),
          status: 'dead',
          attempts: 1,
          lastError: "no notification channel named 'pager'",
          lastAttemptAt: at(1),
        })
      })

      it('says when a message is not in the outbox', async () => {
        const store = await makeStore()
        await expectStoreError(store.markNotificationSent('m-none', at(0)), 'not-found')
        await expectStoreError(store.markNotificationFailed('m-none', at(0), 'x', null), 'not-found')
        expect(await store.getNotification('m-none')).toBeUndefined()
      })

      it('stores copies of messages', async () => {
        const store = await makeStore()
        const m = message('m-1')
        await store.enqueueNotifications([m])
        m.evidence.usedPercent = 1
        const [p] = await store.pendingNotifications(1, at(0))
        p!.message.subject = 'changed'
        expect((await store.getNotification('m-1'))?.message).toEqual(message('m-1'))
      })
    })
  })
}
