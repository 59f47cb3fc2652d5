// `kmslab dns zone`: the lab zone's SRV and address records as a real DNS server takes them: a BIND
// zone-file fragment, an nsupdate script (RFC 2136), dnscmd lines and PowerShell DnsServer commands.
import { isIP } from 'node:net'
import type { DnsAnswer } from '../wire/dns.js'
import type { LabHost } from './zone.js'

export const ZONE_FORMATS = ['bind', 'nsupdate', 'dnscmd', 'powershell'] as const
export type ZoneFormat = (typeof ZONE_FORMATS)[number]

interface Row {
  /** Fully qualified owner name. */
  name: string
  ttl: number
  type: 'SRV' | 'A' | 'AAAA'
  /** SRV: priority weight port target; A/AAAA: the address. */
  data: string
  host: LabHost
}

function rows(domain: string, hosts: readonly LabHost[]): Row[] {
  const srv = `_vlmcs._tcp.${domain}`
  const out: Row[] = []
  const seen = new Set<string>()
  for (const h of hosts) {
    const data = `${h.priority} ${h.weight} ${h.port} ${h.name}`
    if (!seen.has(`SRV ${data}`)) out.push({ name: srv, ttl: h.ttl, type: 'SRV', data, host: h })
    seen.add(`SRV ${data}`)
  }
  for (const h of hosts) {
    const type = isIP(h.address) === 6 ? 'AAAA' : 'A'
    if (!seen.has(`${h.name} ${h.address}`))
      out.push({ name: h.name, ttl: h.ttl, type, data: h.address, host: h })
    seen.add(`${h.name} ${h.address}`)
  }
  return out
}

/** The owner name relative to the zone ("@" for the apex), as dnscmd and PowerShell take it. */
function relative(name: string, domain: string): string {
  return name === domain ? '@' : name.slice(0, -(domain.length + 1))
}

/** A TTL as a .NET TimeSpan ("01:00:00", "1.00:00:00"). */
function timeSpan(seconds: number): string {
  const d = Math.floor(seconds / 86400)
  const two = (n: number) => String(n).padStart(2, '0')
  const hms = `${two(Math.floor((seconds % 86400) / 3600))}:${two(Math.floor((seconds % 3600) / 60))}:${two(seconds % 60)}`
  return d > 0 ? `${d}.${hms}` : hms
}

function bindLine(r: Row): string {
  const data = r.type === 'SRV' ? `${r.data}.` : r.data
  return `${r.name}. ${r.ttl} IN ${r.type} ${data}`
}

function powershell(r: Row, domain: string): string {
  const zone = `-ZoneName "${domain}" -Name "${relative(r.name, domain)}"`
  const ttl = `-TimeToLive ${timeSpan(r.ttl)}`
  if (r.type === 'A') return `Add-DnsServerResourceRecordA ${zone} -IPv4Address "${r.data}" ${ttl}`
  if (r.type === 'AAAA') return `Add-DnsServerResourceRecordAAAA ${zone} -IPv6Address "${r.data}" ${ttl}`
  const h = r.host
  return `Add-DnsServerResourceRecord ${zone} -Srv -DomainName "${h.name}" -Priority ${h.priority} -Weight ${h.weight} -Port ${h.port} ${ttl}`
}

export function formatZone(domain: string, hosts: readonly LabHost[], format: ZoneFormat): string {
  const all = rows(domain, hosts)
  const head = `KMS discovery records for ${domain} (kmslab dns zone --format ${format})`
  let lines: string[]
  switch (format) {
    case 'bind':
      lines = [`; ${head}`, ...all.map(bindLine)]
      break
    case 'nsupdate':
      lines = [`; ${head}`, `zone ${domain}.`, ...all.map((r) => `update add ${bindLine(r)}`), 'send']
      break
    case 'dnscmd':
      lines = [
        `rem ${head}`,
        ...all.map(
          (r) => `dnscmd /recordadd ${domain} ${relative(r.name, domain)} ${r.ttl} ${r.type} ${r.data}`,
        ),
      ]
      break
    case 'powershell':
      lines = [`# ${head}`, ...all.map((r) => powershell(r, domain))]
      break
  }
  return `${lines.join('\n')}\n`
}

/** One record as a zone-file line (what `kmslab dns` prints at start). */
export function recordLine(r: DnsAnswer): string {
  if (r.type === 'OPT') return ''
  let data: string
  if (r.type === 'SRV')
    data = `${r.data.priority ?? 0} ${r.data.weight ?? 0} ${r.data.port} ${r.data.target}.`
  else if (r.type === 'SOA') {
    const s = r.data
    data = `${s.mname}. ${s.rname}. ${s.serial} ${s.refresh} ${s.retry} ${s.expire} ${s.minimum}`
  } else if (r.type === 'NS' || r.type === 'CNAME') data = `${r.data}.`
  else data = String(r.data)
  return `${r.name}. ${r.ttl ?? 0} IN ${r.type} ${data}`
}
