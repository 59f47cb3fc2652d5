/**
 * The shared store: state in PostgreSQL (node-postgres, a small pool), for several host processes
 * or machines acting as one KMS host. The database is the source of truth for the pools: each
 * group of requests is counted inside its own transaction, under a lock per application pool, so
 * N hosts count each CMID once and report what one host would.
 */
import pg from 'pg'
import { ActivationCounter, type CounterOptions, type PoolEntry, type PoolKey } from '../kms/counter.js'
import { StoreReadError, StoreWriteError } from './errors.js'
import { mergeBatches } from './group-commit.js'
import { connectPg, type PgStoreOptions } from './postgres-connect.js'
import { fromPgRecord, HISTORY_COLUMNS, LOCK, lockKeyOf, type PgHistoryRecord } from './postgres-schema.js'
import { batchSql, writeBatch } from './postgres-write.js'
import { type Counted, countItems, type RecordItem } from './recorder.js'
import {
  type CommitBatch,
  DAY_MS,
  HISTORY_RETENTION_DAYS_DEFAULT,
  type HistoryQuery,
  type HistoryRow,
  type HostIdentity,
  type PoolClient,
  type PoolUpsert,
  type RequestTotals,
  type WriteFailure,
} from './types.js'

export type { PgStoreOptions }

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e))
/** Thrown inside a counting transaction that found a new pool: it is retried under the exclusive lock. */
class NeedsExclusive extends Error {}

const SHARED_BEGIN = `BEGIN; SELECT pg_advisory_xact_lock_shared(${LOCK.pools}, 0)`
const EXCLUSIVE_BEGIN = `BEGIN; SELECT pg_advisory_xact_lock(${LOCK.pools}, 0)`

interface IdentityRecord {
  epids: Record<string, string>
  hwid: string
  host_build: number
  lcid: number
  created_at: string
}
const fromIdentity = (r: IdentityRecord): HostIdentity => ({
  epids: r.epids,
  hwid: r.hwid,
  hostBuild: r.host_build,
  lcid: r.lcid,
  createdAt: Number(r.created_at),
})

export class PgStore {
  readonly historyRetentionMs: number
  private failure: WriteFailure | null
  private closed = false

  constructor(
    private readonly pool: pg.Pool,
    /** postgres://user@host:port/db (never the password) */
    readonly location: string,
    opts: PgStoreOptions = {},
  ) {
    this.historyRetentionMs = (opts.historyDays ?? HISTORY_RETENTION_DAYS_DEFAULT) * DAY_MS
    this.failure = opts.writeFailure ?? null
  }

  async loadIdentity(): Promise<HostIdentity | null> {
    const r = await this.read((c) => c.query<IdentityRecord>('SELECT * FROM kmslab_identity WHERE id = 1'))
    return r.rows[0] ? fromIdentity(r.rows[0]) : null
  }

  async saveIdentity(id: HostIdentity): Promise<void> {
    await this.tx('BEGIN', (c) =>
      c.query(
        `INSERT INTO kmslab_identity (id, epids, hwid, host_build, lcid, created_at) VALUES (1, $1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET epids = excluded.epids, hwid = excluded.hwid,
           host_build = excluded.host_build, lcid = excluded.lcid, created_at = excluded.created_at`,
        [JSON.stringify(id.epids), id.hwid, id.hostBuild, id.lcid, id.createdAt],
      ),
    )
  }

  /**
   * Stores `candidate` unless an identity is there already, and returns the one stored: the first
   * host creates it, every other reads it. ePID families the stored one lacks are added.
   */
  async claimIdentity(candidate: HostIdentity): Promise<HostIdentity> {
    const r = await this.tx('BEGIN', (c) =>
      c.query<IdentityRecord>(
        `INSERT INTO kmslab_identity (id, epids, hwid, host_build, lcid, created_at) VALUES (1, $1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET epids = excluded.epids || kmslab_identity.epids RETURNING *`,
        [
          JSON.stringify(candidate.epids),
          candidate.hwid,
          candidate.hostBuild,
          candidate.lcid,
          candidate.createdAt,
        ],
      ),
    )
    return fromIdentity(r.rows[0])
  }

  async loadPoolEntries(): Promise<PoolEntry[]> {
    const r = await this.read((c) =>
      c.query('SELECT app_id, cmid, last_seen FROM kmslab_pool ORDER BY last_seen'),
    )
    return r.rows.map(toEntry)
  }

  async loadPoolClients(): Promise<PoolClient[]> {
    const r = await this.read((c) =>
      c.query(
        `SELECT app_id, cmid, last_seen, first_seen, workstation, sku_id, license_status, vm, requests
         FROM kmslab_pool ORDER BY last_seen`,
      ),
    )
    return r.rows.map((x) => ({
      ...toEntry(x),
      firstSeen: Number(x.first_seen),
      workstation: x.workstation,
      skuId: x.sku_id,
      licenseStatus: x.license_status === null ? null : Number(x.license_status),
      vm: x.vm,
      requests: Number(x.requests),
    }))
  }

