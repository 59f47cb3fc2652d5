import fc from 'fast-check'
import t from 'tap'
import { FieldValueError, NULL_GUID, TruncatedError, toHex, WireError } from '../src/wire/bytes.js'
import {
  type AnyPdu,
  type BindAckPdu,
  btfnBitmask,
  btfnUuid,
  emitBindAckPdu,
  emitBindNakPdu,
  emitBindPdu,
  emitFaultPdu,
  emitPdu,
  emitRequestPdu,
  emitResponsePdu,
  isBtfnSyntax,
  KMS_INTERFACE_UUID,
  makeHeader,
  NCA_STATUS,
  NDR32_UUID,
  NDR64_UUID,
  PFC,
  PTYPE,
  parseBindAckPdu,
  parseBindNakPdu,
  parseBindPdu,
  parseFaultPdu,
  parsePdu,
  parseRequestPdu,
  parseResponsePdu,
  parseRpcHeader,
  writeRpcHeader,
} from '../src/wire/rpc.js'
import { captureNames, capturePdus } from './fixtures/raw-streams.js'
import * as V from './fixtures/wire-vectors.js'

const hex = toHex
const NULL_GUID_SYNTAX = { uuid: NULL_GUID, version: 0 }

t.test('header: fields of the §9.7 BIND, write is the inverse', async (t) => {
  const h = parseRpcHeader(V.BIND)
  t.same(h, {
    rpcVersion: 5,
    rpcVersionMinor: 0,
    ptype: PTYPE.BIND,
    flags: PFC.FIRST_FRAG | PFC.LAST_FRAG | PFC.CONC_MPX,
    drep: 0x10,
    fragLength: 160,
    authLength: 0,
    callId: 2,
  })
  const out = new Uint8Array(16)
  writeRpcHeader(out, h)
  t.equal(hex(out), hex(V.BIND.subarray(0, 16)))
  t.throws(() => parseRpcHeader(V.BIND.subarray(0, 15)), TruncatedError)
})

t.test('BTFN identifiers (§1.8)', async (t) => {
  t.equal(btfnUuid(3), '6cb71c2c-9812-4540-0300-000000000000')
  t.ok(isBtfnSyntax('6CB71C2C-9812-4540-0100-000000000000'))
  t.notOk(isBtfnSyntax(NDR32_UUID))
  t.equal(btfnBitmask('6cb71c2c-9812-4540-0300-000000000000'), 3)
  t.equal(btfnBitmask(btfnUuid(0xff)), 0xff)
  t.throws(() => btfnUuid(256), FieldValueError)
})

t.test('§9.7 BIND: three contexts NDR32, NDR64, BTFN; emit gives the same bytes', async (t) => {
  const pdu = parseBindPdu(V.BIND)
  t.equal(pdu.maxXmitFrag, 5840)
  t.equal(pdu.maxRecvFrag, 5840)
  t.equal(pdu.assocGroupId, 0)
  t.equal(pdu.declaredContextCount, 3)
  const kms = { uuid: KMS_INTERFACE_UUID, versionMajor: 1, versionMinor: 0 }
  t.same(pdu.contexts, [
    { contextId: 0, abstractSyntax: kms, transferSyntaxes: [{ uuid: NDR32_UUID, version: 2 }] },
    { contextId: 1, abstractSyntax: kms, transferSyntaxes: [{ uuid: NDR64_UUID, version: 1 }] },
    { contextId: 2, abstractSyntax: kms, transferSyntaxes: [{ uuid: btfnUuid(3), version: 1 }] },
  ])
  t.equal(pdu.trailing, undefined)
  t.equal(hex(emitBindPdu(pdu)), hex(V.BIND))
  // the value's frag_length is ignored: emit computes it
  t.equal(hex(emitBindPdu({ ...pdu, header: { ...pdu.header, fragLength: 0 } })), hex(V.BIND))
})

