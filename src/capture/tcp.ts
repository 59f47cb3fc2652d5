import type { Endpoint } from '../wire/endpoint.js'
import { addFinding, CaptureError } from './errors.js'
import { decodeFrame, TCP_FLAGS, type TcpSegment } from './packet.js'
import type { CapturedPacket } from './pcap.js'

/**
 * TCP reassembly per connection and direction, by sequence number. Sequence numbers are
 * unwrapped against the furthest byte seen so far, so wrap-around past 2^32 is invisible.
 * Bytes at each stream position come from the segment with the lowest starting sequence
 * number (the earliest captured on a tie); retransmissions and overlaps add nothing, and
 * a retransmission that disagrees with the first copy is reported. Missing bytes are reported
 * in `gaps` and left out of the data (nothing is invented), so data stays bounded by the input.
 */

export type { Endpoint }

export interface TcpChunk {
  fromClient: boolean
  /** Offset into `clientData` or `serverData`. */
  offset: number
  length: number
  /** When these bytes became contiguous with what came before (the completing packet's time). */
  timestampNs: bigint
  /** Index of that completing packet (Wireshark frame number - 1). */
  packetIndex: number
}

export interface TcpConnection {
  /** The side that sent the SYN; else the one with the higher (ephemeral) port; else the first sender. */
  client: Endpoint
  server: Endpoint
  clientData: Uint8Array
  serverData: Uint8Array
  /** Both directions' data in the order it became readable. */
  chunks: TcpChunk[]
  closedBy?: 'client-fin' | 'server-fin' | 'client-rst' | 'server-rst'
  /** Findings: missing bytes, disagreeing retransmissions, data after FIN. */
  gaps: string[]
  firstTimestampNs: bigint
  family: 4 | 6
}

const KMS_PORT = 1688

interface Segment {
  at: number
  payload: Uint8Array
  packetIndex: number
  timestampNs: bigint
}

interface Side {
  address: string
  port: number
  /** Sequence number that maps to stream position 0 (the first one seen). */
  ref: number | null
  /** Furthest stream position seen, the anchor for unwrapping. */
  front: number
  synSeq: number | null
  synAt: number | null
  finAt: number | null
  sentSyn: boolean
  sentSynAck: boolean
  segments: Segment[]
}

interface Conn {
  a: Side
  b: Side
  family: 4 | 6
  firstTimestampNs: bigint
  closed: { by: Side; kind: 'fin' | 'rst' } | null
}

function newSide(address: string, port: number): Side {
  return {
    address,
    port,
    ref: null,
    front: 0,
    synSeq: null,
    synAt: null,
    finAt: null,
    sentSyn: false,
    sentSynAck: false,
    segments: [],
  }
}

function unwrap(side: Side, seq: number): number {
  if (side.ref === null) {
    side.ref = seq
    return 0
  }
  const expected = (side.ref + side.front) >>> 0
  return side.front + ((seq - expected) | 0)
}

export function reassembleTcp(packets: readonly CapturedPacket[], warnings: string[] = []): TcpConnection[] {
  const open = new Map<string, Conn>()
  const all: Conn[] = []
  const frameWarnings: string[] = []
  for (const packet of packets) {
    let seg: TcpSegment | null = null
    let error: CaptureError | null = null
    try {
      seg = decodeFrame(packet.linkType, packet.data, frameWarnings, packet.fileOffset)
    } catch (e) {
      if (!(e instanceof CaptureError)) throw e
      error = e
    }
    if (frameWarnings.length > 0 || error) {
      for (const w of frameWarnings) addFinding(warnings, `frame ${packet.index + 1}: ${w}`)
      if (error) addFinding(warnings, `frame ${packet.index + 1}: ${error.message}`)
      frameWarnings.length = 0
    }
    if (!seg) continue
    const srcKey = `${seg.src} ${seg.srcPort}`
    const dstKey = `${seg.dst} ${seg.dstPort}`
    const key = srcKey < dstKey ? `${srcKey}|${dstKey}` : `${dstKey}|${srcKey}`
    let conn = open.get(key)
    const pureSyn = (seg.flags & (TCP_FLAGS.SYN | TCP_FLAGS.ACK)) === TCP_FLAGS.SYN
    if (conn && pureSyn && startsNewConnection(conn, seg)) conn = undefined
    if (!conn) {
      conn = {
        a: newSide(seg.src, seg.srcPort),
        b: newSide(seg.dst, seg.dstPort),
        family: seg.family,
        firstTimestampNs: packet.timestampNs,
        closed: null,
      }
      open.set(key, conn)
      all.push(conn)
    }
    const from = conn.a.address === seg.src && conn.a.port === seg.srcPort ? conn.a : conn.b
    record(conn, from, seg, packet)
  }
  return all.map(finish)
}

/** A SYN on a known 4-tuple opens a new connection (port reuse) unless it repeats the first SYN. */
function startsNewConnection(conn: Conn, seg: TcpSegment): boolean {
  if (conn.closed) return true
  const from = conn.a.address === seg.src && conn.a.port === seg.srcPort ? conn.a : conn.b
  return from.synSeq !== null ? from.synSeq !== seg.seq : from.segments.length > 0
}

