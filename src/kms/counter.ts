/**
 * The activation-threshold counter (§6.4): per application id, the client machine ids (CMIDs) that
 * asked recently. Pure bookkeeping: the clock comes in as `now` (ms since the epoch) and every
 * mutating call returns the entries it dropped, so the caller can mirror the change in storage.
 */

import { OFFICE2010_APP_ID, OFFICE2013_APP_ID, WINDOWS_APP_ID } from '../catalog/index.js'
import { KmslabError, UsageError } from '../errors.js'

export { OFFICE2010_APP_ID, OFFICE2013_APP_ID, WINDOWS_APP_ID }
/** Applications whose pools are never evicted to make room for an unknown application id. */
export const KNOWN_APP_IDS: readonly string[] = [WINDOWS_APP_ID, OFFICE2010_APP_ID, OFFICE2013_APP_ID]
/** §6.4: 50 for Windows; the brief caps every application at 50 (open question 2 of the reference). */
export const DEFAULT_POOL_CAPACITY = 50
export const MAX_POOLS = 64
export const CMID_RETENTION_MS = 30 * 24 * 60 * 60 * 1000
const MAX_FIXED_COUNT = 0xffffffff

export type CounterMode = { kind: 'real' } | { kind: 'charged' } | { kind: 'fixed'; count: number }

export interface PoolKey {
  appId: string
  cmid: string
}

export interface PoolEntry extends PoolKey {
  /** ms since the epoch */
  lastSeen: number
}

export interface CounterOutcome {
  appId: string
  cmid: string
  /** the time stored for this CMID: `now`, or the pool's latest time if the clock went backwards */
  lastSeen: number
  /** live entries after recording this request (it includes the requester) */
  poolSize: number
  reportedCount: number
  newClient: boolean
  /** entries present before this call and gone after it: expired, over capacity, or an evicted pool */
  removed: PoolKey[]
}

interface Pool {
  /** cmid -> lastSeen; insertion order is recency order, so the oldest entry is the first key */
  entries: Map<string, number>
  /** the newest lastSeen in the pool: the pool's own clock, never decreasing */
  latest: number
}

export interface CounterOptions {
  mode?: CounterMode
  capacity?: number
  maxPools?: number
  retentionMs?: number
}

const id = (text: string) => text.toLowerCase()

function checkMode(mode: CounterMode): CounterMode {
  if (
    mode.kind === 'fixed' &&
    !(Number.isInteger(mode.count) && mode.count >= 0 && mode.count <= MAX_FIXED_COUNT)
  ) {
    throw new UsageError(
      `counter fixed:${mode.count}: the count must be an integer 0..${MAX_FIXED_COUNT}`,
      '--counter',
    )
  }
  return mode
}

export class ActivationCounter {
  readonly capacity: number
  readonly maxPools: number
  readonly retentionMs: number
  private currentMode: CounterMode
  private readonly pools = new Map<string, Pool>()

  constructor(opts: CounterOptions = {}) {
    this.currentMode = checkMode(opts.mode ?? { kind: 'real' })
    this.capacity = opts.capacity ?? DEFAULT_POOL_CAPACITY
    this.maxPools = opts.maxPools ?? MAX_POOLS
    this.retentionMs = opts.retentionMs ?? CMID_RETENTION_MS
    if (!Number.isInteger(this.capacity) || this.capacity < 1) {
      throw new UsageError(`counter capacity ${this.capacity}: must be an integer >= 1`)
    }
    // With 4 slots or more, at most 3 of them hold known applications, so whenever the limit is
    // reached there is always an unknown application's pool to evict: no request is ever turned
    // away or left uncounted because of the pool limit.
    if (!Number.isInteger(this.maxPools) || this.maxPools < KNOWN_APP_IDS.length + 1) {
      throw new UsageError(
        `counter maxPools ${this.maxPools}: must be an integer >= ${KNOWN_APP_IDS.length + 1}`,
      )
    }
    if (!(this.retentionMs > 0)) throw new UsageError(`counter retention ${this.retentionMs} ms: must be > 0`)
  }

  get mode(): CounterMode {
    return this.currentMode
  }

  set mode(mode: CounterMode) {
    this.currentMode = checkMode(mode)
  }

