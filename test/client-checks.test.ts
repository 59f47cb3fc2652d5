// Every hard check and every vlmcs-style warning of the client: a live stub host breaks one thing
// at a time (HMAC, hash, IV rule, echoes, PID, flags, padding, alloc_hint, ...), and the pure
// checks are exercised directly.
import t, { type Test } from 'tap'
import { type ActivateOptions, activate, CLOSED_WARNING } from '../src/client/activate.js'
import { expectedResponseSize, payloadSizeWarning } from '../src/client/checks.js'
import { seededRandom } from '../src/crypto/random.js'
import { HRESULT } from '../src/kms/hresult.js'
import { NULL_GUID, toHex } from '../src/wire/bytes.js'
import { emitBindNakPdu, makeHeader, NDR32_UUID, PFC, PTYPE } from '../src/wire/rpc.js'
import { deadPort, type KmsScriptOptions, kmsScript, startStubHost } from './fixtures/stub-host.js'

const EPID_48 = '06401-00206-568-844243-03-1033-9600.0000-1602020'

async function run(t: Test, script: KmsScriptOptions, options: ActivateOptions = {}) {
  const stub = await startStubHost(kmsScript(script))
  t.teardown(() => stub.close())
  const report = await activate(stub.target, { timeoutMs: 2000, ...options })
  return { report, r: report.results[0], stub }
}

t.test('a correct host: no warnings, exit 0, for every protocol and RPC switch', async (t) => {
  for (const protocol of [4, 5, 6]) {
    for (const rpc of [
      {},
      { ndr64: false },
      { btfn: false },
      { multiplex: false },
      { ndr64: false, btfn: false },
    ]) {
      const { report } = await run(t, {}, { protocol, requests: 2, ...rpc })
      t.same(
        report.results.map((r) => [r.verdict, r.warnings]),
        [
          ['activated', []],
          ['activated', []],
        ],
        `V${protocol} ${JSON.stringify(rpc)}`,
      )
      t.equal(report.exitCode, 0)
    }
  }
})

t.test('answers that fail verification: exit 4, the failed check named', async (t) => {
  const cases: [string, number, string][] = [
    ['hmac', 6, 'hmac'],
    ['hash', 6, 'hash'],
    ['hash', 5, 'hash'],
    ['hmac', 4, 'mac'],
    ['iv-rule', 5, 'iv'],
    ['cmid', 6, 'cmid'],
    ['cmid', 4, 'cmid'],
    ['time', 5, 'time'],
    ['pid', 6, 'pid'],
  ]
  for (const [corrupt, protocol, check] of cases) {
    const { report, r } = await run(t, { corrupt: corrupt as KmsScriptOptions['corrupt'] }, { protocol })
    t.equal(r.verdict, 'verification-failed', `${corrupt} V${protocol}`)
    t.match(r.error, { check }, `${corrupt} V${protocol}: check ${check}`)
    t.equal(report.exitCode, 4)
  }
})

t.test('V5 IV rules in a V6 answer: a warning, not a failure', async (t) => {
  const { report, r } = await run(t, { corrupt: 'iv-rule' }, { protocol: 6 })
  t.same(r.warnings, ['host uses an IV following KMSv5 rules in KMSv6 protocol'])
  t.equal(report.exitCode, 0)
})

t.test('flag warnings on RESPONSE, BIND_ACK and ALTER_CONTEXT_RESP', async (t) => {
  for (const [bit, name] of [
    [PFC.CONC_MPX, 'PFC_CONC_MPX'],
    [PFC.PENDING_CANCEL, 'PFC_PENDING_CANCEL'],
    [PFC.RESERVED_1, 'PFC_RESERVED_1'],
    [PFC.DID_NOT_EXECUTE, 'PFC_DID_NOT_EXECUTE'],
    [PFC.MAYBE, 'PFC_MAYBE'],
  ] as const) {
    const { r } = await run(t, {
      tweakResponse: (p) => {
        p.header.flags |= bit
      },
    })
    t.same(r.warnings, [`response flag ${name} (0x${bit.toString(16).padStart(2, '0')}) set`], name)
    t.equal(r.verdict, 'activated')
  }
  const { r: mpx } = await run(t, {
    tweakAck: (a) => {
      a.header.flags &= ~PFC.CONC_MPX
    },
  })
  t.same(mpx.warnings, ['bind_ack PFC_CONC_MPX 0x00 differs from bind 0x10'])
  const { r: alter } = await run(t, {
    tweakAck: (a) => {
      if (a.header.ptype === PTYPE.ALTER_CONTEXT_RESP) a.header.flags |= PFC.CONC_MPX
    },
  })
  t.same(alter.warnings, ['alter_context_resp flag PFC_CONC_MPX (0x10) set'])
})

