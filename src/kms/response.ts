import { cbcEncryptInto } from '../crypto/cbc.js'
import { sha256, v4Mac, v6Hmac, v6HmacKey } from '../crypto/kms-crypto.js'
import type { RandomSource } from '../crypto/random.js'
import { V5_CIPHER, V6_CIPHER } from '../crypto/rijndael.js'
import { KMS_ENCRYPTED_FIELD } from '../wire/kms-request.js'
import {
  BASE_RESPONSE_FIXED_LENGTH,
  type KmsBaseResponse,
  pidSizeOf,
  V4_RESPONSE_MAC_LENGTH,
  KMS_V5_RESPONSE_FIELD as V5,
  KMS_V6_RESPONSE_FIELD as V6,
  writeBaseResponse,
} from '../wire/kms-response.js'
import type { DecodedRequest } from './request.js'

/** What the host puts in an answer beside the echoes of the request. */
export interface AnswerFields {
  epid: string
  /** 8 bytes, V6 only. */
  hwid: Uint8Array
  currentCount: number
  activationInterval: number
  renewalInterval: number
}

/**
 * A deliberate defect in an otherwise valid answer (fault injection), to test that client tooling
 * notices: each one breaks exactly one client check.
 */
export type AnswerCorruption = 'hmac' | 'hash' | 'iv-rule' | 'cmid' | 'time' | 'pid'
export const ANSWER_CORRUPTIONS: readonly AnswerCorruption[] = [
  'hmac',
  'hash',
  'iv-rule',
  'cmid',
  'time',
  'pid',
]

/**
 * Builds the KMS response bytes for a request that decoded with a base (§3, §4.6, §4.7).
 * V5 reuses the request IV, V6 always draws a fresh response IV.
 */
export function buildKmsResponse(
  request: DecodedRequest,
  fields: AnswerFields,
  random: RandomSource,
  corrupt?: AnswerCorruption,
): Uint8Array {
  const req = request.base
  if (!req) throw new TypeError('buildKmsResponse needs a decoded base request')
  const base: KmsBaseResponse = {
    versionMinor: request.minor,
    versionMajor: request.major,
    epid:
      corrupt === 'pid' ? `${fields.epid}${'9'.repeat(Math.max(0, 64 - fields.epid.length))}` : fields.epid,
    cmid: corrupt === 'cmid' ? flipGuid(req.cmid) : req.cmid,
    requestTime: corrupt === 'time' ? req.requestTime + 600_000_000n : req.requestTime,
    currentCount: fields.currentCount,
    activationInterval: fields.activationInterval,
    renewalInterval: fields.renewalInterval,
  }
  // One work buffer per answer, laid out so nothing is copied twice: for V6 the HMAC prefix
  // D(IVr) sits right before the payload, making the HMAC message one contiguous view.
  const baseLength = BASE_RESPONSE_FIXED_LENGTH + pidSizeOf(base)
  if (request.shape === 'v4') {
    const out = new Uint8Array(baseLength + V4_RESPONSE_MAC_LENGTH)
    writeBaseResponse(out, base)
    const mac = v4Mac(out.subarray(0, baseLength))
    if (corrupt === 'hmac' || corrupt === 'hash') mac[0] ^= 0x01
    out.set(mac, baseLength)
    return out
  }
  const v6 = request.major !== 5
  const d = request.decryptedIv!
  const iv = request.iv!
  const r = random(16)
  const payloadLength = baseLength + (v6 ? V6.end : V5.end)
  const padded = (Math.floor(payloadLength / 16) + 1) * 16
  const work = new Uint8Array(16 + padded)
  const p = 16
  writeBaseResponse(work.subarray(p), base)
  const x = p + baseLength
  for (let i = 0; i < 16; i++) work[x + V5.randomXorD + i] = r[i] ^ d[i]
  work.set(sha256(r), x + V5.hash)
  // V5 has no HMAC: its only integrity value is the hash.
  if (corrupt === 'hash' || (corrupt === 'hmac' && !v6)) work[x + V5.hash] ^= 0x01
  let responseIv = iv
  if (v6) {
    responseIv = corrupt === 'iv-rule' ? iv : random(16)
    work.set(fields.hwid.subarray(0, V6.xorSalts - V6.hwid), x + V6.hwid)
    work.set(d, x + V6.xorSalts)
    V6_CIPHER.decryptBlock(responseIv, 0, work, 0)
    const hmac = v6Hmac(v6HmacKey(base.requestTime), work.subarray(0, x + V6.hmac))
    if (corrupt === 'hmac') hmac[0] ^= 0x01
    work.set(hmac, x + V6.hmac)
  } else if (corrupt === 'iv-rule') {
    responseIv = flipBlock(iv)
  }
  work.fill(padded - payloadLength, p + payloadLength)
  const E = KMS_ENCRYPTED_FIELD
  const out = new Uint8Array(E.ciphertext + padded)
  out[E.versionMinor] = request.minor & 0xff
  out[E.versionMinor + 1] = request.minor >>> 8
  out[E.versionMajor] = request.major & 0xff
  out[E.versionMajor + 1] = request.major >>> 8
  out.set(responseIv, E.iv)
  cbcEncryptInto(v6 ? V6_CIPHER : V5_CIPHER, responseIv, work, p, padded, out, E.ciphertext)
  return out
}

export function versionBytes(major: number, minor: number): Uint8Array {
  return new Uint8Array([minor & 0xff, minor >>> 8, major & 0xff, major >>> 8])
}

function flipBlock(block: Uint8Array): Uint8Array {
  const out = block.slice()
  out[0] ^= 0xff
  return out
}

function flipGuid(guid: string): string {
  const last = guid.at(-1) === '0' ? '1' : '0'
  return guid.slice(0, -1) + last
}
