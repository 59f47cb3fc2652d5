import t from 'tap'
import { type KmsHost, startHost } from '../src/api/host.js'
import { cryptoRandom } from '../src/crypto/random.js'
import { HRESULT } from '../src/kms/hresult.js'
import { type BuiltRequest, buildKmsRequest, verifyKmsResponse } from '../src/kms/verify.js'
import { concatBytes, filetimeFromDate, NULL_GUID } from '../src/wire/bytes.js'
import { parseBaseRequest } from '../src/wire/kms-request.js'
import { emitRequestStub, parseResponseStub, type TransferSyntax } from '../src/wire/ndr.js'
import {
  BIND_NAK_REASON,
  btfnUuid,
  emitBindPdu,
  emitRequestPdu,
  KMS_INTERFACE_UUID,
  makeHeader,
  NCA_STATUS,
  NDR32_UUID,
  NDR64_UUID,
  PFC,
  PTYPE,
  parseBindAckPdu,
  parseBindNakPdu,
  parseFaultPdu,
  parseResponsePdu,
  parseRpcHeader,
} from '../src/wire/rpc.js'
import { RawPeer } from './fixtures/raw-client.js'
import { BASE_REQUEST_V6 } from './fixtures/wire-vectors.js'

const KMS = { uuid: KMS_INTERFACE_UUID, versionMajor: 1, versionMinor: 0 }
const NDR32 = { uuid: NDR32_UUID, version: 2 }
const NDR64 = { uuid: NDR64_UUID, version: 1 }
const BTFN = { uuid: btfnUuid(3), version: 1 }

function bindPdu(
  syntaxes: { uuid: string; version: number }[],
  opts: { alter?: boolean; flags?: number; iface?: typeof KMS } = {},
) {
  return emitBindPdu({
    header: makeHeader(opts.alter ? PTYPE.ALTER_CONTEXT : PTYPE.BIND, 2, opts.flags ?? 0x13),
    maxXmitFrag: 5840,
    maxRecvFrag: 5840,
    assocGroupId: 0,
    contexts: syntaxes.map((s, i) => ({
      contextId: i,
      abstractSyntax: opts.iface ?? KMS,
      transferSyntaxes: [s],
    })),
  })
}

function kmsRequest(major = 6, cmid?: string): BuiltRequest {
  const base = parseBaseRequest(BASE_REQUEST_V6)
  base.versionMajor = major
  base.requestTime = filetimeFromDate(new Date())
  if (cmid) base.cmid = cmid
  return buildKmsRequest(base, cryptoRandom)
}

function requestPdu(built: BuiltRequest, contextId: number, syntax: TransferSyntax, callId = 2, opnum = 0) {
  return emitRequestPdu({
    header: makeHeader(PTYPE.REQUEST, callId),
    allocHint: 0,
    contextId,
    opnum,
    stub: emitRequestStub(built.payload, syntax),
  })
}

let host: KmsHost
t.before(async () => {
  host = await startHost({ state: 'memory', counter: 'real' })
})
t.teardown(() => host.close())

t.test('vlmcs-style exchange: NDR64 bind, alter context, NDR32 then NDR64 calls', async (t) => {
  const peer = await RawPeer.open(host.port)
  peer.send(bindPdu([NDR32, NDR64, BTFN]))
  const ack = parseBindAckPdu((await peer.pdu())!)
  t.equal(ack.header.ptype, PTYPE.BIND_ACK)
  t.equal(ack.header.flags, 0x13, 'CONC_MPX echoed')
  t.equal(ack.header.callId, 2)
  t.equal(ack.secondaryAddress, String(host.port))
  t.not(ack.assocGroupId, 0)
  t.same(
    ack.results.map((r) => [r.result, r.reason, r.transferSyntax.uuid, r.transferSyntax.version]),
    [
      [2, 2, NULL_GUID, 0],
      [0, 0, NDR64_UUID, 1],
      [3, 3, NULL_GUID, 0],
    ],
  )
  peer.send(bindPdu([NDR32], { alter: true }))
  const alter = parseBindAckPdu((await peer.pdu())!)
  t.equal(alter.header.ptype, PTYPE.ALTER_CONTEXT_RESP)
  t.equal(alter.header.flags, 0x03)
  t.equal(alter.secondaryAddress, '')
  t.equal(alter.assocGroupId, ack.assocGroupId, 'same association group')
  t.same(
    alter.results.map((r) => [r.result, r.reason]),
    [[0, 0]],
  )

  for (const [callId, contextId, syntax] of [
    [2, 0, 'ndr32'],
    [3, 1, 'ndr64'],
  ] as const) {
    const built = kmsRequest(6)
    peer.send(requestPdu(built, contextId, syntax, callId))
    const resp = parseResponsePdu((await peer.pdu())!)
    t.equal(resp.header.ptype, PTYPE.RESPONSE)
    t.equal(resp.header.flags, 0x03)
    t.equal(resp.header.callId, callId)
    t.equal(resp.contextId, contextId)
    t.equal(resp.allocHint, resp.stub.length, 'alloc_hint is the stub size')
    const stub = parseResponseStub(resp.stub, syntax)
    t.equal(stub.hresult, 0)
    t.equal(stub.paddingNonZero, false)
    const v = verifyKmsResponse(built, stub.payload!)
    t.equal(v.base.epid, host.identity.epids.windows)
    t.equal(v.hwid && Buffer.from(v.hwid).toString('hex').toUpperCase(), host.identity.hwid)
  }
  peer.end()
})

