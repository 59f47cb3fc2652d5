import fc from 'fast-check'
import t from 'tap'
import { FieldValueError, TruncatedError, toHex, WireError } from '../src/wire/bytes.js'
import {
  emitRefusalStub,
  emitRequestStub,
  emitResponseStub,
  guessSyntax,
  NDR_REFERENT,
  parseRequestStub,
  parseResponseStub,
  type TransferSyntax,
} from '../src/wire/ndr.js'
import { parseRequestPdu, parseResponsePdu } from '../src/wire/rpc.js'
import { captureNames } from './fixtures/raw-streams.js'
import { captureCalls } from './fixtures/wire-calls.js'
import * as V from './fixtures/wire-vectors.js'

const hex = toHex
const stubOf = (pdu: Uint8Array) => (pdu[2] === 0 ? parseRequestPdu(pdu).stub : parseResponsePdu(pdu).stub)

t.test('§9.7 request stubs, NDR32 and NDR64', async (t) => {
  const s32 = stubOf(V.REQUEST_NDR32)
  const r32 = parseRequestStub(s32, 'ndr32')
  t.equal(r32.requestSize, 260)
  t.equal(r32.conformance, 260)
  t.equal(r32.padding, undefined)
  t.equal(hex(r32.payload), hex(V.V6_REQUEST))
  t.equal(hex(emitRequestStub(V.V6_REQUEST, 'ndr32')), hex(s32))
  const s64 = stubOf(V.REQUEST_NDR64)
  const r64 = parseRequestStub(s64, 'ndr64')
  t.equal(r64.conformance, 260n)
  t.equal(r64.padding, 0)
  t.equal(hex(r64.payload), hex(V.V6_REQUEST))
  t.equal(hex(emitRequestStub(V.V6_REQUEST, 'ndr64')), hex(s64))
  t.equal(guessSyntax(s32, true), 'ndr32')
  t.equal(guessSyntax(s64, true), 'ndr64')
})

t.test('§9.7 response stubs and refusals', async (t) => {
  const s32 = stubOf(V.RESPONSE_NDR32)
  const r32 = parseResponseStub(s32, 'ndr32')
  t.match(r32, { responseSize: 260, referent: NDR_REFERENT, hresult: 0, paddingNonZero: false })
  t.equal(hex(r32.payload!), hex(V.V6_RESPONSE))
  t.equal(hex(emitResponseStub(V.V6_RESPONSE, 0, 'ndr32')), hex(s32))
  const s64 = stubOf(V.RESPONSE_NDR64)
  const r64 = parseResponseStub(s64, 'ndr64')
  t.match(r64, { responseSize: 260, referent: 0x20000n, hresult: 0, padding: 0, paddingNonZero: false })
  t.equal(hex(emitResponseStub(V.V6_RESPONSE, 0, 'ndr64')), hex(s64))

  const f32 = stubOf(V.REFUSAL_NDR32)
  t.same(parseResponseStub(f32, 'ndr32'), {
    responseSize: 0,
    referent: 0,
    payload: null,
    hresult: 0xc004f042,
    paddingNonZero: false,
  })
  t.equal(hex(emitRefusalStub(0xc004f042, 'ndr32')), hex(f32))
  const f64 = stubOf(V.REFUSAL_NDR64)
  t.match(parseResponseStub(f64, 'ndr64'), { referent: 0n, payload: null, hresult: 0x8007000d })
  t.equal(hex(emitRefusalStub(0x8007000d, 'ndr64')), hex(f64))
  t.equal(hex(emitRefusalStub(-2147024883, 'ndr64')), hex(f64), 'a signed HRESULT is written as u32')

  for (const [stub, syntax] of [
    [s32, 'ndr32'],
    [s64, 'ndr64'],
    [f32, 'ndr32'],
    [f64, 'ndr64'],
  ] as const) {
    t.equal(guessSyntax(stub, false), syntax)
  }
})

t.test('V4-sized payloads: padding before the HRESULT, as vlmcsd and py-kms write it', async (t) => {
  // a 48-character ePID gives a 158-byte V4 response: 2 pad bytes (§1.11)
  const payload = new Uint8Array(158).fill(0xaa)
  const stub = emitResponseStub(payload, 0, 'ndr32')
  t.equal(stub.length, 12 + 160 + 4)
  t.equal(hex(stub.subarray(170)), '000000000000')
  t.equal(guessSyntax(stub, false), 'ndr32')
  t.equal(parseResponseStub(stub, 'ndr32').paddingNonZero, false)
  const dirty = stub.slice()
  dirty[171] = 1
  t.equal(parseResponseStub(dirty, 'ndr32').paddingNonZero, true)
  const v4 = emitResponseStub(V.V4_RESPONSE, 0, 'ndr32')
  t.equal(v4.length, 176, '§9.7: alloc_hint 176 = 12 + 160 + 4')
  const s64 = emitResponseStub(payload, 0x1234, 'ndr64')
  t.equal(s64.length, 24 + 160 + 4)
  t.match(parseResponseStub(s64, 'ndr64'), { responseSize: 158, hresult: 0x1234 })
})