  async requestTotals(): Promise<RequestTotals> {
    const r = await this.read((c) =>
      c.query('SELECT license_status, requests, failed FROM kmslab_request_counts'),
    )
    const out: RequestTotals = { total: 0, failed: 0, byLicenseStatus: {} }
    for (const x of r.rows) {
      out.total += Number(x.requests)
      out.failed += Number(x.failed)
      out.byLicenseStatus[Number(x.license_status)] = Number(x.requests)
    }
    return out
  }

  /** Applies a batch as it is (no counting), under the exclusive pools lock. */
  async commit(batch: CommitBatch): Promise<void> {
    await this.tx(EXCLUSIVE_BEGIN, (c) => this.write(c, batch))
  }

  /**
   * Records a group of requests in one transaction, counting those that ask on the pools as the
   * database holds them: the pools involved are locked, read, counted in order and written back.
   */
  async recordItems(items: readonly RecordItem[], limits: CounterOptions): Promise<(Counted | null)[]> {
    const apps = [...new Set(items.flatMap((i) => (i.count ? [i.count.appId.toLowerCase()] : [])))].sort()
    const now = Math.max(...items.map((i) => i.count?.now ?? -Infinity))
    const attempt = async (exclusive: boolean) => {
      const appLocks = apps
        .map((a) => `; SELECT pg_advisory_xact_lock(${LOCK.app}, ${lockKeyOf(a)})`)
        .join('')
      const begin = exclusive ? EXCLUSIVE_BEGIN : SHARED_BEGIN + appLocks
      const select = exclusive
        ? 'SELECT app_id, cmid, last_seen FROM kmslab_pool'
        : `SELECT app_id, cmid, last_seen FROM kmslab_pool
           WHERE app_id IN (SELECT jsonb_array_elements_text(${pg.escapeLiteral(JSON.stringify(apps))}::jsonb))`
      // two round trips per group: lock and read the pools; write and commit
      return this.tx(
        '',
        async (c) => {
          const read = (await c.query(`${begin}; ${select}`)) as unknown as pg.QueryResult[]
          const counter = new ActivationCounter(limits)
          const loaded = counter.load(read[read.length - 1].rows.map(toEntry), now)
          // A new pool may evict another application's: that needs every pool, so the exclusive lock.
          if (!exclusive && apps.some((a) => counter.poolSize(a, now) === 0)) throw new NeedsExclusive()
          const { results, batch } = countItems(counter, items)
          const sql = batchSql(
            mergeBatches([{ history: [], upserts: [], removals: loaded.removed }, batch]),
            this.failure,
          )
          await c.query(sql === '' ? 'COMMIT' : `${sql};\nCOMMIT`)
          return results
        },
        true,
      )
    }
    try {
      return await attempt(apps.length === 0)
    } catch (e) {
      if (!(e instanceof StoreWriteError && e.cause instanceof NeedsExclusive)) throw e
      return attempt(true)
    }
  }

  /** Changes the pools as `change` does on a counter loaded with all of them (the API's seed and reset). */
  async changePools<T>(
    limits: CounterOptions,
    now: number,
    change: (counter: ActivationCounter) => { result: T; upserts: PoolUpsert[]; removals: PoolKey[] },
  ): Promise<T> {
    return this.tx(EXCLUSIVE_BEGIN, async (c) => {
      const counter = new ActivationCounter(limits)
      const found = await c.query('SELECT app_id, cmid, last_seen FROM kmslab_pool')
      const loaded = counter.load(found.rows.map(toEntry), now)
      const { result, upserts, removals } = change(counter)
      await this.write(
        c,
        mergeBatches([
          { history: [], upserts: [], removals: loaded.removed },
          { history: [], upserts, removals },
        ]),
      )
      return result
    })
  }

  async readHistory(opts: HistoryQuery = {}): Promise<HistoryRow[]> {
    const r = await this.read((c) =>
      c.query<PgHistoryRecord>(
        `SELECT ${HISTORY_COLUMNS} FROM kmslab_history WHERE ${HISTORY_FILTER} ORDER BY id DESC LIMIT $4`,
        [...filterOf(opts), opts.limit === undefined ? null : Math.max(0, Math.floor(opts.limit))],
      ),
    )
    return r.rows.reverse().map(fromPgRecord)
  }

