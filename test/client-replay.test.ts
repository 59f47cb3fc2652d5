// The client against recorded hosts: each capture's client requests are rebuilt byte for byte
// through the library options (CMID, time, workstation, IV taken from the captured PDUs), the stub
// host serves the recorded BIND_ACK / ALTER_CONTEXT_RESP / RESPONSE bytes, and the client must
// send exactly the captured PDUs and accept (or reject) the answers as vlmcs did.
import t, { type Test } from 'tap'
import { activate, CLOSED_WARNING } from '../src/client/activate.js'
import type { RequestOverride } from '../src/client/types.js'
import { cbcDecrypt } from '../src/crypto/cbc.js'
import { HRESULT } from '../src/kms/hresult.js'
import { cipherForMajor, decodeKmsRequest } from '../src/kms/request.js'
import { toHex } from '../src/wire/bytes.js'
import { guessSyntax, parseRequestStub } from '../src/wire/ndr.js'
import { isBtfnSyntax, NDR64_UUID, PFC, PTYPE, parseBindPdu, parseRequestPdu } from '../src/wire/rpc.js'
import { loadCapturePdus } from './fixtures/pcap.js'
import { kmsScript, replayScript, startStubHost } from './fixtures/stub-host.js'

interface Recorded {
  client: Uint8Array[][]
  server: Uint8Array[][]
  overrides: RequestOverride[]
  ndr64: boolean
  btfn: boolean
  multiplex: boolean
}

/** The captured request's fields, including bytes after the workstation name's NUL (vlmcs reuses its buffer). */
function overrideOf(payload: Uint8Array): RequestOverride {
  const d = decodeKmsRequest(payload)
  const plain =
    d.shape === 'v4' ? payload : cbcDecrypt(cipherForMajor(d.major), d.iv!, payload.subarray(20, 260))
  const units: number[] = []
  for (let o = 108; o < 236; o += 2) units.push(plain[o] | (plain[o + 1] << 8))
  while (units.length && units[units.length - 1] === 0) units.pop()
  return { ...d.base!, workstation: String.fromCharCode(...units), ...(d.iv ? { iv: d.iv } : {}) }
}

function recorded(name: string): Recorded {
  const conns = loadCapturePdus(name)
  const client = conns.map((c) => c.clientPdus.map((p) => new Uint8Array(p.bytes)))
  const server = conns.map((c) => c.serverPdus.map((p) => new Uint8Array(p.bytes)))
  const overrides = client.flat().flatMap((pdu) => {
    if (pdu[2] !== PTYPE.REQUEST) return []
    const stub = parseRequestPdu(pdu).stub
    return [overrideOf(parseRequestStub(stub, guessSyntax(stub, true)!).payload)]
  })
  const bind = parseBindPdu(client[0][0])
  const syntaxes = bind.contexts.map((c) => c.transferSyntaxes[0].uuid)
  return {
    client,
    server,
    overrides,
    ndr64: syntaxes.includes(NDR64_UUID),
    btfn: syntaxes.some(isBtfnSyntax),
    multiplex: (bind.header.flags & PFC.CONC_MPX) !== 0,
  }
}

async function replay(
  t: Test,
  name: string,
  o: { closeAfterLast?: boolean; newConnection?: boolean; host?: string; charge?: boolean } = {},
) {
  const rec = recorded(name)
  const stub = await startStubHost(replayScript(rec.server, o.closeAfterLast), o.host)
  t.teardown(() => stub.close())
  const report = await activate(stub.target, {
    perRequest: (i) => rec.overrides[i],
    requests: o.charge ? undefined : rec.overrides.length,
    charge: o.charge,
    ndr64: rec.ndr64,
    btfn: rec.btfn,
    multiplex: rec.multiplex,
    newConnection: o.newConnection,
    timeoutMs: 3000,
  })
  return { rec, stub, report }
}

