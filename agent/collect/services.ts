import type { ProbesConfig } from '../config/probes.ts'
import { parseSystemctlShow, type ServiceObservation, SYSTEMD_SHOW_PROPERTIES } from '../probes/systemd-show.ts'
import { type CollectContext, emptyOutput, type ProbeOutput } from './context.ts'
import { parseListUnits, systemctl, systemdUnavailable, uniqueUnits } from './systemd.ts'

const PROBE = 'service'

/**
 * systemd units: the configured names and globs (systemd expands globs against its loaded units) plus, with
 * `failedAny`, every unit `systemctl list-units --failed` names; then ONE `systemctl show --property=...` for all
 * of them, parsed by agent/probes/systemd-show.ts. Where systemd is not the init system, one ProbeError says so.
 */
export async function collectServices(config: ProbesConfig['services'], ctx: CollectContext): Promise<ProbeOutput> {
  const out = emptyOutput()
  if (config.units.length === 0 && !config.failedAny) return out
  const unavailable = await systemdUnavailable(ctx)
  if (unavailable) {
    out.errors.push({ probe: PROBE, reason: unavailable })
    return out
  }

  let failed: string[] = []
  if (config.failedAny) {
    const listed = await systemctl(ctx, ['list-units', '--failed', '--plain', '--no-legend', '--full', '--no-pager'])
    // ANSAI's own units (a report hook that hit its start limit) are not ANSAI's to restart: systemd and people are.
    if (listed.ok) failed = parseListUnits(listed.stdout).filter((u) => !u.startsWith('ansai-'))
    else out.errors.push({ probe: PROBE, reason: `failed units unknown: ${listed.reason}` })
  }
  const units = uniqueUnits([...config.units, ...failed])
  if (units.length === 0) return out

  const shown = await systemctl(ctx, [
    'show',
    '--no-pager',
    `--property=${SYSTEMD_SHOW_PROPERTIES.join(',')}`,
    '--',
    ...units,
  ])
  if (!shown.ok) {
    out.errors.push({ probe: PROBE, reason: shown.reason })
    return out
  }
  // Globs that match no loaded unit, and nothing else: systemctl prints nothing.
  if (shown.stdout.trim() === '') return out
  const parsed = parseSystemctlShow(shown.stdout)
  if (!parsed.ok) {
    out.errors.push(parsed.error)
    return out
  }
  out.errors.push(...parsed.problems)
  const seen = new Set<string>()
  for (const obs of parsed.value as ServiceObservation[]) {
    if (seen.has(obs.unit)) continue // a failed unit that a glob also matched
    seen.add(obs.unit)
    out.observations.push(obs)
  }
  return out
}
