import type { PoolEntry, PoolKey } from '../kms/counter.js'
import type { ClientDetails, HistoryRow, PoolClient, RequestTotals } from '../kms/history.js'

export type { ClientDetails, HistoryRow, PoolClient, RequestTotals }

export const HISTORY_RETENTION_DAYS_DEFAULT = 90
/** The memory store keeps only the newest rows of history, so a long run does not grow without bound. */
export const MEMORY_HISTORY_LIMIT = 1_000
export const DAY_MS = 24 * 60 * 60 * 1000

export interface HostIdentity {
  /** product family -> ePID */
  epids: Record<string, string>
  /** 16 hex digits, wire order */
  hwid: string
  hostBuild: number
  lcid: number
  createdAt: number
}

/**
 * What one or more requests change. Within a batch removals apply before upserts (a counter call
 * never lists the same key in both); the group committer merges batches so later ones win.
 */
export interface CommitBatch {
  /** The request figures (total, failed, per license status) grow by these rows, in the same commit. */
  history: HistoryRow[]
  upserts: PoolUpsert[]
  removals: PoolKey[]
}

/** A pool entry to record, with what the request that refreshed it said (none for seeded entries). */
export interface PoolUpsert extends PoolEntry {
  client?: ClientDetails
  /** requests this upsert stands for (default: 1 with `client`, else 0); merged batches sum them */
  requests?: number
}

/** How many requests an upsert adds to its entry's count. */
export const upsertRequests = (u: PoolUpsert): number => u.requests ?? (u.client ? 1 : 0)

/** Decides whether a commit fails on purpose (tests, the embedding API's fault injection). */
export type WriteFailure = (batch: CommitBatch) => Error | null

export interface HistoryQuery {
  /** the newest `limit` rows (of those matching), still returned oldest first */
  limit?: number
  /** only rows with time >= sinceMs */
  sinceMs?: number
  /** only rows with time <= untilMs */
  untilMs?: number
  /** only rows of this application id */
  appId?: string
}

export interface StateStore {
  /** absolute path of the state file, or 'memory' */
  readonly location: string
  /** history older than this is dropped by `pruneExpiredHistory` */
  readonly historyRetentionMs: number
  loadIdentity(): HostIdentity | null
  saveIdentity(id: HostIdentity): void
  loadPoolEntries(): PoolEntry[]
  /** Every stored pool entry with its client details (expired ones too, until the host drops them). */
  loadPoolClients(): PoolClient[]
  /** The cumulative request figures; they survive restarts and are never pruned. */
  requestTotals(): RequestTotals
  /** One transaction, all or nothing; durable against process death when it returns. Throws StoreWriteError. */
  commit(batch: CommitBatch): void
  /** In insertion order (oldest first). */
  readHistory(opts?: HistoryQuery): HistoryRow[]
  /**
   * The same rows as readHistory, read a page at a time as the caller pulls them, so a long
   * history never sits in memory; rows committed after the call are not included.
   */
  iterateHistory(opts?: HistoryQuery): IterableIterator<HistoryRow>
  historyCount(): number
  /** Deletes history rows with time < beforeMs; returns how many. */
  pruneHistory(beforeMs: number): number
  /** `pruneHistory(now - retention)`: the host calls it periodically. */
  pruneExpiredHistory(now: number): number
  /** Every later commit asks `fn` first and fails with its error; null turns that off. */
  setWriteFailure(fn: WriteFailure | null): void
  close(): void
}
