// BIND / ALTER_CONTEXT (§1.4) and BIND_ACK / ALTER_CONTEXT_RESP (§1.5). Re-exported by rpc.ts.
import { FieldValueError, readGuid, view, writeGuid } from './bytes.js'
import { align4, openPdu, PTYPE, type RpcHeader, writeRpcHeader } from './rpc-header.js'

/** BIND / ALTER_CONTEXT body offsets (§1.4). */
export const BIND_FIELD = {
  maxXmitFrag: 16,
  maxRecvFrag: 18,
  assocGroupId: 20,
  nContextElem: 24,
  reserved: 25,
  contexts: 28,
} as const
/** Presentation context element offsets, relative to the element; 20 more bytes per transfer syntax. */
export const CONTEXT_ELEMENT_FIELD = {
  contextId: 0,
  nTransferSyn: 2,
  reserved: 3,
  abstractUuid: 4,
  major: 20,
  minor: 22,
  transfer: 24,
} as const
export const SYNTAX_LENGTH = 20
/** BIND_ACK offsets before the variable-length sec_addr (§1.5). */
export const BIND_ACK_FIELD = {
  maxXmitFrag: 16,
  maxRecvFrag: 18,
  assocGroupId: 20,
  secAddrLength: 24,
  secAddr: 26,
} as const
/** Result element offsets (24 bytes each); the list starts 4 bytes after n_results. */
export const BIND_RESULT_FIELD = { result: 0, reason: 2, uuid: 4, version: 20 } as const
export const RESULT_LENGTH = 24
/** The result list, from n_results (after sec_addr, aligned to 4). */
export const RESULT_LIST_FIELD = { nResults: 0, reserved: 1, results: 4 } as const
const B = BIND_FIELD
const C = CONTEXT_ELEMENT_FIELD
const A = BIND_ACK_FIELD
const R = BIND_RESULT_FIELD

export interface SyntaxId {
  uuid: string
  version: number
}

export interface InterfaceId {
  uuid: string
  versionMajor: number
  versionMinor: number
}

export interface PresentationContext {
  contextId: number
  abstractSyntax: InterfaceId
  transferSyntaxes: SyntaxId[]
  /** The byte after n_transfer_syn; parse sets it only when non-zero. */
  reserved?: number
}

/** BIND or ALTER_CONTEXT: `header.ptype` tells which. */
export interface BindPdu {
  header: RpcHeader
  maxXmitFrag: number
  maxRecvFrag: number
  assocGroupId: number
  contexts: PresentationContext[]
  /**
   * n_context_elem as sent. Parse always sets it; `contexts` holds only the elements that fit in
   * the fragment, so a hostile count larger than `contexts.length` is visible here (a host must
   * answer or reject every declared item, never index past `contexts`). Emit writes it instead of
   * `contexts.length` when set, which is how tests reproduce such input.
   */
  declaredContextCount?: number
  /** The 3 bytes after n_context_elem as a u24; set by parse only when non-zero. */
  reserved?: number
  /** Bytes after the last whole context (a partial element, a trailer); set only when present. */
  trailing?: Uint8Array
}

export interface ContextResult {
  result: number
  reason: number
  transferSyntax: SyntaxId
}

/** BIND_ACK or ALTER_CONTEXT_RESP: `header.ptype` tells which. */
export interface BindAckPdu {
  header: RpcHeader
  maxXmitFrag: number
  maxRecvFrag: number
  assocGroupId: number
  /** port_spec without its NUL; '' when sec_addr.length is 0. */
  secondaryAddress: string
  /**
   * The sec_addr bytes verbatim, set by parse only when they are not `secondaryAddress + NUL`
   * (no final NUL, or a bare NUL); emit then writes these instead of `secondaryAddress`.
   */
  secondaryAddressRaw?: Uint8Array
  results: ContextResult[]
  /** The alignment bytes after sec_addr (vlmcsd leaves stale bytes); set only when non-zero. */
  padding?: Uint8Array
  /** The 3 bytes after n_results as a u24; set only when non-zero. */
  reserved?: number
  trailing?: Uint8Array
}

function u24(frag: Uint8Array, o: number): number {
  return frag[o] | (frag[o + 1] << 8) | (frag[o + 2] << 16)
}

function putU24(out: Uint8Array, o: number, v: number): void {
  out[o] = v & 0xff
  out[o + 1] = (v >>> 8) & 0xff
  out[o + 2] = (v >>> 16) & 0xff
}

