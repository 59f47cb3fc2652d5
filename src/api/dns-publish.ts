// A host that publishes itself in DNS, as a genuine KMS host registers its _vlmcs._tcp SRV record:
// a lab DNS server (startDns) whose zone holds the host's SRV record (its KMS listener's port) and
// the A/AAAA records of its listen addresses. A wildcard listener (0.0.0.0, ::) has no address of
// its own: the first non-loopback address of the machine's interfaces is published unless the
// caller chooses one, and `note` says which was taken.

import { isIP } from 'node:net'
import { networkInterfaces, hostname as osHostname } from 'node:os'
import { ZoneError } from '../dns/errors.js'
import { type DnsServer, startDns } from '../dns/server.js'
import type { KmsHost } from './types.js'

export interface DnsPublishOptions {
  /** Where the DNS server listens ("127.0.0.1:5300"); default 127.0.0.1:53. */
  listen?: string
  domain: string
  /** The host's name in the zone (relative to it); default this machine's host name. */
  name?: string
  priority?: number
  weight?: number
  /** The address to publish instead of the listen addresses. */
  address?: string
}

export interface DnsPublication {
  dns: DnsServer
  /** FQDN published as the SRV target. */
  name: string
  /** The addresses published, with the port of the listener each stands for. */
  published: { address: string; port: number }[]
  /** Set when a wildcard listener was published under a chosen address. */
  note: string | null
  close(): Promise<void>
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/** This machine's short host name when it is a usable DNS label, else "kms". */
export function defaultHostName(): string {
  const short = osHostname().split('.')[0].toLowerCase()
  return LABEL.test(short) ? short : 'kms'
}

/** The first non-internal address of the family; loopback when the machine has none. */
function machineAddress(family: 4 | 6): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal || isIP(a.address) !== family) continue
      if (family === 6 && a.address.toLowerCase().startsWith('fe80:')) continue
      return a.address
    }
  }
  return family === 4 ? '127.0.0.1' : '::1'
}

export async function publishHost(host: KmsHost, o: DnsPublishOptions): Promise<DnsPublication> {
  if (o.address !== undefined && isIP(o.address) === 0)
    throw new ZoneError(`--dns-address takes an IP address, got ${JSON.stringify(o.address)}`, 'dns-address')
  const notes: string[] = []
  const published = host.addresses.map((a) => {
    if (o.address) return { address: o.address, port: a.port }
    if (a.host !== '0.0.0.0' && a.host !== '::') return { address: a.host, port: a.port }
    const chosen = machineAddress(a.host === '::' ? 6 : 4)
    notes.push(
      `the KMS listener ${a.host === '::' ? '[::]' : a.host}:${a.port} has no address of its own: ` +
        `publishing ${chosen} (this machine's first non-loopback address; --dns-address chooses)`,
    )
    return { address: chosen, port: a.port }
  })
  const unique = published.filter(
    (p, i) => published.findIndex((q) => q.address === p.address && q.port === p.port) === i,
  )
  const name = o.name ?? defaultHostName()
  const dns = await startDns({
    domain: o.domain,
    listen: [o.listen ?? '127.0.0.1:53'],
    hosts: unique.map((p) => ({
      name,
      address: p.address,
      port: p.port,
      priority: o.priority,
      weight: o.weight,
    })),
  })
  return {
    dns,
    name: dns.zone.hosts[0]?.name ?? name,
    published: unique,
    note: notes.length > 0 ? notes.join('; ') : null,
    close: () => dns.close(),
  }
}
