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

/** Common header offsets (§1.2), shared by every connection-oriented PDU. */
export const RPC_HEADER_FIELD = {
  rpcVersion: 0,
  rpcVersionMinor: 1,
  ptype: 2,
  flags: 3,
  drep: 4,
  fragLength: 8,
  authLength: 10,
  callId: 12,
} as const
const H = RPC_HEADER_FIELD
/** Bytes needed to read frag_length: the header up to and including it. */
const FRAG_LENGTH_END = H.fragLength + 2

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
      H.fragLength,
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

// ---- framing: where one PDU ends in a byte stream ----

/** The largest frag_length the u16 field can hold. */
export const MAX_FRAG_LENGTH = 0xffff

/** The stream is not a DCE-RPC PDU stream. `offset` is relative to the frame's first byte. */
export interface NotRpcFrame {
  verdict: 'not-rpc'
  reason: string
  offset: number
}

/**
 * What the bytes at the head of a stream are (one verdict for every framer: host, client, load
 * generator, capture decoder; each keeps its own buffering):
 * - `pdu`: a whole RPC 5 PDU of `length` bytes is there;
 * - `need-more`: not enough bytes to tell, or `length` (when the header gave it) not all there;
 * - `not-rpc`: garbage (HTTP, TLS, a bogus length);
 * - `other-version`: the shape of an RPC header of another `rpc_vers` (a host answers a BIND of
 *   it with BIND_NAK; a decoder may still cut it: the layout is the same), `length` bytes long,
 *   whole when `whole`.
 */
export type RpcFrame =
  | { verdict: 'pdu'; length: number }
  | { verdict: 'need-more'; length: number }
  | NotRpcFrame
  | {
      verdict: 'other-version'
      rpcVersion: number
      rpcVersionMinor: number
      ptype: number
      callId: number
      length: number
      whole: boolean
    }

export interface FrameLimits {
  /** The longest PDU accepted (default 65535: anything the header can say). */
  maxFragment?: number
  /** rpc_vers values other than 5 judged as RPC of another version (default: any). */
  otherVersions?: readonly number[]
  /** PTYPEs that make a header of another rpc_vers look like RPC (default: every PTYPE known here). */
  otherVersionPtypes?: readonly number[]
}

const NEED_HEADER: RpcFrame = Object.freeze({ verdict: 'need-more', length: 0 })
const KNOWN_PTYPES: readonly number[] = Object.values(PTYPE)

/**
 * True when the packed drep says big-endian integers (byte 0's high nibble 0): frag_length, call_id
 * and every other integer of the PDU are then sent the other way round (§1.2).
 */
export function isBigEndianDrep(drepByte0: number): boolean {
  return (drepByte0 & 0xf0) === 0
}

/** frag_length as sent (honouring a big-endian drep); needs 10 bytes from `at`. */
export function readFragLength(bytes: Uint8Array, at = 0): number {
  const hi = bytes[at + H.fragLength + 1]
  const lo = bytes[at + H.fragLength]
  return isBigEndianDrep(bytes[at + H.drep]) ? (lo << 8) | hi : lo | (hi << 8)
}

/** call_id as sent (honouring a big-endian drep); needs 16 bytes from `at`. */
export function readCallId(bytes: Uint8Array, at = 0): number {
  const o = at + H.callId
  return isBigEndianDrep(bytes[at + H.drep])
    ? ((bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]) >>> 0
    : (bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24)) >>> 0
}

/**
 * Judges the PDU starting at `at` of `bytes` (up to `end`). The length is judged from the first 10
 * bytes, so a framer never buffers what a bogus length promises; a header of another version is
 * judged byte by byte (PTYPE, drep, length) so garbage shows at its first telling byte.
 */
export function checkRpcFrame(
  bytes: Uint8Array,
  at = 0,
  end: number = bytes.length,
  limits: FrameLimits = {},
): RpcFrame {
  const have = end - at
  if (have <= 0) return NEED_HEADER
  const maxFragment = limits.maxFragment ?? MAX_FRAG_LENGTH
  if (bytes[at + H.rpcVersion] !== 5) return otherVersion(bytes, at, have, maxFragment, limits)
  if (have < FRAG_LENGTH_END) return NEED_HEADER
  const length = readFragLength(bytes, at)
  if (length < RPC_HEADER_LENGTH) {
    return notRpc(`frag_length ${length} is shorter than the header`, H.fragLength)
  }
  if (length > maxFragment) {
    return notRpc(`frag_length ${length} exceeds the fragment limit ${maxFragment}`, H.fragLength)
  }
  return have >= length ? { verdict: 'pdu', length } : { verdict: 'need-more', length }
}

function otherVersion(
  bytes: Uint8Array,
  at: number,
  have: number,
  maxFragment: number,
  limits: FrameLimits,
): RpcFrame {
  const ptypes = limits.otherVersionPtypes ?? KNOWN_PTYPES
  const first = () => Array.from(bytes.subarray(at, at + Math.min(have, 8)), hex2).join(' ')
  const garbage = () => notRpc(`not DCE-RPC (first bytes ${first()})`, 0)
  if (limits.otherVersions && !limits.otherVersions.includes(bytes[at + H.rpcVersion])) return garbage()
  if (have > H.ptype && !ptypes.includes(bytes[at + H.ptype])) return garbage()
  // a packed drep's first byte is 0x10 (little-endian) or 0x00 (big-endian), ASCII either way
  if (have > H.drep && (bytes[at + H.drep] & 0xef) !== 0) return garbage()
  if (have < FRAG_LENGTH_END) return NEED_HEADER
  const length = readFragLength(bytes, at)
  if (length < RPC_HEADER_LENGTH || length > maxFragment) return garbage()
  if (have < RPC_HEADER_LENGTH) return NEED_HEADER
  return {
    verdict: 'other-version',
    rpcVersion: bytes[at + H.rpcVersion],
    rpcVersionMinor: bytes[at + H.rpcVersionMinor],
    ptype: bytes[at + H.ptype],
    callId: readCallId(bytes, at),
    length,
    whole: have >= length,
  }
}

function notRpc(reason: string, offset: number): NotRpcFrame {
  return { verdict: 'not-rpc', reason, offset }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}