function contextLength(ctx: PresentationContext): number {
  return C.transfer + SYNTAX_LENGTH * ctx.transferSyntaxes.length
}

export function parseBindPdu(bytes: Uint8Array): BindPdu {
  const { header, frag, dv } = openPdu('bind', bytes, B.contexts, [PTYPE.BIND, PTYPE.ALTER_CONTEXT])
  const declared = frag[B.nContextElem]
  const contexts: PresentationContext[] = []
  let o: number = B.contexts
  // n_context_elem and n_transfer_syn are single bytes, so this loop is bounded by 255 × 255.
  for (let i = 0; i < declared && o + C.transfer <= frag.length; i++) {
    const n = frag[o + C.nTransferSyn]
    const end = o + C.transfer + SYNTAX_LENGTH * n
    if (end > frag.length) break
    const transferSyntaxes: SyntaxId[] = []
    for (let s = o + C.transfer; s < end; s += SYNTAX_LENGTH) {
      transferSyntaxes.push({ uuid: readGuid(frag, s), version: dv.getUint32(s + 16, true) })
    }
    const ctx: PresentationContext = {
      contextId: dv.getUint16(o + C.contextId, true),
      abstractSyntax: {
        uuid: readGuid(frag, o + C.abstractUuid),
        versionMajor: dv.getUint16(o + C.major, true),
        versionMinor: dv.getUint16(o + C.minor, true),
      },
      transferSyntaxes,
    }
    if (frag[o + C.reserved] !== 0) ctx.reserved = frag[o + C.reserved]
    contexts.push(ctx)
    o = end
  }
  const pdu: BindPdu = {
    header,
    maxXmitFrag: dv.getUint16(B.maxXmitFrag, true),
    maxRecvFrag: dv.getUint16(B.maxRecvFrag, true),
    assocGroupId: dv.getUint32(B.assocGroupId, true),
    contexts,
    declaredContextCount: declared,
  }
  const reserved = u24(frag, B.reserved)
  if (reserved !== 0) pdu.reserved = reserved
  if (o < frag.length) pdu.trailing = frag.subarray(o)
  return pdu
}

/** frag_length is computed from the content; `header.fragLength` is ignored. */
export function emitBindPdu(pdu: BindPdu): Uint8Array {
  let length = B.contexts + (pdu.trailing?.length ?? 0)
  for (const ctx of pdu.contexts) length += contextLength(ctx)
  const count = pdu.declaredContextCount ?? pdu.contexts.length
  if (count > 0xff) throw new FieldValueError(`${count} contexts do not fit a u8`, 'bind', B.nContextElem)
  const out = new Uint8Array(length)
  const dv = view(out)
  writeRpcHeader(out, pdu.header, length)
  dv.setUint16(B.maxXmitFrag, pdu.maxXmitFrag, true)
  dv.setUint16(B.maxRecvFrag, pdu.maxRecvFrag, true)
  dv.setUint32(B.assocGroupId, pdu.assocGroupId, true)
  out[B.nContextElem] = count
  putU24(out, B.reserved, pdu.reserved ?? 0)
  let o: number = B.contexts
  for (const ctx of pdu.contexts) {
    const n = ctx.transferSyntaxes.length
    if (n > 0xff) throw new FieldValueError(`${n} transfer syntaxes do not fit a u8`, 'bind', o + 2)
    dv.setUint16(o + C.contextId, ctx.contextId, true)
    out[o + C.nTransferSyn] = n
    out[o + C.reserved] = ctx.reserved ?? 0
    writeGuid(out, o + C.abstractUuid, ctx.abstractSyntax.uuid)
    dv.setUint16(o + C.major, ctx.abstractSyntax.versionMajor, true)
    dv.setUint16(o + C.minor, ctx.abstractSyntax.versionMinor, true)
    o += C.transfer
    for (const ts of ctx.transferSyntaxes) {
      writeGuid(out, o, ts.uuid)
      dv.setUint32(o + 16, ts.version, true)
      o += SYNTAX_LENGTH
    }
  }
  if (pdu.trailing) out.set(pdu.trailing, o)
  return out
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  let s = ''
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i])
  return s
}

/** Where n_results sits in a BIND_ACK whose sec_addr is `secAddrLength` bytes long (§1.5). */
export function resultListAt(secAddrLength: number): number {
  return align4(BIND_ACK_FIELD.secAddr + secAddrLength)
}

