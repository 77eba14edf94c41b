import type { Incident, Level } from '../contracts/index.ts'

/**
 * Engine state of one (policy, resource) on one host. Plain JSON-safe data (times are epoch ms, trend sample times
 * epoch seconds); fields at their empty value are left out, so a healthy resource costs a few dozen bytes.
 */
export interface ResourceState {
  policy: string
  resource: string
  /** Match history per severity tier (policy order), newest evaluation in bit 0. */
  hist: number[]
  /** Debounced level at the last evaluation; absent means ok. */
  level?: Level
  /** Healthy evaluations in a row while an incident is open (flap damping). */
  okStreak?: number
  /** Trend samples, flat [t, value] pairs; only when the policy reads a trend. */
  samples?: number[]
  incident?: Incident
  /** Start times of fixes on this resource, for limits and cooldowns. */
  fixes?: number[]
  /** Times the resource opened or resolved an incident, for flapping detection. */
  flaps?: number[]
  /** The last observation, kept only for time-based kinds (certificates, backups, cron) for ticks. */
  last?: Record<string, unknown>
}

/** Engine state of one host: what `evaluate` takes and gives back. Stored per host (SQLite row, DynamoDB item). */
export interface HostState {
  v: 1
  host: string
  /** Highest report sequence applied; older or repeated reports never move state back. */
  lastSeq: number
  lastSeenAt: number | null
  /** Resource states by policy name, then by resource. */
  resources: Record<string, Record<string, ResourceState>>
}

export const emptyHostState = (host: string): HostState => ({
  v: 1,
  host,
  lastSeq: -1,
  lastSeenAt: null,
  resources: {},
})

/** The state of one resource under one policy, if the engine has seen it. */
export const resourceState = (
  state: HostState | undefined,
  policy: string,
  resource: string,
): ResourceState | undefined => state?.resources[policy]?.[resource]

/** Every resource state of a host, policy by policy. */
export function* allResources(state: HostState): Generator<ResourceState> {
  for (const policy in state.resources) {
    const states = state.resources[policy]!
    for (const resource in states) yield states[resource]!
  }
}

export const newResourceState = (policy: string, resource: string, tiers: number): ResourceState => ({
  policy,
  resource,
  hist: new Array<number>(tiers).fill(0),
})

const cloneIncident = (i: Incident): Incident => ({
  ...i,
  stepsDone: [...i.stepsDone],
  attempts: i.attempts.map((a) => ({ ...a })),
  milestones: [...i.milestones],
  lastValues: { ...i.lastValues },
})

/**
 * Copy before changing: evaluate never mutates its input. The incident is changed in place on the copy; `hist`,
 * `samples`, `fixes` and `flaps` are never changed in place (always replaced), so they are shared.
 */
export const cloneResourceState = (r: ResourceState): ResourceState => {
  const copy = { ...r }
  // Keys keep their order (the state is stored as JSON): `incident` is replaced where it is.
  if (r.incident) copy.incident = cloneIncident(r.incident)
  return copy
}
