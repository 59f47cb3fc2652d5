import { UsageError } from '../errors.js'
import { type CounterMode, parseCounterMode } from '../kms/counter.js'
import { parseCidr } from '../server/cidr.js'
import type { ListenAddress } from '../server/server.js'
import type { Counted, RecordItem } from '../store/recorder.js'
import type { HostIdentity } from '../store/types.js'
import type { FaultRule } from './rules.js'

/** A state another process owns (the primary of `--workers`): it records and counts for this host. */
export interface StateProxy {
  location: string
  identity: HostIdentity
  send(items: RecordItem[]): Promise<(Counted | null)[]>
}

/** Options of a host: the typed form of `kmslab serve`'s flags (same names, camelCase). */
/** `startHost({ http })`: where the HTTP port listens, and the token it asks for. */
export interface HttpHostOptions {
  /** "HOST:PORT" (port 0: any free one) or an address */
  listen: string | ListenAddress
  /** every endpoint but /healthz requires `Authorization: Bearer TOKEN`; required off loopback */
  token?: string | null
}

export interface HostOptions {
  /** "HOST:PORT" strings or addresses; default 127.0.0.1 on port 0 (the CLI: 127.0.0.1:1688). */
  listen?: (string | ListenAddress)[]
  /**
   * A SQLite file path, 'memory' (the default for the API; the CLI defaults to the XDG state
   * path), or PostgreSQL: a postgres:// or postgresql:// URL, or 'postgres' for the PG* variables.
   */
  state?: string
  /** Set in `--workers` worker processes: the state lives in the primary, reached through this. */
  stateProxy?: StateProxy
  /** PostgreSQL state: how long to wait for the database at start (default 10 000 ms). */
  stateWaitMs?: number
  /** 'real' (default), 'charged', 'fixed:N', or the parsed form. */
  counter?: string | CounterMode
  ndr64?: boolean
  btfn?: boolean
  /** Refuse unknown or retail KMS ids and clocks more than 4 h off, like a genuine host. */
  strict?: boolean
  /** Minutes, or strings with m/h/d/w suffixes ("2h"). Default 120. */
  activationInterval?: number | string
  /** Default 10080 (7 days). */
  renewalInterval?: number | string
  /** ePID family -> ePID, overriding the stored ones for this run. */
  epid?: Record<string, string>
  hostBuild?: number
  lcid?: number
  /** 16 hex digits. */
  hwid?: string
  idleTimeoutMs?: number
  /** µs the host keeps polling after each read before it sleeps (default 100; 0 turns it off). */
  busyPollMicros?: number
  connectionDeadlineMs?: number
  maxConnections?: number
  /** CIDR networks allowed to connect; others are closed without a byte sent. */
  allow?: string[]
  historyDays?: number
  /** With `state: 'memory'`: how many of the newest history rows `history()` keeps (default 1,000). */
  memoryHistoryLimit?: number
  /** Record every connection as a classic pcap. */
  capture?: string
  /** An extra products file merged over the built-in catalogue. */
  products?: string
  /**
   * Deterministic mode: every value the host draws (response IVs and salts, association groups,
   * a new identity's ePIDs, dated from SEED_EPOCH, and HWID, pools.seed's CMIDs) comes from a
   * generator seeded by this, so the same requests in the same order get the same bytes.
   */
  seed?: string | number
  /**
   * The host's clock for the protocol: the ±4 h check, pool expiry, history times, a new ePID's
   * date. Connection timeouts and capture timestamps keep to real time.
   */
  now?: () => Date
  /** Fault-injection rules, tried in order (see FaultRule); `host.rules.set` replaces them. */
  rules?: FaultRule[]
  /** Close each connection after its first answer (like vlmcsd -d). */
  disconnectAfterAnswer?: boolean
  /**
   * An HTTP port beside the KMS one: /healthz, /readyz, /metrics, /api/..., the dashboard.
   * Read-only. Off loopback it requires a token (UsageError otherwise).
   */
  http?: HttpHostOptions
}

/** Parses "120", "90m", "2h", "3d", "1w" into minutes, within a genuine host's 15..43200 range. */
export function parseInterval(name: string, value: number | string): number {
  const text = String(value).trim()
  const m = /^(\d+)\s*([mhdw]?)$/i.exec(text)
  if (!m)
    throw new UsageError(
      `--${name}: not a duration (minutes, or with m/h/d/w): ${JSON.stringify(text)}`,
      name,
    )
  const unit = { '': 1, m: 1, h: 60, d: 1440, w: 10080 }[m[2].toLowerCase() as '' | 'm' | 'h' | 'd' | 'w']
  const minutes = Number(m[1]) * unit
  if (minutes < 15 || minutes > 43200) {
    throw new UsageError(
      `--${name}: ${minutes} minutes is outside what a genuine host allows (15 to 43200)`,
      name,
    )
  }
  return minutes
}

/** "127.0.0.1:1688", "[::1]:1688", "0.0.0.0" (port 1688), ":1688" (loopback). */
export function parseListen(text: string, defaultPort: number): ListenAddress {
  const t = text.trim()
  const bracket = /^\[([0-9a-fA-F:.%a-z]+)\](?::(\d+))?$/.exec(t)
  const plain = /^([^:[\]]*)(?::(\d+))?$/.exec(t)
  const m = bracket ?? plain
  if (!m)
    throw new UsageError(`--listen: not HOST:PORT (IPv6 in brackets): ${JSON.stringify(text)}`, 'listen')
  const port = m[2] === undefined ? defaultPort : Number(m[2])
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--listen: bad port in ${JSON.stringify(text)}`, 'listen')
  return { host: m[1] === '' ? '127.0.0.1' : m[1], port }
}

export function resolveCounterMode(value: string | CounterMode | undefined): CounterMode {
  if (value === undefined) return { kind: 'real' }
  return typeof value === 'string' ? parseCounterMode(value) : value
}

export function resolveAllow(list: string[] | undefined) {
  return list && list.length > 0 ? list.map(parseCidr) : null
}
