// The lab zone: `_vlmcs._tcp.DOMAIN` SRV records (RFC 2782), the hosts' A/AAAA records, SOA and NS
// at the apex, and how a question is answered from them (RFC 1034 §4.3.2 for an authoritative
// server: the name's records, NODATA for a name without that type, NXDOMAIN for no name at all,
// REFUSED outside the zone). Names compare case-insensitively (RFC 4343).
import { isIP } from 'node:net'
import { canonicalName, type DnsAnswer, type DnsRecordType, RCODE } from '../wire/dns.js'
import { ZoneError } from './errors.js'

/** One KMS host as `--host NAME=ADDR:PORT[,priority=P][,weight=W][,ttl=S]` gives it. */
export interface LabHost {
  /** Fully qualified, lower case, no trailing dot. */
  name: string
  address: string
  port: number
  priority: number
  weight: number
  ttl: number
}

export const DEFAULT_TTL = 3600
export const DEFAULT_KMS_PORT = 1688
/** SOA minimum: how long resolvers may cache a "no such name" (RFC 2308). */
const NEGATIVE_TTL = 60

const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/

/** A DNS domain as given (trailing dot allowed): lower case, no dot at the end. */
export function parseDomain(text: string): string {
  const d = canonicalName(text.trim())
  if (d === '' || d.length > 253 || !d.split('.').every((l) => LABEL.test(l)))
    throw new ZoneError(`not a DNS domain: ${JSON.stringify(text)}`, 'domain')
  return d
}

/** NAME relative to the domain unless it ends with it (or with a dot: then it must be in the zone). */
export function hostName(name: string, domain: string): string {
  const n = canonicalName(name.trim())
  const full = name.trim().endsWith('.') || n === domain || n.endsWith(`.${domain}`) ? n : `${n}.${domain}`
  if (full !== domain && !full.endsWith(`.${domain}`))
    throw new ZoneError(`host name ${JSON.stringify(name)} is outside the zone ${domain}`, 'host')
  if (full.length > 253 || !full.split('.').every((l) => LABEL.test(l)))
    throw new ZoneError(`not a host name: ${JSON.stringify(name)}`, 'host')
  return full
}

function intField(spec: string, key: string, text: string, max: number): number {
  const n = /^\d{1,10}$/.test(text) ? Number(text) : -1
  if (n < 0 || n > max)
    throw new ZoneError(
      `--host ${JSON.stringify(spec)}: ${key} takes 0 to ${max}, got ${JSON.stringify(text)}`,
      'host',
    )
  return n
}

/** `NAME=ADDR[:PORT][,priority=P][,weight=W][,ttl=S]`, an IPv6 ADDR in brackets. */
export function parseHostSpec(spec: string, domain: string): LabHost {
  const [first, ...fields] = spec.split(',')
  const eq = first.indexOf('=')
  if (eq <= 0)
    throw new ZoneError(
      `--host takes NAME=ADDR:PORT[,priority=P][,weight=W][,ttl=S], got ${JSON.stringify(spec)}`,
      'host',
    )
  const at = first.slice(eq + 1).trim()
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(at) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(at)
  const address = m?.[1] ?? ''
  const bracketed = at.startsWith('[')
  if (!m || isIP(address) === 0 || (isIP(address) === 6) !== bracketed)
    throw new ZoneError(
      `--host ${JSON.stringify(spec)}: ADDR must be an IPv4 address or an IPv6 one in brackets`,
      'host',
    )
  const host: LabHost = {
    name: hostName(first.slice(0, eq), domain),
    address,
    port: m[2] === undefined ? DEFAULT_KMS_PORT : intField(spec, 'port', m[2], 65535),
    priority: 0,
    weight: 0,
    ttl: DEFAULT_TTL,
  }
  if (host.port === 0) throw new ZoneError(`--host ${JSON.stringify(spec)}: port 0`, 'host')
  for (const f of fields) {
    const [key, value = ''] = f.split('=').map((s) => s.trim())
    if (key === 'priority' || key === 'weight') host[key] = intField(spec, key, value, 65535)
    else if (key === 'ttl') host.ttl = intField(spec, key, value, 2 ** 31 - 1)
    else
      throw new ZoneError(
        `--host ${JSON.stringify(spec)}: unknown field ${JSON.stringify(key)} (priority, weight, ttl)`,
        'host',
      )
  }
  return host
}

