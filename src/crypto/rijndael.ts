import { CryptoError } from './errors.js'

/*
 * Rijndael with a 128-bit block (FIPS-197 round structure) for any key of 4..8 words, as §4.2
 * needs it: AES-128 (V5), AES-128 with three tweaked round-key bytes (V6) and a 160-bit key with
 * 11 rounds (V4). The state is held as four big-endian column words (byte i of the block is row
 * i mod 4 of column i div 4, row 0 in the top byte), so one round is 16 lookups into tables that
 * fold SubBytes and MixColumns together. Decryption uses the FIPS-197 "equivalent inverse
 * cipher": same shape as encryption, with InvMixColumns pre-applied to the inner round keys.
 */

const SBOX = new Uint8Array(256)
const INV_SBOX = new Uint8Array(256)
const TE0 = new Uint32Array(256)
const TE1 = new Uint32Array(256)
const TE2 = new Uint32Array(256)
const TE3 = new Uint32Array(256)
const TD0 = new Uint32Array(256)
const TD1 = new Uint32Array(256)
const TD2 = new Uint32Array(256)
const TD3 = new Uint32Array(256)

const xtime = (a: number): number => ((a << 1) ^ (a & 0x80 ? 0x1b : 0)) & 0xff
const rotr8 = (w: number): number => ((w >>> 8) | (w << 24)) >>> 0

function buildTables(): void {
  // exp/log over the generator 3 give multiplication and inversion in GF(2^8)
  const exp = new Uint8Array(256)
  const log = new Uint8Array(256)
  let p = 1
  for (let i = 0; i < 255; i++) {
    exp[i] = p
    log[p] = i
    p ^= xtime(p)
  }
  const mul = (a: number, b: number): number => (a === 0 || b === 0 ? 0 : exp[(log[a] + log[b]) % 255])
  for (let x = 0; x < 256; x++) {
    const inv = x === 0 ? 0 : exp[(255 - log[x]) % 255]
    // affine map: b ^ rotl(b,1) ^ rotl(b,2) ^ rotl(b,3) ^ rotl(b,4) ^ 0x63
    let s = inv
    for (let k = 1; k <= 4; k++) s ^= ((inv << k) | (inv >>> (8 - k))) & 0xff
    s ^= 0x63
    SBOX[x] = s
    INV_SBOX[s] = x
  }
  for (let x = 0; x < 256; x++) {
    const s = SBOX[x]
    // what input row 0 contributes to output rows 0..3 through MixColumns (2 1 1 3)
    const e = ((mul(s, 2) << 24) | (s << 16) | (s << 8) | mul(s, 3)) >>> 0
    TE0[x] = e
    TE1[x] = rotr8(e)
    TE2[x] = rotr8(TE1[x])
    TE3[x] = rotr8(TE2[x])
    const i = INV_SBOX[x]
    // same for InvMixColumns (14 9 13 11)
    const d = ((mul(i, 14) << 24) | (mul(i, 9) << 16) | (mul(i, 13) << 8) | mul(i, 11)) >>> 0
    TD0[x] = d
    TD1[x] = rotr8(d)
    TD2[x] = rotr8(TD1[x])
    TD3[x] = rotr8(TD2[x])
  }
}
buildTables()

/** A word made of box[row 0 of a], box[row 1 of b], box[row 2 of c], box[row 3 of d]. */
const pick = (box: Uint8Array, a: number, b: number, c: number, d: number): number =>
  (box[a >>> 24] << 24) | (box[(b >>> 16) & 255] << 16) | (box[(c >>> 8) & 255] << 8) | box[d & 255]

const subWord = (w: number): number => pick(SBOX, w, w, w, w) >>> 0

/** InvMixColumns of one column word (the S-box cancels the inverse S-box folded into TD*). */
const invMixColumn = (w: number): number =>
  (TD0[SBOX[w >>> 24]] ^ TD1[SBOX[(w >>> 16) & 255]] ^ TD2[SBOX[(w >>> 8) & 255]] ^ TD3[SBOX[w & 255]]) >>> 0

/**
 * FIPS-197 key expansion for a key of Nk = 4..8 words, Nr = Nk + 6 rounds; returns the
 * 16·(Nr+1) bytes of round keys (round key r = bytes 16r..16r+15).
 */
export function expandKey(key: Uint8Array): Uint8Array {
  const nk = key.length / 4
  if (!Number.isInteger(nk) || nk < 4 || nk > 8) {
    throw new CryptoError(`Rijndael key must be 16, 20, 24, 28 or 32 bytes, got ${key.length}`)
  }
  const total = 4 * (nk + 7)
  const w = new Uint32Array(total)
  w.set(toWords(key))
  let rcon = 1
  for (let i = nk; i < total; i++) {
    let t = w[i - 1]
    if (i % nk === 0) {
      t = subWord(((t << 8) | (t >>> 24)) >>> 0) ^ (rcon << 24)
      rcon = xtime(rcon)
    } else if (nk > 6 && i % nk === 4) {
      t = subWord(t)
    }
    w[i] = w[i - nk] ^ t
  }
  return toBytes(w)
}

