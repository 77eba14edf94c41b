/**
 * The FleetStore contract: what the fleet adds to the StateStore (the host index, dispatch claims, the command map).
 * One suite for the in-memory twin and the DynamoDB store (against moto_server); each also passes the StateStore
 * contract (store-contract.ts). `makeStore` gives a fresh, empty store on every call.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { FleetHost, FleetStore } from '../../shared/ports/fleet.ts'
import { StoreError } from '../../shared/ports/store.ts'
import { failure } from '../support/rejection.ts'
import { at, HOST_A, HOST_B, hostState } from './store-fixtures.ts'

export type MakeFleetStore = () => FleetStore | Promise<FleetStore>

const MINUTE = 60_000

export const fleetHost = (id: string, over: Partial<FleetHost> = {}): FleetHost => ({
  id,
  hostname: `web-${id.slice(-4)}`,
  tags: { role: 'web', env: 'prod' },
  shard: 3,
  lastSeenAt: at(0),
  ...over,
})

/** Every page of a shard, following the cursors to the end (pages may be empty, a cursor may come with none left). */
export const allPages = async (
  store: FleetStore,
  shard: number,
  limit: number,
): Promise<{ pages: FleetHost[][]; hosts: FleetHost[] }> => {
  const pages: FleetHost[][] = []
  let cursor: string | undefined
  do {
    const page = await store.listHosts(shard, { limit, ...(cursor === undefined ? {} : { cursor }) })
    expect(page.hosts.length).toBeLessThanOrEqual(limit)
    pages.push(page.hosts)
    cursor = page.cursor
    // A store that hands out cursors forever would never end: more pages than hosts + 2 is a failure.
    expect(pages.length).toBeLessThanOrEqual(1_000)
  } while (cursor !== undefined)
  return { pages, hosts: pages.flat() }
}

const expectInvalid = async (p: Promise<unknown>): Promise<void> => {
  const err = await failure(p)
  expect(err).toBeInstanceOf(StoreError)
  expect((err as StoreError).code).toBe('invalid')
}

const ids = (hosts: readonly FleetHost[]): string[] => hosts.map((h) => h.id)

