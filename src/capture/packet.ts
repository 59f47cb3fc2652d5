import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_TCP, LINKTYPE, TCP_FLAGS } from '../wire/pcap-frames.js'
import { addFinding, CaptureError } from './errors.js'

/**
 * One link-layer frame down to its TCP segment: Ethernet (with 802.1Q/802.1ad tags), Linux
 * cooked v1/v2, raw IP, BSD/OpenBSD loopback; IPv4 and IPv6 (with extension headers).
 * Frames that carry something other than TCP give `null`; frames that claim to carry IP or TCP
 * but are cut short or inconsistent throw `CaptureError` (offset = `baseOffset` + position in
 * the frame), so a caller can report the frame and go on.
 */

export interface TcpSegment {
  src: string
  dst: string
  srcPort: number
  dstPort: number
  seq: number
  ack: number
  /** TCP flag bits (FIN 0x01 ... CWR 0x80, NS 0x100), see `TCP_FLAGS`. */
  flags: number
  payload: Uint8Array
  family: 4 | 6
}

export { LINKTYPE, TCP_FLAGS }

const VLAN_TAGS = new Set([0x8100, 0x88a8, 0x9100])
const AF_INET = 2
const AF_INET6 = new Set([24, 28, 30]) // NetBSD/OpenBSD, FreeBSD, Darwin

/** Where the IP header starts and which version the link layer says it is (0 = look at it). */
interface NetworkStart {
  at: number
  version: 0 | 4 | 6
}

export function decodeFrame(
  linkType: number,
  data: Uint8Array,
  warnings: string[] = [],
  baseOffset = 0,
): TcpSegment | null {
  const net = linkLayer(linkType, data, baseOffset)
  if (!net) return null
  const version = net.version || (net.at < data.length ? data[net.at] >> 4 : 0)
  if (version === 4) return ipv4(data, net.at, warnings, baseOffset)
  if (version === 6) return ipv6(data, net.at, warnings, baseOffset)
  return null
}

function u16(d: Uint8Array, i: number): number {
  return (d[i] << 8) | d[i + 1]
}

function u32(d: Uint8Array, i: number): number {
  return ((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]) >>> 0
}

function need(data: Uint8Array, end: number, what: string, base: number): void {
  if (data.length < end) throw new CaptureError(`truncated ${what}`, base + data.length)
}

function fromEtherType(type: number, at: number): NetworkStart | null {
  if (type === ETHERTYPE_IPV4) return { at, version: 4 }
  if (type === ETHERTYPE_IPV6) return { at, version: 6 }
  return null
}

function linkLayer(linkType: number, data: Uint8Array, base: number): NetworkStart | null {
  switch (linkType) {
    case LINKTYPE.ETHERNET: {
      need(data, 14, 'Ethernet header', base)
      let type = u16(data, 12)
      let at = 14
      while (VLAN_TAGS.has(type)) {
        need(data, at + 4, 'VLAN tag', base)
        type = u16(data, at + 2)
        at += 4
      }
      return fromEtherType(type, at)
    }
    case LINKTYPE.LINUX_SLL:
      need(data, 16, 'Linux cooked header', base)
      return fromEtherType(u16(data, 14), 16)
    case LINKTYPE.LINUX_SLL2:
      need(data, 20, 'Linux cooked v2 header', base)
      return fromEtherType(u16(data, 0), 20)
    case LINKTYPE.NULL:
    case LINKTYPE.LOOP:
      return loopback(data, base)
    case LINKTYPE.RAW_BSD: {
      // 12 is raw IP everywhere except OpenBSD, where it is DLT_LOOP: an IP header starts with 4x or 6x
      const v = data.length > 0 ? data[0] >> 4 : 0
      if (v === 4 || v === 6 || data.length < 4) return { at: 0, version: 0 }
      return loopback(data, base)
    }
    case LINKTYPE.RAW:
    case LINKTYPE.RAW_OPENBSD:
      return { at: 0, version: 0 }
    case LINKTYPE.IPV4:
      return { at: 0, version: 4 }
    case LINKTYPE.IPV6:
      return { at: 0, version: 6 }
    default:
      return null
  }
}

/** A 4-byte address family in the capturing host's byte order (NULL) or big-endian (LOOP). */
function loopback(data: Uint8Array, base: number): NetworkStart | null {
  need(data, 4, 'loopback header', base)
  const little = (data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)) >>> 0
  const family = little > 0xffff ? u32(data, 0) : little
  if (family === AF_INET) return { at: 4, version: 4 }
  if (AF_INET6.has(family)) return { at: 4, version: 6 }
  return null
}

