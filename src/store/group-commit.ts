/**
 * Group commit: every batch submitted in the same event-loop turn goes into one transaction, and
 * the promises resolve only after that transaction committed (an answer never leaves before its
 * request is durable). One commit per turn instead of one per request is what lets a single SQLite
 * file keep up with many connections.
 */
import type { PoolKey } from '../kms/counter.js'
import { StoreWriteError } from './errors.js'
import { type CommitBatch, type PoolUpsert, type StateStore, upsertRequests } from './types.js'

export interface GroupCommitterOptions {
  /** commit at once when this many batches are waiting (default 512) */
  maxBatch?: number
  /** called once per failed group, before its promises reject (the host logs loudly here) */
  onError?: (err: StoreWriteError) => void
}

interface Waiter {
  resolve: () => void
  reject: (err: StoreWriteError) => void
}

/**
 * Merges batches into one, in order: history rows are concatenated; for each pool key the last
 * operation wins, so "record X, then drop X over capacity" stays dropped. "Drop X, then record X
 * again" lists X in both removals and upserts: removals apply first, so X comes back as a new
 * entry (its first-seen time and request count start over), as it did in the counter.
 * Upserts of one key since its last removal add up their request counts.
 */
export function mergeBatches(batches: readonly CommitBatch[]): CommitBatch {
  if (batches.length === 1) return batches[0]
  const history = []
  const last = new Map<string, { key: PoolKey; entry: PoolUpsert | null; removed: boolean }>()
  for (const b of batches) {
    for (const row of b.history) history.push(row)
    for (const r of b.removals) last.set(`${r.appId}\u0000${r.cmid}`, { key: r, entry: null, removed: true })
    for (const e of b.upserts) {
      const k = `${e.appId}\u0000${e.cmid}`
      const prev = last.get(k)
      const before = prev?.entry ? upsertRequests(prev.entry) : 0
      const entry = before === 0 ? e : { ...e, requests: before + upsertRequests(e) }
      last.set(k, { key: e, entry, removed: prev?.removed ?? false })
    }
  }
  const upserts: PoolUpsert[] = []
  const removals: PoolKey[] = []
  for (const { key, entry, removed } of last.values()) {
    if (removed) removals.push({ appId: key.appId, cmid: key.cmid })
    if (entry) upserts.push(entry)
  }
  return { history, upserts, removals }
}

export class GroupCommitter {
  private batches: CommitBatch[] = []
  private waiters: Waiter[] = []
  private timer: NodeJS.Immediate | null = null
  private closed = false
  private readonly maxBatch: number
  private readonly onError?: (err: StoreWriteError) => void
  /** transactions committed (or attempted) and batches carried, for tests and the bench */
  readonly stats = { commits: 0, batches: 0, failures: 0 }

  constructor(
    private readonly store: StateStore,
    opts: GroupCommitterOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 512
    this.onError = opts.onError
  }

  /** Resolves once `batch` is committed; rejects with StoreWriteError if its group failed. */
  submit(batch: CommitBatch): Promise<void> {
    if (this.closed) {
      return Promise.reject(
        new StoreWriteError(`state store ${this.store.location}: committer closed`, this.store.location),
      )
    }
    return new Promise<void>((resolve, reject) => {
      this.batches.push(batch)
      this.waiters.push({ resolve, reject })
      if (this.batches.length >= this.maxBatch) this.run()
      else this.timer ??= setImmediate(() => this.run())
    })
  }

  /** Commits whatever is waiting now. */
  async flush(): Promise<void> {
    this.run()
  }

  /** Commits what is waiting; later submits reject. */
  async close(): Promise<void> {
    this.run()
    this.closed = true
  }

  private run(): void {
    if (this.timer) clearImmediate(this.timer)
    this.timer = null
    const batches = this.batches
    const waiters = this.waiters
    if (batches.length === 0) return
    this.batches = []
    this.waiters = []
    this.stats.commits++
    this.stats.batches += batches.length
    let failure: StoreWriteError | null = null
    try {
      this.store.commit(mergeBatches(batches))
    } catch (e) {
      failure =
        e instanceof StoreWriteError
          ? e
          : new StoreWriteError(`state store ${this.store.location}: ${String(e)}`, this.store.location, e)
    }
    if (!failure) {
      for (const w of waiters) w.resolve()
      return
    }
    this.stats.failures++
    try {
      this.onError?.(failure)
    } catch {
      // a throwing logger must not leave the waiters hanging
    }
    for (const w of waiters) w.reject(failure)
  }
}
