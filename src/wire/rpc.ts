// DCE-RPC connection-oriented PDUs (§1.2-1.10): REQUEST, RESPONSE, FAULT, BIND_NAK, the generic
// parsePdu/emitPdu, and (re-exported) the header and the BIND family. Conventions for every PDU:
// - parse reads exactly frag_length bytes (more input is the next PDU's), checks every length
//   before reading, and validates the PTYPE against the layout but not rpc_vers or drep;
// - emit computes frag_length from the content (`header.fragLength` is ignored) and writes
//   `header.authLength` as given (0 on this wire); an auth trailer, if any, stays in the stub.
import { FieldValueError, readGuid, view, writeGuid } from './bytes.js'
import {
  type BindAckPdu,
  type BindPdu,
  emitBindAckPdu,
  emitBindPdu,
  parseBindAckPdu,
  parseBindPdu,
} from './rpc-bind.js'
import { openPdu, PFC, PTYPE, type RpcHeader, writeRpcHeader } from './rpc-header.js'

export * from './rpc-bind.js'
export * from './rpc-header.js'
export * from './rpc-status.js'

/** REQUEST (§1.9); with PFC_OBJECT_UUID a 16-byte object UUID sits between opnum and stub. */
export const REQUEST_FIELD = {
  allocHint: 16,
  contextId: 20,
  opnum: 22,
  objectUuid: 24,
  stub: 24,
  stubWithObject: 40,
} as const
/** RESPONSE and FAULT (§1.10). */
export const RESPONSE_FIELD = {
  allocHint: 16,
  contextId: 20,
  cancelCount: 22,
  reserved: 23,
  stub: 24,
  status: 24,
  reserved2: 28,
} as const
export const FAULT_LENGTH = 32
/** BIND_NAK (§1.10): reason, then n_protocols and (major, minor) byte pairs. */
export const BIND_NAK_FIELD = { rejectReason: 16, nProtocols: 18, protocols: 19 } as const
const Q = REQUEST_FIELD
const S = RESPONSE_FIELD
const N = BIND_NAK_FIELD

export interface RequestPdu {
  header: RpcHeader
  allocHint: number
  contextId: number
  opnum: number
  /** Present exactly when PFC_OBJECT_UUID is set; emit sets or clears the flag to match. */
  objectUuid?: string
  stub: Uint8Array
}

export interface ResponsePdu {
  header: RpcHeader
  allocHint: number
  contextId: number
  cancelCount: number
  reserved: number
  stub: Uint8Array
}

export interface FaultPdu {
  header: RpcHeader
  allocHint: number
  contextId: number
  cancelCount: number
  reserved: number
  status: number
  reserved2: number
  /** Bytes past the 32-byte body; set only when present. */
  extra?: Uint8Array
}

export interface BindNakPdu {
  header: RpcHeader
  rejectReason: number
  protocols: { major: number; minor: number }[]
  /** Bytes after the protocol list (Windows pads/signs here); set only when present. */
  trailing?: Uint8Array
}

/** Any other PTYPE (auth3, shutdown, ...): the body is kept as is. */
export interface OtherPdu {
  header: RpcHeader
  body: Uint8Array
}

export type AnyPdu =
  | ({ kind: 'bind' | 'alter_context' } & BindPdu)
  | ({ kind: 'bind_ack' | 'alter_context_resp' } & BindAckPdu)
  | ({ kind: 'bind_nak' } & BindNakPdu)
  | ({ kind: 'request' } & RequestPdu)
  | ({ kind: 'response' } & ResponsePdu)
  | ({ kind: 'fault' } & FaultPdu)
  | ({ kind: 'other' } & OtherPdu)

export function parseRequestPdu(bytes: Uint8Array): RequestPdu {
  const first = openPdu('request', bytes, Q.stub, [PTYPE.REQUEST])
  const hasObject = (first.header.flags & PFC.OBJECT_UUID) !== 0
  const { header, frag, dv } = hasObject ? openPdu('request', bytes, Q.stubWithObject) : first
  const pdu: RequestPdu = {
    header,
    allocHint: dv.getUint32(Q.allocHint, true),
    contextId: dv.getUint16(Q.contextId, true),
    opnum: dv.getUint16(Q.opnum, true),
    stub: frag.subarray(hasObject ? Q.stubWithObject : Q.stub),
  }
  if (hasObject) pdu.objectUuid = readGuid(frag, Q.objectUuid)
  return pdu
}

export function emitRequestPdu(pdu: RequestPdu): Uint8Array {
  const start = pdu.objectUuid === undefined ? Q.stub : Q.stubWithObject
  const out = new Uint8Array(start + pdu.stub.length)
  const dv = view(out)
  const flags =
    pdu.objectUuid === undefined ? pdu.header.flags & ~PFC.OBJECT_UUID : pdu.header.flags | PFC.OBJECT_UUID
  writeRpcHeader(out, { ...pdu.header, flags }, out.length)
  dv.setUint32(Q.allocHint, pdu.allocHint, true)
  dv.setUint16(Q.contextId, pdu.contextId, true)
  dv.setUint16(Q.opnum, pdu.opnum, true)
  if (pdu.objectUuid !== undefined) writeGuid(out, Q.objectUuid, pdu.objectUuid)
  out.set(pdu.stub, start)
  return out
}

export function parseResponsePdu(bytes: Uint8Array): ResponsePdu {
  const { header, frag, dv } = openPdu('response', bytes, S.stub, [PTYPE.RESPONSE])
  return {
    header,
    allocHint: dv.getUint32(S.allocHint, true),
    contextId: dv.getUint16(S.contextId, true),
    cancelCount: frag[S.cancelCount],
    reserved: frag[S.reserved],
    stub: frag.subarray(S.stub),
  }
}

