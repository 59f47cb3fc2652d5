// Fault injection through the embedding API, each action seen through kmslab's own client: what it
// reported (verdict, error kind / HRESULT / FAULT status, warnings, exit code) and what the host
// recorded (the history row names the rule).
import t, { type Test } from 'tap'
import { type ActivateOptions, activate, CLOSED_WARNING } from '../src/client/activate.js'
import { RefusedError, RpcError } from '../src/client/errors.js'
import { resultRecord } from '../src/client/text.js'
import { UsageError } from '../src/errors.js'
import { startHost } from '../src/host/host.js'
import type { HostOptions } from '../src/host/options.js'
import type { FaultRule } from '../src/host/rules.js'
import type { ActivationRecord, KmsHost } from '../src/host/types.js'
import { VerificationError } from '../src/kms/errors.js'
import { HRESULT } from '../src/kms/hresult.js'

const OFFICE2013_APP = '0ff1ce15-a989-479d-af46-f275c6370663'
const WINDOWS_APP = '55c92734-d682-4d71-983e-d6ec3f16059f'

async function hostFor(t: Test, rules: FaultRule[], options: HostOptions = {}): Promise<KmsHost> {
  const host = await startHost({ counter: 'fixed:50', rules, ...options })
  t.teardown(() => host.close())
  return host
}

const run = (host: KmsHost, options: ActivateOptions = {}) =>
  activate({ host: '127.0.0.1', port: host.port }, { timeoutMs: 3000, ...options })

/** The records of the requests `fn` makes, once each is settled. */
async function recorded(host: KmsHost, fn: () => Promise<unknown>): Promise<ActivationRecord[]> {
  const seen: ActivationRecord[] = []
  const listener = (r: ActivationRecord) => seen.push(r)
  host.events.on('activation', listener)
  try {
    await fn()
  } finally {
    host.events.off('activation', listener)
  }
  return seen
}

t.test('refuse: any HRESULT, given as a number or as text', async (t) => {
  for (const code of [
    HRESULT.KMS_ID_MISMATCH,
    HRESULT.INVALID_TIMESTAMP,
    HRESULT.INVALID_DATA,
    0xc004f074,
    0x80070005,
  ]) {
    const host = await hostFor(t, [
      { name: 'no', action: { refuse: `0x${code.toString(16).toUpperCase()}` } },
    ])
    const report = await run(host)
    const r = report.results[0]
    t.equal(r.verdict, 'refused')
    t.equal(r.hresult, code, `refused with 0x${code.toString(16)}`)
    t.type(r.error, RefusedError)
    t.equal((r.error as RefusedError).hresult, code)
    t.equal(report.exitCode, 3)
    const [row] = host.history()
    t.same(
      { hresult: row.hresult, reportedCount: row.reportedCount, rules: row.rules },
      { hresult: code, reportedCount: null, rules: ['no'] },
    )
    t.same(host.pools.read(), {}, 'a refused client is not counted')
  }
})

t.test('refuse: 0 sends a NULL answer with HRESULT 0, which the client calls a protocol error', async (t) => {
  const host = await hostFor(t, [{ action: { refuse: 0 } }])
  const report = await run(host)
  const r = report.results[0]
  t.equal(r.verdict, 'rpc-error')
  t.type(r.error, RpcError)
  t.equal((r.error as RpcError).kind, 'protocol')
  t.equal(report.exitCode, 5)
  t.same(host.history()[0].rules, ['rule #1'], 'an unnamed rule is named by its place')
})

t.test('count: under the required count the client reports 0xC004F038; over it, it activates', async (t) => {
  const host = await hostFor(t, [{ name: 'three', match: { nth: 1 }, action: { count: 3 } }], {
    counter: 'real',
  })
  const [rec] = await recorded(host, async () => {
    const low = await run(host)
    t.equal(low.results[0].verdict, 'not-enough-count')
    t.equal(low.results[0].answer?.base.currentCount, 3)
    t.match(resultRecord(low.results[0]).error, /0xC004F038/)
    t.equal(low.exitCode, 2)
  })
  t.equal(rec.reportedCount, 3)
  t.equal(rec.poolSize, 1, 'the client is still counted')
  t.equal(rec.willActivate, false)
  host.rules.set([{ name: 'plenty', action: { count: 25 } }])
  const high = await run(host)
  t.equal(high.results[0].verdict, 'activated')
  t.equal(high.results[0].answer?.base.currentCount, 25)
  t.equal(high.exitCode, 0)
  t.same(
    host.history().map((r) => [r.reportedCount, r.rules]),
    [
      [3, ['three']],
      [25, ['plenty']],
    ],
  )
  t.equal(host.pools.read()[WINDOWS_APP].length, 2)
})

