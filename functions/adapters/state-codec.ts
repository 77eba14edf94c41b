/**
 * How a host's engine state is laid out inside its DynamoDB item. The state is written once an hour for a quiet host
 * and at every change, and a write costs one WRU per KB of item, so the bytes matter. Two steps before Brotli, both
 * exact (the decoded state is the encoded one, key order included):
 * - a resource state drops its `policy` and `resource` fields, which repeat the two map keys above it;
 * - trend samples (`[t, value, t, value, …]`, epoch seconds and byte counts) become deltas from the previous sample
 *   (`sd`), when every number is a safe integer: times step by a sampling interval and values move a little, so the
 *   deltas are short and repeat, where the absolute numbers were 10 to 12 digits each. Others stay as they are.
 */
import type { HostState, ResourceState } from '../../shared/engine/state.ts'

type Json = Record<string, unknown>

/** Width of one sample in the flat array: [t, value]. */
const WIDTH = 2

const deltas = (samples: readonly number[]): number[] | undefined => {
  if (!samples.every((x) => Number.isSafeInteger(x))) return undefined
  const out = new Array<number>(samples.length)
  for (let i = 0; i < samples.length; i++) {
    const d = i < WIDTH ? samples[i]! : samples[i]! - samples[i - WIDTH]!
    if (!Number.isSafeInteger(d)) return undefined
    out[i] = d
  }
  return out
}

const sums = (d: readonly number[]): number[] => {
  const out = new Array<number>(d.length)
  for (let i = 0; i < d.length; i++) out[i] = i < WIDTH ? d[i]! : d[i]! + out[i - WIDTH]!
  return out
}

/**
 * The slim form of a resource state under its policy and resource keys: without its first two fields when they are
 * exactly those keys (as the engine makes every state), `samples` as `sd`. Any other shape is kept whole under `~`.
 */
const slimResource = (rs: ResourceState, policy: string, resource: string): Json => {
  const keys = Object.keys(rs)
  if (
    keys[0] !== 'policy' ||
    keys[1] !== 'resource' ||
    rs.policy !== policy ||
    rs.resource !== resource ||
    keys.includes('sd') ||
    keys.includes('~')
  ) {
    return { '~': rs }
  }
  const out: Json = {}
  for (const k of keys.slice(2)) {
    const v = (rs as unknown as Json)[k]
    const d = k === 'samples' && Array.isArray(v) ? deltas(v as number[]) : undefined
    if (d) out.sd = d
    else out[k] = v
  }
  return out
}

const fullResource = (slim: Json, policy: string, resource: string): ResourceState => {
  if ('~' in slim) return slim['~'] as ResourceState
  const out: Json = { policy, resource }
  for (const [k, v] of Object.entries(slim)) {
    if (k === 'sd' && Array.isArray(v)) out.samples = sums(v as number[])
    else out[k] = v
  }
  return out as unknown as ResourceState
}

const mapResources = <A, B>(
  resources: Record<string, Record<string, A>>,
  fn: (rs: A, policy: string, resource: string) => B,
): Record<string, Record<string, B>> => {
  const out: Record<string, Record<string, B>> = {}
  for (const [policy, states] of Object.entries(resources)) {
    const mapped: Record<string, B> = {}
    for (const [resource, rs] of Object.entries(states)) mapped[resource] = fn(rs, policy, resource)
    out[policy] = mapped
  }
  return out
}

/** The state's slim JSON text (what gets compressed into the item). */
export const encodeState = (state: HostState): string =>
  JSON.stringify({ ...state, resources: mapResources(state.resources, slimResource) })

/** The state back from its slim JSON text. */
export const decodeState = (text: string): HostState => {
  const slim = JSON.parse(text) as HostState & { resources: Record<string, Record<string, Json>> }
  return { ...slim, resources: mapResources(slim.resources, fullResource) }
}
