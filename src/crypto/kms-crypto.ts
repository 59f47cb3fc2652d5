import { CryptoError } from './errors.js'
import { HmacSha256, SHA256_LENGTH, sha256Into } from './noble-adapter.js'
import { type BlockCipher, V4_CIPHER } from './rijndael.js'

/**
 * The V4 hash of §4.3: CBC-MAC with a zero IV over the V4 Rijndael-160, message padded per
 * ISO/IEC 9797-1 method 2 (0x80 then zeros; a whole block when already aligned), no CMAC subkeys.
 */
export function v4Mac(message: Uint8Array): Uint8Array {
  const mac = new Uint8Array(16)
  const whole = message.length - (message.length % 16)
  for (let o = 0; o < whole; o += 16) {
    for (let i = 0; i < 16; i++) mac[i] ^= message[o + i]
    V4_CIPHER.encryptBlock(mac, 0, mac, 0)
  }
  const rest = message.length - whole
  for (let i = 0; i < rest; i++) mac[i] ^= message[whole + i]
  mac[rest] ^= 0x80
  V4_CIPHER.encryptBlock(mac, 0, mac, 0)
  return mac
}

// The hashes finish into one scratch digest (synchronous: no two callers interleave on it).
const digest = new Uint8Array(SHA256_LENGTH)

/** SHA-256 (FIPS 180-4) of `data`. */
export function sha256(data: Uint8Array): Uint8Array {
  sha256Into(data, digest)
  return digest.slice()
}

/** D_K(block): the single-block decryption V5/V6 need of the request IV (and V6 of the response IV). */
export function decryptBlockOf(cipher: BlockCipher, block16: Uint8Array): Uint8Array {
  if (block16.length !== 16) throw new CryptoError(`expected one 16-byte block, got ${block16.length} bytes`)
  const out = new Uint8Array(16)
  cipher.decryptBlock(block16, 0, out, 0)
  return out
}

// ---- V6 HMAC key (§4.7 step 6) ----

/** ≈ 4.12 h in FILETIME units: the request time is bucketed by this before keying the HMAC. */
export const V6_HMAC_C1 = 0x00000022816889bdn
export const V6_HMAC_C2 = 0x000000208cbab5edn
export const V6_HMAC_C3 = 0x3156cd5ac628477an

const U64 = (1n << 64n) - 1n

/** slot = ((t div C1) × C2 + C3) mod 2⁶⁴ for the request's FILETIME t (an unsigned 64-bit value). */
export function v6HmacSlot(requestTime: bigint): bigint {
  if (requestTime < 0n || requestTime > U64) {
    throw new CryptoError(`request time ${requestTime} is not an unsigned 64-bit FILETIME`)
  }
  return BigInt.asUintN(64, (requestTime / V6_HMAC_C1) * V6_HMAC_C2 + V6_HMAC_C3)
}

// The slot moves every ~4 h, so a host asks for the same key over and over: remember the last one.
let cachedSlot = -1n
let cachedKey = new Uint8Array(16)

/**
 * The last 16 bytes of SHA256(slot as u64 LE). The slot is taken mod 2⁶⁴, so a verifying client
 * may pass slot ± C1 (§4.7 client step 4) without wrapping it first.
 */
export function v6HmacKeyForSlot(slot: bigint): Uint8Array {
  const s = BigInt.asUintN(64, slot)
  if (s !== cachedSlot) {
    const le = new Uint8Array(8)
    new DataView(le.buffer).setBigUint64(0, s, true)
    cachedKey = sha256(le).slice(16)
    cachedSlot = s
  }
  return cachedKey.slice()
}

// Every request time of one ~4 h bucket [low, high) has the same key: two BigInt comparisons
// instead of a BigInt division per request.
let bucketLow = 1n
let bucketHigh = 0n
let bucketKey: Uint8Array = new Uint8Array(16)

export function v6HmacKey(requestTime: bigint): Uint8Array {
  if (!(requestTime >= bucketLow && requestTime < bucketHigh)) {
    bucketKey = v6HmacKeyForSlot(v6HmacSlot(requestTime))
    bucketLow = (requestTime / V6_HMAC_C1) * V6_HMAC_C1
    bucketHigh = bucketLow + V6_HMAC_C1
  }
  return bucketKey.slice()
}

// HMAC state after absorbing the padded key (inner and outer), kept for the last key used: the
// key changes with the slot, every ~4 h, and reusing it saves two of the seven compressions.
let hmacKey = new Uint8Array(0)
let hmacKeyed: HmacSha256 | undefined

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** The last 16 bytes of HMAC-SHA256(key, message) (RFC 2104): the V6 response's HMAC field. */
export function v6Hmac(key: Uint8Array, message: Uint8Array): Uint8Array {
  if (hmacKeyed === undefined || !sameBytes(key, hmacKey)) {
    hmacKeyed = new HmacSha256(key)
    hmacKey = key.slice()
  }
  hmacKeyed.macInto(message, digest)
  return digest.slice(16)
}