export interface ZoneAnswer {
  rcode: number
  authoritative: boolean
  answers: DnsAnswer[]
  authorities: DnsAnswer[]
  additionals: DnsAnswer[]
}

export interface ZoneOptions {
  domain: string
  hosts: LabHost[]
  /** Addresses for the zone's own name server (ns.DOMAIN). */
  nameserverAddresses?: string[]
  /** SOA serial (default: the current Unix time in seconds). */
  serial?: number
}

function addressRecord(name: string, address: string, ttl: number): DnsAnswer {
  return { type: isIP(address) === 6 ? 'AAAA' : 'A', name, ttl, class: 'IN', data: address }
}

export class Zone {
  readonly domain: string
  readonly srvName: string
  readonly hosts: readonly LabHost[]
  private readonly records = new Map<string, DnsAnswer[]>()
  /** Names that exist only because a name below them does (RFC 8020: "_tcp" here). */
  private readonly between = new Set<string>()

  constructor(o: ZoneOptions) {
    this.domain = parseDomain(o.domain)
    this.srvName = `_vlmcs._tcp.${this.domain}`
    this.hosts = o.hosts
    const d = this.domain
    const ns = `ns.${d}`
    this.add({
      type: 'SOA',
      name: d,
      ttl: DEFAULT_TTL,
      class: 'IN',
      data: {
        mname: ns,
        rname: `hostmaster.${d}`,
        serial: o.serial ?? Math.floor(Date.now() / 1000) >>> 0,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: NEGATIVE_TTL,
      },
    })
    this.add({ type: 'NS', name: d, ttl: DEFAULT_TTL, class: 'IN', data: ns })
    for (const a of o.nameserverAddresses ?? []) this.add(addressRecord(ns, a, DEFAULT_TTL))
    const seen = new Set<string>()
    for (const h of o.hosts) {
      const srv = `${h.priority} ${h.weight} ${h.port} ${h.name}`
      if (!seen.has(srv)) {
        seen.add(srv)
        const data = { priority: h.priority, weight: h.weight, port: h.port, target: h.name }
        this.add({ type: 'SRV', name: this.srvName, ttl: h.ttl, class: 'IN', data })
      }
      if (!seen.has(`${h.name} ${h.address}`)) {
        seen.add(`${h.name} ${h.address}`)
        this.add(addressRecord(h.name, h.address, h.ttl))
      }
    }
  }

  private add(r: DnsAnswer): void {
    const list = this.records.get(r.name) ?? []
    list.push(r)
    this.records.set(r.name, list)
    for (let n = r.name; n !== this.domain && n.includes('.'); ) {
      n = n.slice(n.indexOf('.') + 1)
      if (n !== this.domain) this.between.add(n)
    }
  }

  /** Every record, apex first (for `kmslab dns` start-up lines and for tests). */
  all(): DnsAnswer[] {
    return [...this.records.values()].flat()
  }

  inZone(name: string): boolean {
    const n = canonicalName(name)
    return n === this.domain || n.endsWith(`.${this.domain}`)
  }

  /** The answer to one question; `asked` keeps the question's spelling in the records' names. */
  answer(asked: string, type: DnsRecordType | string): ZoneAnswer {
    const name = canonicalName(asked)
    const none = { answers: [], authorities: [], additionals: [] }
    if (!this.inZone(name)) return { rcode: RCODE.REFUSED, authoritative: false, ...none }
    const soa = this.records.get(this.domain)!.filter((r) => r.type === 'SOA')
    const negative = soa.map((r) => ({ ...r, ttl: NEGATIVE_TTL }))
    const here = this.records.get(name)
    if (!here) {
      const rcode = this.between.has(name) ? RCODE.NOERROR : RCODE.NXDOMAIN
      return { rcode, authoritative: true, ...none, authorities: negative }
    }
    const answers = here.filter((r) => type === 'ANY' || r.type === type).map((r) => ({ ...r, name: asked }))
    if (answers.length === 0)
      return { rcode: RCODE.NOERROR, authoritative: true, ...none, authorities: negative }
    const additionals: DnsAnswer[] = []
    for (const r of answers) {
      const target = r.type === 'SRV' ? r.data.target : r.type === 'NS' ? r.data : null
      if (target)
        additionals.push(
          ...(this.records.get(target) ?? []).filter((x) => x.type === 'A' || x.type === 'AAAA'),
        )
    }
    return { rcode: RCODE.NOERROR, authoritative: true, answers, authorities: [], additionals }
  }
}
