// DNS auto-discovery of KMS hosts (§8): the `_vlmcs._tcp.<domain>` SRV record, tried in RFC 2782
// order: lowest priority first; within a priority, a weighted random draw without replacement.
import { lookup, Resolver } from 'node:dns/promises'
import type { RandomSource } from '../crypto/random.js'
import { UsageError } from '../errors.js'
import { orderSrvRecords, type SrvRecord } from '../kms/srv-order.js'
import { DiscoveryError } from './errors.js'

export { orderSrvRecords, type SrvRecord }

/** Looks up the SRV records of a DNS name (injectable for tests and embedders). */
export type ResolveSrv = (name: string) => Promise<SrvRecord[]>

/** The addresses of a host name, each to be tried in turn (injectable like ResolveSrv). */
export type ResolveAddresses = (name: string) => Promise<string[]>

/** The system resolver's addresses for a name, in its order (/etc/hosts, nsswitch, ...). */
export const systemAddresses: ResolveAddresses = async (name) =>
  (await lookup(name, { all: true, verbatim: true })).map((a) => a.address)

export function srvName(domain: string): string {
  return `_vlmcs._tcp.${domain.replace(/^\.+/, '').replace(/\.+$/, '')}`
}

/**
 * The system's resolver, or node:dns asking `server` ("ip", "ip:port", "[v6]:port"); a query is
 * tried twice, each within `timeoutMs`. Throws UsageError for a server that is not an address.
 * (node:dns leaves out the additional section and resolves the targets with the system's
 * resolver: server-resolver.ts asks the server for both.)
 */
export function systemResolver(server?: string, timeoutMs = 5000): ResolveSrv {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 2 })
  if (server) {
    try {
      resolver.setServers([server])
    } catch {
      throw new UsageError(
        `--dns-server takes an IP address with an optional port, got ${JSON.stringify(server)}`,
        'dns-server',
      )
    }
  }
  return async (name) => (await resolver.resolveSrv(name)).map((r) => ({ ...r }))
}

/** The hosts of `_vlmcs._tcp.<domain>` in the order to try them; throws DiscoveryError. */
export async function discoverHosts(
  domain: string,
  resolve: ResolveSrv,
  random: RandomSource,
): Promise<SrvRecord[]> {
  const name = srvName(domain)
  let records: SrvRecord[]
  try {
    records = await resolve(name)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new DiscoveryError(`no KMS host found: SRV lookup of ${name} failed (${code})`, name)
  }
  const usable = records.filter((r) => r.name && r.name !== '.' && r.port > 0)
  if (usable.length === 0) throw new DiscoveryError(`no KMS host found: ${name} has no SRV record`, name)
  return orderSrvRecords(usable, random).map((r) => ({ ...r, name: r.name.replace(/\.$/, '') }))
}

/** Where `kmslab activate` goes: one host, or the SRV records of a domain (".example.test"). */
export type Target = { kind: 'host'; host: string; port: number } | { kind: 'srv'; domain: string }

export const DEFAULT_PORT = 1688

/** "", "host", "host:port", "[v6]", "[v6]:port", a bare IPv6 address, or ".domain". */
export function parseTarget(text: string): Target {
  const t = text.trim()
  if (t === '') return { kind: 'host', host: '127.0.0.1', port: DEFAULT_PORT }
  if (t.startsWith('.')) {
    if (!/^\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(t))
      throw new UsageError(`not a DNS domain: ${JSON.stringify(t)}`)
    return { kind: 'srv', domain: t.slice(1).replace(/\.$/, '') }
  }
  let host = t
  let portText: string | undefined
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(t)
  if (bracket) [, host, portText] = bracket
  else if ((t.match(/:/g) ?? []).length === 1) [host, portText] = t.split(':')
  if (host === '' || /[\s/[\]]/.test(host)) throw new UsageError(`not a host: ${JSON.stringify(t)}`)
  let port = DEFAULT_PORT
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0
    if (port < 1 || port > 65535)
      throw new UsageError(`not a TCP port: ${JSON.stringify(portText)} in ${JSON.stringify(t)}`)
  }
  return { kind: 'host', host, port }
}