t.test('§9.7 BIND_ACK (NDR64 host and NDR32-only host) parse and emit', async (t) => {
  const a64 = parseBindAckPdu(V.BIND_ACK_NDR64)
  t.equal(a64.assocGroupId, 0xc7d43b2c)
  t.equal(a64.secondaryAddress, '1688')
  t.equal(a64.padding, undefined, 'the single pad byte is zero')
  t.same(a64.results, [
    { result: 2, reason: 2, transferSyntax: NULL_GUID_SYNTAX },
    { result: 0, reason: 0, transferSyntax: { uuid: NDR64_UUID, version: 1 } },
    { result: 3, reason: 3, transferSyntax: NULL_GUID_SYNTAX },
  ])
  t.equal(hex(emitBindAckPdu(a64)), hex(V.BIND_ACK_NDR64))
  const a32 = parseBindAckPdu(V.BIND_ACK_NDR32)
  t.same(
    a32.results.map((r) => [r.result, r.reason, r.transferSyntax.uuid, r.transferSyntax.version]),
    [
      [0, 0, NDR32_UUID, 2],
      [2, 2, NULL_GUID_SYNTAX.uuid, 0],
      [3, 3, NULL_GUID_SYNTAX.uuid, 0],
    ],
  )
  // built from scratch, as a host would
  const built: BindAckPdu = {
    header: makeHeader(PTYPE.BIND_ACK, 2, 0x13),
    maxXmitFrag: 5840,
    maxRecvFrag: 5840,
    assocGroupId: 0xc7d43b2c,
    secondaryAddress: '1688',
    results: a32.results,
  }
  t.equal(hex(emitBindAckPdu(built)), hex(V.BIND_ACK_NDR32))
})

t.test('§9.7 ALTER_CONTEXT and its answer; vlmcsd stale pad bytes round-trip', async (t) => {
  const alter = parseBindPdu(V.ALTER_CONTEXT)
  t.equal(alter.header.ptype, PTYPE.ALTER_CONTEXT)
  t.equal(alter.contexts.length, 1)
  t.equal(hex(emitBindPdu(alter)), hex(V.ALTER_CONTEXT))
  const resp = parseBindAckPdu(V.ALTER_CONTEXT_RESP)
  t.equal(resp.secondaryAddress, '')
  t.equal(resp.results.length, 1, 'n_results found at 28 by alignment')
  t.same(resp.results[0], { result: 0, reason: 0, transferSyntax: { uuid: NDR32_UUID, version: 2 } })
  t.equal(hex(emitBindAckPdu(resp)), hex(V.ALTER_CONTEXT_RESP))
  const stale = parseBindAckPdu(V.ALTER_CONTEXT_RESP_STALE)
  t.equal(hex(stale.padding!), '3136')
  t.equal(hex(emitBindAckPdu(stale)), hex(V.ALTER_CONTEXT_RESP_STALE))
  t.equal(
    hex(emitBindAckPdu({ ...stale, padding: undefined })),
    hex(V.ALTER_CONTEXT_RESP),
    'zeros when absent',
  )
})

