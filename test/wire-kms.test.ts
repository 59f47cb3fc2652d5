import fc from 'fast-check'
import t from 'tap'
import {
  concatBytes,
  FieldValueError,
  NULL_GUID,
  TruncatedError,
  toHex,
  WireError,
} from '../src/wire/bytes.js'
import {
  BASE_REQUEST_LENGTH,
  emitBaseRequest,
  emitEncryptedRequest,
  emitV4Request,
  type KmsBaseRequest,
  parseBaseRequest,
  parseEncryptedRequest,
  parseV4Request,
  readKmsVersion,
  V4_REQUEST_LENGTH,
  V5_REQUEST_LENGTH,
} from '../src/wire/kms-request.js'
import {
  emitBaseResponse,
  emitEncryptedResponse,
  emitV4Response,
  emitV5ResponsePayload,
  emitV6ResponsePayload,
  type KmsBaseResponse,
  parseBaseResponse,
  parseEncryptedResponse,
  parseV4Response,
  parseV5ResponsePayload,
  parseV6ResponsePayload,
} from '../src/wire/kms-response.js'
import { parseRequestStub, parseResponseStub } from '../src/wire/ndr.js'
import { captureNames } from './fixtures/raw-streams.js'
import { captureCalls } from './fixtures/wire-calls.js'
import * as V from './fixtures/wire-vectors.js'

const hex = toHex
const I = V.INPUTS

const BASE_V6: KmsBaseRequest = {
  versionMinor: 0,
  versionMajor: 6,
  isClientVm: 0,
  licenseStatus: 2,
  graceTime: 43200,
  appId: I.appId,
  skuId: I.skuId,
  kmsId: I.kmsId,
  cmid: I.cmid,
  requiredCount: 25,
  requestTime: I.requestTime,
  previousCmid: NULL_GUID,
  workstation: I.workstation,
}

const BASE_RESPONSE: KmsBaseResponse = {
  versionMinor: 0,
  versionMajor: 4,
  epid: I.epid,
  cmid: I.cmid,
  requestTime: I.requestTime,
  currentCount: 50,
  activationInterval: 120,
  renewalInterval: 10080,
}

t.test('§9.3 base request: every field, and emit gives the same 236 bytes', async (t) => {
  t.equal(V.BASE_REQUEST_V6.length, BASE_REQUEST_LENGTH)
  t.same(parseBaseRequest(V.BASE_REQUEST_V6), BASE_V6)
  t.equal(hex(emitBaseRequest(BASE_V6)), hex(V.BASE_REQUEST_V6))
  t.same(readKmsVersion(V.BASE_REQUEST_V6), { major: 6, minor: 0 })
  t.throws(() => parseBaseRequest(V.BASE_REQUEST_V6.subarray(0, 235)), TruncatedError)
  t.throws(() => readKmsVersion(new Uint8Array(3)), TruncatedError)
  // a decrypted request still carries its PKCS#7 bytes: the base is read from the first 236
  const padded = concatBytes(V.BASE_REQUEST_V6, Uint8Array.of(4, 4, 4, 4))
  t.same(parseBaseRequest(padded), BASE_V6)
})

t.test('workstation names: 64 units without NUL, too long, odd characters', async (t) => {
  const full = { ...BASE_V6, workstation: 'w'.repeat(64) }
  const bytes = emitBaseRequest(full)
  t.equal(bytes[234], 0x77, 'no room for a NUL: the last unit is a character')
  t.equal(parseBaseRequest(bytes).workstation, full.workstation)
  t.throws(() => emitBaseRequest({ ...BASE_V6, workstation: 'w'.repeat(65) }), FieldValueError)
  const unicode = { ...BASE_V6, workstation: 'пк-\u{1f600}' }
  t.equal(parseBaseRequest(emitBaseRequest(unicode)).workstation, unicode.workstation)
  t.throws(() => emitBaseRequest({ ...BASE_V6, cmid: 'not-a-guid' }), FieldValueError)
})

t.test('§9.4 V4 request and response', async (t) => {
  t.equal(V.V4_REQUEST.length, V4_REQUEST_LENGTH)
  const req = parseV4Request(V.V4_REQUEST)
  t.same(req.base, { ...BASE_V6, versionMajor: 4 })
  t.equal(hex(req.mac), hex(V.V4_MAC))
  t.equal(hex(emitV4Request(req)), hex(V.V4_REQUEST))
  t.throws(() => parseV4Request(V.V4_REQUEST.subarray(0, 251)), TruncatedError)
  t.throws(() => parseV4Request(concatBytes(V.V4_REQUEST, Uint8Array.of(0))), FieldValueError)
  t.throws(() => emitV4Request({ ...req, mac: new Uint8Array(15) }), FieldValueError)

  const resp = parseV4Response(V.V4_RESPONSE)
  t.same(resp.base, BASE_RESPONSE)
  t.match(resp, { pidSize: 100, pidTerminated: true, pidEmbeddedNul: false })
  t.equal(hex(resp.mac), 'c1d6ddee5b7fe4c2a222f029360cdc68')
  t.equal(hex(emitV4Response(resp)), hex(V.V4_RESPONSE))
  const base = parseBaseResponse(V.V4_RESPONSE)
  t.equal(base.length, 0x90)
  t.equal(hex(emitBaseResponse(base.value)), hex(V.V4_RESPONSE.subarray(0, 0x90)))
  t.throws(() => parseV4Response(V.V4_RESPONSE.subarray(0, 159)), TruncatedError)
  t.throws(() => parseV4Response(concatBytes(V.V4_RESPONSE, Uint8Array.of(0))), FieldValueError)
})

