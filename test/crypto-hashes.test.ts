// The adapter around @noble/hashes' internals (src/crypto/noble-adapter.ts): known answers, and
// agreement with node:crypto on inputs of every length around the block size, including calls
// interleaved so that a scratch state that leaked from one call into the next would show.
import { createHash, createHmac } from 'node:crypto'
import t from 'tap'
import { HmacSha256, sha256Into } from '../src/crypto/noble-adapter.js'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const sha = (data: Uint8Array) => {
  const out = new Uint8Array(32)
  sha256Into(data, out)
  return hex(out)
}
const mac = (h: HmacSha256, message: Uint8Array) => {
  const out = new Uint8Array(32)
  h.macInto(message, out)
  return hex(out)
}

t.test('SHA-256 known answers (FIPS 180-4 examples)', async (t) => {
  t.equal(sha(new Uint8Array(0)), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  t.equal(sha(Buffer.from('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  t.equal(
    sha(Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  )
})

t.test('HMAC-SHA256 known answers (RFC 4231 cases 1 and 2)', async (t) => {
  t.equal(
    mac(new HmacSha256(new Uint8Array(20).fill(0x0b)), Buffer.from('Hi There')),
    'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
  )
  t.equal(
    mac(new HmacSha256(Buffer.from('Jefe')), Buffer.from('what do ya want for nothing?')),
    '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  )
})

t.test('agrees with node:crypto at every length up to three blocks, interleaved', async (t) => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i * 17)
  const keyed = new HmacSha256(key)
  const other = new HmacSha256(Buffer.from('another key'))
  for (let n = 0; n <= 192; n++) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff)
    const wantSha = createHash('sha256').update(data).digest('hex')
    const wantMac = createHmac('sha256', key).update(data).digest('hex')
    // a call with another state in between must not disturb the reused scratch states
    t.equal(sha(data), wantSha, `sha256 of ${n} bytes`)
    mac(other, data)
    t.equal(mac(keyed, data), wantMac, `hmac of ${n} bytes`)
    t.equal(sha(data), wantSha, `sha256 of ${n} bytes again`)
  }
})
