/**
 * The host's state behind one face, whoever counts. A state one process owns (memory, a SQLite
 * file) counts on the in-process counter and group-commits; a shared state (PostgreSQL) counts in
 * the database, one transaction per group of requests, and the in-process counter only carries
 * the counter mode and limits.
 */
import type { Catalog } from '../catalog/types.js'
import { ActivationCounter, type CounterOptions, type PoolEntry, type PoolKey } from '../kms/counter.js'
import { emptyTotals, type PoolClient, type RequestTotals } from '../kms/history.js'
import { StoreReadError } from '../store/errors.js'
import { GroupCommitter } from '../store/group-commit.js'
import { openStateStore } from '../store/open.js'
import type { PgStore } from '../store/postgres.js'
import { isPostgresLocation } from '../store/postgres-connect.js'
import { BatchingRecorder, LocalRecorder, type Recorder } from '../store/recorder.js'
import type {
  CommitBatch,
  HistoryQuery,
  HistoryRow,
  HostIdentity,
  StateStore,
  WriteFailure,
} from '../store/types.js'
import { claimSharedIdentity, type IdentityOptions, loadOrCreateIdentity } from './identity.js'
import type { OperationsStore } from './operations.js'
import type { StateProxy } from './options.js'

/** What a pool edit through the API does on a counter, and what to write for it. */
export type PoolChange<T> = (counter: ActivationCounter) => {
  result: T
  upserts: PoolEntry[]
  removals: PoolKey[]
}

export interface HostState {
  readonly location: string
  /** what the status report and the HTTP side read: the live state, or a snapshot of a shared one */
  readonly view: { store: OperationsStore; counter: ActivationCounter }
  readonly identity: HostIdentity
  readonly recorder: Recorder
  /** false while a shared store cannot be reached (readiness) */
  readonly up: boolean
  /** A request's write failed: true when the host should report it (a shared store: once per outage). */
  writeFailed(): boolean
  readPools(now: number): Record<string, PoolEntry[]>
  fetchPools(now: number): Promise<Record<string, PoolEntry[]>>
  changePools<T>(now: number, change: PoolChange<T>): Promise<T>
  history(query?: HistoryQuery): HistoryRow[]
  readHistory(query?: HistoryQuery): Promise<HistoryRow[]>
  pruneExpired(now: number): Promise<void>
  failWrites(fn: WriteFailure | null): void
  /** Waits for what is being written, then closes. */
  close(): Promise<void>
}

export interface HostStateOptions {
  location: string
  historyDays?: number
  memoryHistoryLimit?: number
  connectWaitMs?: number
  counter: ActivationCounter
  catalog: Catalog
  identity: IdentityOptions
  now(): number
  /** reports a background failure (a resync, a prune) */
  onError(err: Error): void
  /** a shared store answered again after an outage */
  onRecovered(): void
  /** the state lives in another process (a `--workers` primary) */
  proxy?: StateProxy
}

const byApp = (entries: PoolEntry[]) => {
  const out: Record<string, PoolEntry[]> = {}
  for (const e of entries) {
    out[e.appId] ??= []
    out[e.appId].push(e)
  }
  return out
}

export async function openHostState(o: HostStateOptions): Promise<HostState> {
  if (o.proxy) return proxyState(o.proxy)
  if (isPostgresLocation(o.location)) return openSharedState(o)
  return openLocalState(o)
}

function openLocalState(o: HostStateOptions): HostState {
  const { counter, now } = o
  const store: StateStore = openStateStore(o.location, {
    historyDays: o.historyDays,
    memoryHistoryLimit: o.memoryHistoryLimit,
  })
  try {
    const identity = loadOrCreateIdentity(store, o.catalog, o.identity)
    const loaded = counter.load(store.loadPoolEntries(), now())
    if (loaded.removed.length > 0) store.commit({ history: [], upserts: [], removals: loaded.removed })
    store.pruneExpiredHistory(now())
    const committer = store.location === 'memory' ? null : new GroupCommitter(store)
    const commit = (batch: CommitBatch): Promise<void> | null => {
      if (committer) return committer.submit(batch)
      store.commit(batch)
      return null
    }
    // After a failed write the counter holds CMIDs the state does not: take the state's word.
    const resync = () => {
      try {
        counter.load(store.loadPoolEntries(), now())
      } catch (err) {
        o.onError(err as Error)
      }
    }
    return {
      location: store.location,
      view: { store, counter },
      identity,
      recorder: new LocalRecorder(counter, commit),
      up: true,
      writeFailed: () => {
        resync()
        return true
      },
      readPools: (t) => Object.fromEntries(counter.snapshot(t)),
      fetchPools: async (t) => Object.fromEntries(counter.snapshot(t)),
      changePools: async (_t, change) => {
        const { result, upserts, removals } = change(counter)
        try {
          await commit({ history: [], upserts, removals })
        } catch (err) {
          resync()
          throw err
        }
        return result
      },
      history: (q) => store.readHistory(q),
      readHistory: async (q) => store.readHistory(q),
      pruneExpired: async (t) => {
        store.pruneExpiredHistory(t)
      },
      failWrites: (fn) => store.setWriteFailure(fn),
      close: async () => {
        try {
          await committer?.close()
        } finally {
          store.close()
        }
      },
    }
  } catch (err) {
    store.close()
    throw err
  }
}

