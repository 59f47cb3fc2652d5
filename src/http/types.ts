/**
 * What the HTTP edge needs from the host, as an interface the API layer implements: the edge
 * serves and formats, the host decides what the figures are. Nothing here changes the host.
 */
import type { Catalog } from '../catalog/types.js'
import type { HistoryRow } from '../kms/history.js'

export interface HistoryFilter {
  sinceMs?: number
  untilMs?: number
  /** the newest `limit` rows of those matching, oldest first */
  limit?: number
  appId?: string
}

/** How one request ended, for `kmslab_requests_total`. */
export type RequestOutcomeLabel = 'activated' | 'below_threshold' | 'refused'

export interface RequestSample {
  /** `windows`, `office2010`, `office2013` or the application GUID */
  application: string
  outcome: RequestOutcomeLabel
  licenseStatus: number
  /** the protocol's major version, "4", "5" or "6" */
  protocol: string
  /** decoded request to answer ready, seconds */
  seconds: number
}

export interface OperationsProvider {
  readonly version: string
  readonly catalog: Catalog
  /** KMS listeners up and the state store answering */
  ready(): boolean
  /** the object of GET /api/status (and `kmslab status --json`) */
  status(): unknown
  /** live pool entries with their details; `appId` narrows to one application */
  clients(appId?: string): unknown[]
  /** history rows as the caller pulls them, read from the state a page at a time */
  history(filter: HistoryFilter): Iterable<HistoryRow>
  /** what the "point clients here" page shows */
  config(): unknown
  /** live entries per application, for `kmslab_current_count` */
  currentCounts(): { application: string; count: number }[]
  connectionsActive(): number
  /** true when a peer at `address` may use the HTTP port (the host's --allow list) */
  allowed(address: string): boolean
}

export interface HttpOptions {
  host: string
  port: number
  /** every endpoint but /healthz asks for it (Authorization: Bearer, or ?token=) */
  token?: string | null
}
