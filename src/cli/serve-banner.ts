import type { KmsHost } from '../host/host.js'
import { explainIdentity } from '../host/identity.js'
import type { HostOptions } from '../host/options.js'
import {
  ActivationCounter,
  type CounterMode,
  describeCounterMode,
  KNOWN_APP_IDS,
  OFFICE2010_APP_ID,
  OFFICE2013_APP_ID,
  WINDOWS_APP_ID,
} from '../kms/counter.js'
import { isLoopback } from '../server/cidr.js'
import { hostPort } from '../wire/endpoint.js'
import type { ServeLog } from './serve-log.js'

const POOL_NAMES: Record<string, string> = {
  [WINDOWS_APP_ID]: 'Windows',
  [OFFICE2010_APP_ID]: 'Office 2010',
  [OFFICE2013_APP_ID]: 'Office 2013+',
}

/** The kinds of client a lab admin thinks in, with the count each asks for. */
const CLIENT_KINDS = [
  { kind: 'Windows client', appId: WINDOWS_APP_ID, required: 25 },
  { kind: 'Windows server', appId: WINDOWS_APP_ID, required: 5 },
  { kind: 'Office 2010', appId: OFFICE2010_APP_ID, required: 5 },
  { kind: 'Office 2013+', appId: OFFICE2013_APP_ID, required: 5 },
]

/** What a client with a new CMID is told now: the mode's count for the pool once it is in it. */
export function newClientCounts(mode: CounterMode, pools: Record<string, unknown[]>) {
  const counter = new ActivationCounter({ mode })
  return CLIENT_KINDS.map(({ kind, appId, required }) => {
    const size = Math.min(counter.capacity, (pools[appId]?.length ?? 0) + 1)
    const count = counter.reported(size, required)
    return { kind, count, required, activates: count >= required }
  })
}

/** The counter line: the mode, and on a restart what the state brought back. */
function counterLines(host: KmsHost, log: ServeLog): void {
  const mode = host.pools.mode
  const pools = host.pools.read()
  const sizes = Object.fromEntries(KNOWN_APP_IDS.map((id) => [POOL_NAMES[id], pools[id]?.length ?? 0]))
  const others = Object.entries(pools).filter(([id]) => !KNOWN_APP_IDS.includes(id))
  const otherClients = others.reduce((n, [, entries]) => n + entries.length, 0)
  const restored = Object.values(pools).reduce((n, entries) => n + entries.length, 0)
  const gets = newClientCounts(mode, pools)
  if (restored === 0) {
    log.always('mode', describeCounterMode(mode), { counter: mode, pools: sizes })
    return
  }
  const sizeText = Object.entries(sizes)
    .map(([name, n]) => `${name} ${n}`)
    .concat(others.length > 0 ? [`${others.length} other applications ${otherClients}`] : [])
    .join(', ')
  const modeText = describeCounterMode(mode).split(':')[0]
  log.always(
    'mode',
    `${modeText}: pools restored from the state (clients seen in the last 30 days): ${sizeText}`,
    {
      counter: mode,
      pools: sizes,
      otherPools: otherClients,
    },
  )
  const getsText = gets
    .map((g) => `${g.kind} ${g.count}/${g.required} (${g.activates ? 'activates' : '0xC004F038'})`)
    .join(', ')
  log.always('new-client', `a new client now gets: ${getsText}`, { newClient: gets })
}

export function banner(host: KmsHost, log: ServeLog, options: HostOptions): void {
  const addrs = host.addresses.map((a) => hostPort(a.host, a.port))
  const http = host.httpUrl ? `; HTTP on ${host.httpUrl}` : ''
  log.always('listening', `kmslab host listening on ${addrs.join(', ')}${http} (pid ${process.pid})`, {
    addresses: addrs,
    ...(host.httpUrl ? { http: host.httpUrl } : {}),
    pid: process.pid,
  })
  counterLines(host, log)
  log.always('state', `state: ${host.stateLocation}`, { state: host.stateLocation })
  const ndr64 = options.ndr64 !== false && options.btfn !== false
  const btfn = options.btfn !== false
  const rpc = `RPC: NDR64 ${ndr64 ? 'on' : 'off'}, BTFN ${btfn ? 'on' : 'off'}${options.strict ? ', strict' : ''}`
  log.always('rpc', rpc, { ndr64, btfn, strict: options.strict ?? false })
  for (const [family, epid] of Object.entries(host.identity.epids)) {
    log.always('epid', `ePID ${family.padEnd(10)} ${epid}`, { family, epid })
  }
  const why = explainIdentity(host.identity, host.catalog, ndr64)
  log.always(
    'hwid',
    `HWID ${host.identity.hwid} (host build ${host.identity.hostBuild}, LCID ${host.identity.lcid})`,
    { hwid: host.identity.hwid, hostBuild: host.identity.hostBuild, lcid: host.identity.lcid },
  )
  const kept =
    host.stateLocation === 'memory'
      ? '; drawn for this run (--state memory keeps nothing)'
      : "; kept in the state, so the ePIDs never change, like a genuine host's"
  log.always('identity', `${why.text}${kept}`, {
    hostBuild: host.identity.hostBuild,
    plausible: why.problems.length === 0,
  })
  for (const problem of why.problems) log.warn('identity', problem)
  if (host.seeded)
    log.warn('seed', 'deterministic mode (--seed): every drawn value is predictable; for tests only')
  const exposed = host.addresses.filter((a) => !isLoopback(a.host))
  if (exposed.length > 0 && !(options.allow && options.allow.length > 0)) {
    log.warn(
      'exposed',
      `listening on a non-loopback address (${exposed.map((a) => a.host).join(', ')}) without --allow`,
    )
  }
  const mode = host.pools.mode
  if (mode.kind === 'fixed' && mode.count > 50) {
    log.warn(
      'counter',
      `--counter fixed:${mode.count}: a genuine host never reports more than 50 (its pool holds 50 clients); clients accept it, a detector may not`,
    )
  }
}
