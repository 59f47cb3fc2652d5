import { FramingError } from './errors.js'

export { FramingError }

import { checkRpcFrame, type FrameLimits, PTYPE } from '../wire/rpc.js'

/** Before a bind negotiates a size, a PDU may be at most this long (Windows' default fragment). */
export const DEFAULT_MAX_FRAGMENT = 5840
const EMPTY = new Uint8Array(0)
/** Another RPC version is answered (BIND_NAK) only in these PDUs. */
const OTHER_VERSION_PTYPES: readonly number[] = [PTYPE.BIND, PTYPE.ALTER_CONTEXT]

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
  private readonly limits: FrameLimits & { maxFragment: number } = {
    maxFragment: DEFAULT_MAX_FRAGMENT,
    otherVersionPtypes: OTHER_VERSION_PTYPES,
  }

  /** The longest PDU accepted (the bind raises it to what was negotiated). */
  get maxFragment(): number {
    return this.limits.maxFragment
  }

  set maxFragment(n: number) {
    this.limits.maxFragment = n
  }

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
    // A big-endian data representation turns frag_length around too; it is read as sent so the
    // connection can answer such a bind with BIND_NAK instead of a hang. Another RPC version
    // counts as RPC only in a BIND or ALTER_CONTEXT (answered with BIND_NAK); else it is garbage.
    const frame = checkRpcFrame(bytes, 0, bytes.length, this.limits)
    switch (frame.verdict) {
      case 'pdu':
      case 'need-more':
        return frame.length === 0 ? null : frame.length
      case 'not-rpc':
        throw new FramingError(frame.reason, this.offset + frame.offset)
      case 'other-version':
        throw new FramingError(
          `RPC version ${frame.rpcVersion}.${frame.rpcVersionMinor} not supported`,
          this.offset,
          frame.rpcVersion,
          frame.callId,
        )
    }
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
