import fc from 'fast-check'
import t from 'tap'
import { FramingError, PduFramer } from '../src/server/framer.js'
import { ndr32Bind } from './fixtures/raw-activate.js'

const BIND = ndr32Bind()

/** Feeds `bytes` one at a time; returns the PDUs, or the index of the byte that threw. */
function dribble(framer: PduFramer, bytes: Uint8Array): { pdus: Uint8Array[]; threwAt: number | null } {
  const pdus: Uint8Array[] = []
  for (let i = 0; i < bytes.length; i++) {
    try {
      pdus.push(...framer.push(bytes.subarray(i, i + 1)))
    } catch (err) {
      if (!(err instanceof FramingError)) throw err
      return { pdus, threwAt: i }
    }
  }
  return { pdus, threwAt: null }
}

t.test('garbage fed a byte at a time is judged at its first telling byte', async (t) => {
  t.equal(dribble(new PduFramer(), Buffer.from('GET / HTTP/1.1\r\n')).threwAt, 2, 'HTTP: at the third byte')
  t.equal(dribble(new PduFramer(), Uint8Array.from([0x16, 0x03, 0x01, 0x02])).threwAt, 2, 'TLS: the third')
  // RPC 5 with frag_length 0xffff: known at byte 10 (index 9), long before 64 KiB arrive
  const bogus = BIND.slice()
  bogus[8] = 0xff
  bogus[9] = 0xff
  t.equal(dribble(new PduFramer(), bogus).threwAt, 9, 'an impossible length: at its second byte')
  const framer = new PduFramer()
  t.equal(dribble(framer, Buffer.from('GE')).threwAt, null, 'two bytes could still be an RPC 4 bind')
  t.equal(framer.pending, 2)
})

t.test('a BIND fed a byte at a time comes out whole on its last byte, and only then', async (t) => {
  const framer = new PduFramer()
  const { pdus, threwAt } = dribble(framer, BIND.subarray(0, BIND.length - 1))
  t.equal(threwAt, null)
  t.equal(pdus.length, 0)
  t.equal(framer.pending, BIND.length - 1)
  const last = framer.push(BIND.subarray(BIND.length - 1))
  t.same(
    last.map((p) => Buffer.from(p).toString('hex')),
    [Buffer.from(BIND).toString('hex')],
  )
  t.equal(framer.pending, 0)
})

t.test('property: any chunking of a stream of BINDs gives the same PDUs', async () => {
  const stream = new Uint8Array(BIND.length * 3)
  for (let i = 0; i < 3; i++) stream.set(BIND, i * BIND.length)
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 60 }), (sizes) => {
      const framer = new PduFramer()
      const out: Uint8Array[] = []
      let at = 0
      for (const size of [...sizes, stream.length]) {
        if (at >= stream.length) break
        out.push(...framer.push(stream.subarray(at, at + size)))
        at += size
      }
      return (
        out.length === 3 && out.every((p) => Buffer.from(p).equals(Buffer.from(BIND))) && framer.pending === 0
      )
    }),
  )
})
