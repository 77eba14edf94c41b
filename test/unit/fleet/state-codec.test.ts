import { brotliCompressSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { decodeState, encodeState } from '../../../functions/adapters/state-codec.ts'
import type { HostState } from '../../../shared/engine/state.ts'
import { Driver, fs, policiesFrom } from '../../support/builders.ts'

const POLICIES = policiesFrom(`
apiVersion: ansai/v1
kind: Policy
metadata: { name: root-disk }
spec:
  observe: filesystem
  trend: { window: 1h, minSamples: 4 }
  severity:
    warning: { when: "usedPercent >= 80 || hoursToFull < 48" }
`)

/** A real engine state: two filesystems, two hours of samples that grow with a little noise. */
const realState = (): HostState => {
  const d = new Driver(POLICIES)
  for (let m = 0; m < 120; m++) {
    d.clock.advance(60_000)
    d.report([fs('/', 40 + m / 100 + (m % 7) / 1000), fs('/var', 70 - (m % 3) / 10)])
  }
  return d.state!
}

describe('host state codec (DynamoDB item layout)', () => {
  it('gives back exactly the state it was given, key order included', () => {
    const state = realState()
    expect(state.resources['root-disk']!['/']!.samples!.length).toBeGreaterThan(40)
    const back = decodeState(encodeState(state))
    expect(JSON.stringify(back)).toBe(JSON.stringify(state))
  })

  it('drops the repeated keys and stores samples as deltas: far fewer bytes after Brotli', () => {
    const state = realState()
    const slim = encodeState(state)
    expect(slim).not.toContain('"policy":"root-disk"')
    expect(slim).toContain('"sd":[')
    const plain = brotliCompressSync(JSON.stringify(state)).byteLength
    const packed = brotliCompressSync(slim).byteLength
    expect(packed).toBeLessThan(plain * 0.8)
  })

  it('keeps samples that are not all safe integers as they are, exactly', () => {
    const state: HostState = {
      v: 1,
      host: 'h',
      lastSeq: 3,
      lastSeenAt: 1,
      resources: { p: { r: { policy: 'p', resource: 'r', hist: [0], samples: [100, 0.1, 160, 0.30000000000000004] } } },
    }
    const slim = encodeState(state)
    expect(slim).toContain('"samples":[100,0.1,160,0.30000000000000004]')
    expect(decodeState(slim)).toEqual(state)
  })

  it('keeps a resource whose fields differ from its keys, or look like the slim form, whole', () => {
    const odd = {
      v: 1,
      host: 'h',
      lastSeq: 1,
      lastSeenAt: null,
      resources: {
        p: {
          r: { policy: 'other', resource: 'r', hist: [1] },
          s: { policy: 'p', resource: 's', hist: [0], sd: [1, 2] },
          t: { hist: [0] },
        },
      },
    } as unknown as HostState
    expect(JSON.stringify(decodeState(encodeState(odd)))).toBe(JSON.stringify(odd))
  })
})
