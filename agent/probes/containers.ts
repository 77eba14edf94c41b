import type { ObservationOf, ProbeError } from '../../shared/contracts/index.ts'
import { failed, type ParseResult, parsed, problem, quote, splitLines } from './parse-result.ts'

const PROBE = 'container'

export type ContainerObservation = ObservationOf<'container'>
type ContainerState = ContainerObservation['state']
type ContainerHealth = ContainerObservation['health']
export type ContainerRuntime = ContainerObservation['runtime']

/** One row of `ps`, before `inspect` adds what `ps` does not say (restart count, exact health). */
export interface ContainerRow {
  id: string
  name: string
  image: string | undefined
  state: ContainerState
  health: ContainerHealth
  restarts: number | undefined
}

/** What `inspect` adds. */
export interface ContainerDetails {
  id: string
  name: string
  image: string | undefined
  state: ContainerState
  health: ContainerHealth
  restarts: number
}

/**
 * Docker's states are the schema's. Podman adds a few: `configured`/`initialized` (created, never started),
 * `stopped` (= exited), `stopping` (still running until it is not).
 */
const STATE_ALIASES = new Map<string, ContainerState>([
  ['created', 'created'],
  ['configured', 'created'],
  ['initialized', 'created'],
  ['running', 'running'],
  ['stopping', 'running'],
  ['paused', 'paused'],
  ['restarting', 'restarting'],
  ['removing', 'removing'],
  ['exited', 'exited'],
  ['stopped', 'exited'],
  ['dead', 'dead'],
])

const HEALTH_VALUES = new Map<string, ContainerHealth>([
  ['healthy', 'healthy'],
  ['unhealthy', 'unhealthy'],
  ['starting', 'starting'],
  ['none', 'none'],
  ['', 'none'],
])
const toHealth = (v: unknown): ContainerHealth | undefined =>
  typeof v === 'string' ? HEALTH_VALUES.get(v.toLowerCase()) : undefined

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
const nonNegInt = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined

const toState = (v: unknown): ContainerState | undefined =>
  typeof v === 'string' ? STATE_ALIASES.get(v.toLowerCase()) : undefined

/** The health in a `ps` status text: `Up 3 days (healthy)`, `Up 5 seconds (health: starting)`. */
export function healthFromStatus(status: string | undefined): ContainerHealth {
  const m = /\((?:health: )?(healthy|unhealthy|starting)\)/.exec(status ?? '')
  return (m?.[1] as ContainerHealth | undefined) ?? 'none'
}

/** Docker: `"Names":"web"` (comma-separated when there are several); podman: `"Names":["web"]`. */
function firstName(v: unknown): string | undefined {
  if (Array.isArray(v)) return str(v[0])
  const s = str(v)
  return s ? s.split(',')[0] : undefined
}

