// The public shapes of `kmslab bench`: its options, its progress reports and its summary.
import type { Product } from '../catalog/index.js'
import type { RandomSource } from '../crypto/random.js'
import type { BenchBind } from './connection.js'
import type { BenchHost, BenchTarget } from './targets.js'

export type { BenchHost, BenchTarget }

export interface BenchOptions {
  /** The host, or (with `targets`) the SRV name the targets came from, for the report. */
  host: string
  port: number
  /**
   * The hosts of a `_vlmcs._tcp` SRV answer: each connection draws its own RFC 2782 order of them
   * and connects to the first; when that host (address) fails, it moves to the next.
   */
  targets?: BenchTarget[]
  /** For the RFC 2782 draws (default: the system's CSPRNG). */
  random?: RandomSource
  /** Concurrent connections, each with one request in flight (new-connection mode: activations). */
  connections: number
  /** Activations in the measured phase; the run ends when all are answered. */
  requests?: number
  /** Seconds of measured load (used when `requests` is not given). */
  durationS?: number
  /** Open loop: activations per second over all connections. */
  rate?: number
  /** Connect, bind, request and close for every activation. */
  newConnection: boolean
  /** KMS protocol major version (4, 5, 6). */
  protocol: number
  product: Product
  bind: BenchBind
  /** Seconds of load before the measurement starts (not counted). */
  warmupS: number
  /** For a connect, a bind and each answer. */
  timeoutMs: number
  /** Spin on the sockets while requests are in flight instead of sleeping (takes one core). */
  busyPoll?: boolean
  /** Connections being opened at once while setting up (default 256: below a listen backlog). */
  openConcurrency?: number
  /** Called about once a second while the bench runs. */
  onProgress?: (p: BenchProgress) => void
  /** Aborting stops the load; the report covers what ran. */
  signal?: AbortSignal
}

export interface BenchProgress {
  phase: 'setup' | 'warmup' | 'measure' | 'drain'
  elapsedS: number
  activations: number
  errors: number
  /** Activations per second over the last interval. */
  currentRate: number
}

export interface LatencySummary {
  p50: number
  p90: number
  p99: number
  max: number
  mean: number
}

/** The summary `kmslab bench --json` prints (times in ms unless named otherwise). */
export interface BenchReport {
  target: string
  /** With discovered targets: where the connections went; null for a single host. */
  hosts: BenchHost[] | null
  protocol: number
  product: string
  bind: BenchBind
  connections: number
  newConnection: boolean
  busyPoll: boolean
  /** 'closed' (next request when the last answer verified) or 'open' (scheduled at `rate`). */
  loop: 'closed' | 'open'
  rate: number | null
  warmupS: number
  /** Length of the measured phase, s. */
  durationS: number
  /** The measured phase's start and end as Unix times in ms (to line up other measurements). */
  measureWindowEpochMs: [number, number]
  /** Activations attempted in the measured phase. */
  requests: number
  /** Answers that passed every check. */
  activations: number
  activationsPerSec: number
  /** Verified answers whose count is below the client's threshold (it would not activate yet). */
  belowThreshold: number
  latencyMs: LatencySummary
  /** Open loop: how late the bench sent requests after their scheduled time. */
  sendLagMs: LatencySummary | null
  errors: number
  errorsByKind: Record<string, number>
  warningsByKind: Record<string, number>
  /** Failures while opening the connections and during the warm-up, before the clock started. */
  warmupErrorsByKind: Record<string, number>
  /** TCP connections opened during the measured phase. */
  connects: number
  /** CPU time this process used during the measured phase, s (the bench's own cost). */
  benchCpuS: number
  /** The run was stopped early (signal). */
  interrupted: boolean
}
