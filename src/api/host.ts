import { EventEmitter, on } from 'node:events'
import { defaultCatalog, loadCatalog } from '../catalog/index.js'
import type { Catalog } from '../catalog/types.js'
import { cryptoRandom, type RandomSource, seededRandom } from '../crypto/random.js'
import { ActivationCounter, type CounterMode, type PoolEntry } from '../kms/counter.js'
import { type AnswerOverride, answerKmsRequest, type KmsIdStatus } from '../kms/host.js'
import { HRESULT } from '../kms/hresult.js'
import { type DecodedRequest, decodeKmsRequest } from '../kms/request.js'
import type { RpcConnection } from '../server/connection.js'
import { RpcServer, type RpcServerEvents } from '../server/server.js'
import type { CallOutcome, KmsCall } from '../server/types.js'
import { GroupCommitter } from '../store/group-commit.js'
import { openStateStore } from '../store/open.js'
import type { CommitBatch, HistoryQuery, HistoryRow, HostIdentity, StateStore } from '../store/types.js'
import { NULL_GUID } from '../wire/bytes.js'
import { hwidBytes, loadOrCreateIdentity } from './identity.js'
import { type HostOptions, parseInterval, parseListen, resolveAllow, resolveCounterMode } from './options.js'
import { type CompiledRule, compileRules, type FaultRule, matchBindRule, matchRequestRule } from './rules.js'

/** One request as the host handled it: its history row plus what the log and tests want to see. */
export interface ActivationRecord extends HistoryRow {
  connectionId: number
  clientPort: number
  callId: number
  syntax: 'ndr32' | 'ndr64'
  /** Why the host refused, when it did. */
  reason: string | null
  /** Live size of the application's pool after this request (null for refusals). */
  poolSize: number | null
  /** The client will activate: the reported count reaches what it asked for. */
  willActivate: boolean
  request: DecodedRequest
}

export interface HostEvents {
  activation: [ActivationRecord]
  connection: [
    { type: 'open' | 'close'; id: number; client: string; reason?: string; protocolError?: boolean },
  ]
  refused: [{ client: string; reason: 'max-connections' | 'not-allowed' }]
  fault: [{ id: number; client: string; callId: number; status: number; reason: string }]
  'store-error': [Error]
}

/** A running host, as `startHost` returns it. */
export interface KmsHost {
  readonly addresses: { host: string; port: number }[]
  /** The first listening port (handy with port 0). */
  readonly port: number
  readonly identity: HostIdentity
  readonly catalog: Catalog
  readonly stateLocation: string
  readonly seeded: boolean
  readonly events: EventEmitter<HostEvents>
  /** Every activation from now on, as an async iterator (ends when the host closes). */
  activations(): AsyncIterableIterator<ActivationRecord>
  history(query?: HistoryQuery): HistoryRow[]
  readonly pools: HostPools
  readonly rules: { get(): FaultRule[]; set(rules: FaultRule[]): void }
  readonly stats: RpcServer['stats'] & { activations: number; refusals: number; storeErrors: number }
  close(): Promise<void>
}

export interface HostPools {
  /** appId -> live entries, oldest first. */
  read(): Record<string, PoolEntry[]>
  reset(appId?: string): Promise<void>
  /** Adds `count` synthetic clients (random CMIDs) to an application's pool. */
  seed(appId: string, count: number): Promise<void>
  mode: CounterMode
}

/** Seeded hosts date their first ePIDs from this fixed day, so a run a year later is identical. */
const SEED_EPOCH = Date.UTC(2025, 0, 1)

