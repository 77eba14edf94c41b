import type { FleetHost, FleetStore } from '../../ports/fleet.ts'
import { StoreError, type VersionedHostState } from '../../ports/store.ts'
import { checkHostId, jsonCopy, toDuration, toLimit, toMs } from '../store/common.ts'
import { InMemoryStateStore } from '../store/memory.ts'

/**
 * The in-memory twin of the FleetStore port: the in-memory StateStore plus the fleet's host index, dispatch claims
 * and command map, in plain Maps. No clock: every time comes in as an argument. It passes the same contract suites
 * as the DynamoDB store (test/contract/store-contract.ts and test/contract/fleet-store-contract.ts).
 */

/**
 * A host for the index, checked and normalized (only the known fields, as a JSON copy), with `lastSeenAt` in epoch
 * ms. Both FleetStore adapters store exactly this.
 */
export const fleetHostOf = (host: FleetHost): { host: FleetHost; seenMs: number } => {
  checkHostId(host?.id, 'fleet host')
  if (typeof host.hostname !== 'string') {
    throw new StoreError(`fleet host ${host.id}: hostname must be a string`, { code: 'invalid' })
  }
  checkShard(host.shard, `fleet host ${host.id}`)
  const tags = host.tags ?? {}
  if (
    typeof tags !== 'object' ||
    Array.isArray(tags) ||
    Object.values(tags as Record<string, unknown>).some((v) => typeof v !== 'string')
  ) {
    throw new StoreError(`fleet host ${host.id}: tags must map names to strings`, { code: 'invalid' })
  }
  const seenMs = toMs(host.lastSeenAt, `fleet host ${host.id}: lastSeenAt`)
  const copy = jsonCopy(
    { id: host.id, hostname: host.hostname, tags, shard: host.shard, lastSeenAt: host.lastSeenAt },
    `fleet host ${host.id}`,
  )
  return { host: copy, seenMs }
}

/** A shard number: a non-negative integer. */
export const checkShard = (shard: number, what: string): number => {
  if (!Number.isInteger(shard) || shard < 0) {
    throw new StoreError(`${what}: shard must be a non-negative integer, got ${String(shard)}`, { code: 'invalid' })
  }
  return shard
}

/** The arguments of claimDispatch, checked: a decision key, a time and a lease (ms, not negative). */
export const claimArgsOf = (key: string, at: string, leaseMs: number): { atMs: number; leaseMs: number } => {
  checkKey(key, 'claimDispatch')
  const atMs = toMs(at, `claimDispatch ${key}: at`)
  return { atMs, leaseMs: toDuration(leaseMs, `claimDispatch ${key}: leaseMs`)! }
}

/** The arguments of recordCommand, checked. */
export const commandArgsOf = (key: string, commandId: string, host: string, at: string): { atMs: number } => {
  checkKey(key, 'recordCommand')
  checkKey(commandId, `recordCommand ${key}: commandId`)
  checkHostId(host, `recordCommand ${key}`)
  return { atMs: toMs(at, `recordCommand ${key}: at`) }
}

const checkKey = (key: string, what: string): void => {
  if (typeof key !== 'string' || key.length === 0) {
    throw new StoreError(`${what}: a non-empty key is required`, { code: 'invalid' })
  }
}

interface Claim {
  /** The lease runs until then (epoch ms); absent when a command was recorded without a claim. */
  untilMs?: number
  commandId?: string
}

/** The UTC minute of `at` (`2026-11-23T10:04`), after checking the arguments of `takeCommandToken`. */
export const tokenMinuteOf = (at: string, limit: number): string => {
  const ms = Date.parse(at)
  if (!Number.isFinite(ms)) throw new StoreError(`takeCommandToken: not a timestamp: ${at}`, { code: 'invalid' })
  if (!Number.isInteger(limit) || limit < 1) {
    throw new StoreError(`takeCommandToken: the limit must be a positive integer, got ${limit}`, { code: 'invalid' })
  }
  return new Date(ms).toISOString().slice(0, 16)
}

export class MemoryFleetStore extends InMemoryStateStore implements FleetStore {
  private readonly index = new Map<string, { host: FleetHost; seenMs: number }>()
  private readonly claims = new Map<string, Claim>()
  private readonly commands = new Map<string, { key: string; host: string }>()
  private readonly tokens = new Map<string, number>()

  async touchHost(host: FleetHost): Promise<void> {
    const next = fleetHostOf(host)
    const stored = this.index.get(next.host.id)
    // Only forward (an equal time is a replay and overwrites, like an incident's updatedAt).
    if (stored && stored.seenMs > next.seenMs) return
    this.index.set(next.host.id, next)
  }

  async getHostStates(hostIds: readonly string[]): Promise<Map<string, VersionedHostState>> {
    const out = new Map<string, VersionedHostState>()
    for (const id of new Set(hostIds)) {
      checkHostId(id, 'getHostStates')
      const stored = await this.getHostState(id)
      if (stored) out.set(id, stored)
    }
    return out
  }

  async listHosts(
    shard: number,
    options: { limit: number; cursor?: string },
  ): Promise<{ hosts: FleetHost[]; cursor?: string }> {
    checkShard(shard, 'listHosts')
    const limit = toLimit(options.limit, 'listHosts: limit')
    if (options.cursor !== undefined && typeof options.cursor !== 'string') {
      throw new StoreError('listHosts: cursor must be a string', { code: 'invalid' })
    }
    const after = options.cursor
    const ids = [...this.index.values()]
      .filter((h) => h.host.shard === shard && (after === undefined || h.host.id > after))
      .map((h) => h.host.id)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const page = ids.slice(0, limit)
    const hosts = page.map((id) => jsonCopy(this.index.get(id)!.host, 'fleet host'))
    return ids.length > limit ? { hosts, cursor: page[page.length - 1]! } : { hosts }
  }

  async claimDispatch(key: string, at: string, leaseMs: number): Promise<boolean> {
    const args = claimArgsOf(key, at, leaseMs)
    const claim = this.claims.get(key)
    if (claim && (claim.commandId !== undefined || (claim.untilMs ?? Number.POSITIVE_INFINITY) > args.atMs)) {
      return false
    }
    this.claims.set(key, { untilMs: args.atMs + args.leaseMs })
    return true
  }

  async recordCommand(key: string, commandId: string, host: string, at: string): Promise<void> {
    commandArgsOf(key, commandId, host, at)
    const claim = this.claims.get(key)
    if (claim?.commandId === undefined) this.claims.set(key, { ...claim, commandId })
    if (!this.commands.has(commandId)) this.commands.set(commandId, { key, host })
  }

  async findCommand(commandId: string): Promise<{ key: string; host: string } | undefined> {
    const c = this.commands.get(commandId)
    return c && { ...c }
  }

  async takeCommandToken(at: string, limit: number): Promise<boolean> {
    const minute = tokenMinuteOf(at, limit)
    const used = this.tokens.get(minute) ?? 0
    if (used >= limit) return false
    this.tokens.set(minute, used + 1)
    return true
  }
}
