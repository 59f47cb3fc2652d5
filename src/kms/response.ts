import { encryptPadded } from '../crypto/cbc.js'
import { sha256, v4Mac, v6Hmac, v6HmacKey } from '../crypto/kms-crypto.js'
import type { RandomSource } from '../crypto/random.js'
import { V5_CIPHER, V6_CIPHER } from '../crypto/rijndael.js'
import { concatBytes } from '../wire/bytes.js'
import { emitBaseResponse, type KmsBaseResponse } from '../wire/kms-response.js'
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
  const baseBytes = emitBaseResponse(base)
  if (request.shape === 'v4') {
    const mac = v4Mac(baseBytes)
    if (corrupt === 'hmac' || corrupt === 'hash') mac[0] ^= 0x01
    return concatBytes(baseBytes, mac)
  }
  const d = request.decryptedIv!
  const iv = request.iv!
  const r = random(16)
  const x = new Uint8Array(16)
  for (let i = 0; i < 16; i++) x[i] = r[i] ^ d[i]
  const hash = sha256(r)
  // V5 has no HMAC: its only integrity value is the hash.
  if (corrupt === 'hash' || (corrupt === 'hmac' && request.major === 5)) hash[0] ^= 0x01
  const version = versionBytes(request.major, request.minor)
  if (request.major === 5) {
    const responseIv = corrupt === 'iv-rule' ? flipBlock(iv) : iv
    const plain = concatBytes(baseBytes, x, hash)
    return concatBytes(version, responseIv, encryptPadded(V5_CIPHER, responseIv, plain))
  }
  // V6 (and any higher major a research peer sends): fresh IV, HWID, XorSalts and the HMAC.
  const responseIv = corrupt === 'iv-rule' ? iv : random(16)
  const payload0 = concatBytes(baseBytes, x, hash, fields.hwid, d)
  const prefix = new Uint8Array(16)
  V6_CIPHER.decryptBlock(responseIv, 0, prefix, 0)
  const hmac = v6Hmac(v6HmacKey(base.requestTime), concatBytes(prefix, payload0))
  if (corrupt === 'hmac') hmac[0] ^= 0x01
  const plain = concatBytes(payload0, hmac)
  return concatBytes(version, responseIv, encryptPadded(V6_CIPHER, responseIv, plain))
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
