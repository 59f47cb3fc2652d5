import fc from 'fast-check'
import t from 'tap'
import { ByteView, guidToBytes, readGuid, readUtf16Z, writeUtf16Field } from '../src/wire/bytes.js'

t.test('readGuid: mixed-endian wire bytes to the lower-case text form, at an offset', async (t) => {
  // the Windows application id as it sits in a request: u32 LE, u16 LE, u16 LE, 8 bytes as written
  const bytes = Uint8Array.from([
    0xaa, 0x34, 0x27, 0xc9, 0x55, 0x82, 0xd6, 0x71, 0x4d, 0x98, 0x3e, 0xd6, 0xec, 0x3f, 0x16, 0x05, 0x9f,
  ])
  t.equal(readGuid(bytes, 1), '55c92734-d682-4d71-983e-d6ec3f16059f')
  t.equal(readGuid(new Uint8Array(16).fill(0xff), 0), 'ffffffff-ffff-ffff-ffff-ffffffffffff')
  t.equal(readGuid(new Uint8Array(16), 0), '00000000-0000-0000-0000-000000000000')
})

t.test('readGuid round-trips guidToBytes for any 16 bytes', async () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
      const text = readGuid(b, 0)
      return (
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(text) &&
        guidToBytes(text).every((x, i) => x === b[i])
      )
    }),
  )
})

t.test('readUtf16Z: stops at NUL or the field end, odd sizes, long fields', async (t) => {
  const field = Uint8Array.from([0x41, 0x00, 0x3f, 0x04, 0x00, 0x00, 0x42, 0x00])
  t.equal(readUtf16Z(field, 0, 8), 'A\u043f', 'NUL ends the text; what follows it is ignored')
  t.equal(readUtf16Z(field, 0, 3), 'A', 'an odd size reads whole code units only')
  t.equal(readUtf16Z(field, 6, 2), 'B')
  t.equal(readUtf16Z(field, 6, 16), 'B', 'bytes past the buffer read as NUL')
  t.equal(readUtf16Z(field, 0, 0), '')
  // longer than any KMS field and than one String.fromCharCode slice (4,096 units)
  const text = 'kmslab-'.repeat(1500)
  const big = new Uint8Array(2 * text.length)
  writeUtf16Field(big, 0, big.length, text)
  t.equal(readUtf16Z(big, 0, big.length), text)
  t.equal(readUtf16Z(field, 0, 8), 'A\u043f', 'a short field after a long one reads only its own units')
})

t.test('ByteView reads and writes what a DataView over the same bytes does', async (t) => {
  // literal bytes first: 0x04030201 little-endian, 0x01020304 big-endian, at an offset into a view
  const bytes = Uint8Array.from([9, 9, 1, 2, 3, 4, 5, 6, 7, 8]).subarray(2)
  const v = new ByteView(bytes)
  t.equal(v.getUint32(0, true), 0x04030201)
  t.equal(v.getUint32(0), 0x01020304)
  t.equal(v.getUint16(2, true), 0x0403)
  t.equal(v.getBigUint64(0, true), 0x0807060504030201n)
  t.throws(() => v.getUint32(5, true), RangeError)
  t.throws(() => v.getUint8(-1), RangeError)
  t.throws(() => v.setUint16(7, 1, true), RangeError)
  const offsets = fc.nat({ max: 40 })
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 40 }), offsets, fc.boolean(), (b, o, le) => {
      const d = new DataView(b.buffer, b.byteOffset, b.byteLength)
      const w = new ByteView(b)
      const same = (f: (x: DataView | ByteView) => unknown) => {
        let want: unknown
        let got: unknown
        try {
          want = f(d)
        } catch (e) {
          want = (e as Error).constructor
        }
        try {
          got = f(w)
        } catch (e) {
          got = (e as Error).constructor
        }
        return want === got
      }
      return (
        same((x) => x.getUint8(o)) &&
        same((x) => x.getUint16(o, le)) &&
        same((x) => x.getUint32(o, le)) &&
        same((x) => x.getBigUint64(o, le)) &&
        same((x) => x.getBigInt64(o, le))
      )
    }),
  )
  fc.assert(
    fc.property(fc.nat({ max: 8 }), fc.boolean(), fc.integer(), fc.bigInt(), (o, le, n, big) => {
      const a = new Uint8Array(16)
      const b = new Uint8Array(16)
      const d = new DataView(a.buffer)
      const w = new ByteView(b)
      d.setUint8(o, n)
      w.setUint8(o, n)
      d.setUint16(o + 1, n, le)
      w.setUint16(o + 1, n, le)
      d.setUint32(o + 3, n, le)
      w.setUint32(o + 3, n, le)
      d.setBigUint64(o, BigInt.asUintN(64, big), le)
      w.setBigUint64(o, big, le)
      return a.join() === b.join()
    }),
  )
})