  /**
   * Replaces the whole state with `entries` (as saved by a store). Keeps the known applications
   * and the most recently active unknown ones up to `maxPools`; drops expired and over-capacity
   * entries. The result is what live recording in time order would have kept.
   */
  load(entries: readonly PoolEntry[], now: number): { removed: PoolKey[] } {
    this.pools.clear()
    const removed: PoolKey[] = []
    const byApp = new Map<string, PoolEntry[]>()
    for (const e of entries) {
      const appId = id(e.appId)
      let list = byApp.get(appId)
      if (!list) {
        list = []
        byApp.set(appId, list)
      }
      list.push({ appId, cmid: id(e.cmid), lastSeen: e.lastSeen })
    }
    const latest = (list: PoolEntry[]) => list.reduce((m, e) => Math.max(m, e.lastSeen), -Infinity)
    const unknown = [...byApp.keys()].filter((a) => !KNOWN_APP_IDS.includes(a))
    unknown.sort((a, b) => latest(byApp.get(b)!) - latest(byApp.get(a)!))
    const known = byApp.size - unknown.length
    for (const appId of unknown.slice(this.maxPools - known)) {
      for (const e of byApp.get(appId)!) removed.push({ appId, cmid: e.cmid })
      byApp.delete(appId)
    }
    for (const [appId, list] of byApp) {
      list.sort((a, b) => a.lastSeen - b.lastSeen)
      const pool: Pool = { entries: new Map(), latest: -Infinity }
      for (const e of list) {
        pool.entries.delete(e.cmid)
        pool.entries.set(e.cmid, e.lastSeen)
        pool.latest = e.lastSeen
      }
      this.prune(appId, pool, now, removed)
      this.trim(appId, pool, removed)
      if (pool.entries.size > 0) this.pools.set(appId, pool)
    }
    return { removed }
  }

  /** Records one request: the CMID is added or refreshed, then the count is read (§6.4). */
  record(appId: string, cmid: string, requiredCount: number, now: number): CounterOutcome {
    const app = id(appId)
    const client = id(cmid)
    const removed: PoolKey[] = []
    const pool = this.poolFor(app, removed)
    // The pool's time never goes backwards, so insertion order stays recency order and expiry can
    // work from the oldest end; a clock stepped back by S keeps this CMID alive S longer at most.
    const t = Math.max(now, pool.latest)
    this.prune(app, pool, t, removed, client)
    const newClient = !pool.entries.has(client)
    pool.entries.delete(client)
    pool.entries.set(client, t)
    pool.latest = t
    this.trim(app, pool, removed)
    const poolSize = pool.entries.size
    return {
      appId: app,
      cmid: client,
      lastSeen: t,
      poolSize,
      reportedCount: this.reported(poolSize, requiredCount),
      newClient,
      removed,
    }
  }

  /** The `CurrentCount` to answer for a pool of `poolSize` live entries under the current mode. */
  reported(poolSize: number, requiredCount: number): number {
    return reportedCountFor(this.currentMode, this.capacity, poolSize, requiredCount)
  }

  /** Live entries (not older than the retention) of one application's pool; does not prune. */
  poolSize(appId: string, now: number): number {
    return this.entries(appId, now).length
  }

  /** Live entries of one pool, least recently seen first; does not prune. */
  entries(appId: string, now: number): PoolEntry[] {
    const app = id(appId)
    const pool = this.pools.get(app)
    if (!pool) return []
    const out: PoolEntry[] = []
    for (const [cmid, lastSeen] of pool.entries) {
      if (now - lastSeen <= this.retentionMs) out.push({ appId: app, cmid, lastSeen })
    }
    return out
  }

  /** Live entries of every non-empty pool, keyed by application id. */
  snapshot(now: number): Map<string, PoolEntry[]> {
    const out = new Map<string, PoolEntry[]>()
    for (const appId of this.pools.keys()) {
      const list = this.entries(appId, now)
      if (list.length > 0) out.set(appId, list)
    }
    return out
  }

  /** Empties one pool, or every pool; the removed list holds every stored entry, expired or not. */
  reset(appId?: string): { removed: PoolKey[] } {
    const removed: PoolKey[] = []
    const apps = appId === undefined ? [...this.pools.keys()] : [id(appId)]
    for (const app of apps) {
      const pool = this.pools.get(app)
      if (!pool) continue
      for (const cmid of pool.entries.keys()) removed.push({ appId: app, cmid })
      this.pools.delete(app)
    }
    return { removed }
  }

