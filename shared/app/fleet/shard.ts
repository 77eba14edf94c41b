import { stableHash } from '../../engine/hash.ts'

/**
 * The shard of a host in the scheduled evaluation round: a stable hash of its id, so hosts spread evenly and a host
 * stays in its shard for as long as the shard count stays the same.
 */
export const shardOf = (hostId: string, shards: number): number => {
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shards must be a positive integer, got ${shards}`)
  return Number.parseInt(stableHash('shard', hostId).slice(0, 8), 16) % shards
}

/** The host id an SQS `SenderId` proves: the role session name of an EC2 instance (`i-…`) or a hybrid node (`mi-…`). */
export const hostOfSender = (senderId: string): string | undefined => {
  const session = senderId.slice(senderId.indexOf(':') + 1)
  return /^(?:i|mi)-[0-9a-f]{8,17}$/.test(session) ? session : undefined
}
