/**
 * The store behind `--state memory`: same contract as the SQLite store, nothing on disk. History
 * is a ring of the newest MEMORY_HISTORY_LIMIT rows so the embedding API can still read it.
 */
import type { PoolEntry } from '../kms/counter.js'
import { addToTotals } from '../kms/history.js'
import { StoreWriteError } from './errors.js'
import {
  type CommitBatch,
  DAY_MS,
  HISTORY_RETENTION_DAYS_DEFAULT,
  type HistoryQuery,
  type HistoryRow,
  type HostIdentity,
  MEMORY_HISTORY_LIMIT,
  type PoolClient,
  type RequestTotals,
  type StateStore,
  upsertRequests,
  type WriteFailure,
} from './types.js'

const key = (appId: string, cmid: string) => `${appId}\u0000${cmid}`
const copyRow = (r: HistoryRow): HistoryRow => ({ ...r, rules: [...r.rules] })

export interface MemoryStoreOptions {
  historyDays?: number
  historyLimit?: number
  writeFailure?: WriteFailure | null
}

export class MemoryStore implements StateStore {
  readonly location = 'memory'
  readonly historyRetentionMs: number
  private readonly limit: number
  private identity: HostIdentity | null = null
  private readonly pool = new Map<string, PoolClient>()
  private readonly totals: RequestTotals = { total: 0, failed: 0, byLicenseStatus: {} }
  /** ring of the newest rows: `ring[(start + i) % limit]` for i < count */
  private readonly ring: HistoryRow[] = []
  private start = 0
  private count = 0
  private failure: WriteFailure | null
  private closed = false

  constructor(opts: MemoryStoreOptions = {}) {
    this.historyRetentionMs = (opts.historyDays ?? HISTORY_RETENTION_DAYS_DEFAULT) * DAY_MS
    this.limit = opts.historyLimit ?? MEMORY_HISTORY_LIMIT
    this.failure = opts.writeFailure ?? null
  }

  loadIdentity(): HostIdentity | null {
    return this.identity && { ...this.identity, epids: { ...this.identity.epids } }
  }

  saveIdentity(id: HostIdentity): void {
    this.identity = { ...id, epids: { ...id.epids } }
  }

  loadPoolEntries(): PoolEntry[] {
    return [...this.pool.values()].map((e) => ({ appId: e.appId, cmid: e.cmid, lastSeen: e.lastSeen }))
  }

  loadPoolClients(): PoolClient[] {
    return [...this.pool.values()].sort((a, b) => a.lastSeen - b.lastSeen).map((e) => ({ ...e }))
  }

  requestTotals(): RequestTotals {
    return { ...this.totals, byLicenseStatus: { ...this.totals.byLicenseStatus } }
  }

  commit(batch: CommitBatch): void {
    if (this.closed) throw new StoreWriteError('state store memory is closed', this.location)
    // Ask the fault hook before touching anything: a failed commit leaves no trace.
    const injected = this.failure?.(batch)
    if (injected)
      throw new StoreWriteError(`state store memory: ${injected.message}`, this.location, injected)
    for (const r of batch.removals) this.pool.delete(key(r.appId, r.cmid))
    for (const e of batch.upserts) {
      const k = key(e.appId, e.cmid)
      const was = this.pool.get(k)
      const c = e.client
      this.pool.set(k, {
        appId: e.appId,
        cmid: e.cmid,
        lastSeen: e.lastSeen,
        firstSeen: was?.firstSeen ?? e.lastSeen,
        workstation: c?.workstation ?? was?.workstation ?? null,
        skuId: c?.skuId ?? was?.skuId ?? null,
        licenseStatus: c?.licenseStatus ?? was?.licenseStatus ?? null,
        vm: c?.vm ?? was?.vm ?? null,
        requests: (was?.requests ?? 0) + upsertRequests(e),
      })
    }
    for (const row of batch.history) this.append(copyRow(row))
    addToTotals(this.totals, batch.history)
  }

  readHistory(opts: HistoryQuery = {}): HistoryRow[] {
    const since = opts.sinceMs ?? -Infinity
    const until = opts.untilMs ?? Infinity
    const app = opts.appId?.toLowerCase()
    let rows = this.rows().filter(
      (r) => r.time >= since && r.time <= until && (app === undefined || r.appId.toLowerCase() === app),
    )
    if (opts.limit !== undefined) rows = opts.limit > 0 ? rows.slice(-Math.floor(opts.limit)) : []
    return rows.map(copyRow)
  }

  /** The ring holds MEMORY_HISTORY_LIMIT rows at most, so a copy of them is small. */
  *iterateHistory(opts: HistoryQuery = {}): IterableIterator<HistoryRow> {
    yield* this.readHistory(opts)
  }

  historyCount(): number {
    return this.count
  }

  pruneHistory(beforeMs: number): number {
    const all = this.rows()
    const kept = all.filter((r) => !(r.time < beforeMs))
    this.ring.length = 0
    this.start = 0
    this.count = 0
    for (const r of kept) this.append(r)
    return all.length - kept.length
  }

  pruneExpiredHistory(now: number): number {
    return this.pruneHistory(now - this.historyRetentionMs)
  }

  setWriteFailure(fn: WriteFailure | null): void {
    this.failure = fn
  }

  close(): void {
    this.closed = true
  }

  private append(row: HistoryRow): void {
    if (this.count < this.limit) {
      this.ring[(this.start + this.count) % this.limit] = row
      this.count++
    } else {
      this.ring[this.start] = row
      this.start = (this.start + 1) % this.limit
    }
  }

  private rows(): HistoryRow[] {
    const out: HistoryRow[] = []
    for (let i = 0; i < this.count; i++) out.push(this.ring[(this.start + i) % this.limit])
    return out
  }
}
