import { EventEmitter, on } from 'node:events'
import { defaultCatalog, loadCatalog } from '../catalog/index.js'
import { cryptoRandom, type RandomSource, seededRandom } from '../crypto/random.js'
import { UsageError } from '../errors.js'
import type { KmsIdStatus } from '../kms/answer.js'
import { ActivationCounter, type CounterMode, KNOWN_APP_IDS, type PoolEntry } from '../kms/counter.js'
import { RpcServer, type RpcServerEvents } from '../server/server.js'
import type { HostConnection } from '../server/types.js'
import type { WriteFailure } from '../store/types.js'
import { isGuid } from '../wire/bytes.js'
import { endpointText } from '../wire/endpoint.js'
import { createCallHandler } from './handler.js'
import { openHostState } from './host-state.js'
import { hwidBytes } from './identity.js'
import { type HostOperations, resolveHttpOptions, startOperations } from './operations.js'
import { type HostOptions, parseInterval, parseListen, resolveAllow, resolveCounterMode } from './options.js'
import { type CompiledRule, compileRules, matchBindRule } from './rules.js'
import type { ActivationRecord, HostEvents, HostPools, KmsHost } from './types.js'

export type * from './types.js'

/**
 * Seeded hosts date their first ePIDs from this fixed day (it is after every catalogue release
 * date), so a run a year later, on another machine, draws the same ePIDs.
 */
export const SEED_EPOCH = Date.UTC(2025, 0, 1)