t.test('context result warnings', async (t) => {
  const { r: rejected } = await run(t, {
    tweakAck: (a) => {
      if (a.header.ptype !== PTYPE.BIND_ACK) return
      a.results[0] = { result: 2, reason: 3, transferSyntax: { uuid: NDR32_UUID, version: 2 } }
    },
  })
  t.same(rejected.warnings, [
    `bind_ack ctx 0 (NDR32) rejected with transfer syntax ${NDR32_UUID}, not the null GUID`,
    'bind_ack ctx 0 (NDR32) rejected with syntax version 2, not 0',
    'bind_ack ctx 0 (NDR32) rejected with reason 3, not 2',
  ])
  const { r: reason } = await run(t, {
    tweakAck: (a) => {
      if (a.header.ptype === PTYPE.BIND_ACK) a.results[1].reason = 7
    },
  })
  t.same(reason.warnings, ['bind_ack ctx 1 (NDR64) accepted with reason 7, not 0'])
  const { r: btfn } = await run(t, {
    tweakAck: (a) => {
      if (a.header.ptype === PTYPE.BIND_ACK) a.results[2].reason = 1
    },
  })
  t.same(btfn.warnings, ['bind_ack ctx 2 (BTFN) feature bits 0x01, not the negotiated 0x03'])
  const { r: noBtfn } = await run(t, { btfn: false })
  t.same(noBtfn.warnings, ['host accepts NDR64 but not BTFN'])
  const { r: kms } = await run(t, {
    tweakAck: (a) => {
      if (a.header.ptype === PTYPE.BIND_ACK)
        a.results[0] = { result: 2, reason: 1, transferSyntax: { uuid: NULL_GUID, version: 0 } }
    },
  })
  t.same(kms.warnings, ['bind_ack ctx 0 (NDR32) rejected: the host does not support KMS on it (reason 1)'])
})

t.test('NDR32 refused in the alter-context too: every call on NDR64, with a warning', async (t) => {
  const { report } = await run(
    t,
    {
      tweakAck: (a) => {
        if (a.header.ptype === PTYPE.ALTER_CONTEXT_RESP)
          a.results[0] = { result: 2, reason: 2, transferSyntax: { uuid: NULL_GUID, version: 0 } }
      },
    },
    { requests: 2 },
  )
  t.same(report.results[0].warnings, ['host does not support NDR32'])
  t.same(
    report.results.map((r) => r.rpc?.syntax),
    ['ndr64', 'ndr64'],
  )
  t.equal(report.exitCode, 0)
})

t.test('NDR stub warnings: padding, alloc_hint, referent, trailing bytes', async (t) => {
  // V4 with a 48-character ePID: 158-byte answer, 2 pad bytes before the HRESULT in NDR32.
  const { r: pad } = await run(
    t,
    {
      epid: () => EPID_48,
      tweakResponse: (p) => {
        p.stub[12 + 158] = 0xee
      },
    },
    { protocol: 4, ndr64: false },
  )
  t.same(pad.warnings, ['response stub padding is not zero'])
  const { report: two } = await run(
    t,
    {
      tweakResponse: (p) => {
        if (p.contextId === 1) p.stub[5] = 1
      },
    },
    { requests: 2 },
  )
  t.same(
    two.results.map((r) => r.warnings),
    [[], ['response stub padding is not zero']],
    'NDR64 bytes 4-7 of the second call',
  )
  const { r: hint } = await run(t, {
    tweakResponse: (p) => {
      p.allocHint += 4
    },
  })
  t.same(hint.warnings, ['response alloc_hint 280 is not the stub size 276'])
  const { r: referent } = await run(t, {
    tweakResponse: (p) => {
      p.stub[4] = 1
    },
  })
  t.same(referent.warnings, ['response referent 0x20001 is not 0x00020000'])
  const { r: trailing } = await run(t, {
    tweakResponse: (p) => {
      p.stub = Uint8Array.from([...p.stub, 0, 0, 0, 0])
      p.allocHint = p.stub.length
    },
  })
  t.same(trailing.warnings, [
    'response alloc_hint 280 is not the stub size 276',
    'response stub has 4 bytes after the HRESULT',
  ])
})

