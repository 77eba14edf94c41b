/**
 * The fleet bench's meter: SDK middleware on every AWS client of the functions (and of the stand-ins for the agent
 * and for Lambda's SQS event source mapping) that counts each request by service and operation and turns it into
 * what AWS bills: SQS requests per 64 KB chunk, DynamoDB read and write request units, EventBridge events per 64 KB,
 * SES recipients, Secrets Manager calls; and a wrapper around each handler for Lambda invocations, measured
 * milliseconds and the log bytes the function writes.
 *
 * DynamoDB units are computed, not read from ConsumedCapacity (moto does not return it): the meter keeps a shadow of
 * every item written (its size as DynamoDB counts it: attribute names plus values), so a write is billed
 * ceil(max(old, new) / 1 KB) WRU (twice in a transaction; a failed condition the old item's size, at least 1) plus
 * the same again for gsi1 when the item is in the index (delete + put when its index key moves), and a read
 * ceil(bytes / 4 KB) RRU (strongly consistent), half when eventually consistent (every gsi1 query); a query adds up
 * the items it returns before rounding. An UpdateItem's new image is read back after the invocation with an
 * unmetered client, outside the measured time.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { ClientRequest } from 'node:http'
import { performance } from 'node:perf_hooks'
import { type AttributeValue, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb'
import type { PutEventsRequestEntry } from '@aws-sdk/client-eventbridge'
import { eventBridgeEntryBytes } from '../../functions/adapters/eventbridge-publisher.ts'
import { addTo, PRICES, type Usage } from './fleet-prices.ts'

type AV = Record<string, AttributeValue>
type Json = Record<string, unknown>

/** Who makes the requests: the functions, the agent on a host, Lambda's SQS poller (all billed to the account). */
export type Role = 'functions' | 'agent' | 'esm'

/**
 * Lambda's own lines per invocation (START, END, REPORT with its XRAY line) in CloudWatch Logs: about 355 bytes in 3
 * events (an estimate: the function's own output is measured).
 */
export const PLATFORM_LOG_BYTES = 355
export const PLATFORM_LOG_EVENTS = 3

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8')

/** DynamoDB's size of a number: 1 byte per two significant digits, plus 1. */
const numberSize = (n: string): number => {
  const digits = n.replace(/^-/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '')
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1
}

/** DynamoDB's size of an attribute value (marshalled form). */
export const avSize = (v: AttributeValue): number => {
  if (v.S !== undefined) return utf8(v.S)
  if (v.N !== undefined) return numberSize(v.N)
  if (v.B !== undefined) return v.B.byteLength
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1
  if (v.SS) return v.SS.reduce((n, s) => n + utf8(s), 0)
  if (v.NS) return v.NS.reduce((n, s) => n + numberSize(s), 0)
  if (v.BS) return v.BS.reduce((n, b) => n + b.byteLength, 0)
  if (v.L) return 3 + v.L.reduce((n, x) => n + 1 + avSize(x), 0)
  if (v.M) return 3 + Object.entries(v.M).reduce((n, [k, x]) => n + 1 + utf8(k) + avSize(x), 0)
  return 0
}

export const avItemSize = (item: AV): number => Object.entries(item).reduce((n, [k, v]) => n + utf8(k) + avSize(v), 0)

/** The same for an unmarshalled item (a fallback for items the shadow does not know). */
const plainSize = (v: unknown): number => {
  if (typeof v === 'string') return utf8(v)
  if (typeof v === 'number' || typeof v === 'bigint') return numberSize(String(v))
  if (typeof v === 'boolean' || v === null || v === undefined) return 1
  if (v instanceof Uint8Array) return v.byteLength
  if (v instanceof Set) return [...v].reduce((n: number, x) => n + plainSize(x), 0)
  if (Array.isArray(v)) return 3 + v.reduce((n: number, x) => n + 1 + plainSize(x), 0)
  if (typeof v === 'object') return 3 + Object.entries(v).reduce((n, [k, x]) => n + 1 + utf8(k) + plainSize(x), 0)
  return 0
}

