import { CryptoError, PaddingError } from './errors.js'
import { type BlockCipher, loadBlock, storeBlock } from './rijndael.js'

/*
 * CBC mode and PKCS#7 padding as §4.4 uses them. The `...Into` forms work between caller-owned
 * buffers at offsets (the wire layer can decrypt straight out of a received PDU); the others
 * allocate exactly one output array.
 */

function checkIv(iv: Uint8Array): void {
  if (iv.length !== 16) throw new CryptoError(`CBC IV must be 16 bytes, got ${iv.length}`)
}

function checkRange(what: string, bytes: Uint8Array, off: number, length: number): void {
  if ((off | 0) !== off || off < 0 || off + length > bytes.length) {
    throw new CryptoError(`${what}: ${length} bytes at offset ${off} do not fit in ${bytes.length}`)
  }
}

function checkLength(length: number): void {
  if ((length | 0) !== length || length < 0 || length % 16 !== 0) {
    throw new CryptoError(`CBC data must be a multiple of 16 bytes, got ${length}`)
  }
}

// chaining value and block in flight, as big-endian words (see BlockCipher.encryptWords)
const chain = new Uint32Array(4)
const block = new Uint32Array(4)

/** CBC-encrypts `length` bytes of `src` at `srcOff` into `dst` at `dstOff` (the two may coincide). */
export function cbcEncryptInto(
  cipher: BlockCipher,
  iv: Uint8Array,
  src: Uint8Array,
  srcOff: number,
  length: number,
  dst: Uint8Array,
  dstOff: number,
): void {
  checkIv(iv)
  checkLength(length)
  checkRange('CBC source', src, srcOff, length)
  checkRange('CBC destination', dst, dstOff, length)
  loadBlock(iv, 0, chain)
  for (let o = 0; o < length; o += 16) {
    loadBlock(src, srcOff + o, block)
    block[0] ^= chain[0]
    block[1] ^= chain[1]
    block[2] ^= chain[2]
    block[3] ^= chain[3]
    cipher.encryptWords(block)
    chain.set(block)
    storeBlock(block, dst, dstOff + o)
  }
}

/** CBC-decrypts `length` bytes of `src` at `srcOff` into `dst` at `dstOff` (the two may coincide). */
export function cbcDecryptInto(
  cipher: BlockCipher,
  iv: Uint8Array,
  src: Uint8Array,
  srcOff: number,
  length: number,
  dst: Uint8Array,
  dstOff: number,
): void {
  checkIv(iv)
  checkLength(length)
  checkRange('CBC source', src, srcOff, length)
  checkRange('CBC destination', dst, dstOff, length)
  loadBlock(iv, 0, chain)
  for (let o = 0; o < length; o += 16) {
    loadBlock(src, srcOff + o, block)
    // keep this ciphertext block: decrypting in place overwrites it before it chains
    const c0 = block[0]
    const c1 = block[1]
    const c2 = block[2]
    const c3 = block[3]
    cipher.decryptWords(block)
    block[0] ^= chain[0]
    block[1] ^= chain[1]
    block[2] ^= chain[2]
    block[3] ^= chain[3]
    storeBlock(block, dst, dstOff + o)
    chain[0] = c0
    chain[1] = c1
    chain[2] = c2
    chain[3] = c3
  }
}

export function cbcEncrypt(cipher: BlockCipher, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(plaintext.length)
  cbcEncryptInto(cipher, iv, plaintext, 0, plaintext.length, out, 0)
  return out
}

export function cbcDecrypt(cipher: BlockCipher, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const out = new Uint8Array(ciphertext.length)
  cbcDecryptInto(cipher, iv, ciphertext, 0, ciphertext.length, out, 0)
  return out
}

/** Appends n bytes of value n, n = 16 − (length mod 16), so 1..16 bytes. */
export function pkcs7Pad(data: Uint8Array): Uint8Array {
  const n = 16 - (data.length % 16)
  const out = new Uint8Array(data.length + n)
  out.set(data)
  out.fill(n, data.length)
  return out
}

/**
 * Strips PKCS#7 padding: the last byte n must be 1..16 (and at most the length), the last n bytes
 * must all equal n. Returns a view into `data` (no copy).
 */
export function pkcs7Unpad(data: Uint8Array): Uint8Array {
  const len = data.length
  if (len === 0) throw new PaddingError('no bytes to unpad', 0)
  const n = data[len - 1]
  if (n < 1 || n > 16 || n > len)
    throw new PaddingError(`pad length ${n} is not 1..${Math.min(16, len)}`, len - 1)
  for (let i = len - n; i < len - 1; i++) {
    if (data[i] !== n) throw new PaddingError(`pad byte ${data[i]} differs from pad length ${n}`, i)
  }
  return data.subarray(0, len - n)
}

/** CBC(PKCS#7(plaintext)): one allocation, padded then encrypted in place. */
export function encryptPadded(cipher: BlockCipher, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const out = pkcs7Pad(plaintext)
  cbcEncryptInto(cipher, iv, out, 0, out.length, out, 0)
  return out
}

/** Decrypts and strips the padding; the result is a view into a fresh array. */
export function decryptPadded(cipher: BlockCipher, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) {
    throw new CryptoError(
      `padded ciphertext must be a positive multiple of 16 bytes, got ${ciphertext.length}`,
    )
  }
  return pkcs7Unpad(cbcDecrypt(cipher, iv, ciphertext))
}