t.test('faults: unknown context, opnum, request before bind', async (t) => {
  const early = await RawPeer.open(host.port)
  early.send(requestPdu(kmsRequest(), 0, 'ndr32', 7))
  const f1 = parseFaultPdu((await early.pdu())!)
  t.equal(f1.header.callId, 7)
  t.equal(f1.status, NCA_STATUS.UNK_IF)
  t.equal(f1.header.flags, PFC.FIRST_FRAG | PFC.LAST_FRAG | PFC.DID_NOT_EXECUTE)
  early.end()

  const peer = await RawPeer.open(host.port)
  peer.send(bindPdu([NDR32]))
  await peer.pdu()
  peer.send(requestPdu(kmsRequest(), 5, 'ndr32', 9))
  const f2 = parseFaultPdu((await peer.pdu())!)
  t.equal(f2.header.callId, 9)
  t.equal(f2.status, NCA_STATUS.UNK_IF)
  peer.send(requestPdu(kmsRequest(), 0, 'ndr32', 10, 1))
  const f3 = parseFaultPdu((await peer.pdu())!)
  t.equal(f3.header.callId, 10)
  t.equal(f3.status, NCA_STATUS.OP_RNG_ERROR)
  peer.send(requestPdu(kmsRequest(), 0, 'ndr32', 11))
  t.equal(parseRpcHeader((await peer.pdu())!).ptype, PTYPE.RESPONSE, 'the connection still serves')
  peer.end()
})

t.test('pipelined, dribbled and fragmented requests are answered', async (t) => {
  const built = kmsRequest(5)
  const pipelined = await RawPeer.open(host.port)
  pipelined.send(concatBytes(bindPdu([NDR32, BTFN]), requestPdu(built, 0, 'ndr32')))
  t.equal(parseRpcHeader((await pipelined.pdu())!).ptype, PTYPE.BIND_ACK)
  const r1 = parseResponsePdu((await pipelined.pdu())!)
  t.ok(verifyKmsResponse(built, parseResponseStub(r1.stub, 'ndr32').payload!))
  pipelined.end()

  const slow = await RawPeer.open(host.port)
  await slow.dribble(concatBytes(bindPdu([NDR32]), requestPdu(built, 0, 'ndr32')))
  t.equal(parseRpcHeader((await slow.pdu())!).ptype, PTYPE.BIND_ACK)
  t.ok(
    verifyKmsResponse(built, parseResponseStub(parseResponsePdu((await slow.pdu())!).stub, 'ndr32').payload!),
  )
  slow.end()

  const frag = await RawPeer.open(host.port)
  frag.send(bindPdu([NDR32]))
  await frag.pdu()
  const stub = emitRequestStub(built.payload, 'ndr32')
  const part = (bytes: Uint8Array, flags: number) =>
    emitRequestPdu({
      header: makeHeader(PTYPE.REQUEST, 4, flags),
      allocHint: stub.length,
      contextId: 0,
      opnum: 0,
      stub: bytes,
    })
  frag.send(part(stub.subarray(0, 100), PFC.FIRST_FRAG))
  frag.send(part(stub.subarray(100, 200), 0))
  frag.send(part(stub.subarray(200), PFC.LAST_FRAG))
  const r3 = parseResponsePdu((await frag.pdu())!)
  t.equal(r3.header.callId, 4)
  t.ok(verifyKmsResponse(built, parseResponseStub(r3.stub, 'ndr32').payload!))
  frag.end()
})

