import { createCipheriv, randomBytes } from 'node:crypto'
import t from 'tap'
import { CryptoError } from '../src/crypto/errors.js'
import {
  BlockCipher,
  cipherForVersion,
  expandKey,
  V4_CIPHER,
  V4_KEY,
  V5_CIPHER,
  V5_KEY,
  V6_CIPHER,
  V6_KEY,
  V6_KEY_TWEAKS,
} from '../src/crypto/rijndael.js'

const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '')
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error(`bad hex in test: ${s}`)
  return new Uint8Array(Buffer.from(clean, 'hex'))
}
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}
const roundKeys = (c: BlockCipher): string[] => toHex(c.roundKeys()).match(/.{32}/g) ?? []

// §9.2 expanded keys, round key r per line
const RK = {
  v4: `053d8307f9e5f088eb5ea6686cf037c7 e4efd2d6db88756e226d85e6c933238e a5c31449412cc69fa83caeed8a512b0b
       43620885e6a11ccca78dda53f16b43b1 7b3a68ba3858603fdef97cf37974a6a0 6b4fa3071075cbbd282dab82f6d4d771
       8fa071d19bec9d748b9956c9a3b4fd4b 55602a3adac05beb01d574238a4c22ea 29f8dfa17c98f59ba658ae702b312507
       a17d07ed8885d84cf41d2dd7524583a7 c5dd790764a07eeaec25a6a618388b71 4a7d08d621ed8fd1454df13ba968579d`,
  v5: `cd7e796f2ab25dcb55ffc8ef8364c470 8f622883a5d07548f02fbda7734b79d7 3ed4260c9b0453446b2beee318609734
       ea5c3ea171586de51a73830602131432 9fa61dd6eefe7033f48df335f69ee707 8432d8946acca8a79e415b9268dfbc95
       3a57f2d1509b5a76ceda01e4a605bd71 112d51f541b60b838f6c0a672969b716 6884165029321dd3a65e17b48f37a0a2
       e9642c23c05631f066082644e93f86e6 aa20a23d6a7693cd0c7eb589e541336f`,
  v6: `a94a4195e201432d9bcb460405d84a21 c99cbcfe2b9dffd3b056b9d7b58ef3f6 d291fe2bf90c01f8495ab82ffcd44bd9
       9e22cb9b672eca632e74724cd2a03995 0530e12e111e2b4d3f6a5901edca6094 12e0c37b03fee8363c94b137d15ed1a3
       63dec9456920217355b4904484ea41e7 ad5d5d1ac47d7c6991c9ec2d1523adca efc82943cfb5552a5e7cb9074b5f14cd
       df3294f01087c1da4efb78dd05a46c10 a0625e9bb0e59f41fe1ee79cfbba8b8c`,
}
const lines = (s: string): string[] => s.trim().split(/\s+/)

const BLOCK = hex('000102030405060708090a0b0c0d0e0f')
const CASES = [
  {
    name: 'V4',
    cipher: V4_CIPHER,
    rounds: 11,
    rk: RK.v4,
    e: '28916e4a0ee525b42cf393cae0f4dc9a',
    d: '7f26b9b9021ae7fd4afacf94315362cb',
  },
  {
    name: 'V5',
    cipher: V5_CIPHER,
    rounds: 10,
    rk: RK.v5,
    e: '8d77cb43633c62cbe1d15d570c23dc75',
    d: '86bf207b6970ef43830e988ff1e6f329',
  },
  {
    name: 'V6',
    cipher: V6_CIPHER,
    rounds: 10,
    rk: RK.v6,
    e: 'ca89ca11b2c4e77a94e806af17136b38',
    d: '7c49a81964119e65c24b99a098afe453',
  },
]

t.test('§4.1 keys', async (t) => {
  t.equal(toHex(V4_KEY), '053d8307f9e5f088eb5ea6686cf037c7e4efd2d6')
  t.equal(toHex(V5_KEY), 'cd7e796f2ab25dcb55ffc8ef8364c470')
  t.equal(toHex(V6_KEY), 'a94a4195e201432d9bcb460405d84a21')
  t.same(V6_KEY_TWEAKS, [
    [64, 0x73],
    [96, 0x09],
    [128, 0xe4],
  ])
})

t.test('§9.2 expanded keys', async (t) => {
  for (const c of CASES) {
    t.equal(c.cipher.rounds, c.rounds, `${c.name} rounds`)
    t.same(roundKeys(c.cipher), lines(c.rk), `${c.name} rk0..rk${c.rounds}`)
  }
  t.equal(expandKey(V4_KEY).length, 192, 'V4 expanded key is 192 bytes')
  t.equal(toHex(expandKey(V5_KEY)), lines(RK.v5).join(''), 'expandKey(V5_KEY)')
  // V6 = the standard schedule of its key with three bytes XORed (76, 6a, 0b → 05, 63, ef)
  const plain = expandKey(V6_KEY)
  t.same([plain[64], plain[96], plain[128]], [0x76, 0x6a, 0x0b], 'standard schedule bytes before the tweak')
  for (const [at, mask] of V6_KEY_TWEAKS) plain[at] ^= mask
  t.equal(toHex(plain), lines(RK.v6).join(''), 'tweaked schedule equals V6_CIPHER round keys')
})

t.test('§9.2 single blocks', async (t) => {
  for (const c of CASES) {
    const out = new Uint8Array(16)
    c.cipher.encryptBlock(BLOCK, 0, out, 0)
    t.equal(toHex(out), c.e, `${c.name} E(000102..0f)`)
    c.cipher.decryptBlock(BLOCK, 0, out, 0)
    t.equal(toHex(out), c.d, `${c.name} D(000102..0f)`)
    c.cipher.decryptBlock(hex(c.e), 0, out, 0)
    t.equal(toHex(out), toHex(BLOCK), `${c.name} D(E(x)) = x`)
  }
})