t.test('§9.7 REQUEST and RESPONSE, NDR32 and NDR64', async (t) => {
  t.equal(hex(V.REQUEST_NDR32.subarray(0, V.REQUEST_NDR32_PREFIX.length)), hex(V.REQUEST_NDR32_PREFIX))
  t.equal(hex(V.RESPONSE_NDR32.subarray(0, V.RESPONSE_NDR32_PREFIX.length)), hex(V.RESPONSE_NDR32_PREFIX))
  t.equal(hex(V.RESPONSE_NDR32.subarray(0x11c)), hex(V.RESPONSE_NDR32_TAIL))
  t.equal(hex(V.REQUEST_NDR64.subarray(0, V.REQUEST_NDR64_PREFIX.length)), hex(V.REQUEST_NDR64_PREFIX))
  t.equal(hex(V.RESPONSE_NDR64.subarray(0, V.RESPONSE_NDR64_PREFIX.length)), hex(V.RESPONSE_NDR64_PREFIX))
  const cases = [
    [V.REQUEST_NDR32, 292, 2, 268, 0],
    [V.REQUEST_NDR64, 300, 3, 276, 1],
  ] as const
  for (const [bytes, frag, call, hint, ctx] of cases) {
    const r = parseRequestPdu(bytes)
    t.match(r, {
      header: { fragLength: frag, callId: call, flags: 3 },
      allocHint: hint,
      contextId: ctx,
      opnum: 0,
    })
    t.equal(r.stub.length, hint)
    t.equal(r.objectUuid, undefined)
    t.equal(hex(emitRequestPdu(r)), hex(bytes))
  }
  const rcases = [
    [V.RESPONSE_NDR32, 300, 2, 276, 0],
    [V.RESPONSE_NDR64, 312, 3, 288, 1],
  ] as const
  for (const [bytes, frag, call, hint, ctx] of rcases) {
    const r = parseResponsePdu(bytes)
    t.match(r, {
      header: { fragLength: frag, callId: call },
      allocHint: hint,
      contextId: ctx,
      cancelCount: 0,
    })
    t.equal(r.stub.length, hint)
    t.equal(hex(emitResponsePdu(r)), hex(bytes))
  }
})

t.test('§9.7 refusals and FAULT', async (t) => {
  const r32 = parseResponsePdu(V.REFUSAL_NDR32)
  t.match(r32, { header: { fragLength: 36 }, allocHint: 12, contextId: 0 })
  t.equal(hex(emitResponsePdu(r32)), hex(V.REFUSAL_NDR32))
  const r64 = parseResponsePdu(V.REFUSAL_NDR64)
  t.match(r64, { header: { fragLength: 44, callId: 3 }, allocHint: 20, contextId: 1 })
  t.equal(hex(emitResponsePdu(r64)), hex(V.REFUSAL_NDR64))
  const f = parseFaultPdu(V.FAULT_UNK_IF)
  t.same(f, {
    header: { ...f.header, ptype: PTYPE.FAULT, flags: 0x23, fragLength: 32 },
    allocHint: 32,
    contextId: 0,
    cancelCount: 0,
    reserved: 0,
    status: NCA_STATUS.UNK_IF,
    reserved2: 0,
  })
  const built = emitFaultPdu({
    header: makeHeader(PTYPE.FAULT, 2, PFC.FIRST_FRAG | PFC.LAST_FRAG | PFC.DID_NOT_EXECUTE),
    allocHint: 32,
    contextId: 0,
    cancelCount: 0,
    reserved: 0,
    status: NCA_STATUS.UNK_IF,
    reserved2: 0,
  })
  t.equal(hex(built), hex(V.FAULT_UNK_IF))
})

t.test('parsePdu / emitPdu on every §9.7 vector', async (t) => {
  const kinds: [Uint8Array, AnyPdu['kind']][] = [
    [V.BIND, 'bind'],
    [V.BIND_ACK_NDR64, 'bind_ack'],
    [V.BIND_ACK_NDR32, 'bind_ack'],
    [V.ALTER_CONTEXT, 'alter_context'],
    [V.ALTER_CONTEXT_RESP, 'alter_context_resp'],
    [V.ALTER_CONTEXT_RESP_STALE, 'alter_context_resp'],
    [V.REQUEST_NDR32, 'request'],
    [V.RESPONSE_NDR32, 'response'],
    [V.REQUEST_NDR64, 'request'],
    [V.RESPONSE_NDR64, 'response'],
    [V.REFUSAL_NDR32, 'response'],
    [V.REFUSAL_NDR64, 'response'],
    [V.FAULT_UNK_IF, 'fault'],
  ]
  for (const [bytes, kind] of kinds) {
    const pdu = parsePdu(bytes)
    t.equal(pdu.kind, kind)
    t.equal(hex(emitPdu(pdu)), hex(bytes), kind)
  }
  // an unknown PTYPE (16 = auth3) is framed and kept
  const auth3 = Uint8Array.from([5, 0, 16, 3, 0x10, 0, 0, 0, 20, 0, 0, 0, 9, 0, 0, 0, 1, 2, 3, 4])
  const other = parsePdu(auth3)
  t.equal(other.kind, 'other')
  t.equal(hex(emitPdu(other)), hex(auth3))
})