t.test('delay: the answer comes late; past the client timeout the client gives up', async (t) => {
  const host = await hostFor(t, [{ name: 'slow', action: { delayMs: 100 } }])
  const ok = await run(host)
  t.equal(ok.results[0].verdict, 'activated')
  t.same(host.history()[0].rules, ['slow'])
  host.rules.set([{ name: 'stuck', action: { delayMs: 2000 } }])
  const late = await run(host, { timeoutMs: 200 })
  t.equal(late.results[0].verdict, 'rpc-error')
  t.equal((late.results[0].error as RpcError).kind, 'timeout')
  t.equal(late.exitCode, 5)
})

t.test('fault: an RPC FAULT with the given status', async (t) => {
  const host = await hostFor(t, [{ name: 'unk-if', action: { fault: '0x1C010003' } }])
  const faults: number[] = []
  host.events.on('fault', (f) => faults.push(f.status))
  const [rec] = await recorded(host, async () => {
    const report = await run(host)
    const r = report.results[0]
    t.equal(r.verdict, 'rpc-error')
    t.type(r.error, RpcError)
    t.equal((r.error as RpcError).kind, 'fault')
    t.equal((r.error as RpcError).status, 0x1c010003)
    t.equal(report.exitCode, 5)
  })
  t.equal(rec.outcome, 'fault')
  t.equal(rec.faultStatus, 0x1c010003)
  t.same(faults, [0x1c010003], "the host's fault event")
  const [row] = host.history()
  t.same([row.hresult, row.reportedCount, row.rules], [0x1c010003, null, ['unk-if']])
  t.same(host.pools.read(), {}, 'a FAULT is not counted')
})

t.test('rejectBind: BIND_NAK, for the clients it matches only', async (t) => {
  const host = await hostFor(t, [
    { name: 'nak', match: { client: '127.0.0.0/8' }, action: { rejectBind: true } },
  ])
  const naks: string[] = []
  host.events.on('bind-rejected', (e) => naks.push(e.rule))
  const report = await run(host)
  const r = report.results[0]
  t.equal(r.verdict, 'rpc-error')
  t.equal((r.error as RpcError).kind, 'bind-rejected')
  t.equal(report.exitCode, 5)
  t.same(naks, ['nak'])
  t.same(host.history(), [], 'no request, no history row')
  host.rules.set([{ name: 'nak', match: { client: '10.0.0.0/8' }, action: { rejectBind: true } }])
  t.equal((await run(host)).results[0].verdict, 'activated', 'another network binds')
})

t.test('close before the answer: the client sees the connection closed', async (t) => {
  const host = await hostFor(t, [{ name: 'drop', action: { close: 'before' } }])
  const [rec] = await recorded(host, async () => {
    const report = await run(host)
    const r = report.results[0]
    t.equal(r.verdict, 'rpc-error')
    t.equal((r.error as RpcError).kind, 'closed')
    t.equal(report.exitCode, 5)
  })
  t.equal(rec.outcome, 'close')
  t.same(host.history()[0].rules, ['drop'])
  t.equal(host.history()[0].hresult, 0x800706be, 'RPC_S_CALL_FAILED, as a Windows client reports it')
  t.same(host.pools.read(), {})
})

t.test('close after the answer: the client activates, then reconnects with a warning', async (t) => {
  const host = await hostFor(t, [{ name: 'one-shot', action: { close: 'after' } }])
  const report = await run(host, { requests: 2 })
  t.same(
    report.results.map((r) => r.verdict),
    ['activated', 'activated'],
  )
  t.same(report.results[0].warnings, [])
  t.ok(report.results[1].warnings.includes(CLOSED_WARNING), 'the second request warns of the reconnect')
  t.equal(report.exitCode, 0)
  t.same(
    host.history().map((r) => r.rules),
    [['one-shot'], ['one-shot']],
  )
})

