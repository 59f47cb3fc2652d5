import type { PoolEntry, PoolKey } from '../kms/counter.js'

export const HISTORY_RETENTION_DAYS_DEFAULT = 90
/** The memory store keeps only the newest rows of history, so a long run does not grow without bound. */
export const MEMORY_HISTORY_LIMIT = 1_000
export const DAY_MS = 24 * 60 * 60 * 1000

/** One request as the host handled it: answered (`reportedCount` set) or refused (`null`). */
export interface HistoryRow {
  /** ms since the epoch */
  time: number
  clientAddress: string
  workstation: string
  cmid: string
  previousCmid: string
  appId: string
  skuId: string
  kmsId: string
  requiredCount: number
  /** null for refusals */
  reportedCount: number | null
  hresult: number
  /** "6.0" */
  protocol: string
  vm: boolean
  licenseStatus: number
  epid: string | null
  /** names of fault-injection rules applied, [] normally */
  rules: string[]
}

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
  history: HistoryRow[]
  upserts: PoolEntry[]
  removals: PoolKey[]
}

/** Decides whether a commit fails on purpose (tests, the embedding API's fault injection). */
export type WriteFailure = (batch: CommitBatch) => Error | null

export interface HistoryQuery {
  /** the newest `limit` rows (of those matching), still returned oldest first */
  limit?: number
  /** only rows with time >= sinceMs */
  sinceMs?: number
}

export interface StateStore {
  /** absolute path of the state file, or 'memory' */
  readonly location: string
  /** history older than this is dropped by `pruneExpiredHistory` */
  readonly historyRetentionMs: number
  loadIdentity(): HostIdentity | null
  saveIdentity(id: HostIdentity): void
  loadPoolEntries(): PoolEntry[]
  /** One transaction, all or nothing; durable against process death when it returns. Throws StoreWriteError. */
  commit(batch: CommitBatch): void
  /** In insertion order (oldest first). */
  readHistory(opts?: HistoryQuery): HistoryRow[]
  historyCount(): number
  /** Deletes history rows with time < beforeMs; returns how many. */
  pruneHistory(beforeMs: number): number
  /** `pruneHistory(now - retention)`: the host calls it periodically. */
  pruneExpiredHistory(now: number): number
  /** Every later commit asks `fn` first and fails with its error; null turns that off. */
  setWriteFailure(fn: WriteFailure | null): void
  close(): void
}