/** Captures of vlmcs against a host that answered; their expected exit code and per-request warnings. */
const GOOD: [
  string,
  { exit?: number; closeAfterLast?: boolean; newConnection?: boolean; host?: string; warnings?: string[][] },
][] = [
  ['vlmcsd_v4_win10ent', {}],
  ['vlmcsd_v4_office2016pp', {}],
  ['vlmcsd_v4_win7ent_default', {}],
  ['vlmcsd_v5_win10ent', {}],
  ['vlmcsd_v5_office2019pp', {}],
  ['vlmcsd_v5_office2013pp_default', {}],
  ['vlmcsd_v6_win10ent', {}],
  ['vlmcsd_v6_ws2019std', {}],
  ['vlmcsd_v6_office2016pp', {}],
  ['vlmcsd_v6_office2021pp_guids', {}],
  ['vlmcsd_v6_ipv6_win10ent', { host: '::1' }],
  ['vlmcsd_rpc_ndr32only_2req', {}],
  ['vlmcsd_rpc_ndr64_3req', {}],
  ['vlmcsd_rpc_nobtfn', {}],
  ['vlmcsd_rpc_minimal_bind', {}],
  ['vlmcsd_rpc_nomultiplex', {}],
  ['vlmcsd_multi_5req_1conn', {}],
  ['vlmcsd_newconn_3req_T', { newConnection: true }],
  ['srvN0_ndr64_disabled', {}],
  ['srv_fixed_epid_hwid_intervals_win', {}],
  ['srvM1E1_client_counting', { exit: 2 }],
  ['srvd_disconnect_each', { closeAfterLast: true, warnings: [[], [CLOSED_WARNING], [CLOSED_WARNING]] }],
  ['vlmcs_pykms_v4_win10ent', { closeAfterLast: true }],
  ['vlmcs_pykms_v6_office2016pp', { closeAfterLast: true }],
  [
    'vlmcs_pykms_v6_3req_reconnects',
    { closeAfterLast: true, warnings: [[], [CLOSED_WARNING], [CLOSED_WARNING]] },
  ],
]

for (const [name, o] of GOOD) {
  t.test(`${name}: same PDUs as vlmcs, every recorded answer accepted`, async (t) => {
    const { rec, stub, report } = await replay(t, name, o)
    t.equal(stub.received.length, rec.client.length, 'as many connections as vlmcs opened')
    rec.client.forEach((pdus, c) => {
      t.same(
        (stub.received[c] ?? []).map(toHex),
        pdus.map(toHex),
        `connection ${c}: BIND, ALTER_CONTEXT and REQUEST bytes equal the captured ones`,
      )
    })
    t.equal(report.results.length, rec.overrides.length)
    for (const r of report.results) {
      t.equal(r.error, null, `request ${r.index + 1}: no error`)
      t.ok(r.answer, `request ${r.index + 1} verified`)
      t.same(r.warnings, o.warnings?.[r.index] ?? [], `request ${r.index + 1}: warnings`)
    }
    t.equal(report.exitCode, o.exit ?? 0)
  })
}

t.test(
  'vlmcsd_rpc_ndr64_3req: NDR64 only in the bind, alter-context to NDR32, then NDR32 ctx 0, NDR64 ctx 1',
  async (t) => {
    const { report } = await replay(t, 'vlmcsd_rpc_ndr64_3req')
    t.same(
      report.results.map((r) => r.rpc),
      [
        { syntax: 'ndr32', contextId: 0, callId: 2, connection: 1 },
        { syntax: 'ndr64', contextId: 1, callId: 3, connection: 1 },
        { syntax: 'ndr64', contextId: 1, callId: 4, connection: 1 },
      ],
    )
    t.same(report.results[0].bind, [
      'bind: NDR32 rejected, NDR64 accepted (ctx 1), BTFN acknowledged (features 0x3)',
      'alter_context: NDR32 accepted (ctx 0)',
    ])
    t.equal(report.results[0].answer!.base.epid, '06401-00206-568-844243-03-10249-9600.0000-1602020')
    t.equal(toHex(report.results[0].answer!.hwid!).toUpperCase(), '3A1C049600B60076')
  },
)

t.test(
  'srvM1E1_client_counting with --charge: stops at the threshold (5 of the 7 recorded requests)',
  async (t) => {
    const { report } = await replay(t, 'srvM1E1_client_counting', { charge: true })
    t.same(
      report.results.map((r) => r.answer?.base.currentCount),
      [1, 2, 3, 4, 5],
    )
    t.same(
      report.results.map((r) => r.verdict),
      ['not-enough-count', 'not-enough-count', 'not-enough-count', 'not-enough-count', 'activated'],
    )
    t.equal(report.exitCode, 0, 'charging to the threshold is a success')
  },
)

