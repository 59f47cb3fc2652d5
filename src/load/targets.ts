// `kmslab bench .DOMAIN`: the load spread over the hosts of an SRV answer the way clients spread:
// each connection draws its own RFC 2782 order and keeps to its first host while that one works.
import type { RandomSource } from '../crypto/random.js'
import { orderSrvRecords, type SrvRecord } from '../kms/srv-order.js'
import { BenchError } from './errors.js'

/** A discovered host (an SRV record) with the addresses to try, in order. */
export interface BenchTarget extends SrvRecord {
  addresses: string[]
}

/** A discovered host and the connections on it at the end of the run. */
export interface BenchHost {
  host: string
  port: number
  address: string
  connections: number
}

export interface Plan {
  order: { host: string; port: number; name: string }[]
  at: number
}

/** Each connection's RFC 2782 order of the hosts, each host's addresses in turn. */
export function planTargets(targets: BenchTarget[], connections: number, random: RandomSource): Plan[] {
  const usable = targets.filter((t) => t.addresses.length > 0)
  if (usable.length === 0) throw new BenchError('no discovered host has an address')
  return Array.from({ length: connections }, () => ({
    order: orderSrvRecords(usable, random).flatMap((t) =>
      t.addresses.map((address) => ({ host: address, port: t.port, name: t.name })),
    ),
    at: 0,
  }))
}

/** How many connections ended up on each host (address), busiest first. */
export function hostsReport(plans: Plan[]): BenchHost[] {
  const by = new Map<string, BenchHost>()
  for (const p of plans) {
    const e = p.order[p.at]
    const key = `${e.name} ${e.host} ${e.port}`
    const h = by.get(key) ?? { host: e.name, port: e.port, address: e.host, connections: 0 }
    h.connections++
    by.set(key, h)
  }
  return [...by.values()].sort((a, b) => b.connections - a.connections)
}
