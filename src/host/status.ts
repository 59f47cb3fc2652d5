/**
 * The host's report as `slmgr /dlv` gives it: per pool the current count and what each threshold
 * means for it, the cumulative request figures, the identity, the newest history rows. One
 * object for GET /api/status, `kmslab status --json`, the text report and SIGUSR1's log.
 */
import type { Catalog } from '../catalog/types.js'
import { exportRow, type HistoryExportRow } from '../http/history.js'
import { applicationLabel } from '../http/query.js'
import {
  ActivationCounter,
  type CounterMode,
  KNOWN_APP_IDS,
  type PoolEntry,
  WINDOWS_APP_ID,
} from '../kms/counter.js'
import type { HistoryRow, RequestTotals } from '../kms/history.js'
import type { HostIdentity, StateStore } from '../store/types.js'
import { KMSLAB_VERSION } from './version.js'

export interface ThresholdStatus {
  /** who needs it: "Windows Server", "Windows client", "Office" */
  clients: string
  required: number
  reached: boolean
  /** distinct machines still missing, 0 once reached */
  missing: number
  /** the count a new client of this kind would be told now (under the counter mode) */
  newClientGets: number
  newClientActivates: boolean
}

export interface PoolStatus {
  application: string
  appId: string
  name: string | null
  currentCount: number
  capacity: number
  thresholds: ThresholdStatus[]
}

export interface RequestFigures {
  total: number
  failed: number
  byLicenseStatus: {
    unlicensed: number
    licensed: number
    initialGrace: number
    outOfToleranceGrace: number
    nonGenuineGrace: number
    notification: number
    extendedGrace: number
  }
  /** requests whose license status was outside 0..6 */
  otherLicenseStatus: number
}

export interface HostStatus {
  version: string
  /** ISO 8601, null when read from a state file with no host attached */
  startedAt: string | null
  listening: string[]
  http: string | null
  state: string
  counter: string
  identity: { epids: Record<string, string>; hwid: string; hostBuild: number; lcid: number } | null
  pools: PoolStatus[]
  clientsSeen: number
  requests: RequestFigures
  recent: HistoryExportRow[]
}

const THRESHOLDS: Record<string, { clients: string; required: number }[]> = {
  [WINDOWS_APP_ID]: [
    { clients: 'Windows Server', required: 5 },
    { clients: 'Windows client', required: 25 },
  ],
}
const OFFICE_THRESHOLDS = [{ clients: 'Office', required: 5 }]
export const RECENT_ROWS = 5

export function counterText(mode: CounterMode): string {
  return mode.kind === 'fixed' ? `fixed:${mode.count}` : mode.kind
}

export function requestFigures(t: RequestTotals): RequestFigures {
  const s = (i: number) => t.byLicenseStatus[i] ?? 0
  const known = [0, 1, 2, 3, 4, 5, 6].reduce((n, i) => n + s(i), 0)
  return {
    total: t.total,
    failed: t.failed,
    byLicenseStatus: {
      unlicensed: s(0),
      licensed: s(1),
      initialGrace: s(2),
      outOfToleranceGrace: s(3),
      nonGenuineGrace: s(4),
      notification: s(5),
      extendedGrace: s(6),
    },
    otherLicenseStatus: t.total - known,
  }
}

export interface StatusSource {
  startedAt: number | null
  listening: string[]
  http: string | null
  state: string
  counter: ActivationCounter
  now: number
  totals: RequestTotals
  identity: HostIdentity | null
  catalog: Catalog
  recent: HistoryRow[]
}

export function buildStatus(src: StatusSource): HostStatus {
  const snapshot = src.counter.snapshot(src.now)
  const apps = [...KNOWN_APP_IDS, ...[...snapshot.keys()].filter((a) => !KNOWN_APP_IDS.includes(a))]
  const pools = apps.map((appId) => poolStatus(appId, snapshot.get(appId) ?? [], src.counter, src.catalog))
  const id = src.identity
  return {
    version: KMSLAB_VERSION,
    startedAt: src.startedAt === null ? null : new Date(src.startedAt).toISOString(),
    listening: src.listening,
    http: src.http,
    state: src.state,
    counter: counterText(src.counter.mode),
    identity: id && { epids: id.epids, hwid: id.hwid, hostBuild: id.hostBuild, lcid: id.lcid },
    pools,
    clientsSeen: pools.reduce((n, p) => n + p.currentCount, 0),
    requests: requestFigures(src.totals),
    recent: src.recent.map((r) => exportRow(r, src.catalog)),
  }
}

function poolStatus(
  appId: string,
  entries: PoolEntry[],
  counter: ActivationCounter,
  catalog: Catalog,
): PoolStatus {
  const size = entries.length
  const next = Math.min(size + 1, counter.capacity)
  const known = KNOWN_APP_IDS.includes(appId)
  const thresholds = (THRESHOLDS[appId] ?? (known ? OFFICE_THRESHOLDS : [])).map((t) => {
    const gets = counter.reported(next, t.required)
    return {
      clients: t.clients,
      required: t.required,
      reached: size >= t.required,
      missing: Math.max(0, t.required - size),
      newClientGets: gets,
      newClientActivates: gets >= t.required,
    }
  })
  return {
    application: applicationLabel(appId),
    appId,
    name: catalog.appName(appId) ?? null,
    currentCount: size,
    capacity: counter.capacity,
    thresholds,
  }
}

/**
 * The report from a state file alone (`kmslab status --state`, no host asked): the pools as a
 * host starting now would count them, under the genuine counter (the mode is not stored).
 */
export function statusFromStore(store: StateStore, catalog: Catalog, now: number): HostStatus {
  const counter = new ActivationCounter()
  counter.load(store.loadPoolEntries(), now)
  return buildStatus({
    startedAt: null,
    listening: [],
    http: null,
    state: store.location,
    counter,
    now,
    totals: store.requestTotals(),
    identity: store.loadIdentity(),
    catalog,
    recent: store.readHistory({ limit: RECENT_ROWS }),
  })
}