function uuidFrom(random: RandomSource): string {
  const b = random(16)
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

function writeFailure(failure: boolean | string | WriteFailure | null): WriteFailure | null {
  if (failure === null || failure === false) return null
  if (typeof failure === 'function') return failure
  const message = typeof failure === 'string' ? failure : 'write failure injected by host.faults.failWrites'
  return () => new Error(message)
}

/**
 * Starts a KMS host: the embedding API's entry, and what `kmslab serve` runs. Listens on
 * 127.0.0.1, port 0, with the state in memory unless told otherwise.
 */
export async function startHost(options: HostOptions = {}): Promise<KmsHost> {
  const clock = options.now ?? (() => new Date())
  const now = () => {
    const t = clock().getTime()
    if (!Number.isFinite(t))
      throw new UsageError('the host clock (options.now) returned an invalid Date', 'now')
    return t
  }
  const seeded = options.seed !== undefined
  const random = seeded ? seededRandom(options.seed!) : cryptoRandom
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
  // Refused before anything opens: an exposed HTTP port without a token.
  if (options.http) resolveHttpOptions(options.http)
  const startedAt = Date.now()

  const events = new EventEmitter<HostEvents>()
  const stats = { activations: 0, refusals: 0, dropped: 0, storeErrors: 0 }
  const state = await openHostState({
    location: options.state ?? 'memory',
    historyDays: options.historyDays,
    memoryHistoryLimit: options.memoryHistoryLimit,
    connectWaitMs: options.stateWaitMs,
    proxy: options.stateProxy,
    counter,
    catalog,
    identity: {
      random,
      now: seeded ? SEED_EPOCH : now(),
      ndr64: ndr64 && btfn,
      hostBuild: options.hostBuild,
      lcid: options.lcid,
      epids: options.epid,
      hwid: options.hwid,
    },
    now,
    onError: (err) => events.emit('store-error', err),
    onRecovered: () => events.emit('store-recovered'),
  })
  let server: RpcServer | null = null
  let operations: HostOperations | null = null
  try {
    const identity = state.identity
    const kmsIdStatus = (kmsId: string): KmsIdStatus => {
      const k = catalog.kmsById(kmsId)
      return !k ? 'unknown' : k.retail ? 'retail' : k.preview ? 'preview' : 'volume'
    }

    const handler = createCallHandler({
      now,
      random,
      counter,
      strict: options.strict ?? false,
      activationInterval,
      renewalInterval,
      hwid: hwidBytes(identity),
      epidFor: (kmsId) => identity.epids[catalog.epidFamilyForKmsId(kmsId).id] ?? identity.epids.windows,
      kmsIdStatus,
      rules: () => rules,
      recorder: state.recorder,
      settled: (record: ActivationRecord, seconds: number) => {
        if (record.outcome === 'answer') stats.activations++
        else if (record.outcome === 'refuse') stats.refusals++
        else stats.dropped++
        events.emit('activation', record, seconds)
      },
      writeFailed: (err) => {
        stats.storeErrors++
        if (state.writeFailed()) events.emit('store-error', err)
      },
    })

    const serverEvents: Partial<RpcServerEvents> = {
      open: (c: HostConnection) =>
        events.emit('connection', { type: 'open', id: c.id, client: endpointText(c.client) }),
      close: (c, reason, protocolError) =>
        events.emit('connection', {
          type: 'close',
          id: c.id,
          client: endpointText(c.client),
          reason,
          protocolError,
        }),
      refused: (client, reason) => events.emit('refused', { client: endpointText(client), reason }),
      fault: (c, callId, status, reason) =>
        events.emit('fault', { id: c.id, client: endpointText(c.client), callId, status, reason }),
      notice: (c, reason) => events.emit('protocol', { id: c.id, client: endpointText(c.client), reason }),
    }
    server = new RpcServer({
      listen,
      bindPolicy: { ndr64, btfn },
      handler,
      random,
      // Connection deadlines and capture timestamps follow real time: a test that moves the
      // host's clock a month on must not see its connections cut as a month old.
      now: Date.now,
      idleTimeoutMs: options.idleTimeoutMs,
      busyPollMicros: options.busyPollMicros,
      connectionDeadlineMs: options.connectionDeadlineMs,
      maxConnections: options.maxConnections,
      allow,
      capturePath: options.capture,
      disconnectAfterAnswer: options.disconnectAfterAnswer,
      rejectBind: (c) => {
        const rule = matchBindRule(rules, c.client.address)
        if (rule) events.emit('bind-rejected', { id: c.id, client: endpointText(c.client), rule: rule.name })
        return rule !== null
      },
      events: serverEvents,
    })
    await server.start()
    const running = server
    let stopping = false
    operations = await startOperations(
      {
        startedAt,
        addresses: running.addresses,
        stateLocation: state.location,
        catalog,
        identity,
        counter: state.view.counter,
        store: state.view.store,
        events,
        now,
        connections: () => running.connections.size,
        listening: () => !stopping,
        allow,
      },
      options.http,
    )
    const ops = operations
    const pruneTimer = setInterval(() => {
      state.pruneExpired(now()).catch((err: Error) => events.emit('store-error', err))
    }, 3600_000)
    pruneTimer.unref()
    let closed: Promise<void> | null = null
    const closing = new AbortController()

    const seedPool = async (appId: string, count: number): Promise<PoolEntry[]> => {
      if (!isGuid(appId)) throw new UsageError(`pools.seed: not an application id: ${JSON.stringify(appId)}`)
      return state.changePools(now(), (c) => {
        const { added, removed } = c.seed(appId, count, now(), () => uuidFrom(random))
        return { result: added, upserts: added, removals: removed }
      })
    }
    const pools: HostPools = {
      read: () => state.readPools(now()),
      fetch: () => state.fetchPools(now()),
      reset: (appId?: string) =>
        state.changePools(now(), (c) => ({
          result: undefined,
          upserts: [],
          removals: c.reset(appId).removed,
        })),
      seed: async (appOrCount: string | number, count?: number): Promise<PoolEntry[]> => {
        if (typeof appOrCount === 'string') return seedPool(appOrCount, count ?? Number.NaN)
        const added: PoolEntry[] = []
        for (const appId of KNOWN_APP_IDS) added.push(...(await seedPool(appId, appOrCount)))
        return added
      },
      get mode(): CounterMode {
        return counter.mode
      },
      set mode(mode: CounterMode | string) {
        counter.mode = resolveCounterMode(mode)
      },
    }

    const host: KmsHost = {
      addresses: running.addresses,
      port: running.addresses[0]?.port ?? 0,
      identity,
      catalog,
      stateLocation: state.location,
      get stateReady() {
        return state.up
      },
      seeded,
      events,
      activations: () => {
        // Listen from this call on, not from the first next(): nothing in between is missed.
        const it = closing.signal.aborted
          ? null
          : (on(events, 'activation', { signal: closing.signal }) as AsyncIterableIterator<
              [ActivationRecord]
            >)
        return (async function* () {
          if (!it) return
          try {
            for await (const [record] of it) yield record
          } catch (err) {
            // the iterator ends by the abort of a closing host; anything else is a real error
            if (!closing.signal.aborted) throw err
          }
        })()
      },
      history: (query) => state.history(query),
      readHistory: (query) => state.readHistory(query),
      pools,
      rules: {
        get: () => rules.map((r) => r.rule),
        set: (next) => {
          rules = compileRules(next, 'rules')
        },
      },
      faults: {
        failWrites: (failure) => state.failWrites(writeFailure(failure)),
      },
      get stats() {
        return { ...running.stats, ...stats }
      },
      httpUrl: ops.url,
      status: () => ops.status(),
      close: () => {
        closed ??= (async () => {
          clearInterval(pruneTimer)
          stopping = true
          try {
            await ops.close()
            await running.stop()
          } finally {
            await state.close()
            closing.abort()
          }
        })()
        return closed
      },
    }
    return host
  } catch (err) {
    await operations?.close()
    await server?.stop()
    await state.close()
    throw err
  }
}
