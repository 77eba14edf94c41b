import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  boundResult,
  buildSummary,
  formatBytes,
  MAX_ITEM_CHARS,
  parseDockerReclaimed,
  parseJournalDiskUsage,
  RESULT_MAX_CHARS,
  shortenMiddle,
} from '../../../agent/remediations/disk-cleanup/report.ts'
import { type RemediationResultV1, RemediationResultV1Schema } from '../../../shared/contracts/index.ts'

describe('formatBytes', () => {
  it('binary units, one decimal', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1024)).toBe('1.0 KiB')
    expect(formatBytes(43_201_331)).toBe('41.2 MiB')
    expect(formatBytes(40 * 1024 ** 2)).toBe('40.0 MiB')
    expect(formatBytes(1.5 * 1024 ** 3)).toBe('1.5 GiB')
    expect(formatBytes(3 * 1024 ** 5)).toBe('3.0 PiB')
  })
})

describe('shortenMiddle', () => {
  it('keeps short text, and the start and end of long text', () => {
    expect(shortenMiddle('/var/log/app.log', 100)).toBe('/var/log/app.log')
    const long = `/var/log/${'d/'.repeat(200)}app.log`
    const s = shortenMiddle(long, 60)
    expect(s).toHaveLength(60)
    expect(s.startsWith('/var/log/')).toBe(true)
    expect(s.endsWith('app.log')).toBe(true)
    expect(s).toContain('…')
  })
})

describe('parsers of tool output', () => {
  it('docker image prune: Total reclaimed space in decimal units', () => {
    const out = 'Deleted Images:\nuntagged: nginx:1.25\ndeleted: sha256:abc\n\nTotal reclaimed space: 1.534GB\n'
    expect(parseDockerReclaimed(out)).toBe(1_534_000_000)
    expect(parseDockerReclaimed('Total reclaimed space: 0B\n')).toBe(0)
    expect(parseDockerReclaimed('Total reclaimed space: 12.5MB')).toBe(12_500_000)
    expect(parseDockerReclaimed('Total reclaimed space: 123kB')).toBe(123_000)
    expect(parseDockerReclaimed('nothing here')).toBeUndefined()
  })

  it('journalctl --disk-usage: binary units, one decimal', () => {
    expect(parseJournalDiskUsage('Archived and active journals take up 1.2G in the file system.')).toBe(
      Math.round(1.2 * 1024 ** 3),
    )
    expect(parseJournalDiskUsage('Archived and active journals take up 8.0M in the file system.')).toBe(8 * 1024 ** 2)
    expect(parseJournalDiskUsage('Archived and active journals take up 0B in the file system.')).toBe(0)
    expect(parseJournalDiskUsage('No journal files were found.')).toBeUndefined()
  })
})

describe('buildSummary', () => {
  it('recovered total, then each category', () => {
    expect(
      buildSummary({
        dryRun: false,
        lines: [
          { category: 'logs', status: 'done', bytes: 40 * 1024 ** 2, files: 12 },
          { category: 'temp', status: 'done', bytes: 1.2 * 1024 ** 2, files: 3 },
        ],
        skipped: {},
      }),
    ).toBe('recovered 41.2 MiB: logs 40.0 MiB (12 files), temp 1.2 MiB (3 files)')
  })

  it('skips, failures, skipped categories and the maxFiles stop', () => {
    expect(
      buildSummary({
        dryRun: false,
        lines: [
          { category: 'logs', status: 'done', bytes: 1024, files: 1 },
          { category: 'journal', status: 'failed', bytes: 0, reason: 'journalctl --vacuum-size=1G: exit 1' },
          { category: 'container-images', status: 'skipped', bytes: 0, reason: 'no docker or podman on this host' },
        ],
        skipped: { open: 2, changed: 0, error: 1 },
        maxFiles: { limit: 10, left: 5 },
      }),
    ).toBe(
      'recovered 1.0 KiB: logs 1.0 KiB (1 file), journal failed (journalctl --vacuum-size=1G: exit 1), ' +
        'container-images skipped (no docker or podman on this host); 3 files left alone (open 2, error 1); ' +
        'stopped at maxFiles 10: 5 files more eligible',
    )
  })

  it('dry-run wording', () => {
    expect(
      buildSummary({
        dryRun: true,
        lines: [
          { category: 'logs', status: 'dry-run', bytes: 2048, files: 2 },
          { category: 'compressed-logs', status: 'dry-run', bytes: 0, files: 1, compressBytes: 4096 },
          { category: 'journal', status: 'dry-run', bytes: 0, reason: 'would run journalctl --vacuum-size=100M' },
        ],
        skipped: {},
      }),
    ).toBe(
      'dry-run: would recover 2.0 KiB: logs 2.0 KiB (2 files), compressed-logs 1 file to compress (4.0 KiB now), ' +
        'journal would run journalctl --vacuum-size=100M',
    )
  })

  it('stays within the schema bound', () => {
    const lines = Array.from({ length: 7 }, () => ({
      category: 'journal',
      status: 'failed' as const,
      bytes: 0,
      reason: 'x'.repeat(1000),
    }))
    expect(buildSummary({ dryRun: false, lines, skipped: {} }).length).toBeLessThanOrEqual(2000)
  })
})

