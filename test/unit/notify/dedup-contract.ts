/**
 * The DedupStore contract: one suite every implementation runs (the in-memory twin here, the SQLite store of
 * the single-host mode and the DynamoDB one of the fleet when they come).
 */
import { describe, expect, it } from 'vitest'
import type { DedupStore } from '../../../shared/ports/notifier.ts'

export const dedupStoreContract = (name: string, make: () => Promise<DedupStore> | DedupStore): void => {
  describe(`DedupStore contract: ${name}`, () => {
    it('has seen nothing at first', async () => {
      const store = await make()
      expect(await store.seen('m-0000000000000001')).toBe(false)
    })

    it('remembers an id, and only that id', async () => {
      const store = await make()
      await store.remember('m-0000000000000001', '2026-11-23T10:00:00.000Z')
      expect(await store.seen('m-0000000000000001')).toBe(true)
      expect(await store.seen('m-0000000000000002')).toBe(false)
    })

    it('takes the same id twice without complaint (at-least-once callers)', async () => {
      const store = await make()
      await store.remember('m-0000000000000001', '2026-11-23T10:00:00.000Z')
      await store.remember('m-0000000000000001', '2026-11-23T10:05:00.000Z')
      expect(await store.seen('m-0000000000000001')).toBe(true)
    })

    it('keeps ids apart exactly (no prefix or case folding)', async () => {
      const store = await make()
      await store.remember('m-abc', '2026-11-23T10:00:00.000Z')
      expect(await store.seen('m-ab')).toBe(false)
      expect(await store.seen('m-ABC')).toBe(false)
      expect(await store.seen('m-abcd')).toBe(false)
    })
  })
}