t.test('truncate: half an answer; with close after, the client sees the connection closed', async (t) => {
  const host = await hostFor(t, [{ name: 'half', action: { truncate: true } }])
  const cut = await run(host, { timeoutMs: 300 })
  t.equal(cut.results[0].verdict, 'rpc-error')
  t.equal((cut.results[0].error as RpcError).kind, 'timeout', 'the client waits for the rest in vain')
  t.equal(cut.exitCode, 5)
  host.rules.set([{ name: 'half-and-gone', action: { truncate: true, close: 'after' } }])
  const closed = await run(host)
  t.equal((closed.results[0].error as RpcError).kind, 'closed')
  const records = host.history()
  t.same(
    records.map((r) => r.rules),
    [['half'], ['half-and-gone']],
  )
  t.equal(records[0].reportedCount, 50, 'the host recorded the answer it began to send')
})

t.test('corrupt: each named field breaks exactly its client check', async (t) => {
  const cases: { corrupt: FaultRule['action']['corrupt']; protocol: number; check: string | null }[] = [
    { corrupt: 'hmac', protocol: 6, check: 'hmac' },
    { corrupt: 'hash', protocol: 6, check: 'hash' },
    { corrupt: 'cmid', protocol: 6, check: 'cmid' },
    { corrupt: 'time', protocol: 6, check: 'time' },
    { corrupt: 'pid', protocol: 6, check: 'pid' },
    { corrupt: 'iv-rule', protocol: 6, check: null },
    { corrupt: 'hmac', protocol: 5, check: 'hash' },
    { corrupt: 'iv-rule', protocol: 5, check: 'iv' },
    { corrupt: 'cmid', protocol: 5, check: 'cmid' },
    { corrupt: 'hmac', protocol: 4, check: 'mac' },
    { corrupt: 'time', protocol: 4, check: 'time' },
  ]
  for (const c of cases) {
    const host = await hostFor(t, [{ name: `bad-${c.corrupt}`, action: { corrupt: c.corrupt } }])
    const [rec] = await recorded(host, async () => {
      const report = await run(host, { protocol: c.protocol })
      const r = report.results[0]
      const what = `V${c.protocol} ${c.corrupt}`
      if (c.check === null) {
        t.equal(r.verdict, 'activated', `${what}: still valid`)
        t.match(r.warnings.join('\n'), /IV following KMSv5 rules in KMSv6/, `${what}: a warning`)
        t.equal(report.exitCode, 0)
      } else {
        t.equal(r.verdict, 'verification-failed', what)
        t.type(r.error, VerificationError)
        t.equal((r.error as VerificationError).check, c.check, `${what}: fails the ${c.check} check`)
        t.equal(report.exitCode, 4)
      }
    })
    t.same(rec.rules, [`bad-${c.corrupt}`])
    t.equal(rec.willActivate, c.check === null)
  }
})

t.test('matching: the first rule that fits wins; every match field', async (t) => {
  const cmid = '6a2e1c47-93d2-4c1e-8a6b-5c0e9e4b7f21'
  const office = { appId: OFFICE2013_APP, requiredCount: 5 }
  const host = await hostFor(t, [
    { name: 'v5', match: { protocol: 5 }, action: { refuse: 1 } },
    { name: 'office', match: { appId: OFFICE2013_APP.toUpperCase() }, action: { refuse: 2 } },
    { name: 'cmid', match: { cmid }, action: { refuse: 3 } },
    { name: 'lab', match: { workstation: 'LAB-*.example.test' }, action: { refuse: 4 } },
    { name: 'sku', match: { skuId: '11111111-2222-4333-8444-555555555555' }, action: { refuse: 5 } },
    { name: 'kms', match: { kmsId: '21111111-2222-4333-8444-555555555555' }, action: { refuse: 6 } },
    { name: 'far', match: { client: '192.0.2.0/24' }, action: { refuse: 7 } },
    { name: 'here', match: { client: '127.0.0.1', workstation: 'here' }, action: { refuse: 8 } },
    { name: 'second-on-conn', match: { nthOnConnection: 2 }, action: { refuse: 9 } },
    { name: 'never', match: { protocol: 5 }, action: { refuse: 10 } },
  ])
  const hresultOf = async (o: ActivateOptions) => (await run(host, o)).results[0].hresult
  t.equal(await hresultOf({ protocol: 5, ...office }), 1, 'the first of two fitting rules')
  t.equal(await hresultOf(office), 2, 'appId, any case')
  t.equal(await hresultOf({ cmid }), 3)
  t.equal(await hresultOf({ workstation: 'lab-07.example.test' }), 4, 'workstation glob, any case')
  t.equal(await hresultOf({ workstation: 'lab-07.example.org' }), null, 'glob is anchored')
  t.equal(await hresultOf({ skuId: '11111111-2222-4333-8444-555555555555' }), 5)
  t.equal(await hresultOf({ kmsId: '21111111-2222-4333-8444-555555555555' }), 6)
  t.equal(await hresultOf({ workstation: 'here' }), 8, 'client address and workstation together')
  const three = await run(host, { requests: 3, workstation: 'ws' })
  t.same(
    three.results.map((r) => r.hresult),
    [null, 9, null],
    'nthOnConnection',
  )
  t.same(
    host.history().map((r) => r.rules[0] ?? '-'),
    ['v5', 'office', 'cmid', 'lab', '-', 'sku', 'kms', 'here', '-', 'second-on-conn', '-'],
  )
})