t.test('recorded refusals map to exit 3 with their HRESULT', async (t) => {
  for (const [name, hresult] of [
    ['vlmcsd_badver_7_0', HRESULT.INVALID_DATA],
    ['vlmcsd_badver_3_0', HRESULT.INVALID_DATA],
    ['srvK3_retail_kmsid_refused', HRESULT.KMS_ID_MISMATCH],
  ] as const) {
    const { rec, stub, report } = await replay(t, name)
    t.same(
      stub.received[0].map(toHex),
      rec.client[0].map(toHex),
      `${name}: the probe request rebuilt byte for byte`,
    )
    t.equal(report.results[0].verdict, 'refused', name)
    t.equal(report.results[0].hresult, hresult, name)
    t.match(report.results[0].error?.message, /^host refused: 0x[0-9A-F]{8} \(/, name)
    t.equal(report.exitCode, 3, name)
  }
})

t.test('py-kms closing without an answer (vlmcs_pykms_badver_7_0) is an RPC error, exit 5', async (t) => {
  const rec = recorded('vlmcs_pykms_badver_7_0')
  t.equal(rec.server[0].length, 1, 'py-kms sent only its BIND_ACK')
  const stub = await startStubHost((pdu) => (pdu[2] === PTYPE.REQUEST ? { close: true } : rec.server[0][0]))
  t.teardown(() => stub.close())
  const report = await activate(stub.target, { perRequest: (i) => rec.overrides[i], timeoutMs: 3000 })
  t.same(stub.received[0].map(toHex), rec.client[0].map(toHex), 'the 7.0 probe rebuilt byte for byte')
  t.equal(report.results[0].verdict, 'rpc-error')
  t.match(report.results[0].error, { kind: 'closed' })
  t.equal(report.exitCode, 5)
})

t.test('py-kms always answers the bind with PFC_CONC_MPX: vlmcs warns when the bind had none', async (t) => {
  const rec = recorded('vlmcs_pykms_v6_office2016pp')
  const stub = await startStubHost(replayScript(rec.server, true))
  t.teardown(() => stub.close())
  const report = await activate(stub.target, {
    perRequest: (i) => rec.overrides[i],
    multiplex: false,
    timeoutMs: 3000,
  })
  t.equal(stub.received[0][0][3], 0x03, 'bind flags without PFC_CONC_MPX')
  t.same(stub.received[0][1], rec.client[0][1], 'the request is still the recorded one')
  t.same(report.results[0].warnings, ['bind_ack PFC_CONC_MPX 0x10 differs from bind 0x00'])
  t.equal(report.exitCode, 0, 'a warning does not fail the activation')
})

t.test('a FAULT (as vlmcsd sends for a request on an unknown context) is exit 5', async (t) => {
  const fault = loadCapturePdus('raw_vlmcsd_request_without_bind')[0].serverPdus[0].bytes
  const ack = loadCapturePdus('vlmcsd_rpc_ndr64_3req')[0].serverPdus
  const stub = await startStubHost(replayScript([[ack[0].bytes, ack[1].bytes, fault]]))
  t.teardown(() => stub.close())
  const report = await activate(stub.target, { timeoutMs: 3000 })
  const r = report.results[0]
  t.equal(r.verdict, 'rpc-error')
  t.equal(r.error?.constructor.name, 'RpcError')
  t.match(r.error, { kind: 'fault', status: 0x1c010003 })
  t.match(r.error?.message, /FAULT 0x1C010003 \(nca_s_unk_if\)/)
  t.equal(report.exitCode, 5)
})

t.test('the live stub host agrees with the recorded one on the happy path', async (t) => {
  const stub = await startStubHost(kmsScript())
  t.teardown(() => stub.close())
  const report = await activate(stub.target, { requests: 3, timeoutMs: 3000 })
  t.same(
    report.results.map((r) => [r.verdict, r.warnings]),
    [
      ['activated', []],
      ['activated', []],
      ['activated', []],
    ],
  )
})
