// Property tests: random bytes and mutations of the real captures fed to every entry point of
// the capture layer. They return, or throw a CaptureError; nothing else, and they terminate.
import fc from 'fast-check'
import t from 'tap'
import {
  type CapturedPacket,
  CaptureError,
  capturePdus,
  cutRpcPdus,
  decodeFrame,
  readCapture,
  reassembleTcp,
} from '../src/capture/index.js'
import { allCaptureNames, ethernetFrame, ipPacket, loadCaptureBytes, writePcap } from './fixtures/pcap.js'

const RUNS = Number(process.env.KMSLAB_FUZZ_RUNS ?? 500)
const files = allCaptureNames().map((n) => loadCaptureBytes(n))

/** Runs fn; a CaptureError is an allowed outcome, any other exception fails the property. */
function onlyCaptureErrors(fn: () => void): boolean {
  try {
    fn()
  } catch (e) {
    if (e instanceof CaptureError) return true
    throw e
  }
  return true
}

// half the writes land in the first 200 bytes, where the file header and first records live
const position = fc.oneof(fc.nat({ max: 200 }), fc.nat())
const mutation = fc.record({
  file: fc.nat({ max: files.length - 1 }),
  writes: fc.array(fc.record({ at: position, value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 12 }),
  // 32-bit writes aimed at length fields are what breaks record walkers
  words: fc.array(fc.record({ at: position, value: fc.nat({ max: 0xffffffff }) }), { maxLength: 3 }),
  cut: fc.option(fc.nat()),
  splice: fc.option(fc.record({ at: fc.nat(), bytes: fc.uint8Array({ maxLength: 40 }) })),
})

function mutate(m: typeof mutation extends fc.Arbitrary<infer T> ? T : never): Uint8Array {
  let b = new Uint8Array(files[m.file])
  if (m.splice) {
    const at = m.splice.at % (b.length + 1)
    const out = new Uint8Array(b.length + m.splice.bytes.length)
    out.set(b.subarray(0, at))
    out.set(m.splice.bytes, at)
    out.set(b.subarray(at), at + m.splice.bytes.length)
    b = out
  }
  for (const w of m.writes) b[w.at % b.length] = w.value
  const dv = new DataView(b.buffer)
  for (const w of m.words) if (b.length >= 4) dv.setUint32(w.at % (b.length - 3), w.value, (w.at & 1) === 0)
  if (m.cut !== null) b = b.subarray(0, m.cut % (b.length + 1))
  return b
}

t.test('readCapture: random bytes', async (t) => {
  const magic = fc.constantFrom(
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0x0a, 0x0d, 0x0d, 0x0a],
    [],
  )
  fc.assert(
    fc.property(magic, fc.uint8Array({ maxLength: 600 }), (head, tail) =>
      onlyCaptureErrors(() => {
        const bytes = Uint8Array.from([...head, ...tail])
        const r = readCapture(bytes)
        for (const p of r.packets) {
          if (p.fileOffset + p.data.length > bytes.length) throw new Error('packet beyond the file')
        }
      }),
    ),
    { numRuns: RUNS },
  )
  t.pass('only CaptureError')
})

t.test('readCapture and capturePdus: mutations of the real captures', async (t) => {
  fc.assert(
    fc.property(mutation, (m) => {
      const bytes = mutate(m)
      onlyCaptureErrors(() => {
        const r = readCapture(bytes)
        if (r.packets.length > bytes.length / 12) throw new Error('more packets than the file can hold')
      })
      return onlyCaptureErrors(() => {
        let total = 0
        for (const c of capturePdus(bytes)) {
          total += c.connection.clientData.length + c.connection.serverData.length
          if (c.connection.gaps.length > 101) throw new Error('unbounded findings')
        }
        if (total > bytes.length) throw new Error('reassembled more bytes than the file holds')
      })
    }),
    { numRuns: RUNS },
  )
  t.pass('only CaptureError, output bounded by the input')
})

