/**
 * The durable store: one SQLite file (better-sqlite3, synchronous calls) in WAL mode.
 *
 * synchronous=NORMAL: a commit that returned has its pages in the WAL file through the OS, so it
 * survives kill -9 of the process (the kernel still holds them); only an OS crash or power loss
 * can take the last commits. synchronous=FULL would fsync the WAL at every commit to survive power
 * loss too: `npm run bench` (bench/micro-store.mjs) measures what that costs.
 *
 * wal_autocheckpoint = 10000 pages (~40 MB of WAL) instead of 1000: a checkpoint copies the WAL's
 * pages back into the file and, under NORMAL, fsyncs both; each request's commit dirties a few
 * pages all over the pool's index, so a short WAL made the checkpoints a sixth of a commit's CPU.
 * Durability is unchanged (a commit is in the WAL when it returns); a host killed with a long WAL
 * replays it at the next open.
 */
import { resolve } from 'node:path'
import Database from 'better-sqlite3'
import { ConfigError } from '../errors.js'
import type { PoolEntry } from '../kms/counter.js'
import { StoreReadError, StoreWriteError } from './errors.js'
import { checkPath, describe, openError } from './sqlite-path.js'
import {
  ensureSchema,
  fromRecord,
  HISTORY_COLUMNS,
  type HistoryRecord,
  historyValues,
  SCHEMA_VERSION,
} from './sqlite-schema.js'
import {
  type CommitBatch,
  DAY_MS,
  HISTORY_RETENTION_DAYS_DEFAULT,
  type HistoryQuery,
  type HistoryRow,
  type HostIdentity,
  type StateStore,
  type WriteFailure,
} from './types.js'

export { SCHEMA_VERSION }

/** WAL pages after which a commit checkpoints them into the file (SQLite's default is 1000). */
const WAL_CHECKPOINT_PAGES = 10_000

export interface SqliteStoreOptions {
  historyDays?: number
  synchronous?: 'normal' | 'full'
  /** how long a write waits for a lock held by another connection before failing */
  busyTimeoutMs?: number
  /** run PRAGMA quick_check at open (reads the whole file; see the bench for its cost) */
  check?: boolean
  writeFailure?: WriteFailure | null
}

export class SqliteStore implements StateStore {
  readonly historyRetentionMs: number
  private readonly db: Database.Database
  private failure: WriteFailure | null
  private closed = false
  private readonly q
  private readonly tx

