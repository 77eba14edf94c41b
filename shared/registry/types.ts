import type { z } from 'zod'
import type { Observation, ObservationKind, ObservationOf, Risk } from '../contracts/index.ts'

/** CEL types the engine declares for policy expressions. */
export type VariableType = 'double' | 'string' | 'bool' | 'list' | 'map'

export interface VariableDoc {
  type: VariableType
  description: string
}

/**
 * A trend the engine can compute from a window of samples (least squares): the growth per hour of `value`, and
 * the time until it reaches `capacity` (`Infinity` when not growing or too few samples).
 */
export interface TrendDefinition<O> {
  value: (o: O) => number
  capacity: (o: O) => number | undefined
  /** Name of the derived time-to-capacity variable, e.g. `hoursToFull`, and its unit. */
  eta: { name: string; unit: 'hours' | 'minutes'; description: string }
  /** Name of the derived growth-rate variable (units of `value` per hour), e.g. `growthBytesPerHour`. */
  rate: { name: string; description: string }
}

export interface DeriveContext {
  /** Evaluation time, epoch milliseconds. */
  now: number
}

/** One element per observation kind: what the engine needs to evaluate policies on it. */
export interface ProbeDefinition<K extends ObservationKind = ObservationKind> {
  kind: K
  title: string
  description: string
  schema: z.ZodType<ObservationOf<K>>
  /** The fields that name the resource, e.g. ['mount']; `resource()` joins them. */
  identity: readonly string[]
  resource: (o: ObservationOf<K>) => string
  /** Derived values offered to expressions besides the observation's own fields. */
  derived: Record<string, VariableDoc>
  derive: (o: ObservationOf<K>, ctx: DeriveContext) => Record<string, number | string | boolean>
  trend?: TrendDefinition<ObservationOf<K>>
  /** Derived values depend on the clock (days left, age): the engine re-evaluates the last observation on ticks. */
  timeBased?: boolean
  /** For time-based kinds: the observation fields derive() reads (kept with the last observation for ticks). */
  clockFields?: readonly string[]
  /** `every-cycle` probes run each agent cycle; `slow` ones (seconds of CPU) run on their own schedule, cached. */
  schedule: 'every-cycle' | 'slow'
  /** `available` once the agent has a collector for it. */
  status: 'available' | 'planned'
  /** A whole policy document (YAML) that uses this kind; the meta-tests load it. */
  example: string
}

export interface DefaultGuards {
  limit?: { max: number; within: string; then: 'escalate' | 'stop' }
  cooldown?: string
}

/** One element per remediation: metadata and a strict params schema; executors live in the agent. */
export interface RemediationDefinition<P extends z.ZodType = z.ZodType> {
  /** `<noun>-<verb>`, e.g. `disk-cleanup`. */
  id: string
  title: string
  description: string
  params: P
  risk: Risk
  /** When the risk depends on the params (custom-script declares it per use); defaults to `risk`. */
  riskOf?: (params: z.infer<P>) => Risk
  /** `available` once its executor and SSM document exist; a policy that uses a planned one is refused. */
  status: 'available' | 'planned'
  /** Observation kinds this remediation acts on (`*` for any). */
  appliesTo: readonly (ObservationKind | '*')[]
  defaultGuards: DefaultGuards
  /**
   * Params the engine fills from the observed resource when a policy leaves them out, per observed kind: e.g. a
   * `service-restart` on a `service` observation gets `unit` from the observation's `unit`. The filled params are
   * validated again by the params schema before any decision is made. `placeholder` is a valid value used to check
   * the rest of the params at load time.
   */
  bind?: Partial<Record<ObservationKind, { param: string; field: string; placeholder: string }>>
  /** SSM Command document, `ANSAI-<Verb><Noun>`. */
  ssmDocument: string | null
  /** What the executor needs on the host, for the docs and the install script. */
  permissions: readonly string[]
  /** A whole policy document (YAML) that uses this remediation; the meta-tests load it. */
  example: string
}

export type AnyObservation = Observation