/** A worker's view of the state its primary owns: records go there; reading is the primary's job. */
function proxyState(proxy: StateProxy): HostState {
  const elsewhere = (what: string) =>
    new StoreReadError(
      `${what}: the state ${proxy.location} is owned by the --workers primary`,
      proxy.location,
    )
  return {
    location: proxy.location,
    view: emptyView(),
    identity: proxy.identity,
    recorder: new BatchingRecorder((items) => proxy.send(items), proxy.location),
    up: true,
    writeFailed: () => true,
    readPools: () => {
      throw elsewhere('pools.read()')
    },
    fetchPools: () => Promise.reject(elsewhere('pools.fetch()')),
    changePools: () => Promise.reject(elsewhere('pools.seed() and pools.reset()')),
    history: () => {
      throw elsewhere('history()')
    },
    readHistory: () => Promise.reject(elsewhere('readHistory()')),
    pruneExpired: async () => {},
    failWrites: () => {
      throw elsewhere('faults.failWrites()')
    },
    close: async () => {},
  }
}

async function openSharedState(o: HostStateOptions): Promise<HostState> {
  const { openPgStore } = await import('../store/postgres.js')
  const store: PgStore = await openPgStore(o.location, {
    historyDays: o.historyDays,
    connectWaitMs: o.connectWaitMs,
  })
  try {
    const identity = await claimSharedIdentity(store, o.catalog, o.identity)
    await store.pruneExpiredHistory(o.now())
    const limits = {
      capacity: o.counter.capacity,
      maxPools: o.counter.maxPools,
      retentionMs: o.counter.retentionMs,
    }
    let up = true
    let writing = Promise.resolve()
    const recorder = new BatchingRecorder(async (items) => {
      const done = store.recordItems(items, limits)
      writing = done.then(
        () => {},
        () => {},
      )
      const results = await done
      if (!up) {
        up = true
        o.onRecovered()
      }
      return results
    }, store.location)
    const notHere = (what: string, instead: string) =>
      new StoreReadError(
        `${what} of PostgreSQL state ${store.location} is asynchronous: use ${instead}`,
        store.location,
      )
    const view = await snapshotView(store, limits, o.now, () => up)
    return {
      location: store.location,
      view: view.view,
      identity,
      recorder,
      get up() {
        return up
      },
      writeFailed: () => {
        const first = up
        up = false
        return first
      },
      // the snapshot the status side reads (at most SNAPSHOT_MS old); fetch() reads the database
      readPools: (t) => Object.fromEntries(view.view.counter.snapshot(t)),
      fetchPools: async (t) => {
        const live = (await store.loadPoolEntries()).filter((e) => t - e.lastSeen <= limits.retentionMs)
        return byApp(live)
      },
      changePools: (t, change) => store.changePools(limits, t, change),
      history: () => {
        throw notHere('history()', 'readHistory()')
      },
      readHistory: (q) => store.readHistory(q),
      pruneExpired: async (t) => {
        await store.pruneExpiredHistory(t)
      },
      failWrites: (fn) => store.setWriteFailure(fn),
      close: async () => {
        view.stop()
        await writing
        await store.close()
      },
    }
  } catch (err) {
    await store.close()
    throw err
  }
}

const SNAPSHOT_MS = 2000
const SNAPSHOT_ROWS = 1000

const inWindow = (rows: HistoryRow[], q: HistoryQuery = {}) => {
  const hit = rows.filter(
    (r) =>
      r.time >= (q.sinceMs ?? -Infinity) &&
      r.time <= (q.untilMs ?? Infinity) &&
      (q.appId === undefined || r.appId === q.appId.toLowerCase()),
  )
  return q.limit === undefined ? hit : q.limit > 0 ? hit.slice(-q.limit) : []
}

/** A view of nothing: a --workers worker, whose state the primary reads. */
function emptyView(): HostState['view'] {
  return {
    counter: new ActivationCounter(),
    store: {
      requestTotals: emptyTotals,
      readHistory: () => [],
      loadPoolClients: () => [],
      iterateHistory: () => [][Symbol.iterator](),
    },
  }
}

/**
 * The operations side reads synchronously; a shared state is read every SNAPSHOT_MS instead (the
 * newest SNAPSHOT_ROWS of history). While the database is unreachable (a write failed, or the
 * last read did) the totals throw, so readiness says so.
 */
async function snapshotView(
  store: PgStore,
  limits: CounterOptions,
  now: () => number,
  up: () => boolean,
): Promise<{ view: HostState['view']; stop(): void }> {
  const counter = new ActivationCounter(limits)
  let totals: RequestTotals = emptyTotals()
  let clients: PoolClient[] = []
  let recent: HistoryRow[] = []
  // a reader that writes nothing (a --workers primary) learns of an outage here
  let readable = true
  const refresh = async () => {
    try {
      ;[totals, clients, recent] = await Promise.all([
        store.requestTotals(),
        store.loadPoolClients(),
        store.readHistory({ limit: SNAPSHOT_ROWS }),
      ])
      counter.load(clients, now())
      readable = true
    } catch {
      // the figures kept as they were; readiness says the database is away
      readable = false
    }
  }
  await refresh()
  const timer = setInterval(refresh, SNAPSHOT_MS)
  timer.unref()
  return {
    view: {
      counter,
      store: {
        requestTotals: () => {
          if (!up() || !readable)
            throw new StoreReadError(`PostgreSQL state ${store.location} is unreachable`, store.location)
          return totals
        },
        readHistory: (q) => inWindow(recent, q),
        loadPoolClients: () => clients,
        iterateHistory: (q) => inWindow(recent, q)[Symbol.iterator](),
      },
    },
    stop: () => clearInterval(timer),
  }
}
