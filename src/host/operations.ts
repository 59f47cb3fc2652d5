/**
 * The host's operations side: the status report, and with `http` the HTTP port (metrics, JSON
 * API, events, dashboard). host.ts hands it the pieces it reads; it changes nothing in the host.
 */
import type { EventEmitter } from 'node:events'
import type { Catalog } from '../catalog/types.js'
import { UsageError } from '../errors.js'
import { applicationLabel, licenseStatusLabel } from '../http/query.js'
import type { OperationsProvider, RequestOutcomeLabel } from '../http/types.js'
import { type ActivationCounter, KNOWN_APP_IDS } from '../kms/counter.js'
import { hresultHex } from '../kms/hresult.js'
import { type Cidr, isLoopback, matchesAny } from '../server/cidr.js'
import type { ListenAddress } from '../server/server.js'
import type { HostIdentity, StateStore } from '../store/types.js'
import { type HttpHostOptions, parseListen } from './options.js'
import { buildStatus, type HostStatus, RECENT_ROWS } from './status.js'
import type { ActivationRecord, HostEvents } from './types.js'
import { KMSLAB_VERSION } from './version.js'

/** Checks the HTTP options before anything listens: off loopback, a token is required. */
export function resolveHttpOptions(o: HttpHostOptions): { host: string; port: number; token: string | null } {
  const a = typeof o.listen === 'string' ? parseListen(o.listen, 8080) : o.listen
  const token = o.token ?? null
  if (token !== null && !/^[\x21-\x7e]{8,}$/.test(token))
    throw new UsageError('--http-token: at least 8 printable characters, no spaces', 'http-token')
  const loopback = a.host === 'localhost' || safeLoopback(a.host)
  if (!loopback && token === null) {
    throw new UsageError(
      `--http ${a.host}: the HTTP port shows the host's clients, history and identity; off loopback ` +
        'it needs --http-token TOKEN (or KMSLAB_HTTP_TOKEN) so that only those holding the token can read them',
      'http',
    )
  }
  return { host: a.host, port: a.port, token }
}

function safeLoopback(host: string): boolean {
  try {
    return isLoopback(host)
  } catch {
    return false
  }
}

/** What the operations side reads from the state (a snapshot, with a shared state). */
export type OperationsStore = Pick<
  StateStore,
  'requestTotals' | 'readHistory' | 'loadPoolClients' | 'iterateHistory'
>

export interface OperationsParts {
  startedAt: number
  addresses: ListenAddress[]
  stateLocation: string
  catalog: Catalog
  identity: HostIdentity
  counter: ActivationCounter
  store: OperationsStore
  events: EventEmitter<HostEvents>
  now(): number
  connections(): number
  listening(): boolean
  allow: Cidr[] | null
}

export interface HostOperations {
  status(): HostStatus
  readonly url: string | null
  close(): Promise<void>
}