t.test('framing: frag_length rules, extra input ignored, PTYPE checked per layout', async (t) => {
  const two = new Uint8Array([...V.ALTER_CONTEXT, ...V.REQUEST_NDR32]) // pipelined
  t.equal(parseBindPdu(two).contexts.length, 1)
  t.equal(hex(emitPdu(parsePdu(two))), hex(V.ALTER_CONTEXT))
  t.throws(() => parseBindPdu(V.BIND.subarray(0, 159)), TruncatedError)
  const short = V.FAULT_UNK_IF.slice()
  short[8] = 12
  t.throws(() => parseFaultPdu(short), FieldValueError)
  t.throws(() => parsePdu(short), FieldValueError)
  t.throws(() => parseRequestPdu(V.BIND), FieldValueError)
  t.throws(() => parseBindAckPdu(V.BIND), FieldValueError)
})

t.test('hostile BIND: more contexts declared than fit; odd transfer syntax counts', async (t) => {
  const bytes = V.ALTER_CONTEXT.slice()
  bytes[2] = PTYPE.BIND
  bytes[24] = 200
  const pdu = parseBindPdu(bytes)
  t.equal(pdu.declaredContextCount, 200)
  t.equal(pdu.contexts.length, 1)
  t.equal(hex(emitBindPdu(pdu)), hex(bytes))
  // a partial second element stays as trailing bytes
  const partial = new Uint8Array([...V.BIND.subarray(0, 100)])
  partial[8] = 100
  const p = parseBindPdu(partial)
  t.equal(p.contexts.length, 1)
  t.equal(p.trailing?.length, 100 - 72)
  t.equal(hex(emitBindPdu(p)), hex(partial))
  // two transfer syntaxes in one element, and none in another
  const multi = emitBindPdu({
    header: makeHeader(PTYPE.BIND, 7),
    maxXmitFrag: 5840,
    maxRecvFrag: 5840,
    assocGroupId: 0,
    contexts: [
      {
        contextId: 0,
        abstractSyntax: { uuid: KMS_INTERFACE_UUID, versionMajor: 1, versionMinor: 0 },
        transferSyntaxes: [
          { uuid: NDR64_UUID, version: 1 },
          { uuid: NDR32_UUID, version: 2 },
        ],
      },
      {
        contextId: 1,
        abstractSyntax: { uuid: KMS_INTERFACE_UUID, versionMajor: 1, versionMinor: 0 },
        transferSyntaxes: [],
      },
    ],
  })
  t.equal(multi.length, 28 + 64 + 24)
  const m = parseBindPdu(multi)
  t.same(
    m.contexts.map((c) => c.transferSyntaxes.length),
    [2, 0],
  )
  t.equal(m.contexts[0].transferSyntaxes[1].uuid, NDR32_UUID)
  t.equal(hex(emitBindPdu(m)), hex(multi))
})

