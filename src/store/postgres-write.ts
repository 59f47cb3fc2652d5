/** Writing one batch inside an open transaction: history rows, request figures, pool entries. */
import type pg from 'pg'
import { totalsByStatus } from '../kms/history.js'
import { HISTORY_COLUMNS, HISTORY_TYPES, historyColumns } from './postgres-schema.js'
import { type CommitBatch, type PoolUpsert, upsertRequests, type WriteFailure } from './types.js'

export async function writeBatch(
  c: pg.ClientBase,
  batch: CommitBatch,
  failure: WriteFailure | null,
): Promise<void> {
  if (batch.history.length > 0) {
    const cols = historyColumns(batch.history)
    const unnest = HISTORY_TYPES.map((type, i) => `$${i + 1}::${type}[]`).join(', ')
    await c.query(`INSERT INTO kmslab_history (${HISTORY_COLUMNS}) SELECT * FROM unnest(${unnest})`, cols)
  }
  // The fault hook runs mid-transaction, after rows went in: a failure must roll them back.
  const injected = failure?.(batch)
  if (injected) throw injected
  if (batch.removals.length > 0) {
    await c.query(
      `DELETE FROM kmslab_pool p USING unnest($1::text[], $2::text[]) AS d(app_id, cmid)
       WHERE p.app_id = d.app_id AND p.cmid = d.cmid`,
      [batch.removals.map((r) => r.appId), batch.removals.map((r) => r.cmid)],
    )
  }
  const byStatus = [...totalsByStatus(batch.history)]
  if (byStatus.length > 0) {
    await c.query(
      `INSERT INTO kmslab_request_counts (license_status, requests, failed)
       SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
       ON CONFLICT (license_status) DO UPDATE SET requests = kmslab_request_counts.requests + excluded.requests,
         failed = kmslab_request_counts.failed + excluded.failed`,
      [byStatus.map(([k]) => k), byStatus.map(([, n]) => n.requests), byStatus.map(([, n]) => n.failed)],
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
    const ups = [...last.values()]
    const col = <T>(f: (e: PoolUpsert) => T) => ups.map(f)
    await c.query(
      `INSERT INTO kmslab_pool (app_id, cmid, last_seen, first_seen, workstation, sku_id, license_status, vm, requests)
       SELECT a, m, t, t, w, s, l, v, n FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
         $6::bigint[], $7::boolean[], $8::bigint[]) AS u(a, m, t, w, s, l, v, n)
       ON CONFLICT (app_id, cmid) DO UPDATE SET last_seen = excluded.last_seen,
         workstation = coalesce(excluded.workstation, kmslab_pool.workstation),
         sku_id = coalesce(excluded.sku_id, kmslab_pool.sku_id),
         license_status = coalesce(excluded.license_status, kmslab_pool.license_status),
         vm = coalesce(excluded.vm, kmslab_pool.vm), requests = kmslab_pool.requests + excluded.requests`,
      [
        col((e) => e.appId),
        col((e) => e.cmid),
        col((e) => e.lastSeen),
        col((e) => e.client?.workstation ?? null),
        col((e) => e.client?.skuId ?? null),
        col((e) => e.client?.licenseStatus ?? null),
        col((e) => e.client?.vm ?? null),
        col(upsertRequests),
      ],
    )
  }
}
