export { StoreError, StoreReadError, StoreWriteError } from './errors.js'
export { GroupCommitter, type GroupCommitterOptions, mergeBatches } from './group-commit.js'
export { MemoryStore, type MemoryStoreOptions } from './memory.js'
export {
  defaultStatePath,
  type OpenStateStoreOptions,
  openStateStore,
  openStateStoreReadOnly,
} from './open.js'
export { openSqliteStore, SCHEMA_VERSION, SqliteStore, type SqliteStoreOptions } from './sqlite.js'
export {
  type CommitBatch,
  DAY_MS,
  HISTORY_RETENTION_DAYS_DEFAULT,
  type HistoryQuery,
  type HistoryRow,
  type HostIdentity,
  MEMORY_HISTORY_LIMIT,
  type PoolClient,
  type PoolUpsert,
  type RequestTotals,
  type StateStore,
  type WriteFailure,
} from './types.js'
