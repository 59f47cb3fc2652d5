// The KMS request (§2): the 236-byte base request, the V4 request (base + MAC) and the outer
// form of V5/V6 messages (version + IV + ciphertext), which the response shares (§3.3).
// No crypto here: MACs and ciphertexts are taken and given as bytes.
import {
  FieldValueError,
  need,
  readGuid,
  readUtf16Z,
  TruncatedError,
  view,
  writeGuid,
  writeUtf16Field,
} from './bytes.js'

export const BASE_REQUEST_LENGTH = 236
export const V4_REQUEST_LENGTH = 252
export const V5_REQUEST_LENGTH = 260
export const V6_REQUEST_LENGTH = 260

/** Base request offsets (§2.2). */
export const KMS_BASE_FIELD = {
  versionMinor: 0,
  versionMajor: 2,
  isClientVm: 4,
  licenseStatus: 8,
  graceTime: 12,
  appId: 16,
  skuId: 32,
  kmsId: 48,
  cmid: 64,
  requiredCount: 80,
  requestTime: 84,
  previousCmid: 92,
  workstation: 108,
  end: 236,
} as const
const F = KMS_BASE_FIELD
const WORKSTATION_SIZE = F.end - F.workstation // 128 bytes = 64 UTF-16 units
/** The V4 request: the base request, then its MAC (§2.3). */
export const KMS_V4_REQUEST_FIELD = { base: 0, mac: F.end, end: F.end + 16 } as const
const MAC = { start: KMS_V4_REQUEST_FIELD.mac, end: KMS_V4_REQUEST_FIELD.end } as const
/** Outer V5/V6 form (§2.4, §3.3); the response shares it. */
export const KMS_ENCRYPTED_FIELD = { versionMinor: 0, versionMajor: 2, iv: 4, ciphertext: 20 } as const
const E = KMS_ENCRYPTED_FIELD
const IV_LENGTH = 16

export interface KmsBaseRequest {
  versionMinor: number
  versionMajor: number
  isClientVm: number
  licenseStatus: number
  graceTime: number
  appId: string
  skuId: string
  kmsId: string
  cmid: string
  requiredCount: number
  requestTime: bigint
  previousCmid: string
  /** Up to the first NUL within the 64-unit field; bytes after that NUL are not kept. */
  workstation: string
}

export interface V4Request {
  base: KmsBaseRequest
  mac: Uint8Array
}

/** V5/V6 request or response on the wire: plain version, IV, then the ciphertext as it is. */
export interface EncryptedRequest {
  versionMinor: number
  versionMajor: number
  iv: Uint8Array
  ciphertext: Uint8Array
}

/** Every KMS message starts with its version: minor, then major, u16 LE each. */
export const KMS_VERSION_LENGTH = 4

/** The version in the first 4 bytes of any KMS request or response (§2.1). */
export function readKmsVersion(bytes: Uint8Array): { major: number; minor: number } {
  need('kms version', bytes, KMS_VERSION_LENGTH)
  const dv = view(bytes)
  return { major: dv.getUint16(F.versionMajor, true), minor: dv.getUint16(F.versionMinor, true) }
}

/** Reads the first 236 bytes (a decrypted request carries 4 PKCS#7 bytes after them: not checked here). */
export function parseBaseRequest(bytes: Uint8Array): KmsBaseRequest {
  need('kms base request', bytes, F.end)
  const dv = view(bytes)
  return {
    versionMinor: dv.getUint16(F.versionMinor, true),
    versionMajor: dv.getUint16(F.versionMajor, true),
    isClientVm: dv.getUint32(F.isClientVm, true),
    licenseStatus: dv.getUint32(F.licenseStatus, true),
    graceTime: dv.getUint32(F.graceTime, true),
    appId: readGuid(bytes, F.appId),
    skuId: readGuid(bytes, F.skuId),
    kmsId: readGuid(bytes, F.kmsId),
    cmid: readGuid(bytes, F.cmid),
    requiredCount: dv.getUint32(F.requiredCount, true),
    requestTime: dv.getBigUint64(F.requestTime, true),
    previousCmid: readGuid(bytes, F.previousCmid),
    workstation: readUtf16Z(bytes, F.workstation, WORKSTATION_SIZE),
  }
}