t.test('§9.5 V5 and §9.6 V6: outer form and plaintext payloads', async (t) => {
  for (const [bytes, major] of [
    [V.V5_REQUEST, 5],
    [V.V6_REQUEST, 6],
  ] as const) {
    t.equal(bytes.length, V5_REQUEST_LENGTH)
    const e = parseEncryptedRequest(bytes)
    t.match(e, { versionMajor: major, versionMinor: 0 })
    t.equal(hex(e.iv), hex(I.requestIv))
    t.equal(e.ciphertext.length, 240)
    t.equal(hex(emitEncryptedRequest(e)), hex(bytes))
  }
  const r5 = parseEncryptedResponse(V.V5_RESPONSE)
  t.equal(hex(r5.iv), hex(I.requestIv), 'V5 response IV = request IV')
  t.equal(r5.ciphertext.length, 208)
  t.equal(hex(emitEncryptedResponse(r5)), hex(V.V5_RESPONSE))
  const r6 = parseEncryptedResponse(V.V6_RESPONSE)
  t.equal(hex(r6.iv), hex(I.responseIvV6))
  t.equal(hex(emitEncryptedResponse(r6)), hex(V.V6_RESPONSE))
  t.throws(() => emitEncryptedResponse({ ...r6, iv: new Uint8Array(8) }), FieldValueError)
  t.throws(() => parseEncryptedRequest(new Uint8Array(19)), TruncatedError)

  t.equal(V.V5_RESPONSE_PAYLOAD.length, 192)
  const p5 = parseV5ResponsePayload(V.V5_RESPONSE_PAYLOAD)
  t.same(p5.base, { ...BASE_RESPONSE, versionMajor: 5 })
  t.equal(hex(p5.randomXorD), hex(V.V5_X))
  t.equal(hex(p5.hash), hex(V.SHA256_R))
  t.equal(hex(emitV5ResponsePayload(p5)), hex(V.V5_RESPONSE_PAYLOAD))
  t.throws(
    () => parseV5ResponsePayload(concatBytes(V.V5_RESPONSE_PAYLOAD, new Uint8Array(16).fill(16))),
    FieldValueError,
  )

  t.equal(V.V6_RESPONSE_PAYLOAD.length, 232)
  const p6 = parseV6ResponsePayload(V.V6_RESPONSE_PAYLOAD)
  t.same(p6.base, { ...BASE_RESPONSE, versionMajor: 6 })
  t.equal(hex(p6.hwid), hex(I.hwid))
  t.equal(hex(p6.xorSalts), hex(V.V6_XOR_SALTS))
  t.equal(hex(p6.hmac), hex(V.V6_HMAC))
  t.equal(hex(emitV6ResponsePayload(p6)), hex(V.V6_RESPONSE_PAYLOAD))
  t.throws(() => parseV6ResponsePayload(V.V6_RESPONSE_PAYLOAD.subarray(0, 231)), TruncatedError)
  t.throws(() => emitV6ResponsePayload({ ...p6, hwid: new Uint8Array(7) }), FieldValueError)
})