function rowFromJson(o: Record<string, unknown>): ContainerRow | string {
  const id = str(o.ID) ?? str(o.Id) ?? ''
  const name = firstName(o.Names)?.replace(/^\//, '')
  if (!name) return `ps row without a name (id ${quote(id)})`
  const state = toState(o.State)
  if (!state) return `${name}: unknown state ${quote(String(o.State))}`
  // A `Health` field when the runtime gives one, else the `(healthy)` in the status text.
  const health = (str(o.Health) ? toHealth(o.Health) : undefined) ?? healthFromStatus(str(o.Status))
  return {
    id,
    name,
    image: str(o.Image),
    state,
    health,
    restarts: nonNegInt(o.Restarts) ?? nonNegInt(o.RestartCount),
  }
}

/**
 * `docker ps -a --no-trunc --format '{{json .}}'` (one JSON object per line) or `podman ps -a --format json`
 * (one JSON array) → rows. A row that is not understood is skipped and named in `problems`.
 */
export function parseContainerPs(text: string): ParseResult<ContainerRow[]> {
  if (typeof text !== 'string') return failed(PROBE, 'ps output is not text')
  let items: unknown[]
  const trimmed = text.trim()
  if (trimmed === '') return parsed([])
  if (trimmed.startsWith('[')) {
    try {
      const all: unknown = JSON.parse(trimmed)
      if (!Array.isArray(all)) return failed(PROBE, 'ps output is not a JSON array')
      items = all
    } catch (err) {
      return failed(PROBE, `ps output is not JSON: ${(err as Error).message}`)
    }
  } else {
    items = []
    for (const [i, line] of splitLines(trimmed).entries()) {
      if (line.trim() === '') continue
      try {
        items.push(JSON.parse(line))
      } catch {
        return failed(PROBE, `ps line ${i + 1} is not JSON: ${quote(line)}`)
      }
    }
  }
  const rows: ContainerRow[] = []
  const problems: ProbeError[] = []
  for (const item of items) {
    if (!isRecord(item)) {
      problems.push(problem(PROBE, 'ps item is not an object'))
      continue
    }
    const row = rowFromJson(item)
    if (typeof row === 'string') problems.push(problem(PROBE, row))
    else rows.push(row)
  }
  return parsed(rows, problems)
}

/**
 * `docker inspect <ids...>` / `podman inspect <ids...>` (a JSON array) → details: `State.Status`,
 * `State.Health.Status` (podman < 4: `State.Healthcheck.Status`), `RestartCount`, `Config.Image`.
 */
export function parseContainerInspect(text: string): ParseResult<ContainerDetails[]> {
  if (typeof text !== 'string') return failed(PROBE, 'inspect output is not text')
  let all: unknown
  try {
    all = JSON.parse(text)
  } catch (err) {
    return failed(PROBE, `inspect output is not JSON: ${(err as Error).message}`)
  }
  if (!Array.isArray(all)) return failed(PROBE, 'inspect output is not a JSON array')
  const details: ContainerDetails[] = []
  const problems: ProbeError[] = []
  for (const item of all) {
    if (!isRecord(item)) {
      problems.push(problem(PROBE, 'inspect item is not an object'))
      continue
    }
    const id = str(item.Id) ?? str(item.ID) ?? ''
    const name = str(item.Name)?.replace(/^\//, '')
    if (!name) {
      problems.push(problem(PROBE, `inspect item without a name (id ${quote(id)})`))
      continue
    }
    const st = isRecord(item.State) ? item.State : {}
    const state = toState(st.Status)
    if (!state) {
      problems.push(problem(PROBE, `${name}: unknown State.Status ${quote(String(st.Status))}`))
      continue
    }
    const healthObj = isRecord(st.Health) ? st.Health : isRecord(st.Healthcheck) ? st.Healthcheck : undefined
    const health = toHealth(healthObj?.Status ?? '') ?? 'none'
    const config = isRecord(item.Config) ? item.Config : {}
    details.push({
      id,
      name,
      image: str(config.Image) ?? str(item.ImageName) ?? str(item.Image),
      state,
      health,
      restarts: nonNegInt(item.RestartCount) ?? 0,
    })
  }
  return parsed(details, problems)
}

function findDetails(row: ContainerRow, details: readonly ContainerDetails[]): ContainerDetails | undefined {
  return (
    details.find((d) => row.id !== '' && d.id !== '' && (d.id.startsWith(row.id) || row.id.startsWith(d.id))) ??
    details.find((d) => d.name === row.name)
  )
}

/**
 * `ps` text (+ `inspect` text of the same containers, when the adapter could get it) → observations. `inspect`
 * wins where both speak (state, health, restarts); without it restarts come from `ps` when it has them (podman),
 * else 0. A failed `inspect` does not fail the observations: it is named in `problems`.
 */
export function parseContainers(
  runtime: ContainerRuntime,
  psText: string,
  inspectText?: string,
): ParseResult<ContainerObservation[]> {
  const ps = parseContainerPs(psText)
  if (!ps.ok) return ps
  const problems = [...ps.problems]
  let details: ContainerDetails[] = []
  if (inspectText !== undefined) {
    const inspected = parseContainerInspect(inspectText)
    if (inspected.ok) {
      details = inspected.value
      problems.push(...inspected.problems)
    } else {
      problems.push(problem(PROBE, `inspect ignored: ${inspected.error.reason}`))
    }
  }
  const observations = ps.value.map((row): ContainerObservation => {
    const d = findDetails(row, details)
    const obs: ContainerObservation = {
      kind: 'container',
      runtime,
      name: row.name,
      state: d?.state ?? row.state,
      health: d ? d.health : row.health,
      restarts: d?.restarts ?? row.restarts ?? 0,
    }
    const image = row.image ?? d?.image
    if (image) obs.image = image
    return obs
  })
  return parsed(observations, problems)
}
