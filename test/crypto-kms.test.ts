import { createHash, createHmac } from 'node:crypto'
import t from 'tap'
import { cbcDecrypt, cbcEncrypt, decryptPadded, encryptPadded } from '../src/crypto/cbc.js'
import { CryptoError } from '../src/crypto/errors.js'
import {
  decryptBlockOf,
  sha256,
  V6_HMAC_C1,
  V6_HMAC_C2,
  V6_HMAC_C3,
  v4Mac,
  v6Hmac,
  v6HmacKey,
  v6HmacKeyForSlot,
  v6HmacSlot,
} from '../src/crypto/kms-crypto.js'
import { V5_CIPHER, V6_CIPHER } from '../src/crypto/rijndael.js'

const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
/** Hex with optional "0000:" offsets and any white space. */
function hex(s: string): Uint8Array {
  const clean = s.replace(/^\s*[0-9a-f]{4}:/gim, '').replace(/\s+/g, '')
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error(`bad hex in test: ${s}`)
  return new Uint8Array(Buffer.from(clean, 'hex'))
}
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts))
const xor = (a: Uint8Array, b: Uint8Array): Uint8Array => a.map((x, i) => x ^ b[i])
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}
function withMajor(bytes: Uint8Array, major: number): Uint8Array {
  const out = bytes.slice()
  out[2] = major
  return out
}

// §9.3 base request (V6), 236 bytes: 0xa0..0xeb are zero
const BASE_REQUEST = cat(
  hex(`
0000: 00 00 06 00 00 00 00 00 02 00 00 00 c0 a8 00 00
0010: 34 27 c9 55 82 d6 71 4d 98 3e d6 ec 3f 16 05 9f
0020: 92 73 e6 2d a7 b7 2a 46 b1 ca 10 8d d1 89 f5 88
0030: 4f 13 e2 58 11 8e 17 4d 9c b2 91 06 9c 15 11 48
0040: 89 3a 5c 2b 2e 1f 3c 4d 9a 8b 7c 6d 5e 4f 3a 2b
0050: 19 00 00 00 00 20 87 5d aa 47 da 01 00 00 00 00
0060: 00 00 00 00 00 00 00 00 00 00 00 00 6b 00 6d 00
0070: 73 00 6c 00 61 00 62 00 2d 00 63 00 6c 00 69 00
0080: 65 00 6e 00 74 00 2e 00 65 00 78 00 61 00 6d 00
0090: 70 00 6c 00 65 00 00 00 00 00 00 00 00 00 00 00`),
  new Uint8Array(0xec - 0xa0),
)

// §9.4 V4 response (160 bytes); its first 0x90 bytes are the base response of every version
const V4_RESPONSE = hex(`
0000: 00 00 04 00 64 00 00 00 30 00 33 00 36 00 31 00
0010: 32 00 2d 00 30 00 30 00 32 00 30 00 36 00 2d 00
0020: 35 00 35 00 36 00 2d 00 31 00 32 00 33 00 37 00
0030: 32 00 37 00 2d 00 30 00 33 00 2d 00 31 00 30 00
0040: 33 00 33 00 2d 00 31 00 37 00 37 00 36 00 33 00
0050: 2e 00 30 00 30 00 30 00 30 00 2d 00 32 00 39 00
0060: 37 00 32 00 30 00 31 00 38 00 00 00 89 3a 5c 2b
0070: 2e 1f 3c 4d 9a 8b 7c 6d 5e 4f 3a 2b 00 20 87 5d
0080: aa 47 da 01 32 00 00 00 78 00 00 00 60 27 00 00
0090: c1 d6 dd ee 5b 7f e4 c2 a2 22 f0 29 36 0c dc 68`)
const BASE_RESPONSE = V4_RESPONSE.subarray(0, 0x90)

const REQUEST_IV = hex('000102030405060708090a0b0c0d0e0f')
const R = hex('f0e1d2c3b4a5968778695a4b3c2d1e0f')
const RESPONSE_IV = hex('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf')
const HWID = hex('3a1c049600b60076')
const PAD4 = hex('04040404')
const REQUEST_TIME = 133497936000000000n