t.test('nth counts every request since the start, matched or not', async (t) => {
  const host = await hostFor(t, [
    { name: 'third', match: { nth: 3 }, action: { refuse: HRESULT.INVALID_DATA } },
  ])
  const a = await run(host, { requests: 2 })
  const b = await run(host, { requests: 2 })
  t.same(
    [...a.results, ...b.results].map((r) => r.hresult),
    [null, null, HRESULT.INVALID_DATA, null],
  )
})

t.test('rules change while the host runs; a bad list throws and changes nothing', async (t) => {
  const host = await hostFor(t, [])
  t.same(host.rules.get(), [])
  t.equal((await run(host)).exitCode, 0)
  const next: FaultRule[] = [{ name: 'now-refuse', action: { refuse: '0xC004F042' } }]
  host.rules.set(next)
  t.same(host.rules.get(), next)
  t.equal((await run(host)).exitCode, 3)
  t.throws(() => host.rules.set([{ action: { refuse: 'nope' } }]), UsageError)
  t.same(host.rules.get(), next, 'the old rules stay')
  t.equal((await run(host)).results[0].hresult, HRESULT.KMS_ID_MISMATCH)
  host.rules.set([])
  t.equal((await run(host)).exitCode, 0)
})

t.test('malformed rules are clear UsageErrors, at start and at set()', async (t) => {
  const bad: [unknown, RegExp][] = [
    [{}, /must be a JSON array/],
    [[{ action: {} }], /rule #1: action: names no action/],
    [[{ action: { explode: true } }], /action\.explode: unknown action/],
    [[{ match: { host: 'x' }, action: { refuse: 1 } }], /match\.host: unknown field/],
    [[{ match: { appId: 'windows' }, action: { refuse: 1 } }], /match\.appId: not a GUID/],
    [[{ match: { client: '300.1.1.1' }, action: { refuse: 1 } }], /match\.client: not an address or CIDR/],
    [[{ match: { nth: 0 }, action: { refuse: 1 } }], /match\.nth: must be a whole number >= 1/],
    [[{ action: { refuse: 'C004F0420' } }], /action\.refuse: not a 32-bit code/],
    [
      [{ action: { corrupt: 'epid' } }],
      /action\.corrupt: must be one of hmac, hash, iv-rule, cmid, time, pid/,
    ],
    [[{ action: { close: 'later' } }], /action\.close: must be "before" or "after"/],
    [[{ action: { refuse: 1, fault: 2 } }], /refuse and fault exclude each other/],
    [[{ action: { fault: 2, close: 'before' } }], /fault and close: "before" exclude each other/],
    [[{ action: { refuse: 1, count: 5 } }], /action\.count: changes an answer, but refuse sends none/],
    [[{ action: { fault: 1, truncate: true } }], /action\.truncate: only an answer or a refusal/],
    [[{ action: { rejectBind: true, delayMs: 5 } }], /rejectBind cannot be combined/],
    [[{ match: { nth: 1 }, action: { rejectBind: true } }], /a rejectBind rule can only match on client/],
    [[{ action: { refuse: 1 } }, 'x'], /rule #2: rule: must be an object/],
  ]
  for (const [rules, message] of bad) {
    await t.rejects(startHost({ rules: rules as FaultRule[] }), message, `startHost: ${message}`)
    const err = await startHost({ rules: rules as FaultRule[] }).catch((e) => e)
    t.type(err, UsageError)
  }
  const host = await hostFor(t, [])
  t.throws(() => host.rules.set([{ action: { refuse: 1, fault: 2 } }]), /exclude each other/)
})