function writeBaseRequest(out: Uint8Array, req: KmsBaseRequest): void {
  if (req.workstation.length > WORKSTATION_SIZE / 2) {
    throw new FieldValueError(
      `workstation name of ${req.workstation.length} units exceeds 64`,
      'kms base request',
      F.workstation,
      'workstation',
    )
  }
  const dv = view(out)
  dv.setUint16(F.versionMinor, req.versionMinor, true)
  dv.setUint16(F.versionMajor, req.versionMajor, true)
  dv.setUint32(F.isClientVm, req.isClientVm, true)
  dv.setUint32(F.licenseStatus, req.licenseStatus, true)
  dv.setUint32(F.graceTime, req.graceTime, true)
  writeGuid(out, F.appId, req.appId)
  writeGuid(out, F.skuId, req.skuId)
  writeGuid(out, F.kmsId, req.kmsId)
  writeGuid(out, F.cmid, req.cmid)
  dv.setUint32(F.requiredCount, req.requiredCount, true)
  dv.setBigUint64(F.requestTime, BigInt.asUintN(64, req.requestTime), true)
  writeGuid(out, F.previousCmid, req.previousCmid)
  writeUtf16Field(out, F.workstation, WORKSTATION_SIZE, req.workstation)
}

/** 236 bytes; the workstation name is NUL-terminated and zero-filled (no NUL when it has 64 units). */
export function emitBaseRequest(req: KmsBaseRequest): Uint8Array {
  const out = new Uint8Array(BASE_REQUEST_LENGTH)
  writeBaseRequest(out, req)
  return out
}

function checkMac(layout: string, mac: Uint8Array): void {
  if (mac.length !== 16)
    throw new FieldValueError(`MAC of ${mac.length} bytes, not 16`, layout, MAC.start, 'mac')
}

/** Exactly 252 bytes; the MAC is not verified (crypto's job). */
export function parseV4Request(bytes: Uint8Array): V4Request {
  const layout = 'kms v4 request'
  if (bytes.length < V4_REQUEST_LENGTH) throw new TruncatedError(layout, V4_REQUEST_LENGTH, bytes.length)
  if (bytes.length > V4_REQUEST_LENGTH) {
    throw new FieldValueError(`${bytes.length - V4_REQUEST_LENGTH} bytes past the MAC`, layout, MAC.end)
  }
  return { base: parseBaseRequest(bytes), mac: bytes.subarray(MAC.start, MAC.end) }
}

/** The MAC is written as given. */
export function emitV4Request(req: V4Request): Uint8Array {
  checkMac('kms v4 request', req.mac)
  const out = new Uint8Array(V4_REQUEST_LENGTH)
  writeBaseRequest(out, req.base)
  out.set(req.mac, MAC.start)
  return out
}

/** Shared by the V5/V6 request and response: any length ≥ 20, whatever the version says. */
export function parseEncryptedMessage(layout: string, bytes: Uint8Array): EncryptedRequest {
  need(layout, bytes, E.ciphertext)
  const dv = view(bytes)
  return {
    versionMinor: dv.getUint16(E.versionMinor, true),
    versionMajor: dv.getUint16(E.versionMajor, true),
    iv: bytes.subarray(E.iv, E.ciphertext),
    ciphertext: bytes.subarray(E.ciphertext),
  }
}

export function emitEncryptedMessage(layout: string, msg: EncryptedRequest): Uint8Array {
  if (msg.iv.length !== IV_LENGTH)
    throw new FieldValueError(`IV of ${msg.iv.length} bytes, not 16`, layout, E.iv, 'iv')
  const out = new Uint8Array(E.ciphertext + msg.ciphertext.length)
  const dv = view(out)
  dv.setUint16(E.versionMinor, msg.versionMinor, true)
  dv.setUint16(E.versionMajor, msg.versionMajor, true)
  out.set(msg.iv, E.iv)
  out.set(msg.ciphertext, E.ciphertext)
  return out
}

/** V5/V6 (or any major) request: the ciphertext length is not checked here (crypto's job). */
export function parseEncryptedRequest(bytes: Uint8Array): EncryptedRequest {
  return parseEncryptedMessage('kms encrypted request', bytes)
}

export function emitEncryptedRequest(req: EncryptedRequest): Uint8Array {
  return emitEncryptedMessage('kms encrypted request', req)
}