function record(conn: Conn, side: Side, seg: TcpSegment, packet: CapturedPacket): void {
  const { flags } = seg
  if (flags & TCP_FLAGS.RST) {
    // a reset's sequence number may be 0 and any data in it is not stream data
    conn.closed ??= { by: side, kind: 'rst' }
    return
  }
  let dataSeq = seg.seq
  if (flags & TCP_FLAGS.SYN) {
    if (flags & TCP_FLAGS.ACK) side.sentSynAck = true
    else side.sentSyn = true
    if (side.synSeq === null) {
      side.synSeq = seg.seq
      side.synAt = unwrap(side, seg.seq)
    }
    dataSeq = (seg.seq + 1) >>> 0
  }
  const length = seg.payload.length
  if (length === 0 && !(flags & TCP_FLAGS.FIN)) return
  const at = unwrap(side, dataSeq)
  if (length > 0) {
    side.segments.push({
      at,
      payload: seg.payload,
      packetIndex: packet.index,
      timestampNs: packet.timestampNs,
    })
    if (at + length > side.front) side.front = at + length
  }
  if (flags & TCP_FLAGS.FIN) {
    side.finAt ??= at + length
    conn.closed ??= { by: side, kind: 'fin' }
  }
}

function isClient(conn: Conn, side: Side): boolean {
  const other = side === conn.a ? conn.b : conn.a
  if (side.sentSyn !== other.sentSyn) return side.sentSyn
  if (side.sentSynAck !== other.sentSynAck) return other.sentSynAck
  if (side.port === KMS_PORT || other.port === KMS_PORT)
    return other.port === KMS_PORT && side.port !== KMS_PORT
  if (side.port !== other.port) return side.port > other.port
  return side === conn.a
}

function finish(conn: Conn): TcpConnection {
  const clientSide = isClient(conn, conn.a) ? conn.a : conn.b
  const serverSide = clientSide === conn.a ? conn.b : conn.a
  const gaps: string[] = []
  const chunks: TcpChunk[] = []
  const clientData = assemble(clientSide, true, 'client', gaps, chunks)
  const serverData = assemble(serverSide, false, 'server', gaps, chunks)
  chunks.sort((x, y) => x.packetIndex - y.packetIndex || x.offset - y.offset)
  const result: TcpConnection = {
    client: { address: clientSide.address, port: clientSide.port },
    server: { address: serverSide.address, port: serverSide.port },
    clientData,
    serverData,
    chunks,
    gaps,
    firstTimestampNs: conn.firstTimestampNs,
    family: conn.family,
  }
  if (conn.closed) {
    result.closedBy = `${conn.closed.by === clientSide ? 'client' : 'server'}-${conn.closed.kind}`
  }
  return result
}

function assemble(
  side: Side,
  fromClient: boolean,
  label: string,
  gaps: string[],
  chunks: TcpChunk[],
): Uint8Array {
  const segments = side.segments
  if (segments.length === 0) return new Uint8Array(0)
  // stable: segments starting at the same place keep capture order
  const order = segments.map((_, i) => i).sort((i, j) => segments[i].at - segments[j].at || i - j)
  let capacity = 0
  for (const s of segments) capacity += s.payload.length
  const out = new Uint8Array(capacity)
  let outLength = 0
  let cursor = side.synAt !== null ? side.synAt + 1 : segments[order[0]].at
  let deliveredIndex = -1
  let deliveredTime = 0n
  let last: TcpChunk | null = null
  let disagreed = false
  const seqOf = (at: number) => ((side.ref ?? 0) + at) >>> 0
  for (const i of order) {
    const s = segments[i]
    const end = s.at + s.payload.length
    if (end <= cursor) {
      if (!disagreed) disagreed = differs(out, outLength, cursor, s, s.at, end, label, gaps)
      continue
    }
    if (s.at > cursor) {
      addFinding(
        gaps,
        `${label}: ${s.at - cursor} bytes missing at data offset ${outLength} (seq ${seqOf(cursor)}), left out`,
      )
      cursor = s.at
    } else if (s.at < cursor && !disagreed) {
      disagreed = differs(out, outLength, cursor, s, s.at, cursor, label, gaps)
    }
    const piece = s.payload.subarray(cursor - s.at)
    out.set(piece, outLength)
    if (s.packetIndex > deliveredIndex) {
      deliveredIndex = s.packetIndex
      deliveredTime = s.timestampNs
    }
    if (last && last.packetIndex === deliveredIndex && last.offset + last.length === outLength) {
      last.length += piece.length
    } else {
      last = {
        fromClient,
        offset: outLength,
        length: piece.length,
        timestampNs: deliveredTime,
        packetIndex: deliveredIndex,
      }
      chunks.push(last)
    }
    outLength += piece.length
    cursor = end
  }
  if (side.finAt !== null) {
    if (cursor > side.finAt) addFinding(gaps, `${label}: ${cursor - side.finAt} bytes after its FIN`)
    else if (cursor < side.finAt)
      addFinding(gaps, `${label}: ${side.finAt - cursor} bytes missing before its FIN`)
  }
  return out.subarray(0, outLength)
}

/** Does the already assembled copy of stream range [from, to) differ from segment `s`? */
function differs(
  out: Uint8Array,
  outLength: number,
  cursor: number,
  s: Segment,
  from: number,
  to: number,
  label: string,
  gaps: string[],
): boolean {
  // every range before the cursor lies after the last gap, so it maps 1:1 onto the end of `out`
  const outStart = outLength - (cursor - from)
  const lo = Math.max(from, cursor - outLength)
  for (let x = lo; x < to; x++) {
    if (out[outStart + (x - from)] !== s.payload[x - s.at]) {
      addFinding(
        gaps,
        `${label}: retransmitted bytes differ from the first copy at data offset ${outStart + (x - from)}; first copy kept`,
      )
      return true
    }
  }
  return false
}