t.test('offsets and in-place operation', async (t) => {
  const buf = new Uint8Array(48)
  buf.set(BLOCK, 7)
  V6_CIPHER.encryptBlock(buf, 7, buf, 7)
  t.equal(toHex(buf.subarray(7, 23)), CASES[2].e, 'in place at an odd offset')
  V6_CIPHER.decryptBlock(buf, 7, buf, 30)
  t.equal(toHex(buf.subarray(30, 46)), toHex(BLOCK), 'into another offset of the same buffer')
  t.equal(toHex(buf.subarray(0, 7)), '00000000000000', 'bytes before the block untouched')
  const nodeBuf = Buffer.alloc(32)
  V5_CIPHER.encryptBlock(BLOCK, 0, nodeBuf, 16)
  t.equal(nodeBuf.subarray(16).toString('hex'), CASES[1].e, 'a Buffer works as destination')
})

t.test('word interface (used by CBC) matches the byte interface', async (t) => {
  for (const c of CASES) {
    const w = new Uint32Array([0x00010203, 0x04050607, 0x08090a0b, 0x0c0d0e0f])
    c.cipher.encryptWords(w)
    t.equal([...w].map((x) => x.toString(16).padStart(8, '0')).join(''), c.e, `${c.name} encryptWords`)
    c.cipher.decryptWords(w)
    t.same([...w], [0x00010203, 0x04050607, 0x08090a0b, 0x0c0d0e0f], `${c.name} decryptWords inverts`)
  }
  t.ok(thrown(() => V6_CIPHER.encryptWords(new Uint32Array(3))) instanceof CryptoError, 'three words refused')
  t.ok(thrown(() => V6_CIPHER.decryptWords(new Uint32Array(0))) instanceof CryptoError, 'no words refused')
})

t.test('V5 (and every AES key size) equals node:crypto AES-ECB on random blocks', async (t) => {
  const data = randomBytes(16 * 256)
  const check = (key: Uint8Array, algo: string, cipher: BlockCipher) => {
    const c = createCipheriv(algo, key, null).setAutoPadding(false)
    const want = Buffer.concat([c.update(data), c.final()])
    const got = new Uint8Array(data.length)
    for (let o = 0; o < data.length; o += 16) cipher.encryptBlock(data, o, got, o)
    t.equal(toHex(got), want.toString('hex'), `${algo} encrypt`)
    const back = new Uint8Array(data.length)
    for (let o = 0; o < data.length; o += 16) cipher.decryptBlock(want, o, back, o)
    t.equal(toHex(back), data.toString('hex'), `${algo} decrypt`)
  }
  check(V5_KEY, 'aes-128-ecb', V5_CIPHER)
  for (const [bytes, algo] of [
    [16, 'aes-128-ecb'],
    [24, 'aes-192-ecb'],
    [32, 'aes-256-ecb'],
  ] as const) {
    for (let i = 0; i < 4; i++) {
      const key = randomBytes(bytes)
      check(key, algo, new BlockCipher(expandKey(key)))
    }
  }
})

t.test('decrypt(encrypt(x)) = x for V4, V5, V6 on random blocks', async (t) => {
  for (const c of CASES) {
    const data = randomBytes(16 * 512)
    const enc = new Uint8Array(data.length)
    const dec = new Uint8Array(data.length)
    for (let o = 0; o < data.length; o += 16) c.cipher.encryptBlock(data, o, enc, o)
    for (let o = 0; o < data.length; o += 16) c.cipher.decryptBlock(enc, o, dec, o)
    t.equal(toHex(dec), data.toString('hex'), c.name)
    t.not(toHex(enc), data.toString('hex'), `${c.name} encryption changes the data`)
  }
})

t.test('V6 differs from AES-128 with the same key', async (t) => {
  const aes = new BlockCipher(expandKey(V6_KEY))
  const a = new Uint8Array(16)
  const b = new Uint8Array(16)
  aes.encryptBlock(BLOCK, 0, a, 0)
  V6_CIPHER.encryptBlock(BLOCK, 0, b, 0)
  t.not(toHex(a), toHex(b))
})

t.test('cipherForVersion', async (t) => {
  t.equal(cipherForVersion(4), V4_CIPHER)
  t.equal(cipherForVersion(5), V5_CIPHER)
  t.equal(cipherForVersion(6), V6_CIPHER)
  for (const v of [0, 3, 7, 5.5, Number.NaN]) {
    t.ok(thrown(() => cipherForVersion(v)) instanceof CryptoError, `version ${v} refused`)
  }
})

t.test('bad keys and block positions throw CryptoError', async (t) => {
  for (const len of [0, 15, 17, 36, 64]) {
    t.ok(thrown(() => expandKey(new Uint8Array(len))) instanceof CryptoError, `key of ${len} bytes`)
  }
  for (const len of [0, 16, 100]) {
    t.ok(
      thrown(() => new BlockCipher(new Uint8Array(len))) instanceof CryptoError,
      `expanded key of ${len} bytes`,
    )
  }
  const buf = new Uint8Array(20)
  for (const off of [-1, 5, 1.5, Number.NaN]) {
    t.ok(
      thrown(() => V5_CIPHER.encryptBlock(buf, off, buf, 0)) instanceof CryptoError,
      `encrypt src offset ${off}`,
    )
    t.ok(
      thrown(() => V5_CIPHER.decryptBlock(buf, 0, buf, off)) instanceof CryptoError,
      `decrypt dst offset ${off}`,
    )
  }
})