/** Big-endian words of `bytes` (a multiple of 4 long). */
function toWords(bytes: Uint8Array): Uint32Array {
  const w = new Uint32Array(bytes.length / 4)
  for (let i = 0; i < w.length; i++) {
    const o = 4 * i
    w[i] = (bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]
  }
  return w
}

function toBytes(words: Uint32Array): Uint8Array {
  const out = new Uint8Array(4 * words.length)
  for (let i = 0; i < words.length; i += 4) storeBlock(words.subarray(i, i + 4), out, 4 * i)
  return out
}

function checkBlock(what: string, bytes: Uint8Array, off: number): void {
  if ((off | 0) !== off || off < 0 || off + 16 > bytes.length) {
    throw new CryptoError(`${what}: no 16-byte block at offset ${off} of ${bytes.length} bytes`)
  }
}

/**
 * One keyed instance of the block function. Built from an expanded key (so V6's tweaked schedule
 * needs nothing special); `encryptBlock`/`decryptBlock` read 16 bytes at `srcOff` and write 16 at
 * `dstOff` without allocating. Source and destination may be the same bytes. Not re-entrant across
 * threads (it has a 4-word scratch), which JavaScript's single thread per isolate never needs.
 */
export class BlockCipher {
  readonly rounds: number
  private readonly ek: Uint32Array
  private readonly dk: Uint32Array
  private readonly scratch = new Uint32Array(4)

  constructor(expandedKey: Uint8Array) {
    if (expandedKey.length % 16 !== 0 || expandedKey.length < 32) {
      throw new CryptoError(
        `expanded key must be a multiple of 16 bytes and at least 32, got ${expandedKey.length}`,
      )
    }
    const ek = toWords(expandedKey)
    const words = ek.length
    const rounds = words / 4 - 1
    const dk = new Uint32Array(words)
    for (let r = 0; r <= rounds; r++) {
      for (let j = 0; j < 4; j++) {
        const w = ek[4 * (rounds - r) + j]
        dk[4 * r + j] = r === 0 || r === rounds ? w : invMixColumn(w)
      }
    }
    this.rounds = rounds
    this.ek = ek
    this.dk = dk
  }

  /** A copy of the expanded key this cipher was built from. */
  roundKeys(): Uint8Array {
    return toBytes(this.ek)
  }

  /**
   * Encrypts the block held in `w` as four big-endian column words (w[0] = bytes 0..3 of the
   * block, byte 0 in the top bits), in place. The word form lets modes chain blocks (CBC) without
   * going through bytes; `encryptBlock` is this plus the byte conversions.
   */
  encryptWords(w: Uint32Array): void {
    if (w.length < 4) throw new CryptoError(`encryptWords needs 4 words, got ${w.length}`)
    const k = this.ek
    let s0 = w[0] ^ k[0]
    let s1 = w[1] ^ k[1]
    let s2 = w[2] ^ k[2]
    let s3 = w[3] ^ k[3]
    let ki = 4
    for (let r = 1; r < this.rounds; r++) {
      const t0 = TE0[s0 >>> 24] ^ TE1[(s1 >>> 16) & 255] ^ TE2[(s2 >>> 8) & 255] ^ TE3[s3 & 255] ^ k[ki]
      const t1 = TE0[s1 >>> 24] ^ TE1[(s2 >>> 16) & 255] ^ TE2[(s3 >>> 8) & 255] ^ TE3[s0 & 255] ^ k[ki + 1]
      const t2 = TE0[s2 >>> 24] ^ TE1[(s3 >>> 16) & 255] ^ TE2[(s0 >>> 8) & 255] ^ TE3[s1 & 255] ^ k[ki + 2]
      const t3 = TE0[s3 >>> 24] ^ TE1[(s0 >>> 16) & 255] ^ TE2[(s1 >>> 8) & 255] ^ TE3[s2 & 255] ^ k[ki + 3]
      s0 = t0
      s1 = t1
      s2 = t2
      s3 = t3
      ki += 4
    }
    // last round: SubBytes and ShiftRows, no MixColumns
    w[0] = pick(SBOX, s0, s1, s2, s3) ^ k[ki]
    w[1] = pick(SBOX, s1, s2, s3, s0) ^ k[ki + 1]
    w[2] = pick(SBOX, s2, s3, s0, s1) ^ k[ki + 2]
    w[3] = pick(SBOX, s3, s0, s1, s2) ^ k[ki + 3]
  }