/** BIND_ACK and ALTER_CONTEXT_RESP. n_results is found by alignment after sec_addr, never at a fixed offset. */
export function parseBindAckPdu(bytes: Uint8Array): BindAckPdu {
  const layout = 'bind_ack'
  const { header, frag, dv } = openPdu(layout, bytes, A.secAddr, [PTYPE.BIND_ACK, PTYPE.ALTER_CONTEXT_RESP])
  const secLength = dv.getUint16(A.secAddrLength, true)
  const secEnd = A.secAddr + secLength
  const at = resultListAt(secLength)
  const L = RESULT_LIST_FIELD
  if (at + L.results > frag.length) {
    throw new FieldValueError(
      `sec_addr of ${secLength} bytes leaves no room for n_results`,
      layout,
      A.secAddrLength,
      'sec_addr',
    )
  }
  const count = frag[at + L.nResults]
  const resultsEnd = at + L.results + RESULT_LENGTH * count
  if (resultsEnd > frag.length) {
    throw new FieldValueError(`${count} results do not fit in ${frag.length} bytes`, layout, at, 'n_results')
  }
  const results: ContextResult[] = []
  for (let o = at + L.results; o < resultsEnd; o += RESULT_LENGTH) {
    results.push({
      result: dv.getUint16(o + R.result, true),
      reason: dv.getUint16(o + R.reason, true),
      transferSyntax: { uuid: readGuid(frag, o + R.uuid), version: dv.getUint32(o + R.version, true) },
    })
  }
  const pdu: BindAckPdu = {
    header,
    maxXmitFrag: dv.getUint16(A.maxXmitFrag, true),
    maxRecvFrag: dv.getUint16(A.maxRecvFrag, true),
    assocGroupId: dv.getUint32(A.assocGroupId, true),
    secondaryAddress: '',
    results,
  }
  if (secLength > 1 && frag[secEnd - 1] === 0) pdu.secondaryAddress = latin1(frag, A.secAddr, secEnd - 1)
  else if (secLength > 0) pdu.secondaryAddressRaw = frag.subarray(A.secAddr, secEnd)
  const padding = frag.subarray(secEnd, at)
  if (padding.some((b) => b !== 0)) pdu.padding = padding
  const reserved = u24(frag, at + L.reserved)
  if (reserved !== 0) pdu.reserved = reserved
  if (resultsEnd < frag.length) pdu.trailing = frag.subarray(resultsEnd)
  return pdu
}

/** frag_length is computed; padding is written from `pdu.padding` (cut or zero-filled to fit). */
export function emitBindAckPdu(pdu: BindAckPdu): Uint8Array {
  const layout = 'bind_ack'
  const addr = pdu.secondaryAddress
  const secLength = pdu.secondaryAddressRaw ? pdu.secondaryAddressRaw.length : addr ? addr.length + 1 : 0
  const secEnd = A.secAddr + secLength
  const at = align4(secEnd)
  const count = pdu.results.length
  if (count > 0xff) throw new FieldValueError(`${count} results do not fit a u8`, layout, at, 'n_results')
  const resultsEnd = at + 4 + RESULT_LENGTH * count
  const out = new Uint8Array(resultsEnd + (pdu.trailing?.length ?? 0))
  const dv = view(out)
  writeRpcHeader(out, pdu.header, out.length)
  dv.setUint16(A.maxXmitFrag, pdu.maxXmitFrag, true)
  dv.setUint16(A.maxRecvFrag, pdu.maxRecvFrag, true)
  dv.setUint32(A.assocGroupId, pdu.assocGroupId, true)
  dv.setUint16(A.secAddrLength, secLength, true)
  if (pdu.secondaryAddressRaw) out.set(pdu.secondaryAddressRaw, A.secAddr)
  else {
    for (let i = 0; i < addr.length; i++) {
      const c = addr.charCodeAt(i)
      if (c > 0xff)
        throw new FieldValueError('secondary address is not Latin-1', layout, A.secAddr + i, 'sec_addr')
      out[A.secAddr + i] = c
    }
  }
  if (pdu.padding) out.set(pdu.padding.subarray(0, at - secEnd), secEnd)
  out[at] = count
  putU24(out, at + 1, pdu.reserved ?? 0)
  let o = at + 4
  for (const r of pdu.results) {
    dv.setUint16(o + R.result, r.result, true)
    dv.setUint16(o + R.reason, r.reason, true)
    writeGuid(out, o + R.uuid, r.transferSyntax.uuid)
    dv.setUint32(o + R.version, r.transferSyntax.version, true)
    o += RESULT_LENGTH
  }
  if (pdu.trailing) out.set(pdu.trailing, o)
  return out
}