export const describeFleetStoreContract = (name: string, makeStore: MakeFleetStore): void => {
  describe(`FleetStore contract: ${name}`, () => {
    describe('host index', () => {
      it('lists nothing for a shard nobody is in', async () => {
        const store = await makeStore()
        expect(await store.listHosts(0, { limit: 10 })).toEqual({ hosts: [] })
      })

      it('adds a host and gives it back as stored, as a copy', async () => {
        const store = await makeStore()
        const host = fleetHost(HOST_A)
        await store.touchHost(host)
        host.tags.role = 'db'
        host.hostname = 'changed'
        const { hosts } = await allPages(store, 3, 10)
        expect(hosts).toEqual([fleetHost(HOST_A)])
        hosts[0]!.tags.env = 'dev'
        expect((await allPages(store, 3, 10)).hosts).toEqual([fleetHost(HOST_A)])
      })

      it('is idempotent: the same touch twice stores one host', async () => {
        const store = await makeStore()
        await store.touchHost(fleetHost(HOST_A))
        await store.touchHost(fleetHost(HOST_A))
        expect((await allPages(store, 3, 10)).hosts).toEqual([fleetHost(HOST_A)])
      })

      it('moves lastSeenAt only forward: an older touch changes nothing, a newer one refreshes the host', async () => {
        const store = await makeStore()
        await store.touchHost(fleetHost(HOST_A, { lastSeenAt: at(10) }))
        await store.touchHost(fleetHost(HOST_A, { lastSeenAt: at(5), hostname: 'stale-name', tags: {} }))
        expect((await allPages(store, 3, 10)).hosts).toEqual([fleetHost(HOST_A, { lastSeenAt: at(10) })])
        await store.touchHost(fleetHost(HOST_A, { lastSeenAt: at(11), hostname: 'web-renamed', tags: { role: 'api' } }))
        expect((await allPages(store, 3, 10)).hosts).toEqual([
          fleetHost(HOST_A, { lastSeenAt: at(11), hostname: 'web-renamed', tags: { role: 'api' } }),
        ])
      })

      it('compares lastSeenAt as instants, not as text', async () => {
        const store = await makeStore()
        await store.touchHost(fleetHost(HOST_A, { lastSeenAt: '2026-11-23T10:30:00Z' }))
        // 12:00+03:00 is 09:00Z: older, although the text sorts after it.
        await store.touchHost(fleetHost(HOST_A, { lastSeenAt: '2026-11-23T12:00:00+03:00', hostname: 'older' }))
        expect((await allPages(store, 3, 10)).hosts[0]).toMatchObject({ lastSeenAt: '2026-11-23T10:30:00Z' })
        // 11:00+00:30 is 10:30Z: the same instant, a replay; it overwrites.
        await store.touchHost(fleetHost(HOST_A, { lastSeenAt: '2026-11-23T11:00:00+00:30', hostname: 'same' }))
        expect((await allPages(store, 3, 10)).hosts[0]).toMatchObject({ hostname: 'same' })
      })

      it('pages through every host of a shard exactly once, and keeps shards apart', async () => {
        const store = await makeStore()
        const inShard3 = Array.from({ length: 23 }, (_, i) => `i-0${String(i).padStart(16, '0')}`)
        const inShard4 = Array.from({ length: 5 }, (_, i) => `i-1${String(i).padStart(16, '0')}`)
        // Touched out of order, some twice.
        for (const id of [...inShard3].reverse()) await store.touchHost(fleetHost(id, { shard: 3 }))
        for (const id of inShard4) await store.touchHost(fleetHost(id, { shard: 4 }))
        for (const id of inShard3.slice(0, 4)) await store.touchHost(fleetHost(id, { shard: 3, lastSeenAt: at(1) }))

        const three = await allPages(store, 3, 5)
        expect(three.pages.length).toBeGreaterThanOrEqual(5)
        expect(ids(three.hosts).sort()).toEqual([...inShard3].sort())
        expect(new Set(ids(three.hosts)).size).toBe(inShard3.length)
        expect(three.hosts.every((h) => h.shard === 3)).toBe(true)

        const four = await allPages(store, 4, 100)
        expect(ids(four.hosts).sort()).toEqual(inShard4)
        expect((await allPages(store, 5, 100)).hosts).toEqual([])
      })

      it('moves a host to its new shard (the shard count changed)', async () => {
        const store = await makeStore()
        await store.touchHost(fleetHost(HOST_A, { shard: 3 }))
        await store.touchHost(fleetHost(HOST_B, { shard: 3 }))
        await store.touchHost(fleetHost(HOST_A, { shard: 7, lastSeenAt: at(1) }))
        expect(ids((await allPages(store, 3, 10)).hosts)).toEqual([HOST_B])
        expect((await allPages(store, 7, 10)).hosts).toEqual([fleetHost(HOST_A, { shard: 7, lastSeenAt: at(1) })])
      })

      it('refuses a host without id, a bad time or shard, a bad limit and a foreign cursor', async () => {
        const store = await makeStore()
        await expectInvalid(store.touchHost(fleetHost('')))
        await expectInvalid(store.touchHost(fleetHost(HOST_A, { lastSeenAt: 'yesterday' })))
        await expectInvalid(store.touchHost(fleetHost(HOST_A, { shard: -1 })))
        await expectInvalid(store.touchHost(fleetHost(HOST_A, { shard: 1.5 })))
        await expectInvalid(store.listHosts(3, { limit: 0 }))
        await expectInvalid(store.listHosts(-1, { limit: 10 }))
        expect((await allPages(store, 3, 10)).hosts).toEqual([])

        for (let i = 0; i < 3; i++) await store.touchHost(fleetHost(`i-0${i}`, { shard: 1 }))
        const { cursor } = await store.listHosts(1, { limit: 1 })
        expect(cursor).toBeTypeOf('string')
        // A cursor of shard 1 means nothing in shard 2: refused, or (a store whose cursor is a plain position) empty.
        const other = await store.listHosts(2, { limit: 10, cursor: cursor! }).catch((err: unknown) => err)
        if (other instanceof Error) expect(other).toMatchObject({ code: 'invalid' })
        else expect(other).toEqual({ hosts: [] })
      })

      it('property: any page size lists each host of the shard exactly once', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.uniqueArray(fc.integer({ min: 0, max: 999 }), { minLength: 0, maxLength: 12 }),
            fc.integer({ min: 1, max: 5 }),
            async (numbers, limit) => {
              const store = await makeStore()
              const wanted = numbers.map((n) => `i-${String(n).padStart(17, '0')}`)
              for (const [k, id] of wanted.entries()) await store.touchHost(fleetHost(id, { shard: k % 2 }))
              for (const shard of [0, 1]) {
                const { hosts } = await allPages(store, shard, limit)
                expect(ids(hosts).sort()).toEqual(wanted.filter((_, k) => k % 2 === shard).sort())
              }
            },
          ),
          { numRuns: 15 },
        )
      })
    })

    describe('batch read of host states', () => {
      it('gives the states of the hosts that have one, with their versions, and leaves the others out', async () => {
        const store = await makeStore()
        await store.putHostState(HOST_A, hostState(HOST_A, 4), undefined)
        await store.putHostState(HOST_A, hostState(HOST_A, 5), 1)
        await store.putHostState(HOST_B, hostState(HOST_B, 7), undefined)
        const got = await store.getHostStates([HOST_A, 'i-0ccccccccccccccc3', HOST_B, HOST_A])
        expect([...got.keys()].sort()).toEqual([HOST_A, HOST_B])
        expect(got.get(HOST_A)).toEqual({ state: hostState(HOST_A, 5), version: 2 })
        expect(got.get(HOST_B)).toEqual({ state: hostState(HOST_B, 7), version: 1 })
        expect((await store.getHostStates([])).size).toBe(0)
      })

      it('reads more hosts than one request takes (DynamoDB: 100 keys)', async () => {
        const store = await makeStore()
        const many = Array.from({ length: 130 }, (_, i) => `i-0${String(i).padStart(16, '0')}`)
        for (const id of many) await store.putHostState(id, hostState(id, 1), undefined)
        const got = await store.getHostStates(many)
        expect(got.size).toBe(130)
        expect(got.get(many[129]!)!.state.host).toBe(many[129])
      })

      it('refuses an empty host id', async () => {
        const store = await makeStore()
        await expectInvalid(store.getHostStates(['']))
      })
    })

    describe('dispatch claims', () => {
      it('the first claim wins; a second is refused while the lease runs', async () => {
        const store = await makeStore()
        expect(await store.claimDispatch('d-1', at(0), 5 * MINUTE)).toBe(true)
        expect(await store.claimDispatch('d-1', at(0), 5 * MINUTE)).toBe(false)
        expect(await store.claimDispatch('d-1', at(4), 5 * MINUTE)).toBe(false)
      })

      it('is taken again once the lease ran out without a command (the claimant died before SendCommand)', async () => {
        const store = await makeStore()
        expect(await store.claimDispatch('d-1', at(0), 5 * MINUTE)).toBe(true)
        expect(await store.claimDispatch('d-1', '2026-11-23T10:04:59.999Z', 5 * MINUTE)).toBe(false)
        expect(await store.claimDispatch('d-1', at(5), 5 * MINUTE)).toBe(true)
        // The new claim has its own lease.
        expect(await store.claimDispatch('d-1', at(6), 5 * MINUTE)).toBe(false)
        expect(await store.claimDispatch('d-1', at(10), 5 * MINUTE)).toBe(true)
      })

      it('is never claimed again once a command is recorded', async () => {
        const store = await makeStore()
        expect(await store.claimDispatch('d-1', at(0), 5 * MINUTE)).toBe(true)
        await store.recordCommand('d-1', 'cmd-1', HOST_A, at(1))
        expect(await store.claimDispatch('d-1', at(6), 5 * MINUTE)).toBe(false)
        expect(await store.claimDispatch('d-1', at(60 * 24), 5 * MINUTE)).toBe(false)
      })

      it('a command recorded without a claim closes the claim too', async () => {
        const store = await makeStore()
        await store.recordCommand('d-2', 'cmd-2', HOST_A, at(0))
        expect(await store.claimDispatch('d-2', at(1), MINUTE)).toBe(false)
      })

      it('keeps decision keys apart', async () => {
        const store = await makeStore()
        expect(await store.claimDispatch('d-1', at(0), 5 * MINUTE)).toBe(true)
        expect(await store.claimDispatch('d-2', at(0), 5 * MINUTE)).toBe(true)
        await store.recordCommand('d-1', 'cmd-1', HOST_A, at(1))
        expect(await store.claimDispatch('d-2', at(5), 5 * MINUTE)).toBe(true)
        expect(await store.claimDispatch('d-10', at(0), 5 * MINUTE)).toBe(true)
      })

      it('of claims racing for one key, exactly one wins', async () => {
        const store = await makeStore()
        const won = await Promise.all(Array.from({ length: 6 }, () => store.claimDispatch('d-race', at(0), MINUTE)))
        expect(won.filter(Boolean)).toHaveLength(1)
      })

      it('refuses a bad time or lease', async () => {
        const store = await makeStore()
        await expectInvalid(store.claimDispatch('d-1', 'now', MINUTE))
        await expectInvalid(store.claimDispatch('d-1', at(0), -1))
        await expectInvalid(store.claimDispatch('', at(0), MINUTE))
        expect(await store.claimDispatch('d-1', at(0), MINUTE)).toBe(true)
      })
    })

    describe('commands', () => {
      it('maps an SSM command id back to its decision and host', async () => {
        const store = await makeStore()
        await store.recordCommand('d-1', 'cmd-1', HOST_A, at(0))
        expect(await store.findCommand('cmd-1')).toEqual({ key: 'd-1', host: HOST_A })
        expect(await store.findCommand('cmd-unknown')).toBeUndefined()
      })

      it('the first recording wins, and recording twice is harmless', async () => {
        const store = await makeStore()
        await store.recordCommand('d-1', 'cmd-1', HOST_A, at(0))
        await store.recordCommand('d-1', 'cmd-1', HOST_A, at(0))
        await store.recordCommand('d-other', 'cmd-1', HOST_B, at(1))
        expect(await store.findCommand('cmd-1')).toEqual({ key: 'd-1', host: HOST_A })
        // A second command for the same decision (sent after a lease ran out) is still ANSAI's.
        await store.recordCommand('d-1', 'cmd-2', HOST_A, at(2))
        expect(await store.findCommand('cmd-2')).toEqual({ key: 'd-1', host: HOST_A })
        expect(await store.claimDispatch('d-1', at(60), MINUTE)).toBe(false)
      })

      it('gives copies', async () => {
        const store = await makeStore()
        await store.recordCommand('d-1', 'cmd-1', HOST_A, at(0))
        const found = (await store.findCommand('cmd-1'))!
        found.key = 'changed'
        expect(await store.findCommand('cmd-1')).toEqual({ key: 'd-1', host: HOST_A })
      })

      it('refuses a command without id, host or time', async () => {
        const store = await makeStore()
        await expectInvalid(store.recordCommand('d-1', '', HOST_A, at(0)))
        await expectInvalid(store.recordCommand('d-1', 'cmd-1', '', at(0)))
        await expectInvalid(store.recordCommand('d-1', 'cmd-1', HOST_A, 'soon'))
        expect(await store.findCommand('cmd-1')).toBeUndefined()
        expect(await store.claimDispatch('d-1', at(0), MINUTE)).toBe(true)
      })
    })

    describe('command tokens (the fleet-wide breaker)', () => {
      it('gives `limit` tokens per UTC minute, then refuses until the next minute', async () => {
        const store = await makeStore()
        const minute = Date.parse('2026-11-23T10:04:00Z')
        const t = (s: number) => new Date(minute + s * 1000).toISOString()
        const taken = []
        for (let i = 0; i < 4; i++) taken.push(await store.takeCommandToken(t(i * 10), 3))
        expect(taken).toEqual([true, true, true, false])
        expect(await store.takeCommandToken(t(59), 3)).toBe(false)
        expect(await store.takeCommandToken(t(60), 3)).toBe(true)
        // A higher limit in the same minute gives the difference.
        expect(await store.takeCommandToken(t(30), 5)).toBe(true)
      })

      it('refuses a bad time or limit', async () => {
        const store = await makeStore()
        await expectInvalid(store.takeCommandToken('soon', 3))
        await expectInvalid(store.takeCommandToken(at(0), 0))
      })
    })
  })
}