t.test('decodeFrame: random frames for every link type', async (t) => {
  const linkType = fc.constantFrom(0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147)
  // start from a real frame now and then so the deeper layers get exercised
  const frame = fc.oneof(
    fc.uint8Array({ maxLength: 120 }),
    fc
      .tuple(fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }))
      .map(([i, writes]) => {
        const real = ethernetFrame(
          ipPacket({
            src: i & 1 ? '::1' : '127.0.0.1',
            dst: i & 1 ? '::1' : '127.0.0.1',
            srcPort: 1,
            dstPort: 2,
            seq: i,
            payload: 'abc',
          }),
        )
        for (const [at, v] of writes) real[at % real.length] = v
        return real.subarray(0, real.length - (i % 8))
      }),
  )
  fc.assert(
    fc.property(linkType, frame, (lt, data) =>
      onlyCaptureErrors(() => {
        const seg = decodeFrame(lt, data)
        if (seg && seg.payload.length > data.length) throw new Error('payload larger than the frame')
      }),
    ),
    { numRuns: RUNS * 3 },
  )
  t.pass('only CaptureError')
})

t.test('reassembleTcp: random segments never throw and never invent bytes', async (t) => {
  const segment = fc.record({
    fromA: fc.boolean(),
    seq: fc.oneof(fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 400 })),
    flags: fc.integer({ min: 0, max: 0x1ff }),
    length: fc.nat({ max: 60 }),
  })
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 40 }), (segs) => {
      let sent = 0
      const packets: CapturedPacket[] = segs.map((s, index) => {
        sent += s.length
        const data = ipPacket({
          src: s.fromA ? '10.0.0.1' : '10.0.0.2',
          dst: s.fromA ? '10.0.0.2' : '10.0.0.1',
          srcPort: s.fromA ? 40000 : 1688,
          dstPort: s.fromA ? 1688 : 40000,
          seq: s.seq,
          flags: s.flags,
          payload: new Uint8Array(s.length).fill(index),
        })
        return {
          index,
          timestampNs: BigInt(index),
          linkType: 101,
          data,
          originalLength: data.length,
          fileOffset: 0,
        }
      })
      const conns = reassembleTcp(packets)
      let got = 0
      for (const c of conns) {
        got += c.clientData.length + c.serverData.length
        for (const k of c.chunks) {
          const side = k.fromClient ? c.clientData : c.serverData
          if (k.offset + k.length > side.length) throw new Error('chunk outside the data')
        }
      }
      return got <= sent
    }),
    { numRuns: RUNS },
  )
  t.pass('bounded by what was sent')
})

t.test('cutRpcPdus: random streams are cut into PDUs plus at most one rest', async (t) => {
  const stream = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.boolean()), { maxLength: 6 }).map((parts) =>
      Uint8Array.from(
        parts.flatMap(([len, valid]) => {
          const n = Math.max(len, 16)
          const pdu = new Array(n).fill(7)
          pdu[0] = valid ? 5 : 4
          pdu[8] = n & 0xff
          pdu[9] = n >> 8
          return pdu
        }),
      ),
    ),
  )
  fc.assert(
    fc.property(stream, (data) => {
      const r = cutRpcPdus(data)
      let at = 0
      for (const p of r.pdus) {
        if (p.offset !== at || p.bytes.length < 16 || p.bytes[0] !== 5) return false
        at += p.bytes.length
      }
      return r.rest ? r.rest.offset === at && r.rest.reason.length > 0 : at === data.length
    }),
    { numRuns: RUNS },
  )
  t.pass('PDUs tile the stream up to the rest')
})

t.test('capturePdus over a valid container with random frames', async (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom(0, 1, 101, 113, 276),
      fc.array(fc.uint8Array({ minLength: 0, maxLength: 90 }), { maxLength: 20 }),
      (linkType, datas) =>
        onlyCaptureErrors(() =>
          capturePdus(
            writePcap(
              datas.map((data) => ({ data })),
              { linkType },
            ),
          ),
        ),
    ),
    { numRuns: RUNS },
  )
  t.pass('only CaptureError')
})
