import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseCronHeartbeat } from '../../../agent/probes/cron-heartbeat.ts'
import { CronObservationSchema } from '../../../shared/contracts/index.ts'
import { assertNeverThrows, expectFailure, expectOk } from './os-fixtures.ts'

const line = (o: Record<string, unknown>): string => `${JSON.stringify(o)}\n`

describe('parseCronHeartbeat', () => {
  it('reads a finished run', () => {
    const text = line({
      job: 'logrotate',
      startedAt: '2026-11-23T03:00:00Z',
      finishedAt: '2026-11-23T03:00:42.5Z',
      exitStatus: 0,
    })
    const obs = expectOk(parseCronHeartbeat(text, 'logrotate'))
    expect(obs).toEqual({
      kind: 'cron',
      job: 'logrotate',
      lastRunAt: '2026-11-23T03:00:00Z',
      lastExitStatus: 0,
      durationSeconds: 42.5,
    })
    expect(CronObservationSchema.parse(obs)).toEqual(obs)
  })

  it('reads a failed run with an offset timestamp, ignoring extra fields', () => {
    const text = line({
      job: 'db-dump',
      startedAt: '2026-11-23T02:00:00+01:00',
      finishedAt: '2026-11-23T01:10:00Z',
      exitStatus: 137,
      host: 'web-1',
    })
    expect(expectOk(parseCronHeartbeat(text))).toEqual({
      kind: 'cron',
      job: 'db-dump',
      lastRunAt: '2026-11-23T02:00:00+01:00',
      lastExitStatus: 137,
      durationSeconds: 600,
    })
  })

  it('reads a run that has not finished: no exit status, no duration', () => {
    const obs = expectOk(parseCronHeartbeat(line({ job: 'backup', startedAt: '2026-11-23T01:00:00Z' })))
    expect(obs).toEqual({ kind: 'cron', job: 'backup', lastRunAt: '2026-11-23T01:00:00Z' })
  })

  it('takes the last line of an appended file', () => {
    const text =
      line({ job: 'backup', startedAt: '2026-11-21T01:00:00Z', finishedAt: '2026-11-21T01:01:00Z', exitStatus: 1 }) +
      line({ job: 'backup', startedAt: '2026-11-22T01:00:00Z', finishedAt: '2026-11-22T01:02:00Z', exitStatus: 0 }) +
      '\n'
    expect(expectOk(parseCronHeartbeat(text, 'backup'))).toMatchObject({
      lastRunAt: '2026-11-22T01:00:00Z',
      lastExitStatus: 0,
    })
  })

  it.each([
    ['', /heartbeat of "backup" is empty/],
    ['   \n', /is empty/],
    ['started at 3am\n', /is not JSON: "started at 3am"/],
    ['[1,2]', /not a JSON object/],
    ['null', /not a JSON object/],
    [line({ startedAt: '2026-11-23T01:00:00Z' }), /missing or bad "job"/],
    [line({ job: '../etc', startedAt: '2026-11-23T01:00:00Z' }), /missing or bad "job"/],
    [line({ job: 'other', startedAt: '2026-11-23T01:00:00Z' }), /names another job: "other"/],
    [line({ job: 'backup' }), /"startedAt" must be an ISO-8601 timestamp/],
    [line({ job: 'backup', startedAt: '2026-11-23 01:00:00' }), /"startedAt" must be/],
    [line({ job: 'backup', startedAt: '2026-11-23T01:00:00' }), /"startedAt" must be/],
    [line({ job: 'backup', startedAt: 1763859600 }), /"startedAt" must be/],
    [line({ job: 'backup', startedAt: '2026-11-23T01:00:00Z', finishedAt: 'soon' }), /"finishedAt" must be/],
    [
      line({ job: 'backup', startedAt: '2026-11-23T01:00:00Z', finishedAt: '2026-11-23T00:59:00Z' }),
      /before "startedAt"/,
    ],
    [line({ job: 'backup', startedAt: '2026-11-23T01:00:00Z', exitStatus: '0' }), /"exitStatus" must be an integer/],
    [line({ job: 'backup', startedAt: '2026-11-23T01:00:00Z', exitStatus: 1.5 }), /"exitStatus" must be an integer/],
  ])('refuses %j with a clear reason', (text, reason) => {
    expectFailure(parseCronHeartbeat(text, 'backup'), reason)
  })

  it('never throws on arbitrary text', () => {
    const check = (o: unknown): void => void CronObservationSchema.parse(o)
    assertNeverThrows(
      (t) => parseCronHeartbeat(t),
      ['{"job":"x","startedAt":"2026-11-23T01:00:00Z"}', '{', '}', '"job"'],
      check,
    )
  })

  it('never throws on any JSON object with the marker fields', () => {
    const anyValue = fc.oneof(
      fc.jsonValue(),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    )
    const marker = fc.record(
      { job: fc.oneof(fc.constant('job'), anyValue), startedAt: anyValue, finishedAt: anyValue, exitStatus: anyValue },
      { requiredKeys: [] },
    )
    fc.assert(
      fc.property(marker, (m) => {
        const result = parseCronHeartbeat(JSON.stringify(m))
        if (result.ok) CronObservationSchema.parse(result.value)
      }),
      { numRuns: 500 },
    )
  })
})
