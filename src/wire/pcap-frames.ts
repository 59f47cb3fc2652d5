/**
 * Byte layouts for writing a classic pcap of TCP traffic: the file header, the record header and
 * a synthetic Ethernet + IPv4/IPv6 + TCP frame around a payload. The host's `--capture` uses it to
 * record what it saw with real addresses and ports, for `kmslab decode` and Wireshark.
 */

/** The classic pcap magic numbers: microsecond and nanosecond timestamps. */
export const PCAP_MAGIC_MICRO = 0xa1b2c3d4
export const PCAP_MAGIC_NANO = 0xa1b23c4d

/** The link types the capture reader knows (tcpdump.org's LINKTYPE_* values). */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  /** DLT_RAW as written by old BSD libpcaps (DLT_LOOP on OpenBSD: told apart by the first byte) */
  RAW_BSD: 12,
  /** DLT_RAW on OpenBSD and BSD/OS */
  RAW_OPENBSD: 14,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const
export const LINKTYPE_ETHERNET = LINKTYPE.ETHERNET
export const ETHERTYPE_IPV4 = 0x0800
export const ETHERTYPE_IPV6 = 0x86dd
export const IPPROTO_TCP = 6
const ETHERNET_LENGTH = 14
const IPV4_LENGTH = 20
const IPV6_LENGTH = 40
const TCP_LENGTH = 20

export const TCP_FLAGS = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
  NS: 0x100,
} as const

/** The 24-byte global header: little-endian, microseconds, snaplen 262144, Ethernet. */
export function emitPcapFileHeader(): Uint8Array {
  const out = new Uint8Array(24)
  const v = new DataView(out.buffer)
  v.setUint32(0, PCAP_MAGIC_MICRO, true)
  v.setUint16(4, 2, true)
  v.setUint16(6, 4, true)
  v.setUint32(16, 262144, true)
  v.setUint32(20, LINKTYPE_ETHERNET, true)
  return out
}

export interface TcpSegment {
  src: { address: string; port: number }
  dst: { address: string; port: number }
  seq: number
  ack: number
  flags: number
  payload: Uint8Array
  timestampMs: number
}

/** One pcap record (16-byte record header + frame) for a TCP segment. */
export function emitPcapTcpRecord(seg: TcpSegment): Uint8Array {
  const src = ipBytes(seg.src.address)
  const dst = ipBytes(seg.dst.address)
  const v6 = src.length === 16
  const ipLength = v6 ? IPV6_LENGTH : IPV4_LENGTH
  const frameLength = ETHERNET_LENGTH + ipLength + TCP_LENGTH + seg.payload.length
  const out = new Uint8Array(16 + frameLength)
  const v = new DataView(out.buffer)
  const seconds = Math.floor(seg.timestampMs / 1000)
  v.setUint32(0, seconds, true)
  v.setUint32(4, Math.round((seg.timestampMs - seconds * 1000) * 1000), true)
  v.setUint32(8, frameLength, true)
  v.setUint32(12, frameLength, true)
  const eth = 16
  // Locally administered MACs; the addresses that matter are the IP ones.
  out.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], eth)
  v.setUint16(eth + 12, v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4)
  const ip = eth + ETHERNET_LENGTH
  const tcp = ip + ipLength
  const tcpLength = TCP_LENGTH + seg.payload.length
  if (v6) {
    v.setUint32(ip, 0x60000000)
    v.setUint16(ip + 4, tcpLength)
    out[ip + 6] = IPPROTO_TCP
    out[ip + 7] = 64
    out.set(src, ip + 8)
    out.set(dst, ip + 24)
  } else {
    out[ip] = 0x45
    v.setUint16(ip + 2, IPV4_LENGTH + tcpLength)
    v.setUint16(ip + 6, 0x4000)
    out[ip + 8] = 64
    out[ip + 9] = IPPROTO_TCP
    out.set(src, ip + 12)
    out.set(dst, ip + 16)
    v.setUint16(ip + 10, checksum(out, ip, IPV4_LENGTH, 0))
  }
  v.setUint16(tcp, seg.src.port)
  v.setUint16(tcp + 2, seg.dst.port)
  v.setUint32(tcp + 4, seg.seq >>> 0)
  v.setUint32(tcp + 8, seg.ack >>> 0)
  out[tcp + 12] = (TCP_LENGTH / 4) << 4
  out[tcp + 13] = seg.flags
  v.setUint16(tcp + 14, 65535)
  out.set(seg.payload, tcp + TCP_LENGTH)
  let pseudo = IPPROTO_TCP + tcpLength
  for (let i = 0; i < src.length; i += 2)
    pseudo += ((src[i] << 8) | src[i + 1]) + ((dst[i] << 8) | dst[i + 1])
  v.setUint16(tcp + 16, checksum(out, tcp, tcpLength, pseudo))
  return out
}

function checksum(bytes: Uint8Array, offset: number, length: number, initial: number): number {
  let sum = initial
  for (let i = 0; i + 1 < length; i += 2) sum += (bytes[offset + i] << 8) | bytes[offset + i + 1]
  if (length % 2 === 1) sum += bytes[offset + length - 1] << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000)
  return ~sum & 0xffff
}

/** IPv4 dotted or IPv6 text (as Node reports socket addresses, IPv4-mapped included) to bytes. */
export function ipBytes(address: string): Uint8Array {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (!address.includes(':') || mapped) {
    const parts = (mapped ? mapped[1] : address).split('.').map(Number)
    return Uint8Array.from(parts.length === 4 ? parts : [0, 0, 0, 0])
  }
  const [head, tail] = address.split('%')[0].split('::')
  const words = (s: string | undefined) => (s ? s.split(':').map((w) => Number.parseInt(w, 16) || 0) : [])
  const h = words(head)
  const t = words(tail)
  const all = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t]
  const out = new Uint8Array(16)
  all.slice(0, 8).forEach((w, i) => {
    out[2 * i] = w >>> 8
    out[2 * i + 1] = w & 0xff
  })
  return out
}
