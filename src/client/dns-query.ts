// A small stub resolver that asks one DNS server directly (`--dns-server`): UDP with EDNS(0), over
// TCP when the answer comes back truncated, without EDNS when the server does not know it (RFC 6891
// §7). node:dns cannot be used for this: its answers leave out the additional section, and the
// addresses of the names it finds come from the system resolver, not from the server asked.
import dgram from 'node:dgram'
import net, { isIP } from 'node:net'
import type { RandomSource } from '../crypto/random.js'
import { KmslabError, UsageError } from '../errors.js'
import {
  canonicalName,
  type DecodedDnsMessage,
  type DnsRecordType,
  DnsTcpFramer,
  decodeDnsMessage,
  EDNS_UDP_SIZE,
  encodeDnsMessage,
  FLAG,
  frameTcp,
} from '../wire/dns.js'

export interface DnsServerAddress {
  host: string
  port: number
}

/**
 * The server did not answer usefully. `code` is the answer's RCODE name (NXDOMAIN, SERVFAIL,
 * REFUSED, ...) or TIMEOUT / BADRESPONSE / CONNECTION, as node:dns errors carry theirs.
 */
export class DnsQueryError extends KmslabError {
  constructor(
    message: string,
    readonly code: string,
    readonly query: string,
  ) {
    super(message)
  }
}

/** "ip", "ip:port", "[v6]:port" or a bare IPv6 address; port 53 by default. */
export function parseDnsServer(text: string): DnsServerAddress {
  const t = text.trim()
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(t)
  let host = t
  let port = '53'
  if (bracket) [host, port = '53'] = [bracket[1], bracket[2]]
  else if (!isIP(t) && (t.match(/:/g) ?? []).length === 1) [host, port] = t.split(':')
  const n = /^\d{1,5}$/.test(port) ? Number(port) : 0
  if (!isIP(host) || n < 1 || n > 65535)
    throw new UsageError(
      `--dns-server takes an IP address with an optional port, got ${JSON.stringify(text)}`,
      'dns-server',
    )
  return { host, port: n }
}

export interface QueryOptions {
  /** For each try over UDP, and for the TCP exchange. */
  timeoutMs: number
  random: RandomSource
  /** UDP sends before giving up (default 2). */
  tries?: number
}

function queryId(random: RandomSource): number {
  const b = random(2)
  return (b[0] << 8) | b[1]
}

function queryBytes(id: number, name: string, type: DnsRecordType, edns: boolean): Buffer {
  return encodeDnsMessage({
    type: 'query',
    id,
    flags: FLAG.rd,
    questions: [{ name, type, class: 'IN' }],
    additionals: edns
      ? [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: EDNS_UDP_SIZE,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [],
          },
        ]
      : [],
  })
}

/** The answer to our question: same ID, QR set, the question echoed (a stray or forged one is ignored). */
function matches(bytes: Buffer, id: number, name: string, type: DnsRecordType): DecodedDnsMessage | null {
  let m: DecodedDnsMessage
  try {
    m = decodeDnsMessage(bytes)
  } catch {
    return null
  }
  if (m.id !== id || !m.flag_qr) return null
  const q = m.questions?.[0]
  // A FORMERR may come without the question.
  if (q && (canonicalName(q.name) !== canonicalName(name) || q.type !== type)) return null
  return m
}

function overUdp(
  server: DnsServerAddress,
  name: string,
  type: DnsRecordType,
  edns: boolean,
  o: QueryOptions,
) {
  return new Promise<DecodedDnsMessage>((resolve, reject) => {
    const id = queryId(o.random)
    const bytes = queryBytes(id, name, type, edns)
    const socket = dgram.createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4')
    let tries = o.tries ?? 2
    let timer: NodeJS.Timeout | undefined
    const done = (err: Error | null, m?: DecodedDnsMessage) => {
      clearTimeout(timer)
      socket.close()
      if (err) reject(err)
      else resolve(m!)
    }
    const send = () => {
      if (tries-- === 0) {
        done(
          new DnsQueryError(
            `no answer from ${server.host}:${server.port} to ${name} ${type} within ${o.timeoutMs} ms`,
            'TIMEOUT',
            name,
          ),
        )
        return
      }
      socket.send(bytes)
      timer = setTimeout(send, o.timeoutMs)
    }
    socket.on('message', (msg) => {
      const m = matches(msg, id, name, type)
      if (m) done(null, m)
    })
    socket.on('error', (err: NodeJS.ErrnoException) =>
      done(
        new DnsQueryError(
          `DNS query to ${server.host}:${server.port}: ${err.code ?? err.message}`,
          'CONNECTION',
          name,
        ),
      ),
    )
    socket.connect(server.port, server.host, send)
  })
}

function overTcp(server: DnsServerAddress, name: string, type: DnsRecordType, o: QueryOptions) {
  return new Promise<DecodedDnsMessage>((resolve, reject) => {
    const id = queryId(o.random)
    const framer = new DnsTcpFramer()
    const socket = net.connect({ host: server.host, port: server.port })
    const done = (err: Error | null, m?: DecodedDnsMessage) => {
      clearTimeout(timer)
      socket.destroy()
      if (err) reject(err)
      else resolve(m!)
    }
    const fail = (why: string, code: string) =>
      done(new DnsQueryError(`DNS query over TCP to ${server.host}:${server.port}: ${why}`, code, name))
    const timer = setTimeout(
      () => fail(`no answer to ${name} ${type} within ${o.timeoutMs} ms`, 'TIMEOUT'),
      o.timeoutMs,
    )
    socket.on('connect', () => socket.write(frameTcp(queryBytes(id, name, type, false))))
    socket.on('data', (chunk) => {
      for (const msg of framer.push(chunk)) {
        const m = matches(msg, id, name, type)
        if (m) return done(null, m)
      }
    })
    socket.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message, 'CONNECTION'))
    socket.on('close', () => fail('the server closed the connection without an answer', 'CONNECTION'))
  })
}

/**
 * One question to `server`: the whole answer (any RCODE). Throws DnsQueryError when none comes
 * (timeouts, connection errors).
 */
export async function queryDns(
  server: DnsServerAddress,
  name: string,
  type: DnsRecordType,
  o: QueryOptions,
): Promise<DecodedDnsMessage> {
  let m = await overUdp(server, name, type, true, o)
  if (m.rcode === 'FORMERR' || m.rcode === 'NOTIMP') m = await overUdp(server, name, type, false, o)
  if (m.flag_tc) m = await overTcp(server, name, type, o)
  return m
}