export function emitResponsePdu(pdu: ResponsePdu): Uint8Array {
  const out = new Uint8Array(S.stub + pdu.stub.length)
  const dv = view(out)
  writeRpcHeader(out, pdu.header, out.length)
  dv.setUint32(S.allocHint, pdu.allocHint, true)
  dv.setUint16(S.contextId, pdu.contextId, true)
  out[S.cancelCount] = pdu.cancelCount
  out[S.reserved] = pdu.reserved
  out.set(pdu.stub, S.stub)
  return out
}

export function parseFaultPdu(bytes: Uint8Array): FaultPdu {
  const { header, frag, dv } = openPdu('fault', bytes, FAULT_LENGTH, [PTYPE.FAULT])
  const pdu: FaultPdu = {
    header,
    allocHint: dv.getUint32(S.allocHint, true),
    contextId: dv.getUint16(S.contextId, true),
    cancelCount: frag[S.cancelCount],
    reserved: frag[S.reserved],
    status: dv.getUint32(S.status, true),
    reserved2: dv.getUint32(S.reserved2, true),
  }
  if (frag.length > FAULT_LENGTH) pdu.extra = frag.subarray(FAULT_LENGTH)
  return pdu
}

export function emitFaultPdu(pdu: FaultPdu): Uint8Array {
  const out = new Uint8Array(FAULT_LENGTH + (pdu.extra?.length ?? 0))
  const dv = view(out)
  writeRpcHeader(out, pdu.header, out.length)
  dv.setUint32(S.allocHint, pdu.allocHint, true)
  dv.setUint16(S.contextId, pdu.contextId, true)
  out[S.cancelCount] = pdu.cancelCount
  out[S.reserved] = pdu.reserved
  dv.setUint32(S.status, pdu.status, true)
  dv.setUint32(S.reserved2, pdu.reserved2, true)
  if (pdu.extra) out.set(pdu.extra, FAULT_LENGTH)
  return out
}

export function parseBindNakPdu(bytes: Uint8Array): BindNakPdu {
  const { header, frag, dv } = openPdu('bind_nak', bytes, N.protocols, [PTYPE.BIND_NAK])
  const count = frag[N.nProtocols]
  const end = N.protocols + 2 * count
  if (end > frag.length) {
    throw new FieldValueError(
      `${count} protocols do not fit in ${frag.length} bytes`,
      'bind_nak',
      18,
      'n_protocols',
    )
  }
  const protocols: { major: number; minor: number }[] = []
  for (let o = N.protocols; o < end; o += 2) protocols.push({ major: frag[o], minor: frag[o + 1] })
  const pdu: BindNakPdu = { header, rejectReason: dv.getUint16(N.rejectReason, true), protocols }
  if (end < frag.length) pdu.trailing = frag.subarray(end)
  return pdu
}

export function emitBindNakPdu(pdu: BindNakPdu): Uint8Array {
  const count = pdu.protocols.length
  if (count > 0xff)
    throw new FieldValueError(`${count} protocols do not fit a u8`, 'bind_nak', 18, 'n_protocols')
  const end = N.protocols + 2 * count
  const out = new Uint8Array(end + (pdu.trailing?.length ?? 0))
  writeRpcHeader(out, pdu.header, out.length)
  view(out).setUint16(N.rejectReason, pdu.rejectReason, true)
  out[N.nProtocols] = count
  pdu.protocols.forEach((p, i) => {
    out[N.protocols + 2 * i] = p.major
    out[N.protocols + 2 * i + 1] = p.minor
  })
  if (pdu.trailing) out.set(pdu.trailing, end)
  return out
}

/** Dispatches on PTYPE; an unknown PTYPE yields kind 'other' (still framed by frag_length). */
export function parsePdu(bytes: Uint8Array): AnyPdu {
  switch (bytes.length > 2 ? bytes[2] : -1) {
    case PTYPE.BIND:
      return { kind: 'bind', ...parseBindPdu(bytes) }
    case PTYPE.ALTER_CONTEXT:
      return { kind: 'alter_context', ...parseBindPdu(bytes) }
    case PTYPE.BIND_ACK:
      return { kind: 'bind_ack', ...parseBindAckPdu(bytes) }
    case PTYPE.ALTER_CONTEXT_RESP:
      return { kind: 'alter_context_resp', ...parseBindAckPdu(bytes) }
    case PTYPE.BIND_NAK:
      return { kind: 'bind_nak', ...parseBindNakPdu(bytes) }
    case PTYPE.REQUEST:
      return { kind: 'request', ...parseRequestPdu(bytes) }
    case PTYPE.RESPONSE:
      return { kind: 'response', ...parseResponsePdu(bytes) }
    case PTYPE.FAULT:
      return { kind: 'fault', ...parseFaultPdu(bytes) }
    default: {
      const { header, frag } = openPdu('pdu', bytes, 16)
      return { kind: 'other', header, body: frag.subarray(16) }
    }
  }
}

export function emitPdu(pdu: AnyPdu): Uint8Array {
  switch (pdu.kind) {
    case 'bind':
    case 'alter_context':
      return emitBindPdu(pdu)
    case 'bind_ack':
    case 'alter_context_resp':
      return emitBindAckPdu(pdu)
    case 'bind_nak':
      return emitBindNakPdu(pdu)
    case 'request':
      return emitRequestPdu(pdu)
    case 'response':
      return emitResponsePdu(pdu)
    case 'fault':
      return emitFaultPdu(pdu)
    case 'other': {
      const out = new Uint8Array(16 + pdu.body.length)
      writeRpcHeader(out, pdu.header, out.length)
      out.set(pdu.body, 16)
      return out
    }
  }
}
