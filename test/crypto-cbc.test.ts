import { createCipheriv, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import {
  cbcDecrypt,
  cbcDecryptInto,
  cbcEncrypt,
  cbcEncryptInto,
  decryptPadded,
  encryptPadded,
  pkcs7Pad,
  pkcs7Unpad,
} from '../src/crypto/cbc.js'
import { CryptoError, PaddingError } from '../src/crypto/errors.js'
import { V4_CIPHER, V5_CIPHER, V5_KEY, V6_CIPHER } from '../src/crypto/rijndael.js'

const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}

t.test('V5 CBC equals node:crypto aes-128-cbc (with and without PKCS#7)', async (t) => {
  for (const len of [16, 48, 240, 1024]) {
    const iv = randomBytes(16)
    const data = randomBytes(len)
    const raw = createCipheriv('aes-128-cbc', V5_KEY, iv).setAutoPadding(false)
    t.equal(
      toHex(cbcEncrypt(V5_CIPHER, iv, data)),
      Buffer.concat([raw.update(data), raw.final()]).toString('hex'),
    )
    t.equal(toHex(cbcDecrypt(V5_CIPHER, iv, cbcEncrypt(V5_CIPHER, iv, data))), data.toString('hex'))
  }
  for (const len of [0, 1, 15, 16, 17, 236, 255]) {
    const iv = randomBytes(16)
    const data = randomBytes(len)
    const padded = createCipheriv('aes-128-cbc', V5_KEY, iv)
    const want = Buffer.concat([padded.update(data), padded.final()]).toString('hex')
    const got = encryptPadded(V5_CIPHER, iv, data)
    t.equal(toHex(got), want, `encryptPadded of ${len} bytes`)
    t.equal(toHex(decryptPadded(V5_CIPHER, iv, got)), data.toString('hex'), `decryptPadded of ${len} bytes`)
  }
})

t.test('in-place and offset forms agree with the allocating ones', async (t) => {
  for (const cipher of [V4_CIPHER, V5_CIPHER, V6_CIPHER]) {
    const iv = randomBytes(16)
    const data = randomBytes(80)
    const want = cbcEncrypt(cipher, iv, data)
    const buf = new Uint8Array(100)
    buf.set(data, 3)
    cbcEncryptInto(cipher, iv, buf, 3, 80, buf, 3)
    t.equal(toHex(buf.subarray(3, 83)), toHex(want), 'encrypt in place at offset 3')
    cbcDecryptInto(cipher, iv, buf, 3, 80, buf, 3)
    t.equal(toHex(buf.subarray(3, 83)), data.toString('hex'), 'decrypt in place at offset 3')
    const out = new Uint8Array(96)
    cbcDecryptInto(cipher, iv, want, 0, 80, out, 16)
    t.equal(toHex(out.subarray(16)), data.toString('hex'), 'decrypt into another buffer')
  }
})

t.test('PKCS#7 padding', async (t) => {
  t.equal(toHex(pkcs7Pad(new Uint8Array(0))), '10'.repeat(16), 'empty → a full block of 0x10')
  t.equal(toHex(pkcs7Pad(new Uint8Array(236))).slice(-8), '04040404', '236 bytes → 04 04 04 04')
  t.equal(pkcs7Pad(new Uint8Array(16)).length, 32, 'aligned input gains a whole block')
  t.equal(toHex(pkcs7Unpad(Uint8Array.from([1, 2, 3, 2, 2]))), '010203')
  t.equal(pkcs7Unpad(new Uint8Array(16).fill(16)).length, 0)
  const bad: Array<[number[], number]> = [
    [[], 0],
    [[1, 2, 0], 2],
    [[1, 2, 17], 2],
    [[1, 2, 0xff], 2],
    [[3, 3], 1],
    [[9, 3, 4, 3], 2],
    [[1, 3, 3, 3, 2, 3, 3, 4], 4],
  ]
  for (const [bytes, offset] of bad) {
    const e = thrown(() => pkcs7Unpad(Uint8Array.from(bytes)))
    t.ok(e instanceof PaddingError, `${JSON.stringify(bytes)} refused with PaddingError`)
    t.ok(e instanceof CryptoError, 'which is a CryptoError')
    t.equal((e as PaddingError).offset, offset, `first bad byte at ${offset}`)
  }
})

t.test('length errors are CryptoError', async (t) => {
  const iv = new Uint8Array(16)
  for (const len of [0, 1, 15, 17, 255]) {
    const e = thrown(() => decryptPadded(V5_CIPHER, iv, new Uint8Array(len)))
    t.ok(e instanceof CryptoError && !(e instanceof PaddingError), `decryptPadded of ${len} bytes`)
  }
  for (const len of [1, 15, 17]) {
    t.ok(
      thrown(() => cbcEncrypt(V5_CIPHER, iv, new Uint8Array(len))) instanceof CryptoError,
      `cbcEncrypt ${len}`,
    )
    t.ok(
      thrown(() => cbcDecrypt(V5_CIPHER, iv, new Uint8Array(len))) instanceof CryptoError,
      `cbcDecrypt ${len}`,
    )
  }
  for (const ivLen of [0, 15, 17]) {
    const e = thrown(() => cbcEncrypt(V5_CIPHER, new Uint8Array(ivLen), new Uint8Array(16)))
    t.ok(e instanceof CryptoError, `IV of ${ivLen} bytes`)
  }
  const buf = new Uint8Array(32)
  t.ok(
    thrown(() => cbcEncryptInto(V5_CIPHER, iv, buf, 16, 32, buf, 0)) instanceof CryptoError,
    'source overrun',
  )
  t.ok(
    thrown(() => cbcDecryptInto(V5_CIPHER, iv, buf, 0, 32, buf, 1)) instanceof CryptoError,
    'destination overrun',
  )
})

t.test('property: unpadding random bytes only ever throws CryptoError subclasses', async (t) => {
  const onlyCrypto = (fn: () => unknown): boolean => {
    const e = thrown(fn)
    return e === undefined || e instanceof CryptoError
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
      const e = thrown(() => pkcs7Unpad(bytes))
      if (e === undefined) return bytes[bytes.length - 1] >= 1 && bytes[bytes.length - 1] <= 16
      return e instanceof PaddingError && e.offset >= 0 && e.offset < Math.max(1, bytes.length)
    }),
    { numRuns: 2000 },
  )
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ maxLength: 96 }),
      fc.constantFrom(V4_CIPHER, V5_CIPHER, V6_CIPHER),
      (iv, bytes, cipher) => onlyCrypto(() => decryptPadded(cipher, iv, bytes)),
    ),
    { numRuns: 2000 },
  )
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 40 }), (iv, bytes) =>
      onlyCrypto(() => decryptPadded(V6_CIPHER, iv, bytes)),
    ),
    { numRuns: 1000 },
  )
  t.pass('no foreign error escaped')
})

t.test('property: decryptPadded(encryptPadded(x)) = x', async (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ maxLength: 300 }),
      (iv, data) => {
        return toHex(decryptPadded(V6_CIPHER, iv, encryptPadded(V6_CIPHER, iv, data))) === toHex(data)
      },
    ),
    { numRuns: 500 },
  )
  t.pass('round trip holds')
})
