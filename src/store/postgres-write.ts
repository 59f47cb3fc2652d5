/**
 * Writing one batch inside an open transaction in ONE round trip: history rows, request figures,
 * pool removals and pool entries are statements over JSON documents sent as one simple query.
 * The values travel as escaped literals (the simple query protocol takes no parameters), so the
 * caller may append COMMIT to the same query: one round trip to write and commit a group.
 */
import pg from 'pg'
import { totalsByStatus } from '../kms/history.js'
import { HISTORY_COLUMNS, HISTORY_TYPES, historyColumns } from './postgres-schema.js'
import { type CommitBatch, type PoolUpsert, upsertRequests, type WriteFailure } from './types.js'

const HISTORY_NAMES = HISTORY_COLUMNS.split(', ')
const HISTORY_RECORD = HISTORY_NAMES.map((n, i) => `${n} ${HISTORY_TYPES[i]}`).join(', ')

const json = (value: unknown) => `${pg.escapeLiteral(JSON.stringify(value))}::jsonb`

/**
 * The batch as SQL statements separated by semicolons ('' when there is nothing to write), after
 * the fault hook: a failure it injects is thrown here, inside the caller's transaction, which then
 * rolls back. Removals come before upserts, so an entry dropped and recorded again comes back new.
 */
export function batchSql(batch: CommitBatch, failure: WriteFailure | null): string {
  const injected = failure?.(batch)
  if (injected) throw injected
  const parts: string[] = []
  if (batch.history.length > 0) {
    const cols = historyColumns(batch.history)
    // rules as JSON itself, not the string historyColumns makes of it for a jsonb[] parameter
    const rows = batch.history.map((row, r) => ({
      ...Object.fromEntries(HISTORY_NAMES.map((name, c) => [name, cols[c][r]])),
      rules: row.rules,
    }))
    parts.push(
      `INSERT INTO kmslab_history (${HISTORY_COLUMNS}) SELECT ${HISTORY_COLUMNS}
       FROM jsonb_to_recordset(${json(rows)}) AS x(${HISTORY_RECORD})`,
    )
  }
  if (batch.removals.length > 0) {
    parts.push(
      `DELETE FROM kmslab_pool p USING jsonb_to_recordset(${json(
        batch.removals.map((r) => ({ a: r.appId, m: r.cmid })),
      )}) AS d(a text, m text) WHERE p.app_id = d.a AND p.cmid = d.m`,
    )
  }
  const byStatus = [...totalsByStatus(batch.history)]
  if (byStatus.length > 0) {
    parts.push(
      `INSERT INTO kmslab_request_counts (license_status, requests, failed)
       SELECT s, n, f FROM jsonb_to_recordset(${json(
         byStatus.map(([s, n]) => ({ s, n: n.requests, f: n.failed })),
       )}) AS x(s bigint, n bigint, f bigint)
       ON CONFLICT (license_status) DO UPDATE SET requests = kmslab_request_counts.requests + excluded.requests,
         failed = kmslab_request_counts.failed + excluded.failed`,
    )
  }
  if (batch.upserts.length > 0) {
    // one row per key: ON CONFLICT cannot touch a row twice in one statement
    const last = new Map<string, PoolUpsert>()
    for (const e of batch.upserts) {
      const k = `${e.appId}\u0000${e.cmid}`
      const prev = last.get(k)
      last.set(k, prev ? { ...e, requests: upsertRequests(prev) + upsertRequests(e) } : e)
    }
    const ups = [...last.values()].map((e) => ({
      a: e.appId,
      m: e.cmid,
      t: e.lastSeen,
      w: e.client?.workstation ?? null,
      s: e.client?.skuId ?? null,
      l: e.client?.licenseStatus ?? null,
      v: e.client?.vm ?? null,
      n: upsertRequests(e),
    }))
    parts.push(
      `INSERT INTO kmslab_pool (app_id, cmid, last_seen, first_seen, workstation, sku_id, license_status, vm, requests)
       SELECT a, m, t, t, w, s, l, v, n FROM jsonb_to_recordset(${json(ups)})
         AS u(a text, m text, t bigint, w text, s text, l bigint, v boolean, n bigint)
       ON CONFLICT (app_id, cmid) DO UPDATE SET last_seen = excluded.last_seen,
         workstation = coalesce(excluded.workstation, kmslab_pool.workstation),
         sku_id = coalesce(excluded.sku_id, kmslab_pool.sku_id),
         license_status = coalesce(excluded.license_status, kmslab_pool.license_status),
         vm = coalesce(excluded.vm, kmslab_pool.vm), requests = kmslab_pool.requests + excluded.requests`,
    )
  }
  return parts.join(';\n')
}

export async function writeBatch(
  c: pg.ClientBase,
  batch: CommitBatch,
  failure: WriteFailure | null,
): Promise<void> {
  const sql = batchSql(batch, failure)
  if (sql !== '') await c.query(sql)
}