t.test('PID field: size, NUL placement and sizes past the buffer', async (t) => {
  const withPid = (units: number[], pidSize = 2 * units.length) => {
    const pid = new Uint8Array(pidSize)
    units.forEach((u, i) => {
      if (2 * i + 1 < pidSize) pid[2 * i] = u
    })
    const head = Uint8Array.of(0, 0, 4, 0, pidSize & 0xff, pidSize >> 8, 0, 0)
    return concatBytes(head, pid, V.V4_RESPONSE.subarray(0x6c, 0x90))
  }
  t.match(parseBaseResponse(withPid([0x41, 0x42, 0])), {
    pidSize: 6,
    pidTerminated: true,
    pidEmbeddedNul: false,
    value: { epid: 'AB', currentCount: 50 },
  })
  t.match(parseBaseResponse(withPid([0x41, 0x42, 0x43])), { pidTerminated: false, value: { epid: 'ABC' } })
  t.match(parseBaseResponse(withPid([0x41, 0, 0x43, 0])), {
    pidTerminated: true,
    pidEmbeddedNul: true,
    value: { epid: 'A' },
  })
  t.match(parseBaseResponse(withPid([0x41, 0x42, 0], 5)), { pidSize: 5, pidTerminated: false })
  t.match(parseBaseResponse(withPid([], 0)), { pidSize: 0, pidTerminated: false, value: { epid: '' } })
  t.match(parseBaseResponse(withPid(new Array(150).fill(0x31).concat([0]))), {
    pidSize: 302,
    pidTerminated: true,
  })
  const lying = V.V4_RESPONSE.slice()
  lying[4] = 0xff
  lying[7] = 0xff
  t.throws(() => parseBaseResponse(lying), FieldValueError)
  t.throws(() => parseBaseResponse(V.V4_RESPONSE.subarray(0, 0x8f)), FieldValueError)
  t.throws(() => parseBaseResponse(new Uint8Array(7)), TruncatedError)
  t.equal(emitBaseResponse({ ...BASE_RESPONSE, epid: 'x'.repeat(48) }).length, 44 + 98, 'PIDSize 98')
})

t.test('captured KMS messages: V4 in the clear, V5/V6 outer form, all round-trip', async (t) => {
  const counts = { v4req: 0, v4resp: 0, encReq: 0, encResp: 0 }
  let decoded: ReturnType<typeof parseV4Request> | undefined
  for (const name of captureNames()) {
    for (const call of captureCalls(name)) {
      const req = parseRequestStub(call.request.stub, call.syntax).payload
      const { major } = readKmsVersion(req)
      if (req.length === V4_REQUEST_LENGTH) {
        const v4 = parseV4Request(req)
        if (hex(emitV4Request(v4)) !== hex(req)) t.fail(`${name}: V4 request`)
        if (name === 'vlmcsd_v4_win10ent') decoded = v4
        counts.v4req++
      } else {
        const e = parseEncryptedRequest(req)
        if (e.versionMajor !== major || hex(emitEncryptedRequest(e)) !== hex(req)) t.fail(`${name}: request`)
        counts.encReq++
      }
      const stub = call.response && parseResponseStub(call.response.stub, call.syntax)
      if (!stub?.payload) continue
      const resp = stub.payload
      if (major === 4) {
        const r = parseV4Response(resp)
        if (!r.pidTerminated || r.pidEmbeddedNul || hex(emitV4Response(r)) !== hex(resp))
          t.fail(`${name}: V4 response`)
        counts.v4resp++
      } else {
        const e = parseEncryptedResponse(resp)
        if (hex(emitEncryptedResponse(e)) !== hex(resp) || (e.ciphertext.length & 15) !== 0)
          t.fail(`${name}: response`)
        counts.encResp++
      }
    }
  }
  // 53 success stubs (5 V4, 4 V5, 44 V6; §9.8 counts 52 with 43 V6); badver_3_0 is a refused V4-shaped request
  t.same(counts, { v4req: 6, v4resp: 5, encReq: 53, encResp: 48 })
  t.match(decoded?.base, {
    versionMajor: 4,
    licenseStatus: 2,
    graceTime: 43200,
    appId: '55c92734-d682-4d71-983e-d6ec3f16059f',
    skuId: '73111121-5638-40f6-bc11-f1d7b0d64300',
    kmsId: '58e2134f-8e11-4d17-9cb2-91069c151148',
    cmid: '86dabbfe-abfd-4b69-b7dc-a40244d80595',
    previousCmid: NULL_GUID,
    workstation: 'hack-me.google.de',
    requiredCount: 25,
  })
})

t.test('property: KMS parsers throw only WireError', async (t) => {
  const parsers: ((b: Uint8Array) => unknown)[] = [
    parseBaseRequest,
    parseV4Request,
    parseEncryptedRequest,
    readKmsVersion,
    parseBaseResponse,
    parseV4Response,
    parseV5ResponsePayload,
    parseV6ResponsePayload,
    parseEncryptedResponse,
  ]
  const seeds = [V.V4_REQUEST, V.V4_RESPONSE, V.V5_RESPONSE_PAYLOAD, V.V6_RESPONSE_PAYLOAD]
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.tuple(fc.constantFrom(...seeds), fc.nat(), fc.nat(255), fc.nat()).map(([s, at, v, cut]) => {
      const b = s.slice()
      b[at % b.length] = v
      return b.subarray(0, cut % (b.length + 1))
    }),
  )
  fc.assert(
    fc.property(input, (bytes) => {
      for (const parse of parsers) {
        try {
          parse(bytes)
        } catch (e) {
          if (!(e instanceof WireError)) throw e
        }
      }
      return true
    }),
    { numRuns: 3000 },
  )
  t.pass('no foreign exception')
})
