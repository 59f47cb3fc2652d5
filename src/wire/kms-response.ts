// The KMS response (§3): the base response with its variable-length ePID, the V4 response and
// the V5/V6 plaintext payloads (before PKCS#7 padding). Client-side acceptance rules (PIDSize ≤
// 128, NUL placement, echoes) belong to src/kms: the parser only reports what it found.
import { FieldValueError, need, readGuid, TruncatedError, view, writeGuid } from './bytes.js'
import { type EncryptedRequest, emitEncryptedMessage, parseEncryptedMessage } from './kms-request.js'

/** Base response offsets (§3.1); the fields after the ePID are relative to its end (8 + PIDSize). */
export const KMS_RESPONSE_FIELD = { versionMinor: 0, versionMajor: 2, pidSize: 4, pid: 8 } as const
const F = KMS_RESPONSE_FIELD
/** Base response fields after the ePID, relative to its end. */
export const KMS_RESPONSE_TAIL_FIELD = {
  cmid: 0,
  requestTime: 16,
  currentCount: 24,
  activationInterval: 28,
  renewalInterval: 32,
  end: 36,
} as const
const T = KMS_RESPONSE_TAIL_FIELD
export const BASE_RESPONSE_FIXED_LENGTH = F.pid + T.end // 44
/** Lengths of what follows the base response (§3.2-3.4). */
/** The V4 response: the base response, then its MAC (§3.2). */
export const V4_RESPONSE_MAC_LENGTH = 16
const V4_TAIL = V4_RESPONSE_MAC_LENGTH
/** V5 and V6 fields after the base response, relative to its end (§3.3, §3.4). */
export const KMS_V5_RESPONSE_FIELD = { randomXorD: 0, hash: 16, end: 48 } as const
export const KMS_V6_RESPONSE_FIELD = {
  randomXorD: 0,
  hash: 16,
  hwid: 48,
  xorSalts: 56,
  hmac: 72,
  end: 88,
} as const
const V5 = KMS_V5_RESPONSE_FIELD
const V6 = KMS_V6_RESPONSE_FIELD

export interface KmsBaseResponse {
  versionMinor: number
  versionMajor: number
  /** Up to the first NUL of the PID field. */
  epid: string
  cmid: string
  requestTime: bigint
  currentCount: number
  activationInterval: number
  renewalInterval: number
}

/** What the parser saw of the PID field, for the client's checks (§3.1). */
export interface PidInfo {
  pidSize: number
  /** PIDSize is even and ≥ 2 and its last UTF-16 unit is NUL. */
  pidTerminated: boolean
  /** A unit before the last one is NUL (the ePID string stops there). */
  pidEmbeddedNul: boolean
}

export interface V4Response {
  base: KmsBaseResponse
  mac: Uint8Array
}

export interface V5ResponsePayload {
  base: KmsBaseResponse
  randomXorD: Uint8Array
  hash: Uint8Array
}

export interface V6ResponsePayload {
  base: KmsBaseResponse
  randomXorD: Uint8Array
  hash: Uint8Array
  hwid: Uint8Array
  xorSalts: Uint8Array
  hmac: Uint8Array
}

export type EncryptedResponse = EncryptedRequest

/** PIDSize = 2·(chars + 1): the ePID plus its UTF-16 NUL. */
export function pidSizeOf(resp: KmsBaseResponse): number {
  return 2 * (resp.epid.length + 1)
}

/**
 * Reads a base response at the start of `bytes` (which may go on: V4 MAC, V5/V6 fields).
 * Throws FieldValueError when PIDSize runs past the buffer, whatever its value otherwise.
 */
export function parseBaseResponse(bytes: Uint8Array): { value: KmsBaseResponse; length: number } & PidInfo {
  const layout = 'kms base response'
  need(layout, bytes, F.pid)
  const dv = view(bytes)
  const pidSize = dv.getUint32(F.pidSize, true)
  const t = F.pid + pidSize
  if (t + T.end > bytes.length) {
    throw new FieldValueError(
      `PIDSize ${pidSize} runs past the ${bytes.length}-byte buffer`,
      layout,
      F.pidSize,
      'pidSize',
    )
  }
  const units = pidSize >>> 1
  let epid = ''
  let firstNul = -1
  for (let i = 0; i < units; i++) {
    const u = dv.getUint16(F.pid + 2 * i, true)
    if (u === 0) {
      firstNul = i
      break
    }
    epid += String.fromCharCode(u)
  }
  const last = units - 1
  const pidTerminated = pidSize >= 2 && pidSize % 2 === 0 && dv.getUint16(F.pid + 2 * last, true) === 0
  const value: KmsBaseResponse = {
    versionMinor: dv.getUint16(F.versionMinor, true),
    versionMajor: dv.getUint16(F.versionMajor, true),
    epid,
    cmid: readGuid(bytes, t + T.cmid),
    requestTime: dv.getBigUint64(t + T.requestTime, true),
    currentCount: dv.getUint32(t + T.currentCount, true),
    activationInterval: dv.getUint32(t + T.activationInterval, true),
    renewalInterval: dv.getUint32(t + T.renewalInterval, true),
  }
  return {
    value,
    length: t + T.end,
    pidSize,
    pidTerminated,
    pidEmbeddedNul: firstNul >= 0 && firstNul < last,
  }
}

