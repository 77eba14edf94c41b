import type { ObservationOf } from '../../shared/contracts/index.ts'
import { failed, type ParseResult, parsed, parseNonNegativeInt, problem, quote, splitLines } from './parse-result.ts'

const PROBE = 'service'

export type ServiceObservation = ObservationOf<'service'>

/** The properties the OS adapter asks for: `systemctl show --property=<these joined by ,> <units...>`. */
export const SYSTEMD_SHOW_PROPERTIES = [
  'Id',
  'LoadState',
  'ActiveState',
  'SubState',
  'NRestarts',
  'MainPID',
  'MemoryCurrent',
  'Restart',
  'Result',
] as const

const ACTIVE_STATES = new Set<ServiceObservation['activeState']>([
  'active',
  'reloading',
  'inactive',
  'failed',
  'activating',
  'deactivating',
  'maintenance',
])

/** systemd prints `[not set]` for an unknown memory figure, or UINT64_MAX in older versions. */
function parseMemory(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  return parseNonNegativeInt(value) // `[not set]`, empty and 18446744073709551615 (not a safe integer) → undefined
}

/** One `Key=Value` block → observation, or the reason it is unusable. */
function parseBlock(props: Map<string, string>): ServiceObservation | string {
  const unit = props.get('Id')
  if (!unit) return 'block without Id='
  const activeState = props.get('ActiveState')
  if (activeState === undefined) return `${unit}: no ActiveState=`
  if (!ACTIVE_STATES.has(activeState as ServiceObservation['activeState'])) {
    return `${unit}: unknown ActiveState ${quote(activeState)}`
  }
  const restartsText = props.get('NRestarts')
  // NRestarts= exists since systemd 235; on older hosts, or when it is empty, count 0.
  const restarts = restartsText === undefined || restartsText === '' ? 0 : parseNonNegativeInt(restartsText)
  if (restarts === undefined) return `${unit}: bad NRestarts ${quote(restartsText ?? '')}`
  const pidText = props.get('MainPID')
  const mainPid = pidText === undefined || pidText === '' ? 0 : parseNonNegativeInt(pidText)
  if (mainPid === undefined) return `${unit}: bad MainPID ${quote(pidText ?? '')}`

  const obs: ServiceObservation = {
    kind: 'service',
    unit,
    activeState: activeState as ServiceObservation['activeState'],
    subState: props.get('SubState') ?? '',
    restarts,
    mainPid,
  }
  const loadState = props.get('LoadState')
  if (loadState) obs.loadState = loadState
  const memoryBytes = parseMemory(props.get('MemoryCurrent'))
  if (memoryBytes !== undefined) obs.memoryBytes = memoryBytes
  const restart = props.get('Restart')
  if (restart !== undefined && restart !== '') obs.restartPolicy = restart
  const result = props.get('Result')
  if (result !== undefined && result !== '') {
    obs.result = result
    obs.startLimitHit = result === 'start-limit-hit'
  }
  return obs
}

/**
 * Parses the output of `systemctl show --property=Id,LoadState,... unit1 unit2 ...`: one block of `Key=Value`
 * lines per unit, blocks separated by blank lines, properties in systemd's own order. A block that cannot be used
 * (no Id, unknown ActiveState) is skipped and reported in `problems`; the others are kept. Text with no block at
 * all, or with lines that are not `Key=Value`, fails.
 */
export function parseSystemctlShow(text: string): ParseResult<ServiceObservation[]> {
  if (typeof text !== 'string') return failed(PROBE, 'systemctl show output is not text')
  const blocks: Map<string, string>[] = []
  let current: Map<string, string> | undefined
  const lines = splitLines(text)
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') {
      current = undefined
      continue
    }
    const eq = line.indexOf('=')
    if (eq <= 0 || !/^[A-Za-z][A-Za-z0-9]*$/.test(line.slice(0, eq))) {
      return failed(PROBE, `line ${i + 1} is not Key=Value: ${quote(line)}`)
    }
    if (!current) {
      current = new Map()
      blocks.push(current)
    }
    current.set(line.slice(0, eq), line.slice(eq + 1))
  }
  if (blocks.length === 0) return failed(PROBE, 'systemctl show printed no unit')

  const observations: ServiceObservation[] = []
  const problems = []
  for (const block of blocks) {
    const out = parseBlock(block)
    if (typeof out === 'string') problems.push(problem(PROBE, out))
    else observations.push(out)
  }
  return parsed(observations, problems)
}