  /**
   * Adds `count` new distinct CMIDs (at most the capacity) seen at `now`, as vlmcsd's "charged"
   * start does (§6.4); older entries pushed over capacity are removed.
   */
  seed(
    appId: string,
    count: number,
    now: number,
    makeCmid: () => string,
  ): { added: PoolEntry[]; removed: PoolKey[] } {
    if (!Number.isInteger(count) || count < 0)
      throw new UsageError(`seed count ${count}: must be an integer >= 0`)
    const app = id(appId)
    const n = Math.min(count, this.capacity)
    if (n === 0) return { added: [], removed: [] }
    // Draw the CMIDs before touching anything, so a bad generator leaves the state unchanged.
    const existing = this.pools.get(app)?.entries
    const fresh = new Set<string>()
    for (let tries = 0; fresh.size < n; tries++) {
      if (tries > 16 * n + 16)
        throw new KmslabError(`seed: makeCmid keeps returning CMIDs already in the pool`)
      const cmid = id(makeCmid())
      if (!existing?.has(cmid)) fresh.add(cmid)
    }
    const removed: PoolKey[] = []
    const pool = this.poolFor(app, removed)
    const t = Math.max(now, pool.latest)
    this.prune(app, pool, t, removed)
    const added: PoolEntry[] = []
    for (const cmid of fresh) {
      pool.entries.set(cmid, t)
      added.push({ appId: app, cmid, lastSeen: t })
    }
    pool.latest = t
    this.trim(app, pool, removed)
    return { added, removed }
  }

  /**
   * The pool of `app`, created if missing. At the limit, the least recently active pool of an
   * unknown application is evicted whole (its entries go to `removed`); the three known
   * applications are never evicted, and the constructor guarantees an unknown pool exists then.
   */
  private poolFor(app: string, removed: PoolKey[]): Pool {
    const found = this.pools.get(app)
    if (found) return found
    if (this.pools.size >= this.maxPools) {
      let victim: string | undefined
      let oldest = Infinity
      for (const [other, pool] of this.pools) {
        if (!KNOWN_APP_IDS.includes(other) && pool.latest < oldest) {
          victim = other
          oldest = pool.latest
        }
      }
      if (victim !== undefined) removed.push(...this.reset(victim).removed)
    }
    const pool: Pool = { entries: new Map(), latest: -Infinity }
    this.pools.set(app, pool)
    return pool
  }

  /** Drops entries older than the retention, from the oldest end. `keep` is about to be re-recorded. */
  private prune(app: string, pool: Pool, now: number, removed: PoolKey[], keep?: string): void {
    for (const [cmid, lastSeen] of pool.entries) {
      if (now - lastSeen <= this.retentionMs) break
      pool.entries.delete(cmid)
      if (cmid !== keep) removed.push({ appId: app, cmid })
    }
  }

  /** Drops the least recently seen entries beyond the capacity. */
  private trim(app: string, pool: Pool, removed: PoolKey[]): void {
    while (pool.entries.size > this.capacity) {
      const cmid = pool.entries.keys().next().value as string
      pool.entries.delete(cmid)
      removed.push({ appId: app, cmid })
    }
  }
}

/** The `CurrentCount` a host under `mode` answers for a pool of `poolSize` live entries. */
export function reportedCountFor(
  mode: CounterMode,
  capacity: number,
  poolSize: number,
  requiredCount: number,
): number {
  if (mode.kind === 'fixed') return mode.count
  if (mode.kind === 'real') return poolSize
  const want = Number.isFinite(requiredCount) && requiredCount > 0 ? 2 * requiredCount : 0
  return Math.min(capacity, Math.max(poolSize, want))
}

/** Parses `--counter real | charged | fixed:N` (N an integer 0..4294967295). */
export function parseCounterMode(text: string): CounterMode {
  if (text === 'real') return { kind: 'real' }
  if (text === 'charged') return { kind: 'charged' }
  const m = /^fixed:([0-9]{1,10})$/.exec(text)
  if (m && Number(m[1]) <= MAX_FIXED_COUNT) return { kind: 'fixed', count: Number(m[1]) }
  throw new UsageError(
    `--counter ${JSON.stringify(text)}: expected real, charged or fixed:N (N an integer 0..${MAX_FIXED_COUNT})`,
    '--counter',
  )
}

/** One line for a lab admin: what clients will see under this mode. */
export function describeCounterMode(mode: CounterMode): string {
  switch (mode.kind) {
    case 'real':
      return (
        'counter real: genuine behaviour, starts empty (saved pools carry over); the first 24 Windows clients ' +
        '(first 4 servers/Office clients) will see 0xC004F038 until enough distinct machines have asked'
      )
    case 'charged':
      return (
        'counter charged: every client activates at once (reports twice its required count, at least the ' +
        'pool size, at most 50: 50 to Windows clients, 10 to servers and Office)'
      )
    case 'fixed': {
      const n = mode.count
      const effect =
        n >= 25
          ? 'every client activates'
          : n >= 5
            ? 'servers and Office activate, Windows clients (need 25) see 0xC004F038'
            : 'no client activates: all see 0xC004F038 (Windows clients need 25, servers/Office 5)'
      return `counter fixed:${n}: reports ${n} to every client whatever the pool holds; ${effect}`
    }
  }
}
