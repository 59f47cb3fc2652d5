// Discovery against one DNS server (`--dns-server`): the SRV records and, from the same server, the
// addresses of their targets: the SRV answer's additional section when it carries them, else A and
// AAAA queries. A lab server's names are unknown to the system resolver, so asking it would fail.
import type { RandomSource } from '../crypto/random.js'
import { canonicalName, type DecodedDnsMessage, type DnsAnswer } from '../wire/dns.js'
import type { ResolveAddresses, ResolveSrv, SrvRecord } from './discover.js'
import { DnsQueryError, parseDnsServer, queryDns } from './dns-query.js'

export interface ServerResolver {
  /** "ip:port" as asked. */
  server: string
  resolveSrv: ResolveSrv
  resolveAddresses: ResolveAddresses
}

/** The names `name` stands for in this answer: itself and the CNAMEs it leads to. */
function aliases(m: DecodedDnsMessage, name: string): Set<string> {
  const names = new Set([canonicalName(name)])
  for (let grew = true; grew; ) {
    grew = false
    for (const a of m.answers ?? []) {
      if (a.type === 'CNAME' && names.has(canonicalName(a.name)) && !names.has(canonicalName(a.data))) {
        names.add(canonicalName(a.data))
        grew = true
      }
    }
  }
  return names
}

function addressesIn(records: readonly DnsAnswer[], names: Set<string>): string[] {
  const out: string[] = []
  for (const r of records)
    if ((r.type === 'A' || r.type === 'AAAA') && names.has(canonicalName(r.name))) out.push(r.data)
  return out
}

function failure(m: DecodedDnsMessage, name: string, what: string): DnsQueryError | null {
  if (m.rcode === 'NOERROR') return null
  return new DnsQueryError(`${what} of ${name}: the server answered ${m.rcode}`, m.rcode, name)
}

/** Throws UsageError for a server that is not an IP address with an optional port. */
export function serverResolver(server: string, timeoutMs: number, random: RandomSource): ServerResolver {
  const address = parseDnsServer(server)
  const o = { timeoutMs, random }

  const resolveSrv: ResolveSrv = async (name) => {
    const m = await queryDns(address, name, 'SRV', o)
    const err = failure(m, name, 'SRV lookup')
    if (err) throw err
    const names = aliases(m, name)
    const records: SrvRecord[] = []
    for (const a of m.answers ?? []) {
      if (a.type !== 'SRV' || !names.has(canonicalName(a.name))) continue
      const target = a.data.target
      const addresses = addressesIn(m.additionals ?? [], new Set([canonicalName(target)]))
      records.push({
        name: target,
        port: a.data.port,
        priority: a.data.priority ?? 0,
        weight: a.data.weight ?? 0,
        ...(addresses.length > 0 ? { addresses } : {}),
      })
    }
    return records
  }

  const lookup = async (name: string, type: 'A' | 'AAAA'): Promise<string[]> => {
    const m = await queryDns(address, name, type, o)
    if (m.rcode === 'NXDOMAIN') return []
    const err = failure(m, name, `${type} lookup`)
    if (err) throw err
    return addressesIn(m.answers ?? [], aliases(m, name)).filter((_, i, all) => all.indexOf(all[i]) === i)
  }

  // IPv4 first, then IPv6; one family failing does not hide the other's addresses.
  const resolveAddresses: ResolveAddresses = async (name) => {
    const [v4, v6] = await Promise.allSettled([lookup(name, 'A'), lookup(name, 'AAAA')])
    const found = [v4, v6].flatMap((r) => (r.status === 'fulfilled' ? r.value : []))
    if (found.length === 0 && v4.status === 'rejected') throw v4.reason
    return found
  }

  return { server: `${address.host}:${address.port}`, resolveSrv, resolveAddresses }
}