t.test('§9.2 V4 hash', async (t) => {
  const m = Uint8Array.from({ length: 16 }, (_, i) => i)
  t.equal(toHex(v4Mac(new Uint8Array(0))), 'd144963029e2bd12f9970c9f52b27f09', 'empty message')
  t.equal(toHex(v4Mac(m.subarray(0, 15))), 'd9ced343d1fa93d3a37414a0be533037', '00..0e')
  t.equal(toHex(v4Mac(m)), 'bc8d323f3fd2fbed498edb35a1042378', '00..0f (a whole 80 00.. block appended)')
})

t.test('§9.4 V4 request and response MAC', async (t) => {
  t.equal(BASE_REQUEST.length, 236)
  const base = withMajor(BASE_REQUEST, 4)
  t.equal(toHex(v4Mac(base)), '3b8a15e6f7cb479bf969bd6ae86bc21a', 'request MAC over the 236-byte base')
  t.equal(toHex(v4Mac(BASE_RESPONSE)), 'c1d6ddee5b7fe4c2a222f029360cdc68', 'response MAC over 0x00-0x8f')
  t.equal(toHex(v4Mac(BASE_RESPONSE)), toHex(V4_RESPONSE.subarray(0x90)), 'as in the response bytes')
})

t.test('§9.5 V5', async (t) => {
  const request = hex(`
0000: 00 00 05 00 00 01 02 03 04 05 06 07 08 09 0a 0b
0010: 0c 0d 0e 0f 95 3c cc da 1e 87 c1 24 69 1c bb 4b
0020: d7 bb a5 f7 0b 4b 40 19 90 ad 01 1b f5 e1 0b f0
0030: 02 64 7e 0b f2 1d f4 94 40 8a 47 8b 8c f8 34 92
0040: 3f c5 9c f2 b3 75 2c 51 8b 62 49 88 20 68 27 b4
0050: f0 10 d1 b9 80 3a aa c4 df b9 3b 16 92 27 83 74
0060: 0f f9 df 9b 4c 74 8d 66 77 3d 50 17 6d 09 a2 6e
0070: e7 c2 cb a0 b9 17 85 ee d5 fb 21 c8 d0 34 27 ee
0080: e1 4a 3b 2c d7 f8 81 80 b1 04 cf 11 c5 c5 3f 49
0090: ec bb 81 c2 b0 dd 72 84 68 8f 06 00 b7 be f8 73
00a0: 5d 9d 35 c0 6d 8d 81 bc fb 08 f3 ea a3 ca 8c b5
00b0: 75 13 35 48 ab db e0 ce cf ad 05 ac 1e 4a 60 6a
00c0: 10 2e a9 38 57 79 a3 52 57 aa cf d6 b7 40 8e 98
00d0: 0b bf 86 66 c4 45 44 5b f0 70 62 b6 88 b5 41 61
00e0: e4 c7 12 ab 53 31 da 43 ae 04 6a 63 e4 cc 69 19
00f0: 7f 64 f4 f0 9f c5 7c ff b8 69 88 91 be ec 08 2a
0100: 05 f3 f0 5f`)
  const response = hex(`
0000: 00 00 05 00 00 01 02 03 04 05 06 07 08 09 0a 0b
0010: 0c 0d 0e 0f c0 06 24 2c d7 dc ad 6d 83 4e 77 0c
0020: eb b1 50 0e 3a 46 2d 40 42 e6 6d 50 0e e5 83 79
0030: 4b e0 b3 1a 7c 84 d3 99 70 9e 92 40 b5 c1 58 10
0040: 1d c4 6e 38 f5 ba 62 0f 18 9e ec 2f e9 d2 e0 62
0050: 33 77 18 07 25 f8 37 c1 3d d0 ca f8 c2 92 8a 47
0060: a0 b6 42 ea 77 fb e1 1b bc 86 9c 8c 33 1a 29 02
0070: bc d4 7f 86 19 df 4a 0f 17 cb 9c 28 00 7e 7f 7a
0080: 66 d0 2f 7a 62 48 25 5d ce 94 65 99 43 f1 20 93
0090: d0 da 54 5f 9a fb ce 0e 83 28 ee b1 48 53 d3 23
00a0: e2 96 d2 a5 47 5a 5a 32 12 ea 25 fb 86 c3 5f 64
00b0: d2 ec f1 2a be aa 3d ba ab 08 ff cd 75 5b 40 48
00c0: a8 7e d7 0d a8 59 4c 02 36 9f bc e4 32 66 8a 77
00d0: 3a cf 80 98 71 68 9b 9c cb 97 de 73 49 d4 77 67
00e0: 09 75 14 54`)
  t.equal(request.length, 260)
  t.equal(response.length, 228)
  const base = withMajor(BASE_REQUEST, 5)
  const iv = request.subarray(4, 20)
  t.equal(toHex(iv), toHex(REQUEST_IV))

  // host: decrypt the request
  t.equal(toHex(cbcDecrypt(V5_CIPHER, iv, request.subarray(20))), toHex(cat(base, PAD4)), 'base ‖ 04040404')
  t.equal(toHex(decryptPadded(V5_CIPHER, iv, request.subarray(20))), toHex(base), 'padding stripped')
  // client: the same bytes come out of encryption
  t.equal(toHex(encryptPadded(V5_CIPHER, iv, base)), toHex(request.subarray(20)), 'client encryption')
  // §4.5 zero-IV view: first block of CBC-D(0, IV ‖ C) is D_K(IV)
  const zeroIv = cbcDecrypt(V5_CIPHER, new Uint8Array(16), request.subarray(4))
  t.equal(toHex(zeroIv.subarray(0, 16)), '86bf207b6970ef43830e988ff1e6f329', 'zero-IV view: first block is D')
  t.equal(toHex(zeroIv.subarray(16)), toHex(cat(base, PAD4)), 'zero-IV view: then the padded base')

  const d = decryptBlockOf(V5_CIPHER, iv)
  t.equal(toHex(d), '86bf207b6970ef43830e988ff1e6f329', 'D = D_K5(IV)')
  const x = xor(R, d)
  t.equal(toHex(x), '765ef2b8ddd579c4fb67c2c4cdcbed26', 'X = R xor D')
  const h = sha256(R)
  t.equal(toHex(h), '6995d874e546bd6eae594d5ef6b696bad37e7c076ad2ab7a7f5460ac8b8472fe', 'H = SHA256(R)')
  t.equal(toHex(h), createHash('sha256').update(R).digest('hex'), 'sha256 agrees with node:crypto')

  // host: encrypt the response payload with the request IV
  const payload = cat(withMajor(BASE_RESPONSE, 5), x, h)
  t.equal(payload.length, 192)
  const wire = cat(payload.subarray(0, 4), iv, encryptPadded(V5_CIPHER, iv, payload))
  t.equal(toHex(wire), toHex(response), 'response wire bytes')
  // client: decrypt and verify the hash
  const back = decryptPadded(V5_CIPHER, response.subarray(4, 20), response.subarray(20))
  t.equal(toHex(back), toHex(payload), 'client decrypts the payload')
  t.equal(
    toHex(cbcDecrypt(V5_CIPHER, iv, response.subarray(20)).subarray(192)),
    '10'.repeat(16),
    'a whole pad block',
  )
  t.equal(
    toHex(sha256(xor(back.subarray(0x90, 0xa0), d))),
    toHex(back.subarray(0xa0, 0xc0)),
    'SHA256(X xor D) = H',
  )
})