describe('boundResult', () => {
  const base = (items: string[], problems: string[] = []): RemediationResultV1 => ({
    schema: 'ansai.remediation-result.v1',
    key: 'k',
    remediation: 'disk-cleanup',
    status: 'succeeded',
    dryRun: false,
    startedAt: '2026-11-20T12:00:00.000Z',
    finishedAt: '2026-11-20T12:00:09.000Z',
    durationMs: 9000,
    summary: 'recovered 1.0 GiB: logs 1.0 GiB (100000 files)',
    bytesRecovered: { logs: 1024 ** 3 },
    items,
    itemsTotal: items.length,
    evidence: { problems, roots: [{ root: '/var/log', files: 100_000 }] },
  })

  it('100,000 files with long, hostile names: well under 24,000 characters, schema-valid, true total kept', () => {
    const ugly = (i: number) => `/var/log/${'\u0001\n"\\'.repeat(300)}/${'é'.repeat(500)}-${i}.log`
    const items = Array.from({ length: 100_000 }, (_, i) => ugly(i))
    const problems = Array.from({ length: 5000 }, (_, i) => `cannot read directory ${ugly(i)}: EACCES`)
    const out = boundResult(base(items, problems))
    expect(JSON.stringify(out).length).toBeLessThanOrEqual(RESULT_MAX_CHARS)
    expect(RemediationResultV1Schema.parse(out)).toEqual(out)
    expect(out.itemsTotal).toBe(100_000)
    expect(out.items?.length).toBeGreaterThan(0)
    expect(out.items?.length).toBeLessThanOrEqual(50)
    expect(out.items?.every((p) => p.length <= MAX_ITEM_CHARS)).toBe(true)
    expect(out.evidence.problemsTotal).toBe(5000)
    expect(out.summary).toBe(base([]).summary)
    expect(out.bytesRecovered).toEqual({ logs: 1024 ** 3 })
  })

  it('plain paths: the first 50, untouched', () => {
    const items = Array.from({ length: 100_000 }, (_, i) => `/var/log/app/app-${i}.log`)
    const out = boundResult(base(items))
    expect(out.items).toEqual(items.slice(0, 50))
    expect(JSON.stringify(out).length).toBeLessThan(6000)
  })

  it('always fits, whatever the items and problems (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'binary', maxLength: 2000 }), { maxLength: 200 }),
        fc.array(fc.string({ unit: 'binary', maxLength: 2000 }), { maxLength: 60 }),
        (items, problems) => {
          const out = boundResult(base(items, problems))
          expect(JSON.stringify(out).length).toBeLessThanOrEqual(RESULT_MAX_CHARS)
          expect(RemediationResultV1Schema.safeParse(out).success).toBe(true)
        },
      ),
      { numRuns: 50 },
    )
  })
})
