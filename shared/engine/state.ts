import type { Incident, Level } from '../contracts/index.ts'

/** Engine state of one (policy, resource) on one host. Plain JSON-safe data (numbers are epoch ms). */
export interface ResourceState {
  policy: string
  resource: string
  /** Match history per severity tier (policy order), newest evaluation in bit 0. */
  hist: number[]
  /** Debounced level at the last evaluation. */
  level: Level
  /** Healthy evaluations in a row while an incident is open (flap damping). */
  okStreak: number
  /** Trend samples, flat [t, value, capacity] triples; empty unless the policy reads a trend. */
  samples: number[]
  incident: Incident | null
  /** Start times of fixes on this resource, for limits and cooldowns. */
  fixes: number[]
  /** Times the resource opened or resolved an incident, for flapping detection. */
  flaps: number[]
  /** The last observation, kept only for time-based kinds (certificates, backups, cron) for ticks. */
  last: Record<string, unknown> | null
  seenAt: number
}

/** Engine state of one host: what `evaluate` takes and gives back. Stored per host (SQLite row, DynamoDB item). */
export interface HostState {
  v: 1
  host: string
  /** Highest report sequence applied; older or repeated reports never move state back. */
  lastSeq: number
  lastSeenAt: number | null
  resources: Record<string, ResourceState>
}

export const emptyHostState = (host: string): HostState => ({
  v: 1,
  host,
  lastSeq: -1,
  lastSeenAt: null,
  resources: {},
})

export const resourceKey = (policy: string, resource: string): string => `${policy}|${resource}`

export const newResourceState = (policy: string, resource: string, tiers: number, now: number): ResourceState => ({
  policy,
  resource,
  hist: new Array<number>(tiers).fill(0),
  level: 'ok',
  okStreak: 0,
  samples: [],
  incident: null,
  fixes: [],
  flaps: [],
  last: null,
  seenAt: now,
})

const cloneIncident = (i: Incident): Incident => ({
  ...i,
  stepsDone: [...i.stepsDone],
  attempts: i.attempts.map((a) => ({ ...a })),
  milestones: [...i.milestones],
  lastValues: { ...i.lastValues },
})

/** Copy before changing: evaluate never mutates its input. */
export const cloneResourceState = (r: ResourceState): ResourceState => ({
  ...r,
  hist: [...r.hist],
  fixes: [...r.fixes],
  flaps: [...r.flaps],
  incident: r.incident ? cloneIncident(r.incident) : null,
})
