import { PCAP_MAGIC_MICRO, PCAP_MAGIC_NANO } from '../wire/pcap-frames.js'
import { addFinding, CaptureError } from './errors.js'

/**
 * Capture files: classic libpcap (both byte orders, micro- and nanosecond magic) and pcapng
 * (sections in either byte order, several interfaces, EPB/SPB/OPB packets). Pure over the
 * bytes: packet data are views into the input, nothing is copied. A damaged or cut-off tail
 * becomes a warning and the packets before it are kept; only input that is not a capture at
 * all (or whose file header is cut short) throws `CaptureError`.
 */

export interface CapturedPacket {
  /** Position in `packets`, from 0. Wireshark's frame number is `index + 1`. */
  index: number
  /** Nanoseconds since the Unix epoch. */
  timestampNs: bigint
  /** LINKTYPE_ value of the interface that captured it (1 Ethernet, 113 Linux cooked, ...). */
  linkType: number
  /** The captured link-layer frame (possibly cut at the snapshot length). */
  data: Uint8Array
  /** Length of the frame on the wire. */
  originalLength: number
  /** Byte offset of `data` in the file, for error messages. */
  fileOffset: number
}

export interface CaptureFile {
  format: 'pcap' | 'pcapng'
  packets: CapturedPacket[]
  warnings: string[]
}

const PCAP_MICRO = PCAP_MAGIC_MICRO
const PCAP_NANO = PCAP_MAGIC_NANO
const PCAPNG_SHB = 0x0a0d0d0a
const PCAPNG_BYTE_ORDER = 0x1a2b3c4d
const PCAP_FILE_HEADER = 24
const PCAP_RECORD_HEADER = 16

const NS_PER_S = 1_000_000_000n

export function readCapture(bytes: Uint8Array): CaptureFile {
  if (bytes.length >= 4) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const le = dv.getUint32(0, true)
    const be = dv.getUint32(0, false)
    if (le === PCAP_MICRO || le === PCAP_NANO) return readPcap(bytes, dv, true, le === PCAP_NANO)
    if (be === PCAP_MICRO || be === PCAP_NANO) return readPcap(bytes, dv, false, be === PCAP_NANO)
    if (le === PCAPNG_SHB) return readPcapng(bytes, dv)
  }
  throw new CaptureError('not a pcap or pcapng file', 0)
}

// ---- classic libpcap: 24-byte file header, then 16-byte record headers each followed by data ----

function readPcap(bytes: Uint8Array, dv: DataView, le: boolean, nano: boolean): CaptureFile {
  if (bytes.length < PCAP_FILE_HEADER) {
    throw new CaptureError(`truncated pcap file header: ${bytes.length} of 24 bytes`, bytes.length)
  }
  const warnings: string[] = []
  const major = dv.getUint16(4, le)
  const minor = dv.getUint16(6, le)
  if (major !== 2) addFinding(warnings, `unusual pcap version ${major}.${minor}`)
  // the upper bits of the link type word carry FCS information, not the type
  const linkType = dv.getUint32(20, le) & 0xffff
  const fractionUnit = nano ? 1n : 1000n
  const packets: CapturedPacket[] = []
  let off = PCAP_FILE_HEADER
  while (off < bytes.length) {
    const left = bytes.length - off
    if (left < PCAP_RECORD_HEADER) {
      addFinding(warnings, `truncated last record at byte ${off}: ${left} of 16 header bytes`)
      break
    }
    const seconds = dv.getUint32(off, le)
    const fraction = dv.getUint32(off + 4, le)
    const included = dv.getUint32(off + 8, le)
    const original = dv.getUint32(off + 12, le)
    const start = off + PCAP_RECORD_HEADER
    if (included > bytes.length - start) {
      addFinding(
        warnings,
        `truncated last record at byte ${off}: header says ${included} bytes, ${bytes.length - start} remain`,
      )
      break
    }
    packets.push({
      index: packets.length,
      timestampNs: BigInt(seconds) * NS_PER_S + BigInt(fraction) * fractionUnit,
      linkType,
      data: bytes.subarray(start, start + included),
      originalLength: original,
      fileOffset: start,
    })
    off = start + included
  }
  return { format: 'pcap', packets, warnings }
}

// ---- pcapng: blocks of (type u32, total length u32, body, total length u32) ----

const BLOCK = { SHB: PCAPNG_SHB, IDB: 1, OPB: 2, SPB: 3, EPB: 6 } as const
const OPTION = { END: 0, IF_TSRESOL: 9, IF_TSOFFSET: 14 } as const

interface Interface {
  linkType: number
  snaplen: number
  /** timestamp units -> ns is `units * mul / div + offsetNs` */
  mul: bigint
  div: bigint
  offsetNs: bigint
}

