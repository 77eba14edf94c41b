/**
 * What the fleet bench counts (a bag of named quantities, {@link Usage}) and what it costs by the dated us-east-1
 * price table beside this file (aws-prices-us-east-1.json). Free tiers are ignored.
 */
import { readFileSync } from 'node:fs'

export interface PriceTable {
  region: string
  date: string
  note: string
  sqs: { standardPerMillionRequests: number; fifoPerMillionRequests: number; billedChunkBytes: number }
  lambda: { arm64PerGbSecond: number; perMillionRequests: number }
  dynamodb: {
    onDemandPerMillionWriteRequestUnits: number
    onDemandPerMillionReadRequestUnits: number
    storagePerGbMonth: number
  }
  eventbridge: { customEventsPerMillion: number; billedChunkBytes: number }
  scheduler: { perMillionInvocations: number }
  ses: { per1000Emails: number }
  secretsManager: { per10000ApiCalls: number; perSecretMonth: number }
  cloudwatch: { logsIngestionPerGb: number; customMetricPerMonth: number; alarmPerMonth: number }
  xray: { perMillionTracesRecorded: number }
}

export const PRICES: PriceTable = JSON.parse(
  readFileSync(new URL('./aws-prices-us-east-1.json', import.meta.url), 'utf8'),
) as PriceTable

/** Hours in the billing month AWS prices by (365 × 24 / 12). */
export const HOURS_PER_MONTH = 730
/** The functions' memory (infra/config.ts `functions.memoryMb` default), in GB as Lambda bills it. */
export const LAMBDA_MEMORY_GB = 512 / 1024

/**
 * Named quantities, all additive:
 * - `sqs.standard`, `sqs.fifo`: billed requests (64 KB chunks), empty receives left out (`sqs.empty`); by queue
 *   (not in the totals) `sqs.queue.<name>.send|receive|delete` (billed), `.messages`, `.sendBytes`, `.receiveBytes`
 * - `lambda.requests`, `lambda.ms` (billed: each invocation rounded up to 1 ms), `lambda.cpuMs`, and per function
 *   `lambda.<fn>.requests`, `lambda.<fn>.ms`, `lambda.<fn>.cpuMs`
 * - `ddb.wru`, `ddb.gsiWru`, `ddb.rru`, and by item type / operation `ddb.wru.<type>`, `ddb.gsiWru.<type>`,
 *   `ddb.rru.<op>`
 * - `eb.events` (billed 64 KB chunks of custom events), `eb.awsEvents` (free), `scheduler.invocations`,
 *   `ses.emails` (recipients), `secrets.calls`, `ssm.calls` (free), `logs.bytes`, `logs.events`
 * - `call.<Service>.<Operation>`: SDK calls as made
 */
export type Usage = Map<string, number>

export const addTo = (into: Usage, key: string, n: number): void => {
  if (n !== 0) into.set(key, (into.get(key) ?? 0) + n)
}

export const sumUsage = (...parts: { usage: Usage; times: number }[]): Usage => {
  const out: Usage = new Map()
  for (const { usage, times } of parts) for (const [k, v] of usage) addTo(out, k, v * times)
  return out
}

export const get = (u: Usage, key: string): number => u.get(key) ?? 0

export const SERVICES = [
  'DynamoDB',
  'SQS',
  'Lambda',
  'EventBridge',
  'Scheduler',
  'SES',
  'Secrets Manager',
  'CloudWatch Logs',
] as const
export type Service = (typeof SERVICES)[number]

/** Dollars by service for a usage. */
export const priceUsage = (u: Usage, p: PriceTable = PRICES): Record<Service, number> => ({
  DynamoDB:
    ((get(u, 'ddb.wru') + get(u, 'ddb.gsiWru')) * p.dynamodb.onDemandPerMillionWriteRequestUnits +
      get(u, 'ddb.rru') * p.dynamodb.onDemandPerMillionReadRequestUnits) /
    1e6,
  SQS:
    (get(u, 'sqs.standard') * p.sqs.standardPerMillionRequests + get(u, 'sqs.fifo') * p.sqs.fifoPerMillionRequests) /
    1e6,
  Lambda:
    (get(u, 'lambda.requests') * p.lambda.perMillionRequests) / 1e6 +
    (get(u, 'lambda.ms') / 1000) * LAMBDA_MEMORY_GB * p.lambda.arm64PerGbSecond,
  EventBridge: (get(u, 'eb.events') * p.eventbridge.customEventsPerMillion) / 1e6,
  Scheduler: (get(u, 'scheduler.invocations') * p.scheduler.perMillionInvocations) / 1e6,
  SES: (get(u, 'ses.emails') * p.ses.per1000Emails) / 1000,
  'Secrets Manager': (get(u, 'secrets.calls') * p.secretsManager.per10000ApiCalls) / 10_000,
  'CloudWatch Logs': (get(u, 'logs.bytes') / 2 ** 30) * p.cloudwatch.logsIngestionPerGb,
})

export const totalOf = (byService: Record<string, number>): number =>
  Object.values(byService).reduce((a, b) => a + b, 0)

/**
 * X-Ray traces recorded by one function with active tracing: Lambda samples the first request each second and 5 %
 * of the rest (its fixed rule). With invocations spread evenly at `perSecond`, that is min(r, 1) + 5 % of the rest.
 */
export const tracesPerMonth = (invocationsPerMonth: number): number => {
  const seconds = HOURS_PER_MONTH * 3600
  const r = invocationsPerMonth / seconds
  return seconds * (Math.min(r, 1) + 0.05 * Math.max(r - 1, 0))
}