function uuidFrom(random: RandomSource): string {
  const b = random(16)
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** Starts a KMS host (the embedding API and `kmslab serve` both use it). */
export async function startHost(options: HostOptions = {}): Promise<KmsHost> {
  const clock = options.now ?? (() => new Date())
  const now = () => clock().getTime()
  const random = options.seed !== undefined ? seededRandom(options.seed) : cryptoRandom
  const catalog = options.products ? loadCatalog({ extraFile: options.products }) : defaultCatalog()
  const listen = (options.listen ?? ['127.0.0.1:0']).map((l) =>
    typeof l === 'string' ? parseListen(l, 1688) : l,
  )
  const activationInterval = parseInterval('activation-interval', options.activationInterval ?? 120)
  const renewalInterval = parseInterval('renewal-interval', options.renewalInterval ?? 10080)
  const allow = resolveAllow(options.allow)
  const counter = new ActivationCounter({ mode: resolveCounterMode(options.counter) })
  let rules: CompiledRule[] = compileRules(options.rules ?? [], 'rules')
  const ndr64 = options.ndr64 ?? true
  const btfn = options.btfn ?? true

  const store: StateStore = openStateStore(options.state ?? 'memory', { historyDays: options.historyDays })
  const events = new EventEmitter<HostEvents>()
  const stats = { activations: 0, refusals: 0, storeErrors: 0 }
  let server: RpcServer | null = null
  try {
    const identity = loadOrCreateIdentity(store, catalog, {
      random,
      now: options.seed !== undefined ? SEED_EPOCH : now(),
      ndr64: ndr64 && btfn,
      hostBuild: options.hostBuild,
      lcid: options.lcid,
      epids: options.epid,
      hwid: options.hwid,
    })
    const loaded = counter.load(store.loadPoolEntries(), now())
    if (loaded.removed.length > 0) store.commit({ history: [], upserts: [], removals: loaded.removed })
    store.pruneExpiredHistory(now())
    const committer = store.location === 'memory' ? null : new GroupCommitter(store)
    const commit = (batch: CommitBatch): Promise<void> | null => {
      if (committer) return committer.submit(batch)
      store.commit(batch)
      return null
    }

    const hwid = hwidBytes(identity)
    const epidFor = (kmsId: string) =>
      identity.epids[catalog.epidFamilyForKmsId(kmsId).id] ?? identity.epids.windows
    const kmsIdStatus = (kmsId: string): KmsIdStatus => {
      const k = catalog.kmsById(kmsId)
      return !k ? 'unknown' : k.retail ? 'retail' : k.preview ? 'preview' : 'volume'
    }
    let requestsSeen = 0
    // After a failed commit the counter holds CMIDs the state does not: take the state's word.
    const resyncCounter = () => {
      try {
        counter.load(store.loadPoolEntries(), now())
      } catch (err) {
        events.emit('store-error', err as Error)
      }
    }

    const handle = (call: KmsCall): CallOutcome | Promise<CallOutcome> => {
      const at = now()
      const conn = call.connection
      const request = decodeKmsRequest(call.payload)
      const base = request.base
      requestsSeen++
      const rule = base
        ? matchRequestRule(rules, {
            appId: base.appId,
            kmsId: base.kmsId,
            skuId: base.skuId,
            cmid: base.cmid,
            workstation: base.workstation,
            client: conn.client.address,
            protocol: request.major,
            nth: requestsSeen,
            nthOnConnection: call.callIndex,
          })
        : null
      const action = rule?.rule.action
      if (action?.close === 'before') return { kind: 'close' }
      if (rule?.fault !== undefined) return { kind: 'fault', status: rule.fault, delayMs: action?.delayMs }
      const override: AnswerOverride = {
        hresult: rule?.refuse,
        reportedCount: action?.count,
        corrupt: action?.corrupt,
      }
      const answer = answerKmsRequest(
        request,
        {
          now: at,
          random,
          counter,
          strict: options.strict ?? false,
          activationInterval,
          renewalInterval,
          hwid,
          epidFor,
          kmsIdStatus,
        },
        override,
      )
      const record: ActivationRecord = {
        time: at,
        clientAddress: conn.client.address,
        clientPort: conn.client.port,
        workstation: base?.workstation ?? '',
        cmid: base?.cmid ?? NULL_GUID,
        previousCmid: base?.previousCmid ?? NULL_GUID,
        appId: base?.appId ?? NULL_GUID,
        skuId: base?.skuId ?? NULL_GUID,
        kmsId: base?.kmsId ?? NULL_GUID,
        requiredCount: base?.requiredCount ?? 0,
        reportedCount: answer.reportedCount,
        hresult: answer.hresult,
        protocol: `${request.major}.${request.minor}`,
        vm: (base?.isClientVm ?? 0) !== 0,
        licenseStatus: base?.licenseStatus ?? 0,
        epid: answer.epid,
        rules: rule ? [rule.name] : [],
        connectionId: conn.id,
        callId: call.callId,
        syntax: call.syntax,
        reason: answer.reason,
        poolSize: answer.counter?.poolSize ?? null,
        willActivate: answer.hresult === 0 && (answer.reportedCount ?? 0) >= (base?.requiredCount ?? 0),
        request,
      }
      const extras = {
        closeAfter: action?.close === 'after',
        truncate: action?.truncate,
        delayMs: action?.delayMs,
      }
      const outcome: CallOutcome =
        answer.payload !== null
          ? { kind: 'answer', payload: answer.payload, ...extras }
          : { kind: 'refuse', hresult: answer.hresult, ...extras }
      const batch: CommitBatch = {
        history: [toHistoryRow(record)],
        upserts: answer.counter
          ? [{ appId: answer.counter.appId, cmid: answer.counter.cmid, lastSeen: answer.counter.lastSeen }]
          : [],
        removals: answer.counter?.removed ?? [],
      }
      const done = (): CallOutcome => {
        if (answer.hresult === 0) stats.activations++
        else stats.refusals++
        events.emit('activation', record)
        return outcome
      }
      // A request that cannot be recorded is refused, never answered: the answer would be a lie.
      const failed = (err: Error): CallOutcome => {
        stats.storeErrors++
        events.emit('store-error', err)
        resyncCounter()
        return { kind: 'refuse', hresult: HRESULT.INVALID_DATA }
      }
      try {
        const pending = commit(batch)
        return pending ? pending.then(done, failed) : done()
      } catch (err) {
        return failed(err as Error)
      }
    }

    const serverEvents: Partial<RpcServerEvents> = {
      open: (c: RpcConnection) =>
        events.emit('connection', { type: 'open', id: c.id, client: endpoint(c.client) }),
      close: (c, reason, protocolError) =>
        events.emit('connection', {
          type: 'close',
          id: c.id,
          client: endpoint(c.client),
          reason,
          protocolError,
        }),
      refused: (client, reason) => events.emit('refused', { client: endpoint(client), reason }),
      fault: (c, callId, status, reason) =>
        events.emit('fault', { id: c.id, client: endpoint(c.client), callId, status, reason }),
    }
    server = new RpcServer({
      listen,
      bindPolicy: { ndr64, btfn },
      handler: handle,
      random,
      now,
      idleTimeoutMs: options.idleTimeoutMs,
      connectionDeadlineMs: options.connectionDeadlineMs,
      maxConnections: options.maxConnections,
      allow,
      capturePath: options.capture,
      disconnectAfterAnswer: options.disconnectAfterAnswer,
      rejectBind: (c) => matchBindRule(rules, c.client.address) !== null,
      events: serverEvents,
    })
    await server.start()
    const running = server
    const pruneTimer = setInterval(() => {
      try {
        store.pruneExpiredHistory(now())
      } catch (err) {
        events.emit('store-error', err as Error)
      }
    }, 3600_000)
    pruneTimer.unref()
    let closed: Promise<void> | null = null
    const closing = new AbortController()

    const host: KmsHost = {
      addresses: running.addresses,
      port: running.addresses[0]?.port ?? 0,
      identity,
      catalog,
      stateLocation: store.location,
      seeded: options.seed !== undefined,
      events,
      activations: () => {
        const it = on(events, 'activation', { signal: closing.signal }) as AsyncIterableIterator<
          [ActivationRecord]
        >
        return (async function* () {
          try {
            for await (const [record] of it) yield record
          } catch (err) {
            if ((err as Error).name !== 'AbortError') throw err
          }
        })()
      },
      history: (query) => store.readHistory(query),
      pools: {
        read: () => Object.fromEntries(counter.snapshot(now())),
        reset: async (appId) => {
          const { removed } = counter.reset(appId)
          await (commit({ history: [], upserts: [], removals: removed }) ?? Promise.resolve())
        },
        seed: async (appId, count) => {
          const { added, removed } = counter.seed(appId, count, now(), () => uuidFrom(random))
          await (commit({ history: [], upserts: added, removals: removed }) ?? Promise.resolve())
        },
        get mode() {
          return counter.mode
        },
        set mode(mode: CounterMode) {
          counter.mode = mode
        },
      },
      rules: {
        get: () => rules.map((r) => r.rule),
        set: (next) => {
          rules = compileRules(next, 'rules')
        },
      },
      get stats() {
        return { ...running.stats, ...stats }
      },
      close: () => {
        closed ??= (async () => {
          clearInterval(pruneTimer)
          await running.stop()
          await committer?.close()
          store.close()
          closing.abort()
        })()
        return closed
      },
    }
    return host
  } catch (err) {
    await server?.stop()
    store.close()
    throw err
  }
}

function endpoint(e: { address: string; port: number }): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`
}

function toHistoryRow(r: ActivationRecord): HistoryRow {
  return {
    time: r.time,
    clientAddress: r.clientAddress,
    workstation: r.workstation,
    cmid: r.cmid,
    previousCmid: r.previousCmid,
    appId: r.appId,
    skuId: r.skuId,
    kmsId: r.kmsId,
    requiredCount: r.requiredCount,
    reportedCount: r.reportedCount,
    hresult: r.hresult,
    protocol: r.protocol,
    vm: r.vm,
    licenseStatus: r.licenseStatus,
    epid: r.epid,
    rules: r.rules,
  }
}
