import type { EventEmitter } from 'node:events'
import type { Catalog } from '../catalog/types.js'
import type { CounterMode, PoolEntry } from '../kms/counter.js'
import type { DecodedRequest } from '../kms/request.js'
import type { ListenAddress } from '../server/server.js'
import type { HistoryQuery, HistoryRow, HostIdentity, WriteFailure } from '../store/types.js'
import type { FaultRule } from './rules.js'
import type { HostStatus } from './status.js'

/**
 * What the host sent back for a request: a KMS answer, a refusal (NULL answer + HRESULT), an RPC
 * FAULT, or nothing (the connection was closed before the answer, by a rule).
 */
export type RequestOutcome = 'answer' | 'refuse' | 'fault' | 'close'

/** One request as the host handled it: its history row plus what the log and tests want to see. */
export interface ActivationRecord extends HistoryRow {
  connectionId: number
  clientPort: number
  callId: number
  syntax: 'ndr32' | 'ndr64'
  outcome: RequestOutcome
  /** The NCA status of the FAULT (outcome 'fault'), else null. */
  faultStatus: number | null
  /** Why the host did not answer, when it did not. */
  reason: string | null
  /** Live size of the application's pool after this request (null when it was not counted). */
  poolSize: number | null
  /** The CMID was not in its pool (a new client) or was (a renewal); null when it was not counted. */
  newClient: boolean | null
  /** The client will activate: an answer whose count reaches what it asked for (corrupt or not). */
  willActivate: boolean
  /** The row is in `history()`: false only when the state store failed to write it. */
  stored: boolean
  request: DecodedRequest
}

export type ConnectionEvent = {
  type: 'open' | 'close'
  id: number
  /** "127.0.0.1:50312", "[::1]:50312" */
  client: string
  reason?: string
  protocolError?: boolean
}

export interface HostEvents {
  /**
   * Every KMS request the host decoded a call for, whatever it sent back; then the seconds from
   * the decoded request to its answer ready to write (the state commit included).
   */
  activation: [record: ActivationRecord, seconds: number]
  connection: [ConnectionEvent]
  refused: [{ client: string; reason: 'max-connections' | 'not-allowed' }]
  /** Something odd a peer did that the host tolerated (a strange BIND, ...); the connection goes on. */
  protocol: [{ id: number; client: string; reason: string }]
  /** An RPC FAULT the host sent (a rule's, or one for a bad call). */
  fault: [{ id: number; client: string; callId: number; status: number; reason: string }]
  /** A BIND answered with BIND_NAK by a `rejectBind` rule (no request, so no history row). */
  'bind-rejected': [{ id: number; client: string; rule: string }]
  /**
   * A state write (or read-back after one failed) went wrong; the request was not answered. A
   * shared (PostgreSQL) state reports the first failure of an outage only.
   */
  'store-error': [Error]
  /** A shared state that failed answers again: the host serves again. */
  'store-recovered': []
}

export interface HostPools {
  /**
   * appId -> live entries (not expired by the host's clock), least recently seen first. Throws
   * StoreReadError with PostgreSQL state, whose pools live in the database: use fetch().
   */
  read(): Record<string, PoolEntry[]>
  /** The same, read from wherever the pools live (every kind of state). */
  fetch(): Promise<Record<string, PoolEntry[]>>
  /** Empties one application's pool, or all of them. */
  reset(appId?: string): Promise<void>
  /**
   * Adds `count` synthetic clients (new random CMIDs, seen now) to one application's pool, or with
   * a count only to each of the three known applications (Windows, Office 2010, Office 2013).
   * A pool holds 50 at most: the oldest entries make room. Returns the entries added.
   */
  seed(appId: string, count: number): Promise<PoolEntry[]>
  seed(count: number): Promise<PoolEntry[]>
  /** The counter mode; set it with the parsed form or the `--counter` text ('fixed:10'). */
  get mode(): CounterMode
  set mode(mode: CounterMode | string)
}

export interface HostRules {
  /** The rules in force, as given. */
  get(): FaultRule[]
  /** Replaces every rule at once (checked first: a bad list throws UsageError and changes nothing). */
  set(rules: FaultRule[]): void
}

export interface HostFaults {
  /**
   * Makes state writes fail (true, a message, or a function that decides per batch) or work again
   * (false / null). A request whose write fails is refused with 0x8007000D, never answered.
   */
  failWrites(failure: boolean | string | WriteFailure | null): void
}

export interface HostStats {
  accepted: number
  refusedMaxConnections: number
  refusedNotAllowed: number
  protocolErrors: number
  /** Requests answered (counted or not, corrupt or not). */
  activations: number
  /** Requests refused with an HRESULT, by policy, a rule or a failed write. */
  refusals: number
  /** Requests a rule answered with a FAULT or a closed connection. */
  dropped: number
  storeErrors: number
}

/** A running host, as `startHost` returns it. */
export interface KmsHost {
  /** Every address listened on, the port resolved. */
  readonly addresses: ListenAddress[]
  /** The first listening port (handy with port 0). */
  readonly port: number
  readonly identity: HostIdentity
  readonly catalog: Catalog
  /** The state file, 'memory', or postgres://USER@HOST:PORT/DB (no password). */
  readonly stateLocation: string
  /** The state takes writes: false while a PostgreSQL state is unreachable (requests are refused). */
  readonly stateReady: boolean
  /** Deterministic mode (`seed`) is on. */
  readonly seeded: boolean
  readonly events: EventEmitter<HostEvents>
  /**
   * Every activation from this call on, as an async iterator. It ends after close() (once the
   * records still queued are read); breaking out of the loop stops listening.
   */
  activations(): AsyncIterableIterator<ActivationRecord>
  /**
   * Stored history rows, oldest first (the memory state keeps the newest 10 000). Throws
   * StoreReadError with PostgreSQL state: use readHistory().
   */
  history(query?: HistoryQuery): HistoryRow[]
  /** The same, for every kind of state. */
  readHistory(query?: HistoryQuery): Promise<HistoryRow[]>
  readonly pools: HostPools
  readonly rules: HostRules
  readonly faults: HostFaults
  readonly stats: HostStats
  /** The HTTP port's URL (`http` option), else null. */
  readonly httpUrl: string | null
  /** The `slmgr /dlv`-like report: what GET /api/status and `kmslab status --json` show. */
  status(): HostStatus
  /** Stops listening, lets answers in progress finish (1 s at most), closes the state. */
  close(): Promise<void>
}
