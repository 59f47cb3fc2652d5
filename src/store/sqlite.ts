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
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import Database from 'better-sqlite3'
import { ConfigError } from '../errors.js'
import type { PoolEntry } from '../kms/counter.js'
import { totalsByStatus } from '../kms/history.js'
import { StoreReadError, StoreWriteError } from './errors.js'
import { ownedElsewhere, readOwner, type StateOwner, takeOwnerLock } from './sqlite-owner.js'
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
  type PoolClient,
  type RequestTotals,
  type StateStore,
  upsertRequests,
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
  /**
   * Claim the file for this process (default true): a second owner, in this process or another,
   * is refused with ConfigError until the first closes or dies. Readers that only look pass false.
   */
  owner?: boolean
  /**
   * Read only (`kmslab status --state` beside a running host): no write, no check, no migration,
   * no owner claim; WAL lets it read while the host writes. Every write throws StoreWriteError.
   */
  readOnly?: boolean
}

/** Rows read per query when history is iterated: small enough to keep memory flat. */
const HISTORY_PAGE = 500

const HISTORY_FILTER = `time >= @since AND time <= @until AND (@app IS NULL OR app_id = @app)`

export class SqliteStore implements StateStore {
  readonly historyRetentionMs: number
  private readonly db: Database.Database
  private readonly ownerLock: Database.Database | null
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
    const readOnly = opts.readOnly === true
    const owner = opts.owner !== false && !readOnly
    if (!readOnly) checkPath(file)
    const lock = owner ? takeOwnerLock(file) : null
    if (owner && !lock) throw ownedElsewhere(file, readOwner(file))
    let db: Database.Database | undefined
    try {
      db = new Database(file, {
        timeout: opts.busyTimeoutMs ?? 2000,
        readonly: readOnly,
        fileMustExist: readOnly,
      })
      if (readOnly) ensureSchema(db, file, true)
      // Reads every page: random bytes or a damaged page fail here, at start, not mid-run.
      else if (opts.check !== false) {
        const found = (db.pragma('quick_check(3)') as { quick_check: string }[]).map((r) => r.quick_check)
        if (found.join() !== 'ok') {
          const what = found.join('; ').replace(/\s*\n\s*/g, ' ')
          throw new ConfigError(`state file ${file} is corrupt (quick_check: ${what})`, file)
        }
      }
      // A write at open (under the write lock), so a read-only file or a locked one fails at start.
      const d = db
      if (!readOnly) db.pragma('journal_mode = WAL')
      if (!readOnly) db.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
      if (!readOnly) db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`)
      if (!readOnly)
        db.transaction(() => {
          ensureSchema(d, file)
          d.prepare(
            `INSERT INTO meta (key, value) VALUES ('open_count', '1')
           ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1`,
          ).run()
          if (lock) {
            const me: StateOwner = { pid: process.pid, startedAt: Date.now(), hostname: hostname() }
            d.prepare(`INSERT OR REPLACE INTO meta (key, value) VALUES ('owner', ?)`).run(JSON.stringify(me))
          }
        }).immediate()
    } catch (e) {
      db?.close()
      lock?.close()
      throw openError(e, file)
    }
    this.db = db
    this.ownerLock = lock
    this.q = {
      history: db.prepare(
        `INSERT INTO history (${HISTORY_COLUMNS.join(', ')}) VALUES (${HISTORY_COLUMNS.map(() => '?').join(', ')})`,
      ),
      upsert: db.prepare(
        `INSERT INTO pool (app_id, cmid, last_seen, first_seen, workstation, sku_id, license_status, vm, requests)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (app_id, cmid) DO UPDATE SET last_seen = excluded.last_seen,
          workstation = coalesce(excluded.workstation, workstation), sku_id = coalesce(excluded.sku_id, sku_id),
          license_status = coalesce(excluded.license_status, license_status), vm = coalesce(excluded.vm, vm),
          requests = requests + excluded.requests`,
      ),
      counts: db.prepare(
        `INSERT INTO request_counts (license_status, requests, failed) VALUES (?, ?, ?)
         ON CONFLICT (license_status) DO UPDATE SET
          requests = requests + excluded.requests, failed = failed + excluded.failed`,
      ),
      totals: db.prepare('SELECT license_status, requests, failed FROM request_counts'),
      clients: db.prepare(
        `SELECT app_id, cmid, last_seen, first_seen, workstation, sku_id, license_status, vm, requests
         FROM pool ORDER BY last_seen`,
      ),
      remove: db.prepare('DELETE FROM pool WHERE app_id = ? AND cmid = ?'),
      pool: db.prepare('SELECT app_id, cmid, last_seen FROM pool ORDER BY last_seen'),
      identity: db.prepare('SELECT epids, hwid, host_build, lcid, created_at FROM identity WHERE id = 1'),
      saveIdentity: db.prepare(
        `INSERT OR REPLACE INTO identity (id, epids, hwid, host_build, lcid, created_at) VALUES (1, ?, ?, ?, ?, ?)`,
      ),
      read: db.prepare(`SELECT * FROM history WHERE ${HISTORY_FILTER} ORDER BY id DESC LIMIT @limit`),
      // the id where the newest `limit` matching rows start (none: fewer rows match)
      startOfNewest: db
        .prepare(`SELECT id FROM history WHERE ${HISTORY_FILTER} ORDER BY id DESC LIMIT 1 OFFSET @skip`)
        .pluck(),
      lastId: db.prepare('SELECT coalesce(max(id), 0) FROM history').pluck(),
      page: db.prepare(
        `SELECT * FROM history WHERE id > @after AND id <= @last AND ${HISTORY_FILTER} ORDER BY id LIMIT @page`,
      ),
      count: db.prepare('SELECT count(*) FROM history').pluck(),
      prune: db.prepare('DELETE FROM history WHERE time < ?'),
    }
    this.tx = db.transaction((batch: CommitBatch) => {
      for (const r of batch.history) this.q.history.run(historyValues(r))
      // The fault hook runs mid-transaction, after rows went in: a failure must roll them back.
      const injected = this.failure?.(batch)
      if (injected) throw injected
      for (const [status, n] of totalsByStatus(batch.history)) this.q.counts.run(status, n.requests, n.failed)
      for (const r of batch.removals) this.q.remove.run(r.appId, r.cmid)
      for (const e of batch.upserts) {
        const c = e.client
        this.q.upsert.run(
          e.appId,
          e.cmid,
          e.lastSeen,
          e.lastSeen,
          c?.workstation ?? null,
          c?.skuId ?? null,
          c?.licenseStatus ?? null,
          c ? (c.vm ? 1 : 0) : null,
          upsertRequests(e),
        )
      }
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

  loadPoolClients(): PoolClient[] {
    const rows = this.read(() => this.q.clients.all()) as PoolRecord[]
    return rows.map((r) => ({
      appId: r.app_id,
      cmid: r.cmid,
      lastSeen: r.last_seen,
      firstSeen: r.first_seen,
      workstation: r.workstation,
      skuId: r.sku_id,
      licenseStatus: r.license_status,
      vm: r.vm === null ? null : r.vm !== 0,
      requests: r.requests,
    }))
  }

  requestTotals(): RequestTotals {
    const rows = this.read(() => this.q.totals.all()) as {
      license_status: number
      requests: number
      failed: number
    }[]
    const out: RequestTotals = { total: 0, failed: 0, byLicenseStatus: {} }
    for (const r of rows) {
      out.total += r.requests
      out.failed += r.failed
      out.byLicenseStatus[r.license_status] = r.requests
    }
    return out
  }

  commit(batch: CommitBatch): void {
    this.write(() => this.tx.immediate(batch))
  }

  readHistory(opts: HistoryQuery = {}): HistoryRow[] {
    const limit = opts.limit === undefined ? -1 : Math.max(0, opts.limit)
    const rows = this.read(() => this.q.read.all({ ...filterOf(opts), limit })) as HistoryRecord[]
    return rows.reverse().map(fromRecord)
  }

  /**
   * Pages by id on the store's own connection, each page a short query: an open `.iterate()`
   * would keep the connection busy, and the host's commits would fail until the reader finished.
   */
  iterateHistory(opts: HistoryQuery = {}): IterableIterator<HistoryRow> {
    // read now, not at the first next(): rows committed after this call stay out
    const last = this.read(() => this.q.lastId.get()) as number
    return this.pages(opts, last)
  }

  private *pages(opts: HistoryQuery, last: number): IterableIterator<HistoryRow> {
    const filter = filterOf(opts)
    let after = 0
    let left = Number.POSITIVE_INFINITY
    if (opts.limit !== undefined) {
      left = Math.max(0, Math.floor(opts.limit))
      if (left === 0) return
      const start = this.read(() => this.q.startOfNewest.get({ ...filter, skip: left - 1 })) as
        | number
        | undefined
      if (start !== undefined) after = start - 1
    }
    while (left > 0) {
      const page = Math.min(HISTORY_PAGE, left)
      const rows = this.read(() => this.q.page.all({ ...filter, after, last, page })) as (HistoryRecord & {
        id: number
      })[]
      for (const r of rows) yield fromRecord(r)
      if (rows.length < page) return
      left -= rows.length
      after = rows[rows.length - 1].id
    }
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
    this.ownerLock?.close()
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

interface PoolRecord {
  app_id: string
  cmid: string
  last_seen: number
  first_seen: number
  workstation: string | null
  sku_id: string | null
  license_status: number | null
  vm: number | null
  requests: number
}

function filterOf(q: HistoryQuery) {
  return { since: q.sinceMs ?? -Infinity, until: q.untilMs ?? Infinity, app: q.appId?.toLowerCase() ?? null }
}

export function openSqliteStore(path: string, opts: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(resolve(path), opts)
}