t.test('ePID changing on one connection, host closing between requests', async (t) => {
  const a = '06401-00206-568-844243-03-1033-17763.0000-1602020'
  const b = '06401-00206-568-844244-03-1033-17763.0000-1602020'
  const { report } = await run(t, { epid: (n) => (n === 0 ? a : b) }, { requests: 2 })
  t.same(report.results[1].warnings, [`ePID changed on the same connection: ${a} -> ${b}`])
  const { report: closing, stub } = await run(
    t,
    { closeAfterResponse: true, epid: (n) => (n === 0 ? a : b) },
    { requests: 3 },
  )
  t.same(
    closing.results.map((r) => r.warnings),
    [[], [CLOSED_WARNING], [CLOSED_WARNING]],
    'reconnected each time; a new connection may have a new ePID',
  )
  t.equal(stub.received.length, 3)
  t.same(
    closing.results.map((r) => r.rpc?.callId),
    [2, 3, 4],
    'call ids go on across connections, as vlmcs counts them',
  )
  t.equal(closing.exitCode, 0)
})

t.test('RPC-level failures: exit 5 with the kind of failure', async (t) => {
  const cases: [string, KmsScriptOptions, string, RegExp][] = [
    [
      'call id',
      {
        tweakResponse: (p) => {
          p.header.callId += 1
        },
      },
      'protocol',
      /call id 3, not 2/,
    ],
    [
      'context id',
      {
        tweakResponse: (p) => {
          p.contextId = 5
        },
      },
      'protocol',
      /context id 5/,
    ],
    [
      'fragment flags',
      {
        tweakResponse: (p) => {
          p.header.flags = PFC.FIRST_FRAG
        },
      },
      'protocol',
      /RPC_S_CANNOT_SUPPORT/,
    ],
    [
      'cancel count',
      {
        tweakResponse: (p) => {
          p.cancelCount = 1
        },
      },
      'protocol',
      /cancel count/,
    ],
    [
      'NDR sizes',
      {
        tweakResponse: (p) => {
          p.stub[0] ^= 4
        },
      },
      'protocol',
      /responseSize .* conformance/,
    ],
    [
      'PTYPE',
      {
        tweakBytes: (b) =>
          b[2] === PTYPE.RESPONSE ? Uint8Array.from(b, (x, i) => (i === 2 ? PTYPE.BIND_ACK : x)) : b,
      },
      'protocol',
      /expected a response/,
    ],
    [
      'RPC version',
      { tweakBytes: (b) => Uint8Array.from(b, (x, i) => (i === 1 ? 1 : x)) },
      'protocol',
      /RPC version 5\.1/,
    ],
    [
      'BIND_NAK',
      {
        tweakBytes: (b) =>
          b[2] === PTYPE.BIND_ACK
            ? emitBindNakPdu({
                header: makeHeader(PTYPE.BIND_NAK, 2),
                rejectReason: 4,
                protocols: [{ major: 5, minor: 0 }],
              })
            : b,
      },
      'bind-rejected',
      /BIND_NAK reason 4/,
    ],
    [
      'nothing accepted',
      {
        ndr64: false,
        tweakAck: (a) => {
          a.results = a.results.map(() => ({
            result: 2,
            reason: 2,
            transferSyntax: { uuid: NULL_GUID, version: 0 },
          }))
        },
      },
      'bind-rejected',
      /neither NDR32 nor NDR64/,
    ],
  ]
  for (const [name, script, kind, message] of cases) {
    const { report, r } = await run(t, script)
    t.equal(r.verdict, 'rpc-error', name)
    t.match(r.error, { kind, message }, name)
    t.equal(report.exitCode, 5, name)
  }
})