t.test('§9.6 V6', async (t) => {
  const request = hex(`
0000: 00 00 06 00 00 01 02 03 04 05 06 07 08 09 0a 0b
0010: 0c 0d 0e 0f 0e 9f d8 70 b2 8b 82 85 f7 36 f8 2c
0020: 6c d0 e0 6b 03 fc ff ed 0b 5b 85 dd 30 00 94 ca
0030: c3 6b e1 65 ee 8f 2e aa 55 53 e2 cb 07 d5 21 65
0040: f4 12 99 0e 41 cc 35 31 11 9f 72 a7 fb 4d be 15
0050: 9f 2e a5 56 69 31 08 01 31 8a eb 8e 92 14 b7 d1
0060: 24 13 6b c7 09 c0 2c 23 9a db 53 5c cf 40 e9 89
0070: 19 3b d5 82 fe 8f fc fc e3 e2 3c 8f 3b 88 23 29
0080: 14 33 13 75 11 8c 52 67 12 ee a8 37 11 2d 0d b0
0090: 39 fa f8 f6 80 77 09 7f 7b 4c a4 24 1a 78 0f 5c
00a0: 76 bc 67 f1 30 a9 4c 69 95 5d c8 6b 8e ee 6d 03
00b0: 16 a2 25 39 b2 06 42 75 cd 0c c4 43 80 7c bc ad
00c0: b8 50 0b 7b 65 43 c8 59 0c 8d e8 12 41 6e e9 e4
00d0: a0 95 c2 c4 7d 6c 91 56 a4 5e 03 b0 96 66 b2 76
00e0: f5 b3 b2 cb 14 38 96 19 22 ff c0 bf 4b a5 c5 cd
00f0: ed 92 c3 e3 a8 5d 2f ec 21 6a 20 b4 72 be ce 41
0100: d3 f9 d8 23`)
  const response = hex(`
0000: 00 00 06 00 a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab
0010: ac ad ae af 93 c3 21 8c ef 84 c9 f4 86 4e 77 ea
0020: 12 19 65 d0 11 70 5f e7 64 a6 c5 15 09 80 35 2c
0030: 00 25 09 bc 2e b4 e4 8d 2c 83 29 fb 87 ff 71 c8
0040: fa 48 f4 ce 47 c3 44 88 5d d0 9a 55 29 11 c7 8b
0050: bc 85 fc 1c 1a 3f b1 f1 57 23 82 57 76 54 21 8b
0060: a3 73 75 67 ec b1 4e 24 f4 8e d6 ce 8b 11 dd da
0070: d0 07 b4 24 22 f6 3d 7e 66 0f df 7a 6a 28 53 0a
0080: 66 fd 16 34 97 fd 55 3c ae 23 af 19 58 cc 54 85
0090: 9a c5 c0 ed 3e d0 ed 20 d2 87 9e 7c 4a 56 a9 cf
00a0: cf ec 84 7f 1e 67 00 52 c4 ab f4 c7 89 7c f1 5b
00b0: ed 27 68 48 d5 1d 07 02 b4 be 13 09 7f 48 fb 57
00c0: 46 17 3e 0a 74 92 ae 25 53 da 39 12 0a c6 8b c0
00d0: 62 f9 72 e2 38 fa 8b 7d e4 1b 0e 33 5c a2 92 59
00e0: c4 29 7b 7f 41 da 72 80 f0 81 8f 2a ff ed 9e 18
00f0: 92 0c e8 aa 8e 08 9e e6 f3 2e ff 52 53 50 91 80
0100: c8 77 3c 87`)
  // the tail of the plaintext payload as printed in §9.6 (X, H, HWID, XorSalts, HMAC)
  const payloadTail = hex(`
0090: 8c a8 7a da d0 b4 08 e2 ba 22 c3 eb a4 82 fa 5c
00a0: 69 95 d8 74 e5 46 bd 6e ae 59 4d 5e f6 b6 96 ba
00b0: d3 7e 7c 07 6a d2 ab 7a 7f 54 60 ac 8b 84 72 fe
00c0: 3a 1c 04 96 00 b6 00 76 7c 49 a8 19 64 11 9e 65
00d0: c2 4b 99 a0 98 af e4 53 8e 9e 0a 99 21 90 4e 4a
00e0: 05 52 e4 11 6e 7c ac 71`)
  t.equal(request.length, 260)
  t.equal(response.length, 260)
  const iv = request.subarray(4, 20)

  // host: decrypt the request
  t.equal(
    toHex(cbcDecrypt(V6_CIPHER, iv, request.subarray(20))),
    toHex(cat(BASE_REQUEST, PAD4)),
    'base ‖ 04040404',
  )
  t.equal(toHex(decryptPadded(V6_CIPHER, iv, request.subarray(20))), toHex(BASE_REQUEST), 'padding stripped')
  t.equal(
    toHex(cbcEncrypt(V6_CIPHER, iv, cat(BASE_REQUEST, PAD4))),
    toHex(request.subarray(20)),
    'client side',
  )

  const d = decryptBlockOf(V6_CIPHER, iv)
  t.equal(toHex(d), '7c49a81964119e65c24b99a098afe453', 'D = D_K6(request IV)')
  const x = xor(R, d)
  t.equal(toHex(x), '8ca87adad0b408e2ba22c3eba482fa5c', 'X = R xor D')
  const h = sha256(R)
  t.equal(toHex(h), '6995d874e546bd6eae594d5ef6b696bad37e7c076ad2ab7a7f5460ac8b8472fe', 'H = SHA256(R)')

  // HMAC key from the request time
  t.equal(toHex(BASE_REQUEST.subarray(0x54, 0x5c)), '0020875daa47da01', 'request time on the wire')
  t.equal(REQUEST_TIME, 0x01da47aa5d872000n)
  t.equal(REQUEST_TIME / V6_HMAC_C1, 900795n, 't div C1')
  t.equal(V6_HMAC_C1, 148199999933n)
  t.equal(V6_HMAC_C2, 139799999981n)
  t.equal(V6_HMAC_C3, 0x3156cd5ac628477an)
  const slot = v6HmacSlot(REQUEST_TIME)
  t.equal(slot, 0x3316330f629a1199n, 'slot')
  const slotLe = new Uint8Array(8)
  new DataView(slotLe.buffer).setBigUint64(0, slot, true)
  t.equal(toHex(slotLe), '99119a620f331633', 'slot LE')
  t.equal(
    toHex(sha256(slotLe)),
    '0a33deb751e07f34ff81c8c65eb8ba47f59f36bd25e189af8d4f620cbce37dca',
    'SHA256(slot LE)',
  )
  const key = v6HmacKey(REQUEST_TIME)
  t.equal(toHex(key), 'f59f36bd25e189af8d4f620cbce37dca', 'HMAC key = last 16 bytes')
  t.equal(toHex(v6HmacKeyForSlot(slot)), toHex(key), 'v6HmacKeyForSlot(slot)')

  // HMAC over D_K6(IVr) ‖ payload0
  const prefix = decryptBlockOf(V6_CIPHER, RESPONSE_IV)
  t.equal(toHex(prefix), 'ea86076dcb5e1dca591b247e741baddd', 'D_K6(IVr)')
  const payload0 = cat(withMajor(BASE_RESPONSE, 6), x, h, HWID, d)
  t.equal(payload0.length, 216)
  const message = cat(prefix, payload0)
  t.equal(message.length, 232)
  t.equal(
    createHmac('sha256', key).update(message).digest('hex'),
    'e31deb626e232e20bc3dee1c150b7aa78e9e0a9921904e4a0552e4116e7cac71',
    'full HMAC-SHA256 (node:crypto)',
  )
  const mac = v6Hmac(key, message)
  t.equal(toHex(mac), '8e9e0a9921904e4a0552e4116e7cac71', 'HMAC field = last 16 bytes')

  const payload = cat(payload0, mac)
  t.equal(payload.length, 232)
  t.equal(toHex(payload.subarray(0x90)), toHex(payloadTail), 'payload 0x90.. as printed')
  const encrypted = encryptPadded(V6_CIPHER, RESPONSE_IV, payload)
  t.equal(
    toHex(cbcDecrypt(V6_CIPHER, RESPONSE_IV, encrypted).subarray(232)),
    '08'.repeat(8),
    'eight bytes of 08',
  )
  t.equal(toHex(cat(payload.subarray(0, 4), RESPONSE_IV, encrypted)), toHex(response), 'response wire bytes')

  // client: verify the way vlmcs does (§4.7), with slot tolerance ±C1
  const back = decryptPadded(V6_CIPHER, response.subarray(4, 20), response.subarray(20))
  t.equal(toHex(back), toHex(payload), 'client decrypts the payload')
  const clientPrefix = decryptBlockOf(V6_CIPHER, response.subarray(4, 20))
  const macOk = (s: bigint) =>
    toHex(v6Hmac(v6HmacKeyForSlot(s), cat(clientPrefix, back.subarray(0, 216)))) === toHex(back.subarray(216))
  t.equal(slot - V6_HMAC_C1, 0x331632ece13187dcn, 'slot − C1')
  t.equal(slot + V6_HMAC_C1, 0x33163331e4029b56n, 'slot + C1')
  t.ok(macOk(slot), 'k = 0 matches')
  t.notOk(macOk(slot - V6_HMAC_C1), 'k = −1 is another key')
  t.notOk(macOk(slot + V6_HMAC_C1), 'k = +1 is another key')
  t.not(toHex(v6HmacKeyForSlot(slot + V6_HMAC_C1)), toHex(key))
})

