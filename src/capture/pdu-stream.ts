/**
 * Cuts one direction of a reassembled TCP stream into connection-oriented DCE-RPC PDUs by their
 * common header (§1.2, §1.14): `rpc_vers` (u8 at 0) must be 5 and `frag_length` (u16 LE at 8)
 * at least 16. The two fields are read here directly so this layer does not depend on the
 * wire parsers; everything else about a PDU is left to them.
 */

export interface StreamPdu {
  /** Offset of the PDU in the stream. */
  offset: number
  /** The whole PDU (a view into the stream, `frag_length` bytes). */
  bytes: Uint8Array
}

export interface StreamRest {
  /** Where the bytes that are not a whole PDU start. */
  offset: number
  reason: string
}

export interface CutPdus {
  pdus: StreamPdu[]
  /** null when the stream ends exactly after its last PDU. */
  rest: StreamRest | null
}

const RPC_VERS = 5
const HEADER = 16
const FRAG_LENGTH = 8

export function cutRpcPdus(data: Uint8Array): CutPdus {
  const pdus: StreamPdu[] = []
  let off = 0
  while (off < data.length) {
    const left = data.length - off
    if (data[off] !== RPC_VERS) {
      return { pdus, rest: { offset: off, reason: `not DCE-RPC: first byte 0x${hex2(data[off])}` } }
    }
    if (left < FRAG_LENGTH + 2) {
      return { pdus, rest: { offset: off, reason: `truncated PDU: ${left} header bytes, 16 needed` } }
    }
    const fragLength = data[off + FRAG_LENGTH] | (data[off + FRAG_LENGTH + 1] << 8)
    if (fragLength < HEADER) {
      return { pdus, rest: { offset: off, reason: `not DCE-RPC: frag_length ${fragLength} < 16` } }
    }
    if (fragLength > left) {
      return {
        pdus,
        rest: { offset: off, reason: `truncated PDU: header says ${fragLength} bytes, ${left} remain` },
      }
    }
    pdus.push({ offset: off, bytes: data.subarray(off, off + fragLength) })
    off += fragLength
  }
  return { pdus, rest: null }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}