t.test('silence, refused connections', async (t) => {
  const silent = await startStubHost(() => null)
  t.teardown(() => silent.close())
  const quiet = await activate(silent.target, { timeoutMs: 150 })
  t.match(quiet.results[0].error, { kind: 'timeout', message: /no bind_ack within 150 ms/ })
  t.equal(quiet.exitCode, 5)
  const refused = await activate(`127.0.0.1:${await deadPort()}`, { timeoutMs: 2000 })
  t.match(refused.results[0].error, { kind: 'connect', message: /ECONNREFUSED/ })
  t.equal(refused.exitCode, 5)
})

t.test('refusals: exit 3 with the HRESULT, NDR32 and NDR64', async (t) => {
  for (const [hresult, requests] of [
    [HRESULT.KMS_ID_MISMATCH, 1],
    [HRESULT.INVALID_TIMESTAMP, 2],
  ] as const) {
    const { report } = await run(t, { hresult }, { requests })
    t.same(
      report.results.map((r) => [r.verdict, r.hresult, r.rpc?.syntax]),
      [
        ['refused', hresult, 'ndr32'],
        ['refused', hresult, 'ndr64'],
      ].slice(0, requests),
    )
    t.equal(report.exitCode, 3)
  }
})

t.test('count below the threshold: exit 2; the highest code of all requests wins', async (t) => {
  const { report } = await run(t, { count: () => 3 })
  t.equal(report.results[0].verdict, 'not-enough-count')
  t.equal(report.exitCode, 2)
  const { report: mixed } = await run(
    t,
    { count: (n) => (n === 0 ? 3 : 50), corrupt: (n) => (n === 2 ? 'hmac' : undefined) },
    { requests: 3 },
  )
  t.same(
    mixed.results.map((r) => r.verdict),
    ['not-enough-count', 'activated', 'verification-failed'],
  )
  t.equal(mixed.exitCode, 4)
})

t.test('charge: new CMIDs until the threshold; a host that does not count is given up on', async (t) => {
  const progress: number[] = []
  const { report } = await run(
    t,
    { count: (n) => n + 1 },
    { charge: true, requiredCount: 5, onProgress: (p) => progress.push(p.count ?? -1) },
  )
  t.same(progress, [1, 2, 3, 4, 5])
  t.equal(new Set(report.results.map((r) => r.request.cmid)).size, 5, 'a new CMID per request')
  t.equal(report.exitCode, 0)
  const { report: stuck } = await run(t, { count: () => 3 }, { charge: true, requiredCount: 5 })
  t.equal(stuck.results.length, 2)
  t.same(stuck.results[1].warnings, ['count did not increase (3 -> 3): the host does not count new clients'])
  t.equal(stuck.exitCode, 2)
  const { report: limited } = await run(
    t,
    { count: (n) => n + 1 },
    { charge: true, requiredCount: 25, requests: 4 },
  )
  t.equal(limited.results.length, 4, '--requests limits the charge')
  t.equal(limited.exitCode, 2)
})

t.test('KMS payload size as vlmcs computes it (§3.5)', async (t) => {
  t.equal(expectedResponseSize(4, 98), 158)
  t.equal(expectedResponseSize(4, 100), 160)
  t.equal(expectedResponseSize(5, 100), 228)
  t.equal(expectedResponseSize(5, 98), 212)
  t.equal(expectedResponseSize(6, 100), 260)
  t.equal(expectedResponseSize(6, 128), 292)
  t.equal(payloadSizeWarning(6, 100, 260), null)
  t.equal(payloadSizeWarning(6, 100, 276), 'KMS response is 276 bytes, expected 260 for PIDSize 100')
})

t.test('injected clock and random source make a run reproducible', async (t) => {
  const payloads: string[] = []
  for (let i = 0; i < 2; i++) {
    const { report } = await run(
      t,
      {},
      { random: seededRandom('client'), now: () => new Date('2026-01-02T03:04:05Z') },
    )
    const q = report.results[0].request
    t.equal(q.requestTime, 134117966450000000n, 'FILETIME of the injected clock')
    t.match(q.cmid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    t.match(q.workstation, /^[a-z]+-\d{4}\.[a-z]+\.[a-z.]+$/)
    payloads.push(toHex(report.results[0].requestPayload))
  }
  t.equal(payloads[0], payloads[1], 'same CMID, workstation and IV from the same seed')
})
