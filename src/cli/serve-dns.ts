/** `kmslab serve`'s DNS publishing: the --dns-* flags and the banner lines of what is published. */
import { type DnsPublication, publishHost } from '../api/dns-publish.js'
import type { KmsHost } from '../api/host.js'
import { DnsListenError, ZoneError } from '../dns/errors.js'
import { ConfigError, UsageError } from '../errors.js'
import { intOption, type OptionSpec } from './args.js'
import type { ServeLog } from './serve-log.js'

const DNS = 'Publishing in DNS (the host announces itself, like a genuine one)'

export const DNS_OPTIONS = {
  'dns-domain': {
    type: 'string',
    arg: 'DOMAIN',
    section: DNS,
    help:
      'serve DOMAIN over DNS with this host in it: _vlmcs._tcp.DOMAIN SRV with the KMS listen port, ' +
      'A/AAAA of the listen addresses (as kmslab dns does); off unless asked',
  },
  'dns-listen': {
    type: 'string',
    arg: 'IP:PORT',
    section: DNS,
    help: 'where the DNS server listens, UDP and TCP (default 127.0.0.1:53; port 0: any free port)',
  },
  'dns-name': {
    type: 'string',
    arg: 'NAME',
    section: DNS,
    help: "the host's name in DOMAIN, the SRV target (default: this machine's host name)",
  },
  'dns-priority': { type: 'string', arg: 'P', section: DNS, help: 'SRV priority, 0-65535 (default 0)' },
  'dns-weight': { type: 'string', arg: 'W', section: DNS, help: 'SRV weight, 0-65535 (default 0)' },
  'dns-address': {
    type: 'string',
    arg: 'ADDR',
    section: DNS,
    help:
      'publish this address instead of the listen addresses; a wildcard listener (0.0.0.0, ::) ' +
      "otherwise publishes the machine's first non-loopback address, named in the banner",
  },
} satisfies OptionSpec

type DnsValues = { [K in keyof typeof DNS_OPTIONS]?: string }

/** Starts publishing when --dns-domain is given; the banner says what is published and where. */
export async function startPublishing(
  host: KmsHost,
  v: DnsValues,
  log: ServeLog,
): Promise<DnsPublication | null> {
  const domain = v['dns-domain']
  if (!domain) {
    const stray = Object.keys(DNS_OPTIONS).find((k) => v[k as keyof DnsValues] !== undefined)
    if (stray) throw new UsageError(`kmslab serve: --${stray} needs --dns-domain DOMAIN`, stray)
    return null
  }
  let p: DnsPublication
  try {
    p = await publishHost(host, {
      domain,
      listen: v['dns-listen'],
      name: v['dns-name'],
      priority: intOption('serve', 'dns-priority', v['dns-priority'], 0, 65535),
      weight: intOption('serve', 'dns-weight', v['dns-weight'], 0, 65535),
      address: v['dns-address'],
    })
  } catch (err) {
    if (err instanceof DnsListenError) throw new ConfigError(`kmslab serve: DNS: ${err.message}`)
    if (err instanceof ZoneError) throw new UsageError(`kmslab serve: ${err.message}`, err.field)
    throw err
  }
  const where = p.dns.addresses.map((a) =>
    a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`,
  )
  const h = p.dns.zone.hosts[0]
  const srv = `_vlmcs._tcp.${p.dns.zone.domain} SRV ${h.priority} ${h.weight} ${h.port} ${p.name}`
  const addresses = p.published.map((x) => x.address)
  log.always(
    'dns',
    `DNS: ${p.dns.zone.domain} on ${where.join(', ')} (UDP and TCP): ${srv}, ${p.name} -> ${addresses.join(', ')}`,
    {
      dnsListening: where,
      domain: p.dns.zone.domain,
      name: p.name,
      published: p.published,
    },
  )
  if (p.note) log.warn('dns-address', p.note)
  return p
}
