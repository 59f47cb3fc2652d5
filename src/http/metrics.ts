/**
 * The Prometheus exposition. Per request the host only bumps a number in a Map (the labels joined
 * into one key); prom-client sees the figures when someone scrapes, through `collect`. So a host
 * with --http on and nobody scraping pays a Map update per request, not prom-client's label work.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { NCA_STATUS } from '../wire/rpc.js'
import type { OperationsProvider, RequestSample } from './types.js'

/** The wire's license status values 0..6, as the metric's label names them. */
export const LICENSE_STATUS_LABELS = [
  'unlicensed',
  'licensed',
  'initial_grace',
  'out_of_tolerance_grace',
  'non_genuine_grace',
  'notification',
  'extended_grace',
] as const

export const licenseStatusLabel = (status: number): string => LICENSE_STATUS_LABELS[status] ?? String(status)

const FAULT_REASONS = new Map<number, string>([
  [NCA_STATUS.UNK_IF, 'unknown_interface'],
  [NCA_STATUS.OP_RNG_ERROR, 'unknown_operation'],
  [NCA_STATUS.PROTO_ERROR, 'protocol_error'],
  [NCA_STATUS.BAD_STUB_DATA, 'bad_stub_data'],
  [NCA_STATUS.INVALID_PRES_CONTEXT_ID, 'invalid_context'],
])

/** A fault's `reason` label: the NCA status by name, `rule` for fault injection, else its hex. */
export function faultReason(status: number, byRule: boolean): string {
  if (byRule) return 'rule'
  return FAULT_REASONS.get(status) ?? `0x${status.toString(16).padStart(8, '0')}`
}

/** Seconds: a KMS answer takes well under a millisecond in memory, a few with a SQLite commit. */
const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

export class HostMetrics {
  readonly registry = new Registry()
  private readonly requests = new Map<string, number>()
  private readonly faults = new Map<string, number>()
  private readonly durations: Histogram

  constructor(provider: OperationsProvider) {
    const registry = this.registry
    const requests = this.requests
    const faults = this.faults
    collectDefaultMetrics({ register: registry })
    new Counter({
      name: 'kmslab_requests_total',
      help: 'KMS requests the host decoded, by application, outcome, client license status and protocol',
      labelNames: ['application', 'outcome', 'license_status', 'protocol'],
      registers: [registry],
      collect() {
        this.reset()
        for (const [key, n] of requests) {
          const [application, outcome, license_status, protocol] = key.split('\u0000')
          this.inc({ application, outcome, license_status, protocol }, n)
        }
      },
    })
    new Counter({
      name: 'kmslab_rpc_faults_total',
      help: 'RPC FAULT PDUs the host sent, by reason',
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        this.reset()
        for (const [reason, n] of faults) this.inc({ reason }, n)
      },
    })
    new Gauge({
      name: 'kmslab_current_count',
      help: 'Live entries of each application pool: what slmgr /dlv calls Current count',
      labelNames: ['application'],
      registers: [registry],
      collect() {
        this.reset()
        for (const { application, count } of provider.currentCounts()) this.set({ application }, count)
      },
    })
    new Gauge({
      name: 'kmslab_connections_active',
      help: 'KMS (RPC) connections open now',
      registers: [registry],
      collect() {
        this.set(provider.connectionsActive())
      },
    })
    const info = new Gauge({
      name: 'kmslab_build_info',
      help: 'The kmslab version this host runs (always 1)',
      labelNames: ['version'],
      registers: [registry],
    })
    info.set({ version: provider.version }, 1)
    this.durations = new Histogram({
      name: 'kmslab_request_duration_seconds',
      help: 'From a KMS request decoded to its answer ready to write (includes the state commit)',
      buckets: DURATION_BUCKETS,
      registers: [registry],
    })
  }

  request(s: RequestSample): void {
    const key = `${s.application}\u0000${s.outcome}\u0000${licenseStatusLabel(s.licenseStatus)}\u0000${s.protocol}`
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1)
    this.durations.observe(s.seconds)
  }

  fault(reason: string): void {
    this.faults.set(reason, (this.faults.get(reason) ?? 0) + 1)
  }

  get contentType(): string {
    return this.registry.contentType
  }

  text(): Promise<string> {
    return this.registry.metrics()
  }
}
