/**
 * What the host keeps about requests and clients, as plain data: the history row of each request,
 * the details a pool entry carries, and the cumulative request figures of `slmgr /dlv`. Defined
 * here, below the store and the HTTP edge, so both can speak of them without importing each other.
 */
import type { PoolEntry } from './counter.js'

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
  /** the client's clock when it sent the request (ms), null when unreadable */
  clientTime: number | null
  /** minutes left before the client's grace or licence runs out, as it reported them */
  graceMinutes: number | null
  epid: string | null
  /** names of fault-injection rules applied, [] normally */
  rules: string[]
}

/** What the newest request of a client said about it (absent for entries made by `pools.seed`). */
export interface ClientDetails {
  workstation: string
  skuId: string
  licenseStatus: number
  vm: boolean
}

/** A pool entry with the client details stored beside it (null where no request told them). */
export interface PoolClient extends PoolEntry {
  /** when this CMID entered the pool (ms): it stays the same while the client keeps renewing */
  firstSeen: number
  workstation: string | null
  skuId: string | null
  licenseStatus: number | null
  vm: boolean | null
  /** requests counted for this entry since it entered the pool */
  requests: number
}

/**
 * Cumulative request figures since the state was created, as `slmgr /dlv` shows them: every
 * request the host decoded, those refused (any non-zero HRESULT: policy, a rule, a failed
 * write), and how many came with each license status (the wire value, 0..6 for genuine clients).
 */
export interface RequestTotals {
  total: number
  failed: number
  byLicenseStatus: Record<number, number>
}

export function emptyTotals(): RequestTotals {
  return { total: 0, failed: 0, byLicenseStatus: {} }
}

/** Adds the figures of `rows` to `into` (returns it). */
export function addToTotals(into: RequestTotals, rows: readonly HistoryRow[]): RequestTotals {
  for (const r of rows) {
    into.total++
    if (r.hresult !== 0) into.failed++
    into.byLicenseStatus[r.licenseStatus] = (into.byLicenseStatus[r.licenseStatus] ?? 0) + 1
  }
  return into
}

/** Per license status: requests, and of them failed; what one commit adds to the stored figures. */
export function totalsByStatus(
  rows: readonly HistoryRow[],
): Map<number, { requests: number; failed: number }> {
  const out = new Map<number, { requests: number; failed: number }>()
  for (const r of rows) {
    let s = out.get(r.licenseStatus)
    if (!s) {
      s = { requests: 0, failed: 0 }
      out.set(r.licenseStatus, s)
    }
    s.requests++
    if (r.hresult !== 0) s.failed++
  }
  return out
}