  /** readHistory a page at a time (oldest first); rows committed after the call stay out. */
  async *iterateHistory(opts: HistoryQuery = {}): AsyncIterableIterator<HistoryRow> {
    const top = await this.read((c) =>
      c.query<{ id: string | null }>('SELECT max(id) AS id FROM kmslab_history'),
    )
    const last = top.rows[0].id ?? '0'
    let after = '0'
    let left = opts.limit === undefined ? Number.POSITIVE_INFINITY : Math.max(0, Math.floor(opts.limit))
    if (Number.isFinite(left) && left > 0) {
      const start = await this.read((c) =>
        c.query<{ id: string }>(
          `SELECT id FROM kmslab_history WHERE ${HISTORY_FILTER} AND id <= $4 ORDER BY id DESC OFFSET $5 LIMIT 1`,
          [...filterOf(opts), last, left - 1],
        ),
      )
      if (start.rows[0]) after = String(BigInt(start.rows[0].id) - 1n)
    }
    while (left > 0) {
      const page = Math.min(HISTORY_PAGE, left)
      const r = await this.read((c) =>
        c.query<PgHistoryRecord & { id: string }>(
          `SELECT id, ${HISTORY_COLUMNS} FROM kmslab_history WHERE ${HISTORY_FILTER} AND id > $4 AND id <= $5
           ORDER BY id LIMIT $6`,
          [...filterOf(opts), after, last, page],
        ),
      )
      for (const row of r.rows) yield fromPgRecord(row)
      if (r.rows.length < page) return
      left -= r.rows.length
      after = r.rows[r.rows.length - 1].id
    }
  }

  async historyCount(): Promise<number> {
    const r = await this.read((c) => c.query<{ n: string }>('SELECT count(*) AS n FROM kmslab_history'))
    return Number(r.rows[0].n)
  }

  async pruneHistory(beforeMs: number): Promise<number> {
    return this.tx('BEGIN', async (c) => {
      const r = await c.query('DELETE FROM kmslab_history WHERE time < $1', [beforeMs])
      return r.rowCount ?? 0
    })
  }

  /** Prunes on one host at a time: another host pruning now (advisory lock) makes this a no-op. */
  async pruneExpiredHistory(now: number): Promise<number> {
    return this.tx('BEGIN', async (c) => {
      const got = await c.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock(${LOCK.prune}, 0) AS ok`)
      if (!got.rows[0].ok) return 0
      const r = await c.query('DELETE FROM kmslab_history WHERE time < $1', [now - this.historyRetentionMs])
      return r.rowCount ?? 0
    })
  }

  setWriteFailure(fn: WriteFailure | null): void {
    this.failure = fn
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.pool.end()
  }

  private write(c: pg.PoolClient, batch: CommitBatch): Promise<void> {
    return writeBatch(c, batch, this.failure)
  }

  /** Runs `fn` in a transaction `begin` opens; `fn` commits itself when `commits` (it sends BEGIN too if `begin` is ''). */
  private async tx<T>(begin: string, fn: (c: pg.PoolClient) => Promise<T>, commits = false): Promise<T> {
    if (this.closed) throw new StoreWriteError(`PostgreSQL state ${this.location} is closed`, this.location)
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (e) {
      throw new StoreWriteError(
        `cannot reach PostgreSQL state ${this.location}: ${describe(e)}`,
        this.location,
        e,
      )
    }
    let broken: Error | undefined
    try {
      if (begin !== '') await client.query(begin)
      const result = await fn(client)
      if (!commits) await client.query('COMMIT')
      return result
    } catch (e) {
      await client.query('ROLLBACK').catch((err: Error) => {
        broken = err
      })
      const why = e instanceof NeedsExclusive ? 'a new pool needs the exclusive lock' : describe(e)
      throw new StoreWriteError(`cannot write PostgreSQL state ${this.location}: ${why}`, this.location, e)
    } finally {
      client.release(broken)
    }
  }

  private async read<T>(fn: (c: pg.Pool) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreReadError(`PostgreSQL state ${this.location} is closed`, this.location)
    try {
      return await fn(this.pool)
    } catch (e) {
      throw new StoreReadError(
        `cannot read PostgreSQL state ${this.location}: ${describe(e)}`,
        this.location,
        e,
      )
    }
  }
}

const HISTORY_PAGE = 500
const HISTORY_FILTER =
  '($1::bigint IS NULL OR time >= $1) AND ($2::bigint IS NULL OR time <= $2) AND ($3::text IS NULL OR lower(app_id) = $3)'
const filterOf = (q: HistoryQuery) => [
  Number.isFinite(q.sinceMs) ? q.sinceMs : null,
  Number.isFinite(q.untilMs) ? q.untilMs : null,
  q.appId?.toLowerCase() ?? null,
]

function toEntry(r: { app_id: string; cmid: string; last_seen: string }): PoolEntry {
  return { appId: r.app_id, cmid: r.cmid, lastSeen: Number(r.last_seen) }
}

export async function openPgStore(location: string, opts: PgStoreOptions = {}): Promise<PgStore> {
  const { pool, display } = await connectPg(location, opts)
  return new PgStore(pool, display, opts)
}