const idOf = (pk: unknown, sk: unknown): string => `${String(pk)}\u0000${String(sk)}`
const idOfAv = (key: AV): string => idOf(key.pk?.S, key.sk?.S)
/** The id of an item as an output gives it: marshalled (a plain client) or not (the document client). */
const idOfAny = (item: Json): string =>
  typeof item.pk === 'string' ? idOf(item.pk, item.sk) : idOfAv(item as unknown as AV)

interface Shadow {
  size: number
  /** gsi1 key, when the item is in the index. */
  gsi: string | undefined
  type: string
  /** The marshalled item as written or read back (binary attributes as Uint8Array). */
  item: AV
  /** The marshalled item as JSON (to see whether a write changed it; a Uint8Array as its bytes). */
  image: string
}

const shadowOf = (item: AV): Shadow => ({
  size: avItemSize(item),
  gsi: item.gsi1pk?.S !== undefined ? `${item.gsi1pk.S}\u0000${item.gsi1sk?.S ?? ''}` : undefined,
  type: item.type?.S ?? 'item',
  item,
  image: JSON.stringify(item, function (this: Record<string, unknown>, key: string, value: unknown) {
    const raw = this[key]
    return raw instanceof Uint8Array ? Buffer.from(raw).toString('base64') : value
  }),
})

interface WriteTarget {
  id: string
  key: AV
  kind: 'put' | 'update' | 'delete' | 'check'
  item?: AV
  transactional: boolean
}

const writeTargets = (op: string, input: Json): WriteTarget[] => {
  const keyOf = (item: AV): AV => ({ pk: item.pk!, sk: item.sk! })
  switch (op) {
    case 'PutItem': {
      const item = input.Item as AV
      return [{ id: idOfAv(item), key: keyOf(item), kind: 'put', item, transactional: false }]
    }
    case 'UpdateItem':
    case 'DeleteItem': {
      const key = input.Key as AV
      return [{ id: idOfAv(key), key, kind: op === 'UpdateItem' ? 'update' : 'delete', transactional: false }]
    }
    case 'TransactWriteItems':
      return (input.TransactItems as Json[]).map((t) => {
        if (t.Put) {
          const item = (t.Put as Json).Item as AV
          return { id: idOfAv(item), key: keyOf(item), kind: 'put' as const, item, transactional: true }
        }
        const [kind, body] = t.Update
          ? (['update', t.Update] as const)
          : t.Delete
            ? (['delete', t.Delete] as const)
            : (['check', t.ConditionCheck] as const)
        const key = (body as Json).Key as AV
        return { id: idOfAv(key), key, kind, transactional: true }
      })
    case 'BatchWriteItem':
      return Object.values(input.RequestItems as Record<string, Json[]>).flatMap((requests) =>
        requests.map((r) => {
          if (r.PutRequest) {
            const item = (r.PutRequest as Json).Item as AV
            return { id: idOfAv(item), key: keyOf(item), kind: 'put' as const, item, transactional: false }
          }
          const key = (r.DeleteRequest as Json).Key as AV
          return { id: idOfAv(key), key, kind: 'delete' as const, transactional: false }
        }),
      )
    default:
      return []
  }
}

/** One handler invocation as measured. */
export interface Invocation {
  fn: string
  scope: string
  ms: number
  cpuMs: number
  logBytes: number
}

type Next = () => Promise<{ output: unknown }>
interface Stack {
  add: (mw: unknown, options: Record<string, unknown>) => void
}
interface Sendable {
  middlewareStack: Stack
  send: unknown
}

