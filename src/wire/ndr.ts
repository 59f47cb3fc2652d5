// NDR framing of the one KMS call, RequestActivation (§1.11), in both transfer syntaxes, and the
// stub-based syntax guess of §1.12. Sizes are u32, NDR64 conformance and referents u64 (bigint).
import { type ByteView, FieldValueError, need, TruncatedError, view } from './bytes.js'
import { align4 } from './rpc-header.js'

export type TransferSyntax = 'ndr32' | 'ndr64'

/** Request stub offsets (§1.11). NDR64 aligns the u64 conformance, hence the 4 pad bytes. */
export const NDR_REQUEST_STUB_FIELD = {
  ndr32: { requestSize: 0, conformance: 4, payload: 8 },
  ndr64: { requestSize: 0, padding: 4, conformance: 8, payload: 16 },
} as const
/** Response stub offsets; a NULL referent (refusal) is followed directly by the HRESULT. */
export const NDR_RESPONSE_STUB_FIELD = {
  ndr32: { responseSize: 0, referent: 4, conformance: 8, refusalHresult: 8, payload: 12 },
  ndr64: { responseSize: 0, padding: 4, referent: 8, conformance: 16, refusalHresult: 16, payload: 24 },
} as const
const REQ = NDR_REQUEST_STUB_FIELD
const RESP = NDR_RESPONSE_STUB_FIELD
/** The referent id both emulators (and Windows) put in the `*response` pointer. */
export const NDR_REFERENT = 0x00020000

export interface RequestStub {
  requestSize: number
  /** max_count of the conformant array: a number in NDR32, a bigint in NDR64. */
  conformance: number | bigint
  payload: Uint8Array
  /** NDR64 only: the u32 alignment pad after requestSize (vlmcsd reads it as the high half of a u64). */
  padding?: number
  /** Bytes after the array; set only when present. */
  trailing?: Uint8Array
}

export interface ResponseStub {
  responseSize: number
  /** 0 (NULL) for a refusal; a number in NDR32, a bigint in NDR64. */
  referent: number | bigint
  /** The KMS response, or null for a refusal (NULL referent). */
  payload: Uint8Array | null
  /** Unsigned 32-bit HRESULT, read at the 4-aligned position after the array. */
  hresult: number
  /** Some alignment padding (NDR64 bytes 4-7, or the bytes before the HRESULT) is not zero. */
  paddingNonZero: boolean
  /** NDR64 only: the u32 alignment pad after responseSize. */
  padding?: number
  /** Bytes after the HRESULT; set only when present. */
  trailing?: Uint8Array
}

function read64(dv: ByteView, o: number): bigint {
  return dv.getBigUint64(o, true)
}

/** Throws WireError when requestSize and the conformance disagree or the array runs past the stub. */
export function parseRequestStub(stub: Uint8Array, syntax: TransferSyntax): RequestStub {
  const layout = `${syntax} request stub`
  const F = REQ[syntax]
  need(layout, stub, F.payload)
  const dv = view(stub)
  const requestSize = dv.getUint32(F.requestSize, true)
  const conformance = syntax === 'ndr32' ? dv.getUint32(F.conformance, true) : read64(dv, F.conformance)
  if (BigInt(requestSize) !== BigInt(conformance)) {
    throw new FieldValueError(
      `requestSize ${requestSize} ≠ conformance ${conformance}`,
      layout,
      F.conformance,
    )
  }
  const end = F.payload + requestSize
  if (end > stub.length) throw new TruncatedError(layout, end, stub.length)
  const value: RequestStub = { requestSize, conformance, payload: stub.subarray(F.payload, end) }
  if (syntax === 'ndr64') value.padding = dv.getUint32(REQ.ndr64.padding, true)
  if (end < stub.length) value.trailing = stub.subarray(end)
  return value
}

/** `trailing` reproduces stubs with bytes after the array (py-kms' client pads its V4 stub by 4). */
export function emitRequestStub(
  payload: Uint8Array,
  syntax: TransferSyntax,
  trailing?: Uint8Array,
): Uint8Array {
  const F = REQ[syntax]
  const out = new Uint8Array(F.payload + payload.length + (trailing?.length ?? 0))
  if (trailing) out.set(trailing, F.payload + payload.length)
  const dv = view(out)
  dv.setUint32(F.requestSize, payload.length, true)
  if (syntax === 'ndr32') dv.setUint32(F.conformance, payload.length, true)
  else dv.setBigUint64(F.conformance, BigInt(payload.length), true)
  out.set(payload, F.payload)
  return out
}