  constructor(
    readonly location: string,
    opts: SqliteStoreOptions = {},
  ) {
    this.historyRetentionMs = (opts.historyDays ?? HISTORY_RETENTION_DAYS_DEFAULT) * DAY_MS
    this.failure = opts.writeFailure ?? null
    const file = location
    checkPath(file)
    let db: Database.Database | undefined
    try {
      db = new Database(file, { timeout: opts.busyTimeoutMs ?? 2000 })
      // Reads every page: random bytes or a damaged page fail here, at start, not mid-run.
      if (opts.check !== false) {
        const found = (db.pragma('quick_check(3)') as { quick_check: string }[]).map((r) => r.quick_check)
        if (found.join() !== 'ok') {
          const what = found.join('; ').replace(/\s*\n\s*/g, ' ')
          throw new ConfigError(`state file ${file} is corrupt (quick_check: ${what})`, file)
        }
      }
      db.pragma('journal_mode = WAL')
      db.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
      db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`)
      // A write at open (under the write lock), so a read-only file or a locked one fails at start.
      const d = db
      db.transaction(() => {
        ensureSchema(d, file)
        d.prepare(
          `INSERT INTO meta (key, value) VALUES ('open_count', '1')
           ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1`,
        ).run()
      }).immediate()
    } catch (e) {
      db?.close()
      throw openError(e, file)
    }
    this.db = db
    this.q = {
      history: db.prepare(
        `INSERT INTO history (${HISTORY_COLUMNS.join(', ')}) VALUES (${HISTORY_COLUMNS.map(() => '?').join(', ')})`,
      ),
      upsert: db.prepare(
        `INSERT INTO pool (app_id, cmid, last_seen) VALUES (?, ?, ?)
         ON CONFLICT (app_id, cmid) DO UPDATE SET last_seen = excluded.last_seen`,
      ),
      remove: db.prepare('DELETE FROM pool WHERE app_id = ? AND cmid = ?'),
      pool: db.prepare('SELECT app_id, cmid, last_seen FROM pool ORDER BY last_seen'),
      identity: db.prepare('SELECT epids, hwid, host_build, lcid, created_at FROM identity WHERE id = 1'),
      saveIdentity: db.prepare(
        `INSERT OR REPLACE INTO identity (id, epids, hwid, host_build, lcid, created_at) VALUES (1, ?, ?, ?, ?, ?)`,
      ),
      read: db.prepare('SELECT * FROM history WHERE time >= ? ORDER BY id DESC LIMIT ?'),
      count: db.prepare('SELECT count(*) FROM history').pluck(),
      prune: db.prepare('DELETE FROM history WHERE time < ?'),
    }
    this.tx = db.transaction((batch: CommitBatch) => {
      for (const r of batch.history) this.q.history.run(historyValues(r))
      // The fault hook runs mid-transaction, after rows went in: a failure must roll them back.
      const injected = this.failure?.(batch)
      if (injected) throw injected
      for (const r of batch.removals) this.q.remove.run(r.appId, r.cmid)
      for (const e of batch.upserts) this.q.upsert.run(e.appId, e.cmid, e.lastSeen)
    })
  }

  loadIdentity(): HostIdentity | null {
    const r = this.read(() => this.q.identity.get()) as
      | { epids: string; hwid: string; host_build: number; lcid: number; created_at: number }
      | undefined
    if (!r) return null
    return {
      epids: JSON.parse(r.epids),
      hwid: r.hwid,
      hostBuild: r.host_build,
      lcid: r.lcid,
      createdAt: r.created_at,
    }
  }

  saveIdentity(id: HostIdentity): void {
    this.write(() =>
      this.q.saveIdentity.run(JSON.stringify(id.epids), id.hwid, id.hostBuild, id.lcid, id.createdAt),
    )
  }

  loadPoolEntries(): PoolEntry[] {
    const rows = this.read(() => this.q.pool.all()) as { app_id: string; cmid: string; last_seen: number }[]
    return rows.map((r) => ({ appId: r.app_id, cmid: r.cmid, lastSeen: r.last_seen }))
  }

  commit(batch: CommitBatch): void {
    this.write(() => this.tx.immediate(batch))
  }

  readHistory(opts: HistoryQuery = {}): HistoryRow[] {
    const limit = opts.limit === undefined ? -1 : Math.max(0, opts.limit)
    const rows = this.read(() => this.q.read.all(opts.sinceMs ?? -Infinity, limit)) as HistoryRecord[]
    return rows.reverse().map(fromRecord)
  }

  historyCount(): number {
    return this.read(() => this.q.count.get()) as number
  }

  pruneHistory(beforeMs: number): number {
    return this.write(() => this.q.prune.run(beforeMs).changes)
  }

  pruneExpiredHistory(now: number): number {
    return this.pruneHistory(now - this.historyRetentionMs)
  }

  setWriteFailure(fn: WriteFailure | null): void {
    this.failure = fn
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.db.close()
  }

  private write<T>(fn: () => T): T {
    if (this.closed) throw new StoreWriteError(`state file ${this.location} is closed`, this.location)
    try {
      return fn()
    } catch (e) {
      throw new StoreWriteError(`cannot write state file ${this.location}: ${describe(e)}`, this.location, e)
    }
  }

  private read<T>(fn: () => T): T {
    if (this.closed) throw new StoreReadError(`state file ${this.location} is closed`, this.location)
    try {
      return fn()
    } catch (e) {
      throw new StoreReadError(`cannot read state file ${this.location}: ${describe(e)}`, this.location, e)
    }
  }
}

export function openSqliteStore(path: string, opts: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(resolve(path), opts)
}
