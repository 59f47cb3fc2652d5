import { decryptPadded, encryptPadded } from '../crypto/cbc.js'
import { CryptoError } from '../crypto/errors.js'
import { sha256, V6_HMAC_C1, v4Mac, v6Hmac, v6HmacKeyForSlot, v6HmacSlot } from '../crypto/kms-crypto.js'
import type { RandomSource } from '../crypto/random.js'
import { V5_CIPHER, V6_CIPHER } from '../crypto/rijndael.js'
import { concatBytes, equalBytes, WireError } from '../wire/bytes.js'
import {
  emitBaseRequest,
  KMS_ENCRYPTED_FIELD,
  KMS_VERSION_LENGTH,
  type KmsBaseRequest,
  readKmsVersion,
} from '../wire/kms-request.js'
import {
  KMS_V5_RESPONSE_FIELD,
  KMS_V6_RESPONSE_FIELD,
  type KmsBaseResponse,
  parseBaseResponse,
  V4_RESPONSE_MAC_LENGTH,
} from '../wire/kms-response.js'
import { VerificationError } from './errors.js'
import { cipherForMajor } from './request.js'
import { versionBytes } from './response.js'

/** A request as a client sent it: what the answer is checked against. */
export interface SentRequest {
  major: number
  minor: number
  cmid: string
  requestTime: bigint
  /** V5/V6: the request IV and D_K(IV). */
  iv: Uint8Array | null
  decryptedIv: Uint8Array | null
}

export interface BuiltRequest extends SentRequest {
  base: KmsBaseRequest
  payload: Uint8Array
}

/**
 * Wraps a base request for its version (§2.3, §2.4): V4 appends the MAC; V5/V6 encrypt with a
 * random IV (or the one given, to rebuild a recorded request byte for byte).
 */
export function buildKmsRequest(base: KmsBaseRequest, random: RandomSource, iv?: Uint8Array): BuiltRequest {
  const plain = emitBaseRequest(base)
  const sent = {
    major: base.versionMajor,
    minor: base.versionMinor,
    cmid: base.cmid,
    requestTime: base.requestTime,
  }
  if (base.versionMajor < 5) {
    return { ...sent, base, iv: null, decryptedIv: null, payload: concatBytes(plain, v4Mac(plain)) }
  }
  const cipher = cipherForMajor(base.versionMajor)
  const reqIv = iv ?? random(16)
  const d = new Uint8Array(16)
  cipher.decryptBlock(reqIv, 0, d, 0)
  const payload = concatBytes(
    versionBytes(base.versionMajor, base.versionMinor),
    reqIv,
    encryptPadded(cipher, reqIv, plain),
  )
  return { ...sent, base, iv: reqIv, decryptedIv: d, payload }
}

/** An answer that passed every hard check; `warnings` are what vlmcs would warn about. */
export interface VerifiedAnswer {
  major: number
  minor: number
  base: KmsBaseResponse
  pidSize: number
  /** V6 only. */
  hwid: Uint8Array | null
  responseIv: Uint8Array | null
  /** V6: which HMAC time slot matched (-1, 0 or +1; a host using the request time gives 0). */
  hmacSlot: number | null
  warnings: string[]
}

const MAX_PID_SIZE = 128

/** Checks a KMS answer with every client check of §3.1, §4.6 and §4.7; throws VerificationError. */
export function verifyKmsResponse(sent: SentRequest, payload: Uint8Array): VerifiedAnswer {
  try {
    return verify(sent, payload)
  } catch (err) {
    if (err instanceof WireError)
      throw new VerificationError(`malformed answer: ${err.message}`, 'size', err.field)
    if (err instanceof CryptoError)
      throw new VerificationError(`answer does not decrypt: ${err.message}`, 'padding')
    throw err
  }
}