/** Reads a success or refusal stub (§1.11); which one is told by the referent. */
export function parseResponseStub(stub: Uint8Array, syntax: TransferSyntax): ResponseStub {
  const layout = `${syntax} response stub`
  const F = RESP[syntax]
  need(layout, stub, F.conformance) // size, [pad,] referent
  const dv = view(stub)
  const responseSize = dv.getUint32(F.responseSize, true)
  const referent = syntax === 'ndr32' ? dv.getUint32(F.referent, true) : read64(dv, F.referent)
  const padding = syntax === 'ndr64' ? dv.getUint32(RESP.ndr64.padding, true) : 0
  let payload: Uint8Array | null = null
  let at: number = F.refusalHresult
  let padNonZero = padding !== 0
  if (referent !== 0 && referent !== 0n) {
    need(layout, stub, F.payload)
    const conformance = syntax === 'ndr32' ? dv.getUint32(F.conformance, true) : read64(dv, F.conformance)
    if (BigInt(responseSize) !== BigInt(conformance)) {
      throw new FieldValueError(
        `responseSize ${responseSize} ≠ conformance ${conformance}`,
        layout,
        F.conformance,
      )
    }
    const end = F.payload + responseSize
    at = align4(end)
    need(layout, stub, at + 4)
    payload = stub.subarray(F.payload, end)
    for (let i = end; i < at; i++) padNonZero ||= stub[i] !== 0
  }
  need(layout, stub, at + 4)
  const value: ResponseStub = {
    responseSize,
    referent,
    payload,
    hresult: dv.getUint32(at, true),
    paddingNonZero: padNonZero,
  }
  if (syntax === 'ndr64') value.padding = padding
  if (at + 4 < stub.length) value.trailing = stub.subarray(at + 4)
  return value
}

/** Success stub: size, referent 0x20000, conformance, the bytes, zero pad to 4, HRESULT. */
export function emitResponseStub(payload: Uint8Array, hresult: number, syntax: TransferSyntax): Uint8Array {
  const F = RESP[syntax]
  const at = align4(F.payload + payload.length)
  const out = new Uint8Array(at + 4)
  const dv = view(out)
  dv.setUint32(F.responseSize, payload.length, true)
  if (syntax === 'ndr32') {
    dv.setUint32(F.referent, NDR_REFERENT, true)
    dv.setUint32(F.conformance, payload.length, true)
  } else {
    dv.setBigUint64(F.referent, BigInt(NDR_REFERENT), true)
    dv.setBigUint64(F.conformance, BigInt(payload.length), true)
  }
  out.set(payload, F.payload)
  dv.setUint32(at, hresult, true)
  return out
}

/** Refusal stub: size 0, NULL referent, HRESULT (12 bytes in NDR32, 20 in NDR64). */
export function emitRefusalStub(hresult: number, syntax: TransferSyntax): Uint8Array {
  const at = RESP[syntax].refusalHresult
  const out = new Uint8Array(at + 4)
  view(out).setUint32(at, hresult, true)
  return out
}

/**
 * The transfer syntax a stub was written in, from its sizes alone (§1.12), for captures whose
 * bind was not seen; null when neither layout fits exactly.
 */
export function guessSyntax(stub: Uint8Array, isRequest: boolean): TransferSyntax | null {
  const n = stub.length
  if (n < 12) return null
  const dv = view(stub)
  const u32 = (o: number) => dv.getUint32(o, true)
  if (isRequest) {
    // §1.12 wants the array to end the stub exactly; py-kms' client adds 4 bytes after a V4
    // request, so allow up to 7 bytes of tail (an NDR64 stub never passes the NDR32 test: u32[1] = 0).
    const fits = (start: number, size: number | bigint) => {
      const tail = n - start - Number(size)
      return tail >= 0 && tail < 8
    }
    if (u32(0) === u32(4) && fits(8, u32(0))) return 'ndr32'
    if (n >= 16 && read64(dv, 0) === read64(dv, 8) && fits(16, read64(dv, 0))) return 'ndr64'
    return null
  }
  // refusals: size 0, NULL referent, HRESULT and nothing else
  if (n === 12 && u32(4) === 0) return 'ndr32'
  if (n === 20 && read64(dv, 0) === 0n && read64(dv, 8) === 0n) return 'ndr64'
  const m = u32(0)
  if (u32(4) !== 0 && u32(8) === m && n === align4(12 + m) + 4) return 'ndr32'
  if (
    n >= 24 &&
    u32(4) === 0 &&
    read64(dv, 8) !== 0n &&
    read64(dv, 16) === BigInt(m) &&
    n === align4(24 + m) + 4
  ) {
    return 'ndr64'
  }
  return null
}