/** Every AWS SDK client reachable from `root` (adapters keep theirs in fields; notifiers in a Map). */
export const findClients = (root: unknown): Sendable[] => {
  const seen = new Set<object>()
  const out: Sendable[] = []
  const visit = (v: unknown, depth: number): void => {
    if (v === null || typeof v !== 'object' || seen.has(v) || depth > 8) return
    seen.add(v)
    const o = v as Record<string, unknown>
    if (o.middlewareStack && typeof o.send === 'function') {
      out.push(v as Sendable)
      return
    }
    if (v instanceof Map) for (const x of v.values()) visit(x, depth + 1)
    else if (Array.isArray(v)) for (const x of v) visit(x, depth + 1)
    else for (const k of Object.keys(o)) if (k !== 'policies') visit(o[k], depth + 1)
  }
  visit(root, 0)
  return out
}

export class FleetMeter {
  /** Bill what happens now (false: keep the shadow current, bill nothing). */
  counting = false
  /** Where the usage goes now. */
  scope = 'default'
  readonly usage = new Map<string, Usage>()
  readonly invocations: Invocation[] = []
  /** EMF metrics the functions emitted: namespace, name and dimension values (each a custom metric). */
  readonly metrics = new Set<string>()
  /** Latency of each operation against moto while counting: calls and total ms. */
  readonly latency = new Map<string, { n: number; ms: number }>()
  /** Log lines at WARN or ERROR the functions wrote (the bench's own sanity check). */
  readonly problems: { fn: string; line: string }[] = []
  /** Requests the middleware saw while counting, and HTTP requests to moto that left the process meanwhile. */
  metered = 0
  http = 0
  private readonly shadow = new Map<string, Shadow>()
  private readonly pending = new Map<string, { key: AV; before: Shadow | undefined; usage?: Usage; tx: boolean }>()
  private readonly stacks = new WeakSet<object>()
  private readonly raw: DynamoDBClient
  private readonly tableName: string
  private readonly hostHeader: string
  private inlineMs = 0
  private readonly onRequest = (message: unknown): void => {
    if (!this.counting) return
    const req = (message as { request: ClientRequest }).request
    if (req.getHeader('host') === this.hostHeader && req.getHeader('x-ansai-bench') !== 'raw') this.http++
  }

