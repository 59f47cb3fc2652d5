// DCE-RPC connection-oriented common header (§1.2), the identifiers of §1.3 / §1.8 and the
// framing checks every PDU parser shares. Re-exported by rpc.ts, which is what callers import.
import { type ByteView, FieldValueError, need, view } from './bytes.js'

export const PTYPE = {
  REQUEST: 0,
  RESPONSE: 2,
  FAULT: 3,
  BIND: 11,
  BIND_ACK: 12,
  BIND_NAK: 13,
  ALTER_CONTEXT: 14,
  ALTER_CONTEXT_RESP: 15,
} as const

export const PFC = {
  FIRST_FRAG: 0x01,
  LAST_FRAG: 0x02,
  PENDING_CANCEL: 0x04,
  RESERVED_1: 0x08,
  CONC_MPX: 0x10,
  DID_NOT_EXECUTE: 0x20,
  MAYBE: 0x40,
  OBJECT_UUID: 0x80,
} as const

export const RPC_HEADER_LENGTH = 16
/** packed_drep `10 00 00 00` read as a u32 LE: little-endian integers, ASCII, IEEE floats. */
export const DREP_LE_ASCII_IEEE = 0x00000010

/** Common header offsets (§1.2). */
const H = {
  rpcVersion: 0,
  rpcVersionMinor: 1,
  ptype: 2,
  flags: 3,
  drep: 4,
  fragLength: 8,
  authLength: 10,
  callId: 12,
} as const

export interface RpcHeader {
  rpcVersion: number
  rpcVersionMinor: number
  ptype: number
  flags: number
  drep: number
  fragLength: number
  authLength: number
  callId: number
}

// ---- identifiers (§1.3, §1.8) ----

export const KMS_INTERFACE_UUID = '51c82175-844e-4750-b0d8-ec255555bc06'
export const KMS_INTERFACE_VERSION = { major: 1, minor: 0 } as const
export const NDR32_UUID = '8a885d04-1ceb-11c9-9fe8-08002b104860'
export const NDR32_VERSION = 2
export const NDR64_UUID = '71710533-beba-4937-8319-b5dbef9ccc36'
export const NDR64_VERSION = 1
export const BTFN_VERSION = 1
/** String form of the BTFN wire prefix `2c 1c b7 6c 12 98 40 45` (first three GUID groups). */
export const BTFN_UUID_PREFIX = '6cb71c2c-9812-4540-'
export const BTFN_WIRE_PREFIX = Uint8Array.of(0x2c, 0x1c, 0xb7, 0x6c, 0x12, 0x98, 0x40, 0x45)

export function isBtfnSyntax(uuid: string): boolean {
  return uuid.length === 36 && uuid.slice(0, 19).toLowerCase() === BTFN_UUID_PREFIX
}

/**
 * Byte 0 of the BindTimeFeatureNegotiationBitmask, i.e. wire byte 8 of the UUID (the first two
 * hex digits of the fourth group). The other seven bytes have no defined bits (§1.8).
 */
export function btfnBitmask(uuid: string): number {
  const n = Number.parseInt(uuid.slice(19, 21), 16)
  return Number.isNaN(n) ? 0 : n
}

export function btfnUuid(bitmask: number): string {
  if (!Number.isInteger(bitmask) || bitmask < 0 || bitmask > 0xff) {
    throw new FieldValueError(`BTFN bitmask ${bitmask} is not a byte`, 'btfn uuid', 8, 'bitmask')
  }
  return `${BTFN_UUID_PREFIX}${bitmask.toString(16).padStart(2, '0')}00-000000000000`
}

// ---- header ----

/** Reads the 16-byte header. Validates nothing: version, ptype and drep are the host's call. */
export function parseRpcHeader(bytes: Uint8Array): RpcHeader {
  need('rpc header', bytes, RPC_HEADER_LENGTH)
  const dv = view(bytes)
  return {
    rpcVersion: bytes[H.rpcVersion],
    rpcVersionMinor: bytes[H.rpcVersionMinor],
    ptype: bytes[H.ptype],
    flags: bytes[H.flags],
    drep: dv.getUint32(H.drep, true),
    fragLength: dv.getUint16(H.fragLength, true),
    authLength: dv.getUint16(H.authLength, true),
    callId: dv.getUint32(H.callId, true),
  }
}

/** Writes `h` at offset 0 of `out`; emitters pass the frag_length they computed. */
export function writeRpcHeader(out: Uint8Array, h: RpcHeader, fragLength: number = h.fragLength): void {
  const dv = view(out)
  out[H.rpcVersion] = h.rpcVersion
  out[H.rpcVersionMinor] = h.rpcVersionMinor
  out[H.ptype] = h.ptype
  out[H.flags] = h.flags
  dv.setUint32(H.drep, h.drep, true)
  if (fragLength > 0xffff) {
    throw new FieldValueError(
      `PDU of ${fragLength} bytes exceeds frag_length`,
      'rpc header',
      8,
      'frag_length',
    )
  }
  dv.setUint16(H.fragLength, fragLength, true)
  dv.setUint16(H.authLength, h.authLength ?? 0, true)
  dv.setUint32(H.callId, h.callId, true)
}

/** A header for a PDU kmslab sends: RPC 5.0, single fragment, little-endian drep. */
export function makeHeader(ptype: number, callId: number, flags = PFC.FIRST_FRAG | PFC.LAST_FRAG): RpcHeader {
  return {
    rpcVersion: 5,
    rpcVersionMinor: 0,
    ptype,
    flags,
    drep: DREP_LE_ASCII_IEEE,
    fragLength: 0,
    authLength: 0,
    callId,
  }
}

export interface OpenedPdu {
  header: RpcHeader
  /** The input cut to frag_length: bytes past the fragment belong to the next PDU. */
  frag: Uint8Array
  dv: ByteView
}

/**
 * Parses the header and checks the framing every layout relies on: frag_length covers at least
 * `minLength` bytes, no more than were given, and the PTYPE is one of `ptypes` (all if omitted).
 */
export function openPdu(
  layout: string,
  bytes: Uint8Array,
  minLength: number,
  ptypes?: readonly number[],
): OpenedPdu {
  const header = parseRpcHeader(bytes)
  if (ptypes && !ptypes.includes(header.ptype)) {
    throw new FieldValueError(`PTYPE ${header.ptype} is not a ${layout}`, layout, H.ptype, 'ptype')
  }
  if (header.fragLength < minLength) {
    throw new FieldValueError(
      `frag_length ${header.fragLength} is below the ${minLength}-byte minimum`,
      layout,
      H.fragLength,
      'frag_length',
    )
  }
  need(layout, bytes, header.fragLength)
  const frag = bytes.subarray(0, header.fragLength)
  return { header, frag, dv: view(frag) }
}

export function align4(n: number): number {
  return (n + 3) & ~3
}