t.test('BIND_ACK: odd sec_addr forms; results that do not fit are an error', async (t) => {
  const base: BindAckPdu = {
    header: makeHeader(PTYPE.BIND_ACK, 1, 0x13),
    maxXmitFrag: 5840,
    maxRecvFrag: 5840,
    assocGroupId: 0x1063bf3f,
    secondaryAddress: '16881',
    results: [{ result: 0, reason: 0, transferSyntax: { uuid: NDR32_UUID, version: 2 } }],
  }
  const six = emitBindAckPdu(base)
  t.equal(six.length, 60, 'sec_addr of 6 needs no pad')
  t.same(parseBindAckPdu(six).results, base.results)
  for (const raw of [Uint8Array.of(0), Uint8Array.of(0x31, 0x36, 0x38)]) {
    const b = emitBindAckPdu({ ...base, secondaryAddressRaw: raw })
    const back = parseBindAckPdu(b)
    t.equal(hex(back.secondaryAddressRaw!), hex(raw))
    t.equal(hex(emitBindAckPdu(back)), hex(b))
  }
  const lying = six.slice()
  lying[32] = 2
  t.throws(() => parseBindAckPdu(lying), FieldValueError)
  const longAddr = six.slice()
  longAddr[24] = 200
  t.throws(() => parseBindAckPdu(longAddr), FieldValueError)
})

t.test('BIND_NAK and REQUEST with an object UUID', async (t) => {
  const nak = emitBindNakPdu({
    header: makeHeader(PTYPE.BIND_NAK, 2),
    rejectReason: 4,
    protocols: [{ major: 5, minor: 0 }],
  })
  t.equal(hex(nak), '05000d03100000001500000002000000' + '0400' + '01' + '0500')
  t.same(parseBindNakPdu(nak).protocols, [{ major: 5, minor: 0 }])
  const padded = emitBindNakPdu({ ...parseBindNakPdu(nak), trailing: new Uint8Array(3) })
  t.equal(hex(emitPdu(parsePdu(padded))), hex(padded))
  const lying = nak.slice()
  lying[18] = 3
  t.throws(() => parseBindNakPdu(lying), FieldValueError)

  const req = parseRequestPdu(V.REQUEST_NDR32)
  const withObj = emitRequestPdu({ ...req, objectUuid: KMS_INTERFACE_UUID })
  t.equal(withObj.length, V.REQUEST_NDR32.length + 16)
  t.equal(withObj[3] & PFC.OBJECT_UUID, PFC.OBJECT_UUID)
  const back = parseRequestPdu(withObj)
  t.equal(back.objectUuid, KMS_INTERFACE_UUID)
  t.equal(hex(back.stub), hex(req.stub))
  t.equal(hex(emitRequestPdu({ ...back, objectUuid: undefined })), hex(V.REQUEST_NDR32))
})

t.test('every PDU of every capture round-trips through parsePdu / emitPdu', async (t) => {
  let total = 0
  const kinds = new Map<string, number>()
  for (const name of captureNames()) {
    for (const p of capturePdus(name)) {
      const pdu = parsePdu(p.bytes)
      if (pdu.kind === 'other') t.fail(`${name}: PTYPE ${p.bytes[2]}`)
      const back = emitPdu(pdu)
      if (hex(back) !== hex(p.bytes)) t.fail(`${name} ${p.from} ${pdu.kind} call ${pdu.header.callId}`)
      kinds.set(pdu.kind, (kinds.get(pdu.kind) ?? 0) + 1)
      total++
    }
  }
  t.ok(total > 250, `${total} PDUs`)
  t.same([...kinds.keys()].sort(), [
    'alter_context',
    'alter_context_resp',
    'bind',
    'bind_ack',
    'fault',
    'request',
    'response',
  ])
})