const endpointText = (a: ListenAddress) =>
  a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`

export async function startOperations(
  parts: OperationsParts,
  http?: HttpHostOptions,
): Promise<HostOperations> {
  let url: string | null = null
  const status = () =>
    buildStatus({
      startedAt: parts.startedAt,
      listening: parts.addresses.map(endpointText),
      http: url,
      state: parts.stateLocation,
      counter: parts.counter,
      now: parts.now(),
      totals: parts.store.requestTotals(),
      identity: parts.identity,
      catalog: parts.catalog,
      recent: parts.store.readHistory({ limit: RECENT_ROWS }),
    })
  if (!http) return { status, url: null, close: async () => {} }

  const options = resolveHttpOptions(http)
  // Loaded only for a host with an HTTP port: the metrics library and the HTTP server cost a
  // host without one ~9 MB of memory.
  const { faultReason } = await import('../http/metrics.js')
  const { OperationsServer } = await import('../http/server.js')
  const provider = makeProvider(parts, status)
  const server = new OperationsServer(provider, options)
  const onActivation = (r: ActivationRecord, seconds?: number) => {
    server.metrics.request({
      application: applicationLabel(r.appId),
      outcome: outcomeOf(r),
      licenseStatus: r.licenseStatus,
      protocol: r.protocol.slice(0, r.protocol.indexOf('.') >>> 0),
      seconds: seconds ?? 0,
    })
    server.events.publish('activation', () => activationLogObject(r))
  }
  const onFault = (f: { reason: string; status: number }) =>
    server.metrics.fault(faultReason(f.status, f.reason === 'fault-injection rule'))
  parts.events.on('activation', onActivation)
  parts.events.on('fault', onFault)
  try {
    url = await server.start()
  } catch (err) {
    parts.events.off('activation', onActivation)
    parts.events.off('fault', onFault)
    throw err
  }
  return {
    status,
    url,
    close: async () => {
      parts.events.off('activation', onActivation)
      parts.events.off('fault', onFault)
      await server.stop()
    },
  }
}

function outcomeOf(r: ActivationRecord): RequestOutcomeLabel {
  if (r.hresult !== 0 || r.outcome !== 'answer') return 'refused'
  return (r.reportedCount ?? 0) >= r.requiredCount ? 'activated' : 'below_threshold'
}

/** What `--log-format json` writes for an activation: its event name and the record's fields. */
export function activationLogObject(r: ActivationRecord): Record<string, unknown> {
  const { request, ...row } = r
  return {
    event: r.hresult === 0 ? 'activation' : 'refusal',
    ...row,
    hresult: r.hresult,
    hresultHex: hresultHex(r.hresult),
  }
}

function makeProvider(parts: OperationsParts, status: () => HostStatus): OperationsProvider {
  const { catalog, store, counter } = parts
  return {
    version: KMSLAB_VERSION,
    catalog,
    ready: () => {
      if (!parts.listening()) return false
      try {
        store.requestTotals()
        return true
      } catch {
        return false
      }
    },
    status,
    clients: (appId) => {
      const details = new Map(store.loadPoolClients().map((c) => [`${c.appId}\u0000${c.cmid}`, c]))
      const live = counter.snapshot(parts.now())
      const out: unknown[] = []
      for (const [app, entries] of live) {
        if (appId !== undefined && app !== appId) continue
        for (const e of entries) {
          const d = details.get(`${app}\u0000${e.cmid}`)
          out.push({
            application: applicationLabel(app),
            appId: app,
            cmid: e.cmid,
            workstation: d?.workstation ?? null,
            firstSeen: new Date(d?.firstSeen ?? e.lastSeen).toISOString(),
            lastSeen: new Date(e.lastSeen).toISOString(),
            licenseStatus: d?.licenseStatus ?? null,
            licenseStatusName: d?.licenseStatus == null ? null : licenseStatusLabel(d.licenseStatus),
            skuId: d?.skuId ?? null,
            product: d?.skuId ? (catalog.skuName(d.skuId) ?? null) : null,
            vm: d?.vm ?? null,
            requests: d?.requests ?? 0,
          })
        }
      }
      return out
    },
    history: (f) => store.iterateHistory(f),
    config: () => clientConfig(parts),
    // the three known pools always, empty or not, so a dashboard's series never vanish
    currentCounts: () => {
      const live = counter.snapshot(parts.now())
      const apps = new Set([...KNOWN_APP_IDS, ...live.keys()])
      return [...apps].map((app) => ({
        application: applicationLabel(app),
        count: live.get(app)?.length ?? 0,
      }))
    },
    connectionsActive: parts.connections,
    allowed: (address) => parts.allow === null || matchesAny(address, parts.allow),
  }
}

/**
 * What a client needs to be pointed here, for each KMS address: slmgr for Windows, ospp.vbs for
 * Office, and the DNS SRV record that lets clients find the host by themselves. An unspecified
 * address (0.0.0.0, ::) is shown as HOSTNAME for the admin to fill in.
 */
function clientConfig(parts: OperationsParts) {
  const targets = parts.addresses.map((a) => {
    const host = a.host === '0.0.0.0' || a.host === '::' ? 'HOSTNAME' : a.host
    const slmgrHost = host.includes(':') ? `[${host}]` : host
    return {
      address: endpointText(a),
      host,
      port: a.port,
      commands: {
        windows: `slmgr /skms ${slmgrHost}:${a.port}`,
        windowsActivate: 'slmgr /ato',
        office: [
          `cscript ospp.vbs /sethst:${host}`,
          `cscript ospp.vbs /setprt:${a.port}`,
          'cscript ospp.vbs /act',
        ],
      },
      dnsSrv: `_vlmcs._tcp.example.com. 3600 IN SRV 0 0 ${a.port} ${host.includes(':') || /^\d/.test(host) ? 'kms.example.com' : host}.`,
    }
  })
  return {
    kmsPort: parts.addresses[0]?.port ?? null,
    listening: parts.addresses.map(endpointText),
    targets,
    notes: [
      'A DNS SRV record names a host name, not an address: give the KMS host an A/AAAA record and use that name.',
      'Clients find the host through DNS only while no KMS host is set by hand (slmgr /ckms clears it).',
    ],
  }
}