  constructor(opts: {
    clientConfig: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } }
    tableName: string
  }) {
    this.raw = new DynamoDBClient(opts.clientConfig)
    ;(this.raw.middlewareStack as unknown as Stack).add(
      (next: (a: unknown) => unknown) => (args: { request?: { headers: Record<string, string> } }) => {
        if (args.request) args.request.headers['x-ansai-bench'] = 'raw'
        return next(args)
      },
      { step: 'build', name: 'ansaiBenchRaw' },
    )
    this.tableName = opts.tableName
    this.hostHeader = new URL(opts.clientConfig.endpoint).host
    subscribe('http.client.request.start', this.onRequest)
  }

  close(): void {
    unsubscribe('http.client.request.start', this.onRequest)
    this.raw.destroy()
  }

  /** The usage of a scope (created on first use). */
  of(scope: string): Usage {
    let u = this.usage.get(scope)
    if (!u) {
      u = new Map()
      this.usage.set(scope, u)
    }
    return u
  }

  add(key: string, n: number): void {
    if (this.counting) addTo(this.of(this.scope), key, n)
  }

  /** Put the meter on every AWS client reachable from `root`; returns how many clients it found. */
  instrument(root: unknown, role: Role): number {
    const clients = findClients(root)
    for (const c of clients) this.attach(c, role)
    return clients.length
  }

  attach(client: Sendable, role: Role): void {
    const stack = client.middlewareStack
    if (this.stacks.has(stack)) return
    this.stacks.add(stack)
    stack.add(
      (next: (a: unknown) => Promise<{ output: unknown }>, context: { clientName?: string; commandName?: string }) =>
        (args: { input: Json }) =>
          this.observe(
            role,
            String(context.clientName ?? '?').replace(/Client$/, ''),
            String(context.commandName ?? '?').replace(/Command$/, ''),
            args.input,
            () => next(args),
          ),
      { step: 'build', name: 'ansaiBenchMeter', priority: 'low' },
    )
  }

  /**
   * A handler as Lambda runs it: one invocation billed, its wall time (minus the meter's own reads) and thread CPU
   * time measured, its stdout/stderr (Powertools logs and EMF metrics) counted as CloudWatch Logs bytes and kept out
   * of the terminal.
   */
  lambda<A extends unknown[], R>(fn: string, handler: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
    return async (...args: A): Promise<R> => {
      const streams = [process.stdout, process.stderr] as const
      const writes = streams.map((s) => s.write)
      let logBytes = 0
      let logEvents = 0
      const emf: string[] = []
      for (const s of streams) {
        s.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
          const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
          logBytes += utf8(text)
          logEvents += text.split('\n').filter((l) => l.trim()).length
          if (text.includes('"_aws"')) emf.push(text)
          for (const line of text.split('\n')) {
            if (/"level":"(WARN|ERROR|CRITICAL)"/.test(line)) this.problems.push({ fn, line: line.slice(0, 2000) })
          }
          const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined
          cb?.()
          return true
        }) as typeof s.write
      }
      this.inlineMs = 0
      const cpu0 = process.threadCpuUsage()
      const t0 = performance.now()
      try {
        return await handler(...args)
      } finally {
        const ms = Math.max(0, performance.now() - t0 - this.inlineMs)
        const cpu = process.threadCpuUsage(cpu0)
        streams.forEach((s, i) => {
          s.write = writes[i]!
        })
        await this.settle()
        for (const text of emf) this.keepMetrics(text)
        if (this.counting) {
          const u = this.of(this.scope)
          addTo(u, 'lambda.requests', 1)
          addTo(u, 'lambda.ms', Math.ceil(ms))
          addTo(u, 'lambda.cpuMs', (cpu.user + cpu.system) / 1000)
          addTo(u, `lambda.${fn}.requests`, 1)
          addTo(u, `lambda.${fn}.ms`, Math.ceil(ms))
          addTo(u, `lambda.${fn}.cpuMs`, (cpu.user + cpu.system) / 1000)
          addTo(u, 'logs.bytes', logBytes + PLATFORM_LOG_BYTES)
          addTo(u, 'logs.events', logEvents + PLATFORM_LOG_EVENTS)
          addTo(u, `logs.${fn}.bytes`, logBytes + PLATFORM_LOG_BYTES)
          this.invocations.push({ fn, scope: this.scope, ms, cpuMs: (cpu.user + cpu.system) / 1000, logBytes })
        }
      }
    }
  }

  /** Read back the new images of updated items (outside any measured time) and bill them. */
  async settle(): Promise<void> {
    for (const id of [...this.pending.keys()]) await this.settleOne(id)
  }

  /** The current size of an item the functions wrote (0 when absent). */
  sizeOf(pk: string, sk: string): number {
    return this.shadow.get(idOf(pk, sk))?.size ?? 0
  }

  /** The item as last written (marshalled: a binary attribute is a Uint8Array), or undefined. */
  imageOf(pk: string, sk: string): AV | undefined {
    return this.shadow.get(idOf(pk, sk))?.item
  }

  /** Bytes of every item the shadow holds, and how many (storage). */
  stored(): { items: number; bytes: number; indexed: number } {
    let bytes = 0
    let indexed = 0
    for (const s of this.shadow.values()) {
      bytes += s.size
      if (s.gsi) indexed += s.size
    }
    return { items: this.shadow.size, bytes, indexed }
  }

  private keepMetrics(text: string): void {
    for (const line of text.split('\n')) {
      if (!line.includes('"_aws"')) continue
      try {
        const emf = JSON.parse(line) as {
          _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] }
          [k: string]: unknown
        }
        for (const d of emf._aws.CloudWatchMetrics) {
          for (const dims of d.Dimensions) {
            const values = dims.map((n) => `${n}=${String(emf[n])}`).join(',')
            for (const m of d.Metrics) this.metrics.add(`${d.Namespace}/${m.Name}{${values}}`)
          }
        }
      } catch {
        // not an EMF line
      }
    }
  }

  private async settleOne(id: string): Promise<void> {
    const p = this.pending.get(id)
    if (!p) return
    this.pending.delete(id)
    const t0 = performance.now()
    const out = await this.raw.send(
      new GetItemCommand({ TableName: this.tableName, Key: { pk: p.key.pk!, sk: p.key.sk! }, ConsistentRead: true }),
    )
    this.inlineMs += performance.now() - t0
    this.applyWrite(id, p.before, out.Item ? shadowOf(out.Item) : undefined, p.usage, p.tx)
  }

  private applyWrite(
    id: string,
    before: Shadow | undefined,
    after: Shadow | undefined,
    usage: Usage | undefined,
    tx: boolean,
  ): void {
    if (after) this.shadow.set(id, after)
    else this.shadow.delete(id)
    if (!usage) return
    const type = (after ?? before)?.type ?? 'item'
    const wru = Math.max(1, Math.ceil(Math.max(before?.size ?? 0, after?.size ?? 0) / 1024)) * (tx ? 2 : 1)
    addTo(usage, 'ddb.wru', wru)
    addTo(usage, `ddb.wru.${type}`, wru)
    if (before?.image === after?.image) return
    let gsi = 0
    if (before?.gsi && after?.gsi && before.gsi === after.gsi) gsi = Math.ceil(after.size / 1024)
    else {
      if (before?.gsi) gsi += Math.ceil(before.size / 1024)
      if (after?.gsi) gsi += Math.ceil(after.size / 1024)
    }
    addTo(usage, 'ddb.gsiWru', gsi)
    addTo(usage, `ddb.gsiWru.${type}`, gsi)
  }

  private async observe(
    role: Role,
    service: string,
    op: string,
    input: Json,
    next: Next,
  ): Promise<{ output: unknown }> {
    if (!this.counting) return this.observeInner(role, service, op, input, next)
    const t0 = performance.now()
    try {
      return await this.observeInner(role, service, op, input, next)
    } finally {
      const l = this.latency.get(`${service}.${op}`) ?? { n: 0, ms: 0 }
      l.n++
      l.ms += performance.now() - t0
      this.latency.set(`${service}.${op}`, l)
    }
  }

  private async observeInner(
    role: Role,
    service: string,
    op: string,
    input: Json,
    next: Next,
  ): Promise<{ output: unknown }> {
    const billed = this.counting
    const usage = billed ? this.of(this.scope) : undefined
    if (usage) {
      this.metered++
      addTo(usage, `call.${service}.${op}`, 1)
      addTo(usage, `role.${role}.calls`, 1)
    }
    if (service === 'DynamoDB') return this.dynamo(op, input, next, usage)
    const res = await next()
    if (!usage) return res
    const output = res.output as Json
    switch (service) {
      case 'SQS':
        this.sqs(op, input, output, usage)
        break
      case 'EventBridge':
        if (op === 'PutEvents') {
          for (const e of input.Entries as PutEventsRequestEntry[]) {
            addTo(
              usage,
              'eb.events',
              Math.max(1, Math.ceil(eventBridgeEntryBytes(e) / PRICES.eventbridge.billedChunkBytes)),
            )
          }
        }
        break
      case 'SESv2':
        if (op === 'SendEmail') {
          const d = (input.Destination ?? {}) as Record<string, string[] | undefined>
          addTo(
            usage,
            'ses.emails',
            (d.ToAddresses?.length ?? 0) + (d.CcAddresses?.length ?? 0) + (d.BccAddresses?.length ?? 0),
          )
        }
        break
      case 'SecretsManager':
        addTo(usage, 'secrets.calls', 1)
        break
      case 'SSM':
        addTo(usage, 'ssm.calls', 1)
        break
    }
    return res
  }

  private sqs(op: string, input: Json, output: Json, usage: Usage): void {
    const url = String(input.QueueUrl ?? '')
    const fifo = url.endsWith('.fifo')
    const chunk = PRICES.sqs.billedChunkBytes
    const key = fifo ? 'sqs.fifo' : 'sqs.standard'
    // The same by queue (`sqs.queue.<name>.send|sendBytes|receive|messages|receiveBytes|delete`), not in the totals.
    const q = `sqs.queue.${url.slice(url.lastIndexOf('/') + 1)}`
    const attrBytes = (attrs: unknown): number =>
      Object.entries((attrs ?? {}) as Record<string, { DataType?: string; StringValue?: string }>).reduce(
        (n, [k, a]) => n + utf8(k) + utf8(a.DataType ?? '') + utf8(a.StringValue ?? ''),
        0,
      )
    switch (op) {
      case 'SendMessage': {
        const bytes = utf8(String(input.MessageBody)) + attrBytes(input.MessageAttributes)
        addTo(usage, key, Math.max(1, Math.ceil(bytes / chunk)))
        addTo(usage, `${key}.send`, Math.max(1, Math.ceil(bytes / chunk)))
        addTo(usage, `${key}.sendBytes`, bytes)
        addTo(usage, `${q}.send`, Math.max(1, Math.ceil(bytes / chunk)))
        addTo(usage, `${q}.sendBytes`, bytes)
        break
      }
      case 'SendMessageBatch': {
        const entries = input.Entries as Json[]
        const bytes = entries.reduce((n, e) => n + utf8(String(e.MessageBody)) + attrBytes(e.MessageAttributes), 0)
        addTo(usage, key, Math.max(1, Math.ceil(bytes / chunk)))
        addTo(usage, `${key}.send`, Math.max(1, Math.ceil(bytes / chunk)))
        addTo(usage, `${key}.sendBytes`, bytes)
        addTo(usage, `${q}.send`, Math.max(1, Math.ceil(bytes / chunk)))
        addTo(usage, `${q}.sendBytes`, bytes)
        break
      }
      case 'ReceiveMessage': {
        const messages = (output.Messages ?? []) as Json[]
        if (messages.length === 0) {
          addTo(usage, fifo ? 'sqs.empty.fifo' : 'sqs.empty.standard', 1)
          break
        }
        const bytes = messages.reduce((n, m) => n + utf8(String(m.Body)) + attrBytes(m.MessageAttributes), 0)
        addTo(usage, key, Math.max(1, Math.ceil(bytes / chunk)))
        addTo(usage, `${key}.receive`, Math.max(1, Math.ceil(bytes / chunk)))
        addTo(usage, `${key}.messages`, messages.length)
        addTo(usage, `${key}.receiveBytes`, bytes)
        addTo(usage, `${q}.receive`, Math.max(1, Math.ceil(bytes / chunk)))
        addTo(usage, `${q}.messages`, messages.length)
        addTo(usage, `${q}.receiveBytes`, bytes)
        break
      }
      case 'DeleteMessage':
      case 'DeleteMessageBatch':
      case 'ChangeMessageVisibility':
      case 'ChangeMessageVisibilityBatch':
        addTo(usage, key, 1)
        addTo(usage, `${key}.delete`, 1)
        addTo(usage, `${q}.delete`, 1)
        break
      default:
        // GetQueueAttributes of the event source stand-in: not on the functions' path
        addTo(usage, 'sqs.unbilled', 1)
    }
  }

  private async dynamo(op: string, input: Json, next: Next, usage: Usage | undefined): Promise<{ output: unknown }> {
    const targets = writeTargets(op, input)
    if (targets.length > 0) {
      for (const t of targets) if (this.pending.has(t.id)) await this.settleOne(t.id)
      const befores = targets.map((t) => this.shadow.get(t.id))
      let res: { output: unknown }
      try {
        res = await next()
      } catch (err) {
        // Nothing written; a failed condition is still billed (the existing item's size, at least 1 unit).
        if (usage) {
          targets.forEach((t, i) => {
            const wru = Math.max(1, Math.ceil((befores[i]?.size ?? 0) / 1024)) * (t.transactional ? 2 : 1)
            addTo(usage, 'ddb.wru', wru)
            addTo(usage, `ddb.wru.${befores[i]?.type ?? 'item'}(condition failed)`, wru)
          })
        }
        throw err
      }
      targets.forEach((t, i) => {
        const before = befores[i]
        if (t.kind === 'put') this.applyWrite(t.id, before, shadowOf(t.item!), usage, t.transactional)
        else if (t.kind === 'delete') this.applyWrite(t.id, before, undefined, usage, t.transactional)
        else if (t.kind === 'check') {
          if (usage) addTo(usage, 'ddb.wru', Math.max(1, Math.ceil((before?.size ?? 0) / 1024)) * 2)
        } else this.pending.set(t.id, { key: t.key, before, ...(usage ? { usage } : {}), tx: t.transactional })
      })
      return res
    }
    const res = await next()
    if (usage) this.reads(op, input, res.output as Json, usage)
    return res
  }

  private reads(op: string, input: Json, output: Json, usage: Usage): void {
    const units = (bytes: number, consistent: boolean): number =>
      Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5)
    const sizeOf = (item: Json): number => this.shadow.get(idOfAny(item))?.size ?? plainSize(item)
    const typeOf = (item: Json | undefined): string =>
      item ? (this.shadow.get(idOfAny(item))?.type ?? 'item') : 'none'
    const bill = (label: string, rru: number): void => {
      addTo(usage, 'ddb.rru', rru)
      addTo(usage, `ddb.rru.${label}`, rru)
    }
    switch (op) {
      case 'GetItem': {
        const s = this.shadow.get(idOfAv(input.Key as AV))
        bill(`GetItem ${s?.type ?? 'missing'}`, units(s?.size ?? 0, input.ConsistentRead === true))
        break
      }
      case 'Query':
      case 'Scan': {
        const items = (output.Items ?? []) as Json[]
        let bytes = items.reduce((n, i) => n + sizeOf(i), 0)
        const count = Number(output.Count ?? items.length)
        const scanned = Number(output.ScannedCount ?? count)
        if (scanned > count && count > 0) bytes = (bytes * scanned) / count
        const consistent = input.ConsistentRead === true && input.IndexName === undefined
        bill(
          `${op}${input.IndexName ? ` ${String(input.IndexName)}` : ''} ${typeOf(items[0])}`,
          units(bytes, consistent),
        )
        // The same read unrounded: at fleet scale a page of a shard holds many items, so a host's share of a query
        // is its bytes, not a rounded-up unit (the scenarios have a few hosts per shard).
        addTo(usage, 'ddb.rruQuery', units(bytes, consistent))
        addTo(usage, 'ddb.rruQueryExact', (bytes / 4096) * (consistent ? 1 : 0.5))
        break
      }
      case 'BatchGetItem':
        for (const req of Object.values(input.RequestItems as Record<string, Json>)) {
          for (const key of req.Keys as AV[]) {
            const s = this.shadow.get(idOfAv(key))
            bill(`BatchGetItem ${s?.type ?? 'missing'}`, units(s?.size ?? 0, req.ConsistentRead === true))
          }
        }
        break
      case 'TransactGetItems':
        for (const t of input.TransactItems as Json[]) {
          const s = this.shadow.get(idOfAv((t.Get as Json).Key as AV))
          bill(`TransactGetItems ${s?.type ?? 'missing'}`, 2 * units(s?.size ?? 0, true))
        }
        break
      default:
        break
    }
  }
}