/** Writes the base response at the start of `out` and returns where the fields after it start. */
export function writeBaseResponse(out: Uint8Array, resp: KmsBaseResponse): number {
  const dv = view(out)
  const pidSize = pidSizeOf(resp)
  dv.setUint16(F.versionMinor, resp.versionMinor, true)
  dv.setUint16(F.versionMajor, resp.versionMajor, true)
  dv.setUint32(F.pidSize, pidSize, true)
  for (let i = 0; i < resp.epid.length; i++) dv.setUint16(F.pid + 2 * i, resp.epid.charCodeAt(i), true)
  dv.setUint16(F.pid + pidSize - 2, 0, true)
  const t = F.pid + pidSize
  writeGuid(out, t + T.cmid, resp.cmid)
  dv.setBigUint64(t + T.requestTime, BigInt.asUintN(64, resp.requestTime), true)
  dv.setUint32(t + T.currentCount, resp.currentCount, true)
  dv.setUint32(t + T.activationInterval, resp.activationInterval, true)
  dv.setUint32(t + T.renewalInterval, resp.renewalInterval, true)
  return t + T.end
}

export function emitBaseResponse(resp: KmsBaseResponse): Uint8Array {
  const out = new Uint8Array(BASE_RESPONSE_FIXED_LENGTH + pidSizeOf(resp))
  writeBaseResponse(out, resp)
  return out
}

/** The base response must be followed by exactly `tail` bytes (the caller strips padding first). */
function parseWithTail(layout: string, bytes: Uint8Array, tail: number) {
  const base = parseBaseResponse(bytes)
  const want = base.length + tail
  if (bytes.length < want) throw new TruncatedError(layout, want, bytes.length)
  if (bytes.length > want)
    throw new FieldValueError(`${bytes.length - want} bytes past the end`, layout, want)
  const { value, length, ...pid } = base
  return { value, at: length, pid }
}

function checkLength(layout: string, field: string, bytes: Uint8Array, size: number): void {
  if (bytes.length !== size)
    throw new FieldValueError(`${field} of ${bytes.length} bytes, not ${size}`, layout, 0, field)
}

/** Exactly 60 + PIDSize bytes; the MAC is not verified. */
export function parseV4Response(bytes: Uint8Array): V4Response & PidInfo {
  const { value, at, pid } = parseWithTail('kms v4 response', bytes, V4_TAIL)
  return { base: value, mac: bytes.subarray(at, at + V4_TAIL), ...pid }
}

export function emitV4Response(resp: V4Response): Uint8Array {
  checkLength('kms v4 response', 'mac', resp.mac, V4_TAIL)
  const out = new Uint8Array(BASE_RESPONSE_FIXED_LENGTH + pidSizeOf(resp.base) + V4_TAIL)
  out.set(resp.mac, writeBaseResponse(out, resp.base))
  return out
}

/** Exactly 92 + PIDSize bytes: the decrypted payload with its PKCS#7 padding already removed. */
export function parseV5ResponsePayload(bytes: Uint8Array): V5ResponsePayload & PidInfo {
  const { value, at, pid } = parseWithTail('kms v5 response payload', bytes, V5.end)
  return {
    base: value,
    randomXorD: bytes.subarray(at + V5.randomXorD, at + V5.hash),
    hash: bytes.subarray(at + V5.hash, at + V5.end),
    ...pid,
  }
}

export function emitV5ResponsePayload(p: V5ResponsePayload): Uint8Array {
  const layout = 'kms v5 response payload'
  checkLength(layout, 'randomXorD', p.randomXorD, V5.hash - V5.randomXorD)
  checkLength(layout, 'hash', p.hash, V5.end - V5.hash)
  const out = new Uint8Array(BASE_RESPONSE_FIXED_LENGTH + pidSizeOf(p.base) + V5.end)
  const at = writeBaseResponse(out, p.base)
  out.set(p.randomXorD, at + V5.randomXorD)
  out.set(p.hash, at + V5.hash)
  return out
}

/** Exactly 132 + PIDSize bytes, padding removed. */
export function parseV6ResponsePayload(bytes: Uint8Array): V6ResponsePayload & PidInfo {
  const { value, at, pid } = parseWithTail('kms v6 response payload', bytes, V6.end)
  return {
    base: value,
    randomXorD: bytes.subarray(at + V6.randomXorD, at + V6.hash),
    hash: bytes.subarray(at + V6.hash, at + V6.hwid),
    hwid: bytes.subarray(at + V6.hwid, at + V6.xorSalts),
    xorSalts: bytes.subarray(at + V6.xorSalts, at + V6.hmac),
    hmac: bytes.subarray(at + V6.hmac, at + V6.end),
    ...pid,
  }
}

export function emitV6ResponsePayload(p: V6ResponsePayload): Uint8Array {
  const layout = 'kms v6 response payload'
  checkLength(layout, 'randomXorD', p.randomXorD, V6.hash - V6.randomXorD)
  checkLength(layout, 'hash', p.hash, V6.hwid - V6.hash)
  checkLength(layout, 'hwid', p.hwid, V6.xorSalts - V6.hwid)
  checkLength(layout, 'xorSalts', p.xorSalts, V6.hmac - V6.xorSalts)
  checkLength(layout, 'hmac', p.hmac, V6.end - V6.hmac)
  const out = new Uint8Array(BASE_RESPONSE_FIXED_LENGTH + pidSizeOf(p.base) + V6.end)
  const at = writeBaseResponse(out, p.base)
  out.set(p.randomXorD, at + V6.randomXorD)
  out.set(p.hash, at + V6.hash)
  out.set(p.hwid, at + V6.hwid)
  out.set(p.xorSalts, at + V6.xorSalts)
  out.set(p.hmac, at + V6.hmac)
  return out
}

/** Same outer form as the V5/V6 request (§3.3): version, IV, ciphertext. */
export function parseEncryptedResponse(bytes: Uint8Array): EncryptedResponse {
  return parseEncryptedMessage('kms encrypted response', bytes)
}

export function emitEncryptedResponse(resp: EncryptedResponse): Uint8Array {
  return emitEncryptedMessage('kms encrypted response', resp)
}
