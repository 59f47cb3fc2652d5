// Cuts one direction of a reassembled TCP stream into connection-oriented DCE-RPC PDUs by the one
// frame check of the wire layer (§1.2, §1.14); everything else about a PDU is left to the parsers.
import { checkRpcFrame, type FrameLimits } from '../wire/rpc.js'

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

/**
 * rpc_vers 4 is the connectionless protocol's number, which a confused client may put in a
 * connection-oriented header; any other first byte is taken for garbage.
 */
const FRAME_LIMITS: FrameLimits = { otherVersions: [4] }

/**
 * A PDU whose header has rpc_vers 4 (vlmcsd neither checks nor corrects it, and echoes it)
 * is cut all the same: the layout is the same, and a research decoder decodes what was exchanged
 * (the decoder names the version as a finding).
 */
export function cutRpcPdus(data: Uint8Array): CutPdus {
  const pdus: StreamPdu[] = []
  let off = 0
  while (off < data.length) {
    const left = data.length - off
    const frame = checkRpcFrame(data, off, data.length, FRAME_LIMITS)
    const rest = (reason: string): CutPdus => ({ pdus, rest: { offset: off, reason } })
    switch (frame.verdict) {
      case 'not-rpc':
        return rest(
          frame.offset === 0
            ? `not DCE-RPC: first byte 0x${hex2(data[off])}`
            : `not DCE-RPC: ${frame.reason}`,
        )
      case 'need-more':
        return rest(
          frame.length === 0
            ? `truncated PDU: ${left} header bytes, 16 needed`
            : `truncated PDU: header says ${frame.length} bytes, ${left} remain`,
        )
      case 'other-version':
        if (!frame.whole) return rest(`truncated PDU: header says ${frame.length} bytes, ${left} remain`)
        break
    }
    pdus.push({ offset: off, bytes: data.subarray(off, off + frame.length) })
    off += frame.length
  }
  return { pdus, rest: null }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}
