// `startDns`: the lab's authoritative DNS server over UDP and TCP on the same port (RFC 1035; TCP
// framed as RFC 7766 says: a length before each message, many queries per connection, answers in
// order, an idle connection closed). Each source address has a token bucket per transport: over
// UDP, a query over the rate is dropped, every second one answered with TC instead; over TCP, the
// connection is closed.
import dgram from 'node:dgram'
import net, { isIP } from 'node:net'
import { DnsTcpFramer, EDNS_UDP_SIZE, frameTcp } from '../wire/dns.js'
import { DnsListenError, ZoneError } from './errors.js'
import { RateLimiter } from './rate-limit.js'
import { type Outcome, respond, truncatedReply } from './respond.js'
import {
  DEFAULT_KMS_PORT,
  DEFAULT_TTL,
  hostName,
  type LabHost,
  parseDomain,
  parseHostSpec,
  Zone,
} from './zone.js'

export interface DnsHostInput {
  name: string
  address: string
  port?: number
  priority?: number
  weight?: number
  ttl?: number
}

export interface DnsOptions {
  /** The zone, e.g. "lab.test". */
  domain: string
  /** `NAME=ADDR:PORT[,priority=P][,weight=W][,ttl=S]` strings or objects; NAME relative to the domain. */
  hosts: (string | DnsHostInput)[]
  /** "HOST:PORT" / "[v6]:PORT", port 53 when left out; default 127.0.0.1:53. Port 0: any free port. */
  listen?: string[]
  /** Queries per second per source address (0: no limit); default 100. */
  rateLimit?: number
  /** Queries a source may send at once before the rate applies; default twice the rate. */
  burst?: number
  /** A TCP connection silent this long is closed; default 10 s. */
  idleTimeoutMs?: number
  /** TCP connections at once; over it, new ones are closed at once. Default 256. */
  maxTcpConnections?: number
  /** The largest UDP answer sent to EDNS clients; default 1232. */
  ednsUdpSize?: number
}

export interface DnsStats {
  queries: number
  answered: number
  nxdomain: number
  refused: number
  formerr: number
  notimp: number
  truncated: number
  /** Not a query, or too short to answer. */
  dropped: number
  /** Over a source's rate. */
  rateLimited: number
  tcpConnections: number
}

export interface DnsServer {
  /** Each address listened on (UDP and TCP share it), the port resolved. */
  readonly addresses: { host: string; port: number }[]
  /** The first address's port (handy with port 0). */
  readonly port: number
  readonly zone: Zone
  readonly stats: DnsStats
  close(): Promise<void>
}

export function parseDnsListen(text: string): { host: string; port: number } {
  const t = text.trim()
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(t) ?? /^([^:[\]]+)(?::(\d{1,5}))?$/.exec(t)
  const port = m?.[2] === undefined ? 53 : Number(m[2])
  if (!m || isIP(m[1]) === 0 || port > 65535)
    throw new ZoneError(
      `--listen takes IP:PORT ([IPV6]:PORT for IPv6), got ${JSON.stringify(text)}`,
      'listen',
    )
  return { host: m[1], port }
}

export function labHost(h: string | DnsHostInput, domain: string): LabHost {
  if (typeof h === 'string') return parseHostSpec(h, domain)
  if (isIP(h.address) === 0) throw new ZoneError(`host ${h.name}: not an IP address: ${h.address}`, 'host')
  return {
    name: hostName(h.name, domain),
    address: h.address,
    port: h.port ?? DEFAULT_KMS_PORT,
    priority: h.priority ?? 0,
    weight: h.weight ?? 0,
    ttl: h.ttl ?? DEFAULT_TTL,
  }
}

function nonNegative(name: string, n: number | undefined, fallback: number): number {
  const v = n ?? fallback
  if (!Number.isFinite(v) || v < 0) throw new ZoneError(`${name} must be a number ≥ 0, got ${n}`, name)
  return v
}

const COUNTED: Record<Outcome, keyof DnsStats> = {
  answered: 'answered',
  nxdomain: 'nxdomain',
  refused: 'refused',
  formerr: 'formerr',
  notimp: 'notimp',
  truncated: 'truncated',
  dropped: 'dropped',
}