function readPcapng(bytes: Uint8Array, dv: DataView): CaptureFile {
  const warnings: string[] = []
  const packets: CapturedPacket[] = []
  let interfaces: (Interface | null)[] = []
  let le = true
  let lastTimestamp = 0n
  let off = 0
  const push = (iface: Interface, timestampNs: bigint, start: number, length: number, original: number) => {
    lastTimestamp = timestampNs
    packets.push({
      index: packets.length,
      timestampNs,
      linkType: iface.linkType,
      data: bytes.subarray(start, start + length),
      originalLength: original,
      fileOffset: start,
    })
  }

  blocks: while (off < bytes.length) {
    const left = bytes.length - off
    if (left < 12) {
      if (off === 0) throw new CaptureError('not a pcap or pcapng file', 0)
      addFinding(warnings, `truncated last block at byte ${off}: ${left} bytes, a block needs at least 12`)
      break
    }
    if (dv.getUint32(off, true) === PCAPNG_SHB) {
      // the byte-order magic decides how this whole section, its own length included, is read
      const magic = dv.getUint32(off + 8, true)
      if (magic === PCAPNG_BYTE_ORDER) le = true
      else if (magic === 0x4d3c2b1a) le = false
      else {
        if (off === 0) throw new CaptureError('not a pcap or pcapng file', 0)
        addFinding(warnings, `section header at byte ${off} has no byte-order magic; rest of file skipped`)
        break
      }
    } else if (off === 0) {
      throw new CaptureError('not a pcap or pcapng file', 0)
    }
    const type = dv.getUint32(off, le)
    const total = dv.getUint32(off + 4, le)
    if (total < 12 || total % 4 !== 0) {
      if (off === 0) throw new CaptureError(`pcapng section header length ${total} is invalid`, 4)
      addFinding(warnings, `block at byte ${off} has invalid length ${total}; rest of file skipped`)
      break
    }
    if (total > left) {
      if (off === 0) throw new CaptureError(`truncated pcapng section header: ${left} of ${total} bytes`, 0)
      addFinding(warnings, `truncated last block at byte ${off}: block says ${total} bytes, ${left} remain`)
      break
    }
    const trailer = dv.getUint32(off + total - 4, le)
    if (trailer !== total) {
      if (off === 0) throw new CaptureError('pcapng section header length fields differ', total - 4)
      addFinding(
        warnings,
        `block at byte ${off}: length ${total} at its start, ${trailer} at its end; rest skipped`,
      )
      break
    }
    const body = off + 8
    const bodyLength = total - 12
    switch (type) {
      case BLOCK.SHB: {
        if (bodyLength < 16) {
          if (off === 0) throw new CaptureError('pcapng section header too short', 0)
          addFinding(warnings, `section header at byte ${off} too short; rest of file skipped`)
          break blocks
        }
        const major = dv.getUint16(body + 4, le)
        if (major !== 1) {
          if (off === 0) throw new CaptureError(`unsupported pcapng version ${major}`, body + 4)
          addFinding(
            warnings,
            `section at byte ${off} has unsupported version ${major}; rest of file skipped`,
          )
          break blocks
        }
        interfaces = []
        break
      }
      case BLOCK.IDB: {
        if (bodyLength < 8) {
          addFinding(warnings, `interface block at byte ${off} too short; its packets are skipped`)
          interfaces.push(null)
          break
        }
        interfaces.push(readInterface(dv, le, body, body + bodyLength, warnings))
        break
      }
      case BLOCK.EPB:
      case BLOCK.OPB: {
        if (bodyLength < 20) {
          addFinding(warnings, `packet block at byte ${off} too short; skipped`)
          break
        }
        const ifaceId = type === BLOCK.EPB ? dv.getUint32(body, le) : dv.getUint16(body, le)
        const units = (BigInt(dv.getUint32(body + 4, le)) << 32n) | BigInt(dv.getUint32(body + 8, le))
        const captured = dv.getUint32(body + 12, le)
        const original = dv.getUint32(body + 16, le)
        const iface = interfaces[ifaceId]
        if (!iface) {
          addFinding(warnings, `packet block at byte ${off} names unknown interface ${ifaceId}; skipped`)
          break
        }
        if (captured > bodyLength - 20) {
          addFinding(warnings, `packet block at byte ${off}: ${captured} captured bytes do not fit; skipped`)
          break
        }
        push(iface, (units * iface.mul) / iface.div + iface.offsetNs, body + 20, captured, original)
        break
      }
      case BLOCK.SPB: {
        const iface = interfaces[0]
        if (bodyLength < 4 || !iface) {
          addFinding(warnings, `simple packet block at byte ${off} without interface 0 or too short; skipped`)
          break
        }
        const original = dv.getUint32(body, le)
        let captured = Math.min(original, bodyLength - 4)
        if (iface.snaplen > 0) captured = Math.min(captured, iface.snaplen)
        // SPBs carry no timestamp: reuse the last one so packets stay in time order
        push(iface, lastTimestamp, body + 4, captured, original)
        break
      }
      default:
        break
    }
    off += total
  }
  return { format: 'pcapng', packets, warnings }
}

function readInterface(dv: DataView, le: boolean, body: number, end: number, warnings: string[]): Interface {
  const iface: Interface = {
    linkType: dv.getUint16(body, le),
    snaplen: dv.getUint32(body + 4, le),
    mul: 1000n,
    div: 1n,
    offsetNs: 0n,
  }
  let p = body + 8
  while (p + 4 <= end) {
    const code = dv.getUint16(p, le)
    const length = dv.getUint16(p + 2, le)
    if (code === OPTION.END) break
    if (p + 4 + length > end) {
      addFinding(warnings, `interface option ${code} at byte ${p} runs past its block`)
      break
    }
    if (code === OPTION.IF_TSRESOL && length >= 1) {
      const v = dv.getUint8(p + 4)
      const exponent = BigInt(v & 0x7f)
      if (v & 0x80) {
        iface.mul = NS_PER_S
        iface.div = 1n << exponent
      } else if (exponent <= 9n) {
        iface.mul = 10n ** (9n - exponent)
        iface.div = 1n
      } else {
        iface.mul = 1n
        iface.div = 10n ** (exponent - 9n)
      }
    } else if (code === OPTION.IF_TSOFFSET && length >= 8) {
      iface.offsetNs = dv.getBigInt64(p + 4, le) * NS_PER_S
    }
    p += 4 + ((length + 3) & ~3)
  }
  return iface
}