function verify(sent: SentRequest, payload: Uint8Array): VerifiedAnswer {
  if (payload.length < KMS_VERSION_LENGTH)
    throw new VerificationError(`answer of ${payload.length} bytes has no version`, 'size')
  const { major, minor } = readKmsVersion(payload)
  const E = KMS_ENCRYPTED_FIELD
  const V5 = KMS_V5_RESPONSE_FIELD
  const V6 = KMS_V6_RESPONSE_FIELD
  if (major !== sent.major || minor !== sent.minor) {
    throw new VerificationError(
      `answer version ${major}.${minor} differs from the request's ${sent.major}.${sent.minor}`,
      'version',
      'version',
    )
  }
  const warnings: string[] = []
  let plain: Uint8Array
  let responseIv: Uint8Array | null = null
  if (sent.major < 5) {
    plain = payload.subarray(0, payload.length - V4_RESPONSE_MAC_LENGTH)
    const { length } = parseBaseResponse(plain)
    if (length !== plain.length)
      throw new VerificationError(`V4 answer has ${plain.length - length} stray bytes`, 'size')
    if (!equalBytes(v4Mac(plain), payload.subarray(payload.length - V4_RESPONSE_MAC_LENGTH))) {
      throw new VerificationError('V4 answer MAC does not verify', 'mac', 'mac')
    }
  } else {
    if (payload.length < E.ciphertext + 16)
      throw new VerificationError(`V${major} answer of ${payload.length} bytes`, 'size')
    responseIv = payload.subarray(E.iv, E.ciphertext)
    const sameIv = equalBytes(responseIv, sent.iv!)
    if (major === 5 && !sameIv)
      throw new VerificationError('V5 answer IV differs from the request IV', 'iv', 'iv')
    if (major >= 6 && sameIv) warnings.push('host uses an IV following KMSv5 rules in KMSv6 protocol')
    const cipher = major === 5 ? V5_CIPHER : V6_CIPHER
    plain = decryptPadded(cipher, responseIv, payload.subarray(E.ciphertext))
  }
  const { value: base, length: baseLength, pidSize } = parseBaseResponse(plain)
  let hwid: Uint8Array | null = null
  let hmacSlot: number | null = null
  if (sent.major >= 5) {
    const tailLength = sent.major === 5 ? V5.end : V6.end
    if (plain.length !== baseLength + tailLength) {
      throw new VerificationError(
        `V${major} answer payload is ${plain.length} bytes, expected ${baseLength + tailLength}`,
        'size',
      )
    }
    const d = sent.decryptedIv!
    const x = plain.subarray(baseLength + V5.randomXorD, baseLength + V5.hash)
    const r = new Uint8Array(16)
    for (let i = 0; i < 16; i++) r[i] = x[i] ^ d[i]
    if (!equalBytes(sha256(r), plain.subarray(baseLength + V5.hash, baseLength + V5.end))) {
      throw new VerificationError('hash of the random value does not verify', 'hash', 'hash')
    }
    if (sent.major >= 6) {
      hwid = plain.slice(baseLength + V6.hwid, baseLength + V6.xorSalts)
      if (!equalBytes(plain.subarray(baseLength + V6.xorSalts, baseLength + V6.hmac), d)) {
        throw new VerificationError('XorSalts is not D(request IV)', 'xor-salts', 'xorSalts')
      }
      hmacSlot = matchHmacSlot(
        base.requestTime,
        responseIv!,
        plain.subarray(0, baseLength + V6.hmac),
        plain.subarray(baseLength + V6.hmac),
      )
      if (hmacSlot === null) throw new VerificationError('HMAC does not verify', 'hmac', 'hmac')
    }
  }
  checkBase(sent, base, pidSize, plain)
  return { major, minor, base, pidSize, hwid, responseIv, hmacSlot, warnings }
}

/** vlmcs accepts the HMAC for the slot of the echoed time and the slots one C1 either side. */
function matchHmacSlot(
  time: bigint,
  responseIv: Uint8Array,
  payload0: Uint8Array,
  mac: Uint8Array,
): number | null {
  const prefix = new Uint8Array(16)
  V6_CIPHER.decryptBlock(responseIv, 0, prefix, 0)
  const message = concatBytes(prefix, payload0)
  const slot = v6HmacSlot(time)
  for (const k of [0, -1, 1]) {
    const key = v6HmacKeyForSlot((slot + BigInt(k) * V6_HMAC_C1) & 0xffffffffffffffffn)
    if (equalBytes(v6Hmac(key, message), mac)) return k
  }
  return null
}

function checkBase(sent: SentRequest, base: KmsBaseResponse, pidSize: number, plain: Uint8Array): void {
  if (pidSize > MAX_PID_SIZE)
    throw new VerificationError(`PID size ${pidSize} exceeds ${MAX_PID_SIZE}`, 'pid', 'pidSize')
  if (pidSize < 2 || pidSize % 2 !== 0)
    throw new VerificationError(`PID size ${pidSize} is not whole UTF-16`, 'pid', 'pidSize')
  const last = plain[8 + pidSize - 2] | (plain[8 + pidSize - 1] << 8)
  if (last !== 0) throw new VerificationError('ePID is not NUL-terminated', 'pid', 'epid')
  if (base.epid.length * 2 + 2 !== pidSize)
    throw new VerificationError('ePID has a NUL before its end', 'pid', 'epid')
  if (base.cmid !== sent.cmid.toLowerCase()) {
    throw new VerificationError(
      `CMID echo ${base.cmid} differs from the request's ${sent.cmid}`,
      'cmid',
      'cmid',
    )
  }
  if (base.requestTime !== sent.requestTime)
    throw new VerificationError('request time echo differs', 'time', 'requestTime')
}