export async function startDns(o: DnsOptions): Promise<DnsServer> {
  const domain = parseDomain(o.domain)
  const listen = (o.listen ?? ['127.0.0.1:53']).map(parseDnsListen)
  const hosts = o.hosts.map((h) => labHost(h, domain))
  const rate = nonNegative('rateLimit', o.rateLimit, 100)
  const burst = Math.max(1, nonNegative('burst', o.burst, rate * 2))
  const idleMs = nonNegative('idleTimeoutMs', o.idleTimeoutMs, 10_000)
  const maxTcp = nonNegative('maxTcpConnections', o.maxTcpConnections, 256)
  const ednsUdpSize = Math.min(65535, nonNegative('ednsUdpSize', o.ednsUdpSize, EDNS_UDP_SIZE))
  // The name server's own name gets the addresses it listens on (loopback for a wildcard).
  const nsAddresses = listen.map((l) =>
    l.host === '0.0.0.0' ? '127.0.0.1' : l.host === '::' ? '::1' : l.host,
  )
  const zone = new Zone({ domain, hosts, nameserverAddresses: [...new Set(nsAddresses)] })
  const stats: DnsStats = {
    queries: 0,
    answered: 0,
    nxdomain: 0,
    refused: 0,
    formerr: 0,
    notimp: 0,
    truncated: 0,
    dropped: 0,
    rateLimited: 0,
    tcpConnections: 0,
  }
  const udpLimit = new RateLimiter(rate, burst)
  const tcpLimit = new RateLimiter(rate, burst)
  let slip = 0
  const answer = (bytes: Buffer, transport: 'udp' | 'tcp') => {
    stats.queries++
    const reply = respond(bytes, zone, transport, { ednsUdpSize })
    stats[COUNTED[reply.outcome]]++
    return reply.bytes
  }

  const onUdp = (socket: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    if (!udpLimit.take(rinfo.address)) {
      stats.rateLimited++
      const tc = slip++ % 2 === 0 ? truncatedReply(msg) : null
      if (tc) socket.send(tc, rinfo.port, rinfo.address)
      return
    }
    const out = answer(msg, 'udp')
    if (out) socket.send(out, rinfo.port, rinfo.address)
  }

  const sockets = new Set<net.Socket>()
  const onTcp = (socket: net.Socket) => {
    if (sockets.size >= maxTcp) {
      socket.destroy()
      return
    }
    stats.tcpConnections++
    sockets.add(socket)
    const framer = new DnsTcpFramer()
    if (idleMs > 0) socket.setTimeout(idleMs, () => socket.destroy())
    socket.on('error', () => socket.destroy())
    socket.on('close', () => sockets.delete(socket))
    socket.on('data', (chunk) => {
      for (const msg of framer.push(chunk)) {
        if (!tcpLimit.take(socket.remoteAddress ?? '')) {
          stats.rateLimited++
          socket.destroy()
          return
        }
        const out = answer(msg, 'tcp')
        // Bytes we cannot answer leave the stream's framing in doubt: end the connection.
        if (!out) {
          socket.destroy()
          return
        }
        socket.write(frameTcp(out))
      }
    })
  }

  const udps: dgram.Socket[] = []
  const tcps: net.Server[] = []
  const addresses: { host: string; port: number }[] = []
  const close = async () => {
    for (const s of sockets) s.destroy()
    await Promise.all([
      ...udps.map((u) => new Promise<void>((resolve) => u.close(() => resolve()))),
      ...tcps.map((t) => new Promise<void>((resolve) => t.close(() => resolve()))),
    ])
  }
  try {
    for (const l of listen) {
      const { udp, tcp, port } = await bindBoth(l.host, l.port)
      udp.on('message', onUdp(udp))
      tcp.on('connection', onTcp)
      udps.push(udp)
      tcps.push(tcp)
      addresses.push({ host: l.host, port })
    }
  } catch (err) {
    await close()
    throw err
  }
  return { addresses, port: addresses[0]?.port ?? 0, zone, stats, close }
}

function listenError(host: string, port: number, err: NodeJS.ErrnoException): DnsListenError {
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
  const hint =
    err.code === 'EACCES' && port < 1024
      ? ' (ports below 1024 need privileges: try --listen 127.0.0.1:5300)'
      : ''
  return new DnsListenError(`cannot listen on ${where}: ${err.code ?? err.message}${hint}`, where, err.code)
}

/** TCP first (port 0 picks one), then UDP on the same port; a port taken for UDP is tried again. */
async function bindBoth(
  host: string,
  port: number,
): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const tcp = net.createServer()
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', (err) => reject(listenError(host, port, err)))
      tcp.listen({ host, port, exclusive: true }, () => resolve())
    })
    const bound = (tcp.address() as net.AddressInfo).port
    const udp = dgram.createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4', ipv6Only: isIP(host) === 6 })
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject)
        udp.bind(bound, host, () => resolve())
      })
      udp.removeAllListeners('error')
      udp.on('error', () => {})
      tcp.removeAllListeners('error')
      tcp.on('error', () => {})
      return { udp, tcp, port: bound }
    } catch (err) {
      try {
        udp.close()
      } catch {
        // never bound: nothing to close
      }
      await new Promise<void>((resolve) => tcp.close(() => resolve()))
      if (port !== 0 || attempt >= 5 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE')
        throw listenError(host, bound, err as NodeJS.ErrnoException)
    }
  }
}