t.test('captured peculiarities', async (t) => {
  const ndr64 = capturePdus('vlmcsd_rpc_ndr64_3req').map((p) => parsePdu(p.bytes))
  const alterResp = ndr64.find((p) => p.kind === 'alter_context_resp') as BindAckPdu
  t.equal(hex(alterResp.padding!), '3136', 'vlmcsd leaves "16" of the port in the pad')
  const ack = ndr64.find((p) => p.kind === 'bind_ack') as BindAckPdu
  t.equal(ack.secondaryAddress, '16880')
  t.same(
    ack.results.map((r) => [r.result, r.reason]),
    [
      [2, 2],
      [0, 0],
      [3, 3],
    ],
  )
  const pykms = capturePdus('pykmsclient_pykms_win10_v6').map((p) => parsePdu(p.bytes))
  const pyAck = pykms.find((p) => p.kind === 'bind_ack') as BindAckPdu
  t.equal(pyAck.assocGroupId, 0x1063bf3f)
  t.equal(pyAck.header.flags, 0x13)
  const fault = capturePdus('raw_vlmcsd_request_without_bind').map((p) => parsePdu(p.bytes))[1]
  t.match(fault, { kind: 'fault', status: NCA_STATUS.UNK_IF, header: { callId: 2, flags: 0x23 } })
  const wrongIf = capturePdus('raw_vlmcsd_wrong_interface').map((p) => parsePdu(p.bytes))
  t.match(wrongIf[0], {
    kind: 'bind',
    contexts: [{ abstractSyntax: { uuid: '12345678-1234-1234-1234-123456789abc' } }],
  })
  t.match(wrongIf[1], { kind: 'bind_ack', results: [{ result: 2, reason: 1 }] })
})

const PARSERS: [string, (b: Uint8Array) => unknown][] = [
  ['parsePdu', parsePdu],
  ['parseRpcHeader', parseRpcHeader],
  ['parseBindPdu', parseBindPdu],
  ['parseBindAckPdu', parseBindAckPdu],
  ['parseBindNakPdu', parseBindNakPdu],
  ['parseRequestPdu', parseRequestPdu],
  ['parseResponsePdu', parseResponsePdu],
  ['parseFaultPdu', parseFaultPdu],
]

function onlyWireErrors(bytes: Uint8Array): boolean {
  for (const [, parse] of PARSERS) {
    try {
      parse(bytes)
    } catch (e) {
      if (!(e instanceof WireError)) throw e
    }
  }
  return true
}

const VALID = [
  V.BIND,
  V.BIND_ACK_NDR64,
  V.ALTER_CONTEXT,
  V.ALTER_CONTEXT_RESP_STALE,
  V.REQUEST_NDR64,
  V.REFUSAL_NDR32,
  V.FAULT_UNK_IF,
]

t.test('property: parsers throw only WireError on random and mutated input', async (t) => {
  // random bytes, with a plausible header half the time so the body parsers get exercised
  const header = fc.record({ ptype: fc.constantFrom(0, 2, 3, 11, 12, 13, 14, 15, 16), len: fc.nat(400) })
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.option(header), (bytes, hd) => {
      if (hd && bytes.length >= 16) {
        bytes[0] = 5
        bytes[2] = hd.ptype
        bytes[8] = hd.len & 0xff
        bytes[9] = hd.len >> 8
      }
      return onlyWireErrors(bytes)
    }),
    { numRuns: 3000 },
  )
  fc.assert(
    fc.property(fc.constantFrom(...VALID), fc.nat(), fc.integer({ min: 0, max: 255 }), (pdu, at, value) => {
      const bytes = pdu.slice()
      bytes[at % bytes.length] = value
      return onlyWireErrors(bytes) && onlyWireErrors(bytes.subarray(0, at % bytes.length))
    }),
    { numRuns: 3000 },
  )
  t.pass('no foreign exception')
})

t.test('property: emit(parse(x)) === x for every mutation that still parses', async (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...VALID), fc.nat(), fc.integer({ min: 0, max: 255 }), (pdu, at, value) => {
      const bytes = pdu.slice()
      bytes[at % bytes.length] = value
      let parsed: AnyPdu
      try {
        parsed = parsePdu(bytes)
      } catch {
        return true
      }
      return hex(emitPdu(parsed)) === hex(bytes.subarray(0, parsed.header.fragLength))
    }),
    { numRuns: 3000 },
  )
  t.pass('round-trip holds')
})