t.test('bind variants: no BTFN, NDR32 only, no multiplex, foreign interface, unknown syntax', async (t) => {
  const cases: [Uint8Array, number, [number, number][]][] = [
    [
      bindPdu([NDR32, NDR64]),
      0x13,
      [
        [2, 2],
        [0, 0],
      ],
    ],
    [
      bindPdu([NDR32, BTFN]),
      0x13,
      [
        [0, 0],
        [3, 3],
      ],
    ],
    [bindPdu([NDR32], { flags: 0x03 }), 0x03, [[0, 0]]],
    [
      bindPdu([NDR32], {
        iface: { uuid: '12345678-1234-1234-1234-123456789abc', versionMajor: 1, versionMinor: 0 },
      }),
      0x13,
      [[2, 1]],
    ],
    [
      bindPdu([{ uuid: '11111111-2222-3333-4444-555555555555', version: 1 }, NDR32]),
      0x13,
      [
        [2, 2],
        [0, 0],
      ],
    ],
    [
      bindPdu([NDR32, { uuid: btfnUuid(1), version: 1 }]),
      0x13,
      [
        [0, 0],
        [3, 1],
      ],
    ],
  ]
  for (const [bytes, flags, results] of cases) {
    const peer = await RawPeer.open(host.port)
    peer.send(bytes)
    const ack = parseBindAckPdu((await peer.pdu())!)
    t.equal(ack.header.flags, flags)
    t.same(
      ack.results.map((r) => [r.result, r.reason]),
      results,
    )
    peer.end()
  }
})

t.test('hostile first bytes close without a byte sent', async (t) => {
  const inputs = [
    Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 0x98) & 0xff),
    Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]),
    (() => {
      const b = bindPdu([NDR32])
      b[8] = 0xff
      b[9] = 0xff
      return b
    })(),
    (() => {
      const b = bindPdu([NDR32])
      b[8] = 8
      b[9] = 0
      return b
    })(),
  ]
  for (const bytes of inputs) {
    const peer = await RawPeer.open(host.port)
    peer.send(bytes)
    t.ok(await peer.waitClosed(), 'closed')
    t.equal(peer.received, 0, 'nothing sent')
  }
})

t.test('RPC 5.1 and big-endian binds get BIND_NAK, then close', async (t) => {
  const minor = bindPdu([NDR32])
  minor[1] = 1
  const bigEndian = bindPdu([NDR32])
  bigEndian[4] = 0x00
  bigEndian[8] = 0
  bigEndian[9] = minor.length
  for (const [bytes, reason] of [
    [minor, BIND_NAK_REASON.PROTOCOL_VERSION_NOT_SUPPORTED],
    [bigEndian, BIND_NAK_REASON.NOT_SPECIFIED],
  ] as const) {
    const peer = await RawPeer.open(host.port)
    peer.send(bytes)
    const nak = parseBindNakPdu((await peer.pdu())!)
    t.equal(nak.header.ptype, PTYPE.BIND_NAK)
    t.equal(nak.rejectReason, reason)
    t.same(nak.protocols, [{ major: 5, minor: 0 }])
    t.ok(await peer.waitClosed())
  }
})

t.test('KMS refusals travel in a RESPONSE', async (t) => {
  const peer = await RawPeer.open(host.port)
  peer.send(bindPdu([NDR32]))
  await peer.pdu()
  const v7 = kmsRequest(6)
  v7.payload[2] = 7
  const tooMany = parseBaseRequest(BASE_REQUEST_V6)
  tooMany.requiredCount = 1001
  for (const payload of [
    v7.payload,
    buildKmsRequest(tooMany, cryptoRandom).payload,
    kmsRequest(6).payload.subarray(0, 250),
  ]) {
    peer.send(requestPdu({ ...v7, payload }, 0, 'ndr32'))
    const resp = parseResponsePdu((await peer.pdu())!)
    t.equal(resp.stub.length, 12)
    t.equal(parseResponseStub(resp.stub, 'ndr32').hresult, HRESULT.INVALID_DATA)
  }
  peer.end()
})

t.test('--no-ndr64 host accepts NDR32 and rejects NDR64', async (t) => {
  const h = await startHost({ state: 'memory', ndr64: false })
  const peer = await RawPeer.open(h.port)
  peer.send(bindPdu([NDR32, NDR64, BTFN]))
  const ack = parseBindAckPdu((await peer.pdu())!)
  t.same(
    ack.results.map((r) => [r.result, r.reason]),
    [
      [0, 0],
      [2, 2],
      [3, 3],
    ],
  )
  peer.end()
  await h.close()
})
