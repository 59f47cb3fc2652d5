import { PFC, type RequestPdu } from '../wire/rpc.js'

/** Reassembled fragmented calls larger than this are refused: a KMS request is ~300 bytes. */
export const MAX_CALL_BYTES = 16 * 1024

/** A call in one fragment (FIRST and LAST): what every known client sends. */
export function isWholeCall(pdu: RequestPdu): boolean {
  return (pdu.header.flags & (PFC.FIRST_FRAG | PFC.LAST_FRAG)) === (PFC.FIRST_FRAG | PFC.LAST_FRAG)
}

export type Assembled = { stub: Uint8Array } | { error: string } | null

/**
 * Collects the FIRST ... LAST fragments of one call (§1.14) on a connection. No known client
 * fragments, so this only has to be correct and bounded: one call at a time, 16 KiB at most.
 */
export class FragmentAssembler {
  private first: RequestPdu | null = null
  private parts: Uint8Array[] = []
  private size = 0

  /** The whole stub once the call is complete, an error for a fragment out of place, else null. */
  add(pdu: RequestPdu): Assembled {
    const first = (pdu.header.flags & PFC.FIRST_FRAG) !== 0
    const last = (pdu.header.flags & PFC.LAST_FRAG) !== 0
    if (first && last && !this.first) return { stub: pdu.stub }
    if (first) {
      this.first = pdu
      this.parts = [pdu.stub.slice()]
      this.size = pdu.stub.length
      return null
    }
    const p = this.first
    if (!p || p.header.callId !== pdu.header.callId || p.contextId !== pdu.contextId) {
      this.reset()
      return { error: 'fragment without its first fragment' }
    }
    this.size += pdu.stub.length
    if (this.size > MAX_CALL_BYTES) {
      this.reset()
      return { error: 'fragmented call too large' }
    }
    this.parts.push(pdu.stub.slice())
    if (!last) return null
    const stub = new Uint8Array(this.size)
    let o = 0
    for (const part of this.parts) {
      stub.set(part, o)
      o += part.length
    }
    this.reset()
    return { stub }
  }

  private reset(): void {
    this.first = null
    this.parts = []
    this.size = 0
  }
}