function ipv4(data: Uint8Array, at: number, warnings: string[], base: number): TcpSegment | null {
  need(data, at + 20, 'IPv4 header', base)
  if (data[at] >> 4 !== 4) throw new CaptureError(`IPv4 header with version ${data[at] >> 4}`, base + at)
  const headerLength = (data[at] & 0x0f) * 4
  if (headerLength < 20) throw new CaptureError(`IPv4 header length ${headerLength} < 20`, base + at)
  need(data, at + headerLength, 'IPv4 options', base)
  if (data[at + 9] !== IPPROTO_TCP) return null
  const src = dotted(data, at + 12)
  const dst = dotted(data, at + 16)
  const fragment = u16(data, at + 6)
  const fragmentOffset = (fragment & 0x1fff) * 8
  if (fragmentOffset !== 0) {
    addFinding(
      warnings,
      `IPv4 fragment at offset ${fragmentOffset} (id ${u16(data, at + 4)}, ${src} > ${dst}) skipped: only first fragments are decoded`,
    )
    return null
  }
  if (fragment & 0x2000) {
    addFinding(
      warnings,
      `first IPv4 fragment (id ${u16(data, at + 4)}, ${src} > ${dst}): later fragments are not joined`,
    )
  }
  const totalLength = u16(data, at + 2)
  // 0 appears in captures taken before TCP segmentation offload fills it in
  let end = totalLength === 0 ? data.length : at + totalLength
  if (totalLength !== 0 && totalLength < headerLength) {
    throw new CaptureError(`IPv4 total length ${totalLength} < header length ${headerLength}`, base + at + 2)
  }
  if (end > data.length) {
    addFinding(
      warnings,
      `IPv4 packet ${src} > ${dst} cut by the snapshot length: ${data.length - at} of ${totalLength} bytes`,
    )
    end = data.length
  }
  return tcp(data, at + headerLength, end, src, dst, 4, base)
}

const EXTENSION_8 = new Set([0, 43, 60, 135, 139, 140]) // hop-by-hop, routing, destination, mobility, HIP, shim6
const IPV6_FRAGMENT = 44
const IPV6_AH = 51

function ipv6(data: Uint8Array, at: number, warnings: string[], base: number): TcpSegment | null {
  need(data, at + 40, 'IPv6 header', base)
  if (data[at] >> 4 !== 6) throw new CaptureError(`IPv6 header with version ${data[at] >> 4}`, base + at)
  const payloadLength = u16(data, at + 4)
  let next = data[at + 6]
  const src = ipv6Text(data, at + 8)
  const dst = ipv6Text(data, at + 24)
  let end = payloadLength === 0 ? data.length : at + 40 + payloadLength
  if (end > data.length) {
    addFinding(
      warnings,
      `IPv6 packet ${src} > ${dst} cut by the snapshot length: ${data.length - at - 40} of ${payloadLength} bytes`,
    )
    end = data.length
  }
  let p = at + 40
  for (;;) {
    if (next === IPPROTO_TCP) return tcp(data, p, end, src, dst, 6, base)
    if (EXTENSION_8.has(next) || next === IPV6_AH) {
      if (p + 2 > end) throw new CaptureError('truncated IPv6 extension header', base + p)
      const length = next === IPV6_AH ? (data[p + 1] + 2) * 4 : (data[p + 1] + 1) * 8
      next = data[p]
      p += length
    } else if (next === IPV6_FRAGMENT) {
      if (p + 8 > end) throw new CaptureError('truncated IPv6 fragment header', base + p)
      const field = u16(data, p + 2)
      next = data[p]
      p += 8
      if ((field & 0xfff8) !== 0) {
        if (next === IPPROTO_TCP) {
          addFinding(
            warnings,
            `IPv6 fragment at offset ${field & 0xfff8} (${src} > ${dst}) skipped: only first fragments are decoded`,
          )
        }
        return null
      }
      if (field & 1)
        addFinding(warnings, `first IPv6 fragment (${src} > ${dst}): later fragments are not joined`)
    } else {
      return null
    }
    if (p > end) throw new CaptureError('truncated IPv6 extension header', base + end)
  }
}

function tcp(
  data: Uint8Array,
  at: number,
  end: number,
  src: string,
  dst: string,
  family: 4 | 6,
  base: number,
): TcpSegment {
  if (end - at < 20) throw new CaptureError('truncated TCP header', base + end)
  const headerLength = (data[at + 12] >> 4) * 4
  if (headerLength < 20) throw new CaptureError(`TCP data offset ${headerLength} < 20`, base + at + 12)
  if (end - at < headerLength) throw new CaptureError('truncated TCP options', base + end)
  return {
    src,
    dst,
    srcPort: u16(data, at),
    dstPort: u16(data, at + 2),
    seq: u32(data, at + 4),
    ack: u32(data, at + 8),
    flags: ((data[at + 12] & 1) << 8) | data[at + 13],
    payload: data.subarray(at + headerLength, end),
    family,
  }
}

function dotted(d: Uint8Array, i: number): string {
  return `${d[i]}.${d[i + 1]}.${d[i + 2]}.${d[i + 3]}`
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (>= 2) of zero groups as `::`. */
export function ipv6Text(d: Uint8Array, i: number): string {
  const groups: number[] = []
  for (let g = 0; g < 8; g++) groups.push(u16(d, i + 2 * g))
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${dotted(d, i + 12)}`
  }
  let bestStart = -1
  let bestLength = 0
  for (let g = 0; g < 8; ) {
    if (groups[g] !== 0) {
      g++
      continue
    }
    let e = g
    while (e < 8 && groups[e] === 0) e++
    if (e - g > bestLength) {
      bestStart = g
      bestLength = e - g
    }
    g = e
  }
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(':')
  if (bestLength < 2) return hex(groups)
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`
}
