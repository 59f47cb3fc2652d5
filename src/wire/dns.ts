// DNS messages (RFC 1035) through dns-packet, with the house's typed errors, and the TCP framing of
// RFC 1035 §4.2.2 / RFC 7766 (a two-byte big-endian length before each message). Bytes only: the
// DNS client (src/client) and the lab DNS server (src/dns) both build on it.
import dnsPacket from 'dns-packet'
import { WireError } from './bytes.js'

export type DnsMessage = dnsPacket.Packet
export type DnsAnswer = dnsPacket.Answer
export type DnsQuestion = dnsPacket.Question
export type DnsRecordType = dnsPacket.RecordType
export type OptRecord = dnsPacket.OptAnswer

/** A decoded message: dns-packet's fields plus the header codes its typings leave out. */
export interface DecodedDnsMessage extends dnsPacket.DecodedPacket {
  opcode: string
  /** The four header bits' name (NOERROR, NXDOMAIN, ...); EDNS extends it through the OPT record. */
  rcode: string
}

export const DNS_HEADER_LENGTH = 12
/** Largest UDP answer without EDNS (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_LIMIT = 512
/** The EDNS(0) payload size that avoids IP fragmentation on common paths (DNS flag day 2020). */
export const EDNS_UDP_SIZE = 1232

export const FLAG = {
  aa: dnsPacket.AUTHORITATIVE_ANSWER,
  tc: dnsPacket.TRUNCATED_RESPONSE,
  rd: dnsPacket.RECURSION_DESIRED,
  ra: dnsPacket.RECURSION_AVAILABLE,
} as const

/** Header RCODE values (RFC 1035 §4.1.1, RFC 6891 §9 for BADVERS, an extended code). */
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const

export const OPCODE_QUERY = 0

/** Bytes that are not a DNS message (or not a whole one). */
export class DnsWireError extends WireError {
  constructor(message: string, offset = 0) {
    super(message, 'DNS message', offset)
  }
}

export function decodeDnsMessage(bytes: Uint8Array): DecodedDnsMessage {
  if (bytes.length < DNS_HEADER_LENGTH)
    throw new DnsWireError(`a header needs ${DNS_HEADER_LENGTH} bytes, got ${bytes.length}`, bytes.length)
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  try {
    return dnsPacket.decode(buf) as DecodedDnsMessage
  } catch (err) {
    // dns-packet throws plain Errors (and RangeErrors on short buffers) without an offset.
    throw new DnsWireError(`not a DNS message: ${(err as Error).message}`)
  }
}

/** `rcode` goes into the header's low four bits; the upper bits of an extended one into OPT. */
export function encodeDnsMessage(message: DnsMessage, rcode = 0): Buffer {
  const flags = ((message.flags ?? 0) & ~0x000f) | (rcode & 0x0f)
  try {
    return dnsPacket.encode({ ...message, flags })
  } catch (err) {
    throw new DnsWireError(`cannot encode: ${(err as Error).message}`)
  }
}

/** The message ID and the QR bit of bytes too broken to decode (a FORMERR answer needs the ID). */
export function peekHeader(bytes: Uint8Array): { id: number; response: boolean; opcode: number } | null {
  if (bytes.length < DNS_HEADER_LENGTH) return null
  return { id: (bytes[0] << 8) | bytes[1], response: (bytes[2] & 0x80) !== 0, opcode: (bytes[2] >> 3) & 0x0f }
}

export function optRecord(message: DnsMessage): OptRecord | undefined {
  return message.additionals?.find((a): a is OptRecord => a.type === 'OPT')
}

/** Lower case, no trailing dot: the form names are compared in (RFC 4343: case-insensitive). */
export function canonicalName(name: string): string {
  return name.replace(/\.$/, '').toLowerCase()
}

/** A message with its two-byte length prefix (RFC 1035 §4.2.2). */
export function frameTcp(message: Uint8Array): Buffer {
  if (message.length > 0xffff)
    throw new DnsWireError(`a TCP message holds at most 65535 bytes, got ${message.length}`)
  const out = Buffer.alloc(2 + message.length)
  out.writeUInt16BE(message.length, 0)
  out.set(message, 2)
  return out
}

/** Cuts length-prefixed messages out of a TCP byte stream, whatever its segmentation. */
export class DnsTcpFramer {
  private buffer: Buffer = Buffer.alloc(0)

  /** The whole messages completed by `chunk`. */
  push(chunk: Uint8Array): Buffer[] {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : Buffer.from(chunk)
    const out: Buffer[] = []
    while (this.buffer.length >= 2) {
      const length = this.buffer.readUInt16BE(0)
      if (this.buffer.length < 2 + length) break
      out.push(this.buffer.subarray(2, 2 + length))
      this.buffer = this.buffer.subarray(2 + length)
    }
    return out
  }

  /** Bytes of a message not yet complete. */
  get pending(): number {
    return this.buffer.length
  }
}
