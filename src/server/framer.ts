import { KmslabError } from '../errors.js'
import { PTYPE } from '../wire/rpc.js'

/** The peer sent something that is not a DCE-RPC PDU stream; the host closes without answering. */
export class FramingError extends KmslabError {
  constructor(
    message: string,
    readonly offset: number,
    /** Set when the bytes are an RPC header of another version (answered with BIND_NAK). */
    readonly rpcVersion?: number,
    readonly callId = 0,
  ) {
    super(message)
  }
}

const HEADER = 16
/** Before a bind negotiates a size, a PDU may be at most this long (Windows' default fragment). */
export const DEFAULT_MAX_FRAGMENT = 5840
const EMPTY = new Uint8Array(0)

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ')

/**
 * Cuts a TCP byte stream into whole PDUs by the header's frag_length, whatever the chunking
 * (one byte at a time, or a bind and a request in one segment). The connection feeds it a chunk
 * and takes PDUs one at a time with `next()`, so PDUs that wait for an answer in progress stay
 * as the unread rest of that chunk (a view, never copied). Only the tail of a PDU cut by a chunk
 * boundary is copied, into a buffer of at most one fragment; the length is judged from the first
 * 10 bytes, so a peer cannot make it buffer what a bogus length promises.
 */
export class PduFramer {
  private buffer: Uint8Array = EMPTY
  private filled = 0
  private input: Uint8Array = EMPTY
  /** Stream offset of the first byte not yet returned in a PDU (for error offsets). */
  private offset = 0
  maxFragment = DEFAULT_MAX_FRAGMENT

  /** Bytes held that have not been returned as a PDU yet (a partial PDU and unread input). */
  get pending(): number {
    return this.filled + this.input.length
  }

  /** Unread bytes of the last chunk: PDUs waiting for the connection to take them. */
  get unread(): number {
    return this.input.length
  }

  /** Hands over a chunk; take its PDUs with `next()` before feeding another. */
  feed(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    if (this.input.length === 0) {
      this.input = chunk
      return
    }
    const joined = new Uint8Array(this.input.length + chunk.length)
    joined.set(this.input)
    joined.set(chunk, this.input.length)
    this.input = joined
  }

  /**
   * The next whole PDU (a view valid as long as the caller keeps it), or null when the bytes fed
   * so far do not complete one (all input is then consumed). Throws FramingError when the stream
   * is not DCE-RPC.
   */
  next(): Uint8Array | null {
    while (this.filled > 0 && this.input.length > 0) {
      const length = this.judge(this.buffer.subarray(0, this.filled))
      // Until the header can be judged, one byte at a time: garbage shows at its first bad byte.
      const take = length === null ? 1 : Math.min(length - this.filled, this.input.length)
      this.append(this.input.subarray(0, take))
      this.input = this.input.subarray(take)
      if (length !== null && this.filled === length) {
        this.filled = 0
        this.offset += length
        return this.buffer.slice(0, length)
      }
    }
    // the bytes just appended are judged now, not when (if ever) the peer sends more
    if (this.filled > 0) this.judge(this.buffer.subarray(0, this.filled))
    if (this.filled > 0 || this.input.length === 0) return null
    const length = this.judge(this.input)
    if (length === null || this.input.length < length) {
      this.append(this.input)
      this.input = EMPTY
      return null
    }
    const pdu = this.input.subarray(0, length)
    this.input = this.input.length === length ? EMPTY : this.input.subarray(length)
    this.offset += length
    return pdu
  }

  /** Feeds a chunk and returns every PDU it completes. */
  push(chunk: Uint8Array): Uint8Array[] {
    this.feed(chunk)
    const out: Uint8Array[] = []
    for (let pdu = this.next(); pdu !== null; pdu = this.next()) out.push(pdu)
    return out
  }

  /** The PDU length the header announces, or null while too few bytes are known to judge. */
  private judge(bytes: Uint8Array): number | null {
    if (bytes[0] !== 5) return this.foreign(bytes)
    if (bytes.length < 10) return null
    // A big-endian data representation (drep byte 0 high nibble 0) turns frag_length around too;
    // read it as sent so the connection can answer such a bind with BIND_NAK instead of a hang.
    const length = fragLength(bytes)
    if (length < HEADER)
      throw new FramingError(`frag_length ${length} is shorter than the header`, this.offset + 8)
    if (length > this.maxFragment) {
      throw new FramingError(
        `frag_length ${length} exceeds the fragment limit ${this.maxFragment}`,
        this.offset + 8,
      )
    }
    return length
  }

  /**
   * Not RPC 5: garbage (HTTP, TLS, random bytes) is closed on silently, but a BIND of another
   * RPC version gets BIND_NAK. They are told apart by the header's shape, judged byte by byte
   * so garbage is dropped as soon as it shows: a BIND or ALTER_CONTEXT PTYPE, a data
   * representation byte of 0x10 or 0x00, and a frag_length from 16 to the fragment limit.
   */
  private foreign(bytes: Uint8Array): null {
    const notRpc = () =>
      new FramingError(`not DCE-RPC (first bytes ${hex(bytes.subarray(0, 8))})`, this.offset)
    if (bytes.length >= 3 && bytes[2] !== PTYPE.BIND && bytes[2] !== PTYPE.ALTER_CONTEXT) throw notRpc()
    if (bytes.length >= 5 && (bytes[4] & 0xef) !== 0) throw notRpc()
    if (bytes.length >= 10) {
      const length = fragLength(bytes)
      if (length < HEADER || length > this.maxFragment) throw notRpc()
    }
    if (bytes.length < HEADER) return null
    const bigEndian = (bytes[4] & 0xf0) === 0
    const callId = bigEndian
      ? ((bytes[12] << 24) | (bytes[13] << 16) | (bytes[14] << 8) | bytes[15]) >>> 0
      : (bytes[12] | (bytes[13] << 8) | (bytes[14] << 16) | (bytes[15] << 24)) >>> 0
    throw new FramingError(`RPC version ${bytes[0]}.${bytes[1]} not supported`, this.offset, bytes[0], callId)
  }

  private append(bytes: Uint8Array): void {
    if (this.filled + bytes.length > this.buffer.length) {
      const grown = new Uint8Array(
        Math.max(64, this.filled + bytes.length, Math.min(this.maxFragment, this.buffer.length * 2)),
      )
      grown.set(this.buffer.subarray(0, this.filled))
      this.buffer = grown
    }
    this.buffer.set(bytes, this.filled)
    this.filled += bytes.length
  }
}

function fragLength(bytes: Uint8Array): number {
  return (bytes[4] & 0xf0) === 0 ? (bytes[8] << 8) | bytes[9] : bytes[8] | (bytes[9] << 8)
}