  /** The inverse of `encryptWords`, same word layout, in place. */
  decryptWords(w: Uint32Array): void {
    if (w.length < 4) throw new CryptoError(`decryptWords needs 4 words, got ${w.length}`)
    const k = this.dk
    let s0 = w[0] ^ k[0]
    let s1 = w[1] ^ k[1]
    let s2 = w[2] ^ k[2]
    let s3 = w[3] ^ k[3]
    let ki = 4
    // InvShiftRows moves row r of column c to column c + r, hence the mirrored column order
    for (let r = 1; r < this.rounds; r++) {
      const t0 = TD0[s0 >>> 24] ^ TD1[(s3 >>> 16) & 255] ^ TD2[(s2 >>> 8) & 255] ^ TD3[s1 & 255] ^ k[ki]
      const t1 = TD0[s1 >>> 24] ^ TD1[(s0 >>> 16) & 255] ^ TD2[(s3 >>> 8) & 255] ^ TD3[s2 & 255] ^ k[ki + 1]
      const t2 = TD0[s2 >>> 24] ^ TD1[(s1 >>> 16) & 255] ^ TD2[(s0 >>> 8) & 255] ^ TD3[s3 & 255] ^ k[ki + 2]
      const t3 = TD0[s3 >>> 24] ^ TD1[(s2 >>> 16) & 255] ^ TD2[(s1 >>> 8) & 255] ^ TD3[s0 & 255] ^ k[ki + 3]
      s0 = t0
      s1 = t1
      s2 = t2
      s3 = t3
      ki += 4
    }
    w[0] = pick(INV_SBOX, s0, s3, s2, s1) ^ k[ki]
    w[1] = pick(INV_SBOX, s1, s0, s3, s2) ^ k[ki + 1]
    w[2] = pick(INV_SBOX, s2, s1, s0, s3) ^ k[ki + 2]
    w[3] = pick(INV_SBOX, s3, s2, s1, s0) ^ k[ki + 3]
  }

  encryptBlock(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
    checkBlock('encryptBlock source', src, srcOff)
    checkBlock('encryptBlock destination', dst, dstOff)
    const w = this.scratch
    loadBlock(src, srcOff, w)
    this.encryptWords(w)
    storeBlock(w, dst, dstOff)
  }

  decryptBlock(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
    checkBlock('decryptBlock source', src, srcOff)
    checkBlock('decryptBlock destination', dst, dstOff)
    const w = this.scratch
    loadBlock(src, srcOff, w)
    this.decryptWords(w)
    storeBlock(w, dst, dstOff)
  }
}

/** Reads 16 bytes at `off` as four big-endian words (the layout of `encryptWords`). */
export function loadBlock(b: Uint8Array, off: number, w: Uint32Array): void {
  w[0] = (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]
  w[1] = (b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]
  w[2] = (b[off + 8] << 24) | (b[off + 9] << 16) | (b[off + 10] << 8) | b[off + 11]
  w[3] = (b[off + 12] << 24) | (b[off + 13] << 16) | (b[off + 14] << 8) | b[off + 15]
}

/** Writes four big-endian words as 16 bytes at `off`; Uint8Array stores keep the low 8 bits. */
export function storeBlock(w: Uint32Array, b: Uint8Array, off: number): void {
  for (let i = 0; i < 4; i++) {
    const x = w[i]
    const o = off + 4 * i
    b[o] = x >>> 24
    b[o + 1] = x >>> 16
    b[o + 2] = x >>> 8
    b[o + 3] = x
  }
}

// ---- the three KMS keys (§4.1); treat these arrays as read-only ----

export const V4_KEY = Uint8Array.from([
  0x05, 0x3d, 0x83, 0x07, 0xf9, 0xe5, 0xf0, 0x88, 0xeb, 0x5e, 0xa6, 0x68, 0x6c, 0xf0, 0x37, 0xc7, 0xe4, 0xef,
  0xd2, 0xd6,
])
export const V5_KEY = Uint8Array.from([
  0xcd, 0x7e, 0x79, 0x6f, 0x2a, 0xb2, 0x5d, 0xcb, 0x55, 0xff, 0xc8, 0xef, 0x83, 0x64, 0xc4, 0x70,
])
export const V6_KEY = Uint8Array.from([
  0xa9, 0x4a, 0x41, 0x95, 0xe2, 0x01, 0x43, 0x2d, 0x9b, 0xcb, 0x46, 0x04, 0x05, 0xd8, 0x4a, 0x21,
])

/** V6's only change to AES-128 (§4.2): [expanded-key byte, XOR mask], applied after expansion. */
export const V6_KEY_TWEAKS: ReadonlyArray<readonly [number, number]> = [
  [64, 0x73],
  [96, 0x09],
  [128, 0xe4],
]

function v6ExpandedKey(): Uint8Array {
  const ek = expandKey(V6_KEY)
  for (const [at, mask] of V6_KEY_TWEAKS) ek[at] ^= mask
  return ek
}

export const V4_CIPHER = new BlockCipher(expandKey(V4_KEY))
export const V5_CIPHER = new BlockCipher(expandKey(V5_KEY))
export const V6_CIPHER = new BlockCipher(v6ExpandedKey())

/** The cipher of a KMS major version: 4 → the V4 MAC cipher, 5 → AES-128, 6 → modified AES-128. */
export function cipherForVersion(major: number): BlockCipher {
  switch (major) {
    case 4:
      return V4_CIPHER
    case 5:
      return V5_CIPHER
    case 6:
      return V6_CIPHER
    default:
      throw new CryptoError(`no KMS cipher for major version ${major}`)
  }
}
