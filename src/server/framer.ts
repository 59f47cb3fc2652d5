import { KmslabError } from '../errors.js'

/** The peer sent something that is not a DCE-RPC PDU stream; the host closes without answering. */
export class FramingError extends KmslabError {
  constructor(
    message: string,
    readonly offset: number,
    /** Set when the bytes are an RPC header of another version (answered with BIND_NAK). */
    readonly rpcVersion?: number,
  ) {
    super(message)
  }
}

const HEADER = 16
/** Before a bind negotiates a size, a PDU may be at most this long (Windows' default fragment). */
export const DEFAULT_MAX_FRAGMENT = 5840

/**
 * Cuts a TCP byte stream into whole PDUs by the header's frag_length, whatever the chunking
 * (one byte at a time, or a bind and a request in one segment). It holds at most one PDU's bytes
 * and judges the length from the first 10 bytes, so a peer cannot make it buffer what a bogus
 * length promises.
 */
export class PduFramer {
  private buffer: Uint8Array = new Uint8Array(0)
  private filled = 0
  private received = 0
  maxFragment = DEFAULT_MAX_FRAGMENT

  /** Bytes held that do not yet form a whole PDU. */
  get pending(): number {
    return this.filled
  }

  /** Feeds a chunk; returns the whole PDUs it completes (views, valid until the next push). */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = []
    let data = chunk
    // Finish the PDU in progress, copying only the bytes it still lacks.
    while (this.filled > 0 && data.length > 0) {
      const length = this.needed(this.buffer.subarray(0, this.filled))
      const take = Math.min((length ?? 10) - this.filled, data.length)
      this.append(data.subarray(0, take))
      data = data.subarray(take)
      if (length !== null && this.filled === length) {
        out.push(this.buffer.slice(0, length))
        this.filled = 0
      }
    }
    // Whole PDUs straight from the chunk, without copying.
    while (data.length > 0) {
      const length = this.needed(data)
      if (length === null || data.length < length) {
        this.append(data)
        break
      }
      out.push(data.subarray(0, length))
      data = data.subarray(length)
    }
    this.received += chunk.length
    return out
  }

  /** The PDU length the header announces, or null when fewer than 10 bytes are known. */
  private needed(bytes: Uint8Array): number | null {
    if (bytes.length >= 1 && bytes[0] === 4) {
      throw new FramingError('DCE-RPC version 4 (connectionless) on a TCP stream', this.received, 4)
    }
    if (bytes.length >= 1 && bytes[0] !== 5) {
      throw new FramingError(
        `not DCE-RPC: first byte 0x${bytes[0].toString(16).padStart(2, '0')}`,
        this.received,
      )
    }
    if (bytes.length < 10) return null
    // A big-endian data representation (drep byte 0 high nibble 0) turns frag_length around too;
    // read it as sent so the connection can answer such a bind with BIND_NAK instead of a hang.
    const bigEndian = (bytes[4] & 0xf0) === 0
    const length = bigEndian ? (bytes[8] << 8) | bytes[9] : bytes[8] | (bytes[9] << 8)
    if (length < HEADER)
      throw new FramingError(`frag_length ${length} is shorter than the header`, this.received)
    if (length > this.maxFragment) {
      throw new FramingError(
        `frag_length ${length} exceeds the fragment limit ${this.maxFragment}`,
        this.received,
      )
    }
    return length
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