t.test('V6 HMAC key edge cases', async (t) => {
  // the one-entry cache must not leak mutations or stale keys
  const a = v6HmacKey(REQUEST_TIME)
  a.fill(0)
  t.equal(toHex(v6HmacKey(REQUEST_TIME)), 'f59f36bd25e189af8d4f620cbce37dca', 'returned key is a copy')
  const other = v6HmacKeyForSlot(12345n)
  t.equal(toHex(v6HmacKeyForSlot(12345n)), toHex(other))
  t.equal(toHex(v6HmacKey(REQUEST_TIME)), 'f59f36bd25e189af8d4f620cbce37dca', 'after another slot')
  // slots are taken mod 2^64, so slot − C1 below zero wraps like the u64 arithmetic of vlmcs
  t.equal(toHex(v6HmacKeyForSlot(-1n)), toHex(v6HmacKeyForSlot((1n << 64n) - 1n)), 'wraps mod 2^64')
  t.equal(v6HmacSlot(0n), V6_HMAC_C3, 't = 0')
  t.equal(v6HmacSlot(V6_HMAC_C1 - 1n), V6_HMAC_C3, 'same slot up to C1 − 1')
  t.equal(v6HmacSlot(V6_HMAC_C1), V6_HMAC_C3 + V6_HMAC_C2, 'next slot at C1')
  t.equal(
    v6HmacSlot((1n << 64n) - 1n),
    BigInt.asUintN(64, (((1n << 64n) - 1n) / V6_HMAC_C1) * V6_HMAC_C2 + V6_HMAC_C3),
  )
  for (const bad of [-1n, 1n << 64n]) {
    t.ok(thrown(() => v6HmacSlot(bad)) instanceof CryptoError, `request time ${bad} refused`)
  }
  t.ok(thrown(() => decryptBlockOf(V6_CIPHER, new Uint8Array(15))) instanceof CryptoError, 'short block')
  // Node Buffers are Uint8Arrays and must be accepted as such (the server hands them over)
  const key = Buffer.from('f59f36bd25e189af8d4f620cbce37dca', 'hex')
  const msg = Buffer.from('kmslab')
  t.equal(
    toHex(v6Hmac(key, msg)),
    createHmac('sha256', key).update(msg).digest('hex').slice(32),
    'Buffer inputs',
  )
  t.equal(toHex(sha256(msg)), createHash('sha256').update(msg).digest('hex'), 'Buffer into sha256')
  t.equal(
    toHex(v6Hmac(hex('00'), msg)),
    createHmac('sha256', hex('00')).update(msg).digest('hex').slice(32),
    'new key',
  )
  t.equal(
    toHex(v6Hmac(key, msg)),
    createHmac('sha256', key).update(msg).digest('hex').slice(32),
    'back to the first key',
  )
})
