import type { ProbesConfig } from '../config/probes.ts'
import type { RunResult } from '../os/exec.ts'
import { type ContainerRuntime, parseContainerPs, parseContainers } from '../probes/containers.ts'
import {
  type CollectContext,
  cEnvironment,
  commandFailure,
  emptyOutput,
  errnoOf,
  type ProbeOutput,
  spawnFailure,
} from './context.ts'

const PROBE = 'container'
export const CONTAINER_TIMEOUT_MS = 10_000
export const RUNTIMES: readonly ContainerRuntime[] = ['docker', 'podman']

/** What a runtime says when its client is installed but no daemon answers. */
const NO_DAEMON =
  /Cannot connect to the Docker daemon|Is the docker daemon running|error during connect|unable to connect to Podman socket|podman\.sock/i

const PS_FORMAT: Record<ContainerRuntime, string[]> = {
  docker: ['ps', '-a', '--no-trunc', '--format', '{{json .}}'],
  podman: ['ps', '-a', '--format', 'json'],
}

type Attempt =
  | { kind: 'absent' }
  | { kind: 'down'; reason: string }
  | { kind: 'error'; reason: string }
  | { kind: 'ok' }

async function runRuntime(
  ctx: CollectContext,
  runtime: ContainerRuntime,
  args: readonly string[],
): Promise<RunResult | { absent: true } | { error: string }> {
  try {
    return await ctx.run(runtime, args, {
      timeoutMs: CONTAINER_TIMEOUT_MS,
      env: cEnvironment(ctx.env),
      maxOutputBytes: 16 * 1024 * 1024,
    })
  } catch (err) {
    return errnoOf(err) === 'ENOENT' ? { absent: true } : { error: spawnFailure(runtime, err) }
  }
}

const exists = (ctx: CollectContext, path: string): Promise<boolean> =>
  ctx.fs.stat(path).then(
    () => true,
    () => false,
  )

/**
 * Whether asking `runtime` is pointless, decided without starting it (a Go client costs ~10 ms of CPU): Docker with
 * no daemon socket (and no DOCKER_HOST), Podman with no container storage (and no CONTAINER_HOST).
 */
export async function nothingToAsk(runtime: ContainerRuntime, ctx: CollectContext): Promise<boolean> {
  if (runtime === 'docker') {
    if (ctx.env.DOCKER_HOST) return false
    return !(await exists(ctx, '/var/run/docker.sock')) && !(await exists(ctx, '/run/docker.sock'))
  }
  if (ctx.env.CONTAINER_HOST) return false
  return !(await exists(ctx, '/var/lib/containers/storage'))
}

async function collectRuntime(ctx: CollectContext, runtime: ContainerRuntime, out: ProbeOutput): Promise<Attempt> {
  const ps = await runRuntime(ctx, runtime, PS_FORMAT[runtime])
  if ('absent' in ps) return { kind: 'absent' }
  if ('error' in ps) return { kind: 'error', reason: ps.error }
  const failure = commandFailure(`${runtime} ps`, ps)
  if (failure) return NO_DAEMON.test(ps.stderr) ? { kind: 'down', reason: failure } : { kind: 'error', reason: failure }
  const rows = parseContainerPs(ps.stdout)
  if (!rows.ok) return { kind: 'error', reason: rows.error.reason }
  let inspectText: string | undefined
  const ids = rows.value.map((r) => r.id || r.name)
  if (ids.length > 0) {
    const inspected = await runRuntime(ctx, runtime, ['inspect', '--', ...ids])
    if ('absent' in inspected || 'error' in inspected) {
      out.errors.push({
        probe: PROBE,
        reason: `${runtime} inspect: ${'error' in inspected ? inspected.error : 'gone'}`,
      })
    } else if (inspected.exitCode === 0 || inspected.stdout.trim().startsWith('[')) {
      // a container removed between ps and inspect makes inspect exit 1, with the others still listed
      inspectText = inspected.stdout
    } else {
      out.errors.push({ probe: PROBE, reason: commandFailure(`${runtime} inspect`, inspected) ?? `${runtime} inspect` })
    }
  }
  const parsed = parseContainers(runtime, ps.stdout, inspectText)
  if (!parsed.ok) return { kind: 'error', reason: parsed.error.reason }
  out.errors.push(...parsed.problems)
  out.observations.push(...parsed.value)
  return { kind: 'ok' }
}

/**
 * Docker and Podman containers: `<runtime> ps -a` then `<runtime> inspect` of the listed ones (state, health,
 * restarts). `enabled: 'auto'`: a runtime that is not installed, or whose daemon does not answer, is skipped without
 * an error (and without starting its client when there is no daemon socket or container storage to ask); `enabled: true`: both are ProbeErrors (and finding no runtime at all is one).
 */
export async function collectContainers(config: ProbesConfig['containers'], ctx: CollectContext): Promise<ProbeOutput> {
  const out = emptyOutput()
  if (config.enabled === false) return out
  const strict = config.enabled === true
  let found = false
  for (const runtime of RUNTIMES) {
    if (!strict && (await nothingToAsk(runtime, ctx))) continue
    const attempt = await collectRuntime(ctx, runtime, out)
    if (attempt.kind === 'absent') continue
    found = true
    if (attempt.kind === 'error' || (attempt.kind === 'down' && strict)) {
      out.errors.push({ probe: PROBE, reason: attempt.reason })
    }
  }
  if (!found && strict) out.errors.push({ probe: PROBE, reason: 'no container runtime found (docker, podman)' })
  return out
}