t.test('size disagreements and short stubs are WireErrors', async (t) => {
  const s32 = stubOf(V.REQUEST_NDR32).slice()
  s32[4] = 3 // conformance 259 ≠ 260
  t.throws(() => parseRequestStub(s32, 'ndr32'), FieldValueError)
  t.throws(() => parseRequestStub(stubOf(V.REQUEST_NDR32).subarray(0, 100), 'ndr32'), TruncatedError)
  t.throws(() => parseRequestStub(stubOf(V.REQUEST_NDR32), 'ndr64'), FieldValueError)
  t.throws(() => parseRequestStub(new Uint8Array(4), 'ndr32'), TruncatedError)
  const r = stubOf(V.RESPONSE_NDR32).slice()
  r[0] = 5
  t.throws(() => parseResponseStub(r, 'ndr32'), FieldValueError)
  t.throws(() => parseResponseStub(stubOf(V.RESPONSE_NDR32).subarray(0, 272), 'ndr32'), TruncatedError)
  t.throws(() => parseResponseStub(stubOf(V.REFUSAL_NDR64).subarray(0, 19), 'ndr64'), TruncatedError)
  // NDR64 pad bytes that vlmcsd would read as the high half of the size are reported
  const p64 = emitRequestStub(V.V6_REQUEST, 'ndr64')
  p64[4] = 1
  t.equal(parseRequestStub(p64, 'ndr64').padding, 1)
  t.equal(guessSyntax(p64, true), null)
  // py-kms' client sends its V4 request with 4 zero bytes after the array
  const extra = emitRequestStub(V.V4_REQUEST, 'ndr32', new Uint8Array(4))
  t.equal(extra.length, 8 + 252 + 4)
  t.equal(hex(parseRequestStub(extra, 'ndr32').trailing!), '00000000')
  t.equal(guessSyntax(extra, true), 'ndr32')
  t.equal(guessSyntax(new Uint8Array([...extra, 0, 0, 0, 0]), true), null, '8 bytes of tail is too much')
})

t.test('every captured call: syntax from the bind = guessed syntax, stubs round-trip exactly', async (t) => {
  let calls = 0
  let refusals = 0
  const padded: string[] = []
  const seen = new Set<TransferSyntax>()
  for (const name of captureNames()) {
    for (const call of captureCalls(name)) {
      calls++
      seen.add(call.syntax)
      const where = `${name} call ${call.callId}`
      const req = call.request.stub
      if (guessSyntax(req, true) !== call.syntax) t.fail(`${where}: request syntax`)
      const q = parseRequestStub(req, call.syntax)
      if (hex(emitRequestStub(q.payload, call.syntax, q.trailing)) !== hex(req))
        t.fail(`${where}: request stub`)
      if (q.trailing) padded.push(`${name}: ${hex(q.trailing)}`)
      if (!call.response) continue
      const stub = call.response.stub
      if (guessSyntax(stub, false) !== call.syntax) t.fail(`${where}: response syntax`)
      const r = parseResponseStub(stub, call.syntax)
      if (r.paddingNonZero || r.trailing) t.fail(`${where}: padding`)
      const back = r.payload
        ? emitResponseStub(r.payload, r.hresult, call.syntax)
        : emitRefusalStub(r.hresult, call.syntax)
      if (hex(back) !== hex(stub)) t.fail(`${where}: response stub`)
      if (!r.payload) refusals++
    }
  }
  t.ok(calls >= 55, `${calls} calls`)
  t.equal(refusals, 4, 'the 4 refusals of §9.8')
  t.same(padded, ['pykmsclient_vlmcsd_win7_v4: 00000000'], 'only py-kms V4 pads its request stub')
  t.same([...seen].sort(), ['ndr32', 'ndr64'])
})

t.test('property: NDR parsers throw only WireError, guessSyntax never throws', async (t) => {
  const syntax = fc.constantFrom<TransferSyntax>('ndr32', 'ndr64')
  const seeds = [
    stubOf(V.REQUEST_NDR32),
    stubOf(V.RESPONSE_NDR64),
    stubOf(V.REFUSAL_NDR32),
    stubOf(V.REFUSAL_NDR64),
  ]
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.tuple(fc.constantFrom(...seeds), fc.nat(), fc.nat(255), fc.nat()).map(([s, at, v, cut]) => {
      const b = s.slice()
      b[at % b.length] = v
      return b.subarray(0, cut % (b.length + 1))
    }),
  )
  fc.assert(
    fc.property(input, syntax, fc.boolean(), (bytes, sx, isRequest) => {
      guessSyntax(bytes, isRequest)
      for (const parse of [parseRequestStub, parseResponseStub]) {
        try {
          parse(bytes, sx)
        } catch (e) {
          if (!(e instanceof WireError)) throw e
        }
      }
      return true
    }),
    { numRuns: 5000 },
  )
  t.pass('no foreign exception')
})
