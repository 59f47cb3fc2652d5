// startHost as a CI suite uses it: its defaults, what it tells (events, activations(), history),
// the pools, the injected clock, injected write failures and close(); driven by kmslab's client.
import { createServer } from 'node:net'
import t from 'tap'
import { startHost } from '../src/api/host.js'
import type { ActivationRecord, KmsHost } from '../src/api/types.js'
import { type ActivateOptions, activate } from '../src/client/activate.js'
import { RefusedError, type RpcError } from '../src/client/errors.js'
import { cryptoRandom } from '../src/crypto/random.js'
import { UsageError } from '../src/errors.js'
import { HRESULT } from '../src/kms/hresult.js'
import { buildKmsRequest, verifyKmsResponse } from '../src/kms/verify.js'
import { ListenError } from '../src/server/server.js'
import { StoreWriteError } from '../src/store/errors.js'
import { filetimeFromDate } from '../src/wire/bytes.js'
import { emitRequestStub, parseResponseStub } from '../src/wire/ndr.js'
import { emitRequestPdu, makeHeader, PTYPE, parseResponsePdu } from '../src/wire/rpc.js'
import { baseRequest, ndr32Bind } from './fixtures/raw-activate.js'
import { RawPeer } from './fixtures/raw-client.js'

const WINDOWS_APP = '55c92734-d682-4d71-983e-d6ec3f16059f'
const OFFICE2010_APP = '59a52881-a989-479d-af46-f275c6370663'
const OFFICE2013_APP = '0ff1ce15-a989-479d-af46-f275c6370663'
const OFFICE_2016 = 'Office Professional Plus 2016'
const DAY = 86_400_000
const HOUR = 3_600_000

const run = (host: KmsHost, options: ActivateOptions = {}) =>
  activate({ host: '127.0.0.1', port: host.port }, { timeoutMs: 3000, ...options })

t.test('defaults: loopback, a free port, state in memory, not seeded', async (t) => {
  const host = await startHost()
  t.teardown(() => host.close())
  t.equal(host.addresses.length, 1)
  t.equal(host.addresses[0].host, '127.0.0.1')
  t.ok(host.port > 0 && host.port === host.addresses[0].port, 'port 0 resolved')
  t.equal(host.stateLocation, 'memory')
  t.equal(host.seeded, false)
  t.match(host.identity.epids.windows, /^\d{5}-\d{5}-\d{3}-\d{6}-03-\d+-\d+\.0000-\d{7}$/)
  t.match(host.identity.hwid, /^[0-9A-F]{16}$/)
  t.same(host.pools.mode, { kind: 'real' })
  t.same(host.pools.read(), {})
  t.same(host.history(), [])
  t.same(host.rules.get(), [])
  t.match(host.stats, { accepted: 0, activations: 0, refusals: 0, dropped: 0, storeErrors: 0 })
})

t.test('events, activations() and history() tell the same requests', async (t) => {
  const host = await startHost({ counter: 'charged' })
  t.teardown(() => host.close())
  const emitted: ActivationRecord[] = []
  const connections: string[] = []
  host.events.on('activation', (r) => emitted.push(r))
  host.events.on('connection', (c) => connections.push(c.type))
  const iterator = host.activations()
  const report = await run(host, { requests: 3, workstation: 'ci-runner-1' })
  t.equal(report.exitCode, 0)
  const iterated: ActivationRecord[] = []
  for await (const r of iterator) {
    iterated.push(r)
    if (iterated.length === 3) break
  }
  t.equal(host.events.listenerCount('activation'), 1, 'breaking out of the loop stops listening')
  t.equal(emitted.length, 3)
  t.same(iterated, emitted, 'the iterator and the emitter give the same records')
  const history = host.history()
  t.equal(history.length, 3)
  emitted.forEach((r, i) => {
    const {
      connectionId,
      clientPort,
      callId,
      syntax,
      outcome,
      faultStatus,
      reason,
      poolSize,
      newClient,
      willActivate,
      stored,
      request,
      ...row
    } = r
    t.same(row, history[i], `record ${i} holds its history row`)
    t.same([outcome, stored, willActivate, reason], ['answer', true, true, null])
    t.equal(row.cmid, report.results[i].request.cmid)
    t.equal(row.workstation, 'ci-runner-1')
    t.equal(row.reportedCount, report.results[i].answer?.base.currentCount)
    t.equal(syntax, report.results[i].rpc?.syntax)
    t.equal(poolSize, i + 1)
    t.equal(request.base?.cmid, row.cmid)
    t.equal(clientPort > 0 && connectionId, emitted[0].connectionId, 'one connection')
    t.equal(callId, report.results[i].rpc?.callId)
  })
  for (let i = 0; i < 100 && connections.length < 2; i++) await new Promise((r) => setTimeout(r, 20))
  t.same(connections, ['open', 'close'])
  t.same(
    host.history({ limit: 2 }).map((r) => r.cmid),
    history.slice(1).map((r) => r.cmid),
  )
  t.same(host.history({ sinceMs: Date.now() + 60_000 }), [])
  t.match(host.stats, { accepted: 1, activations: 3, refusals: 0 })
})

t.test('activations() ends when the host closes, after the records already queued', async (t) => {
  const host = await startHost({ counter: 'charged' })
  const iterator = host.activations()
  await run(host, { requests: 2 })
  const closing = host.close()
  t.equal(host.close(), closing, 'close() twice is one close')
  await closing
  const seen: string[] = []
  for await (const r of iterator) seen.push(r.cmid)
  t.equal(seen.length, 2, 'both queued records, then the end')
  const late: ActivationRecord[] = []
  for await (const r of host.activations()) late.push(r)
  t.same(late, [], 'an iterator asked for after close() ends at once')
  const after = await run(host, { timeoutMs: 1000 })
  t.equal((after.results[0].error as RpcError).kind, 'connect', 'nothing listens any more')
})

t.test('pools: seed N synthetic clients per application, read, reset, set the mode', async (t) => {
  const host = await startHost()
  t.teardown(() => host.close())
  const added = await host.pools.seed(WINDOWS_APP, 24)
  t.equal(added.length, 24)
  t.equal(new Set(added.map((e) => e.cmid)).size, 24, 'distinct CMIDs')
  t.equal(host.pools.read()[WINDOWS_APP].length, 24)
  const first = await run(host)
  t.equal(first.results[0].verdict, 'activated', 'the 25th Windows client activates')
  t.equal(first.results[0].answer?.base.currentCount, 25)

  t.equal((await host.pools.seed(4)).length, 12, 'a count alone: each of the three known applications')
  const pools = host.pools.read()
  t.same([pools[WINDOWS_APP].length, pools[OFFICE2010_APP].length, pools[OFFICE2013_APP].length], [29, 4, 4])
  const office = await run(host, { product: OFFICE_2016 })
  t.equal(office.results[0].verdict, 'activated', 'the 5th Office client activates')
  t.equal(office.results[0].answer?.base.currentCount, 5)

  await host.pools.seed(WINDOWS_APP, 80)
  t.equal(host.pools.read()[WINDOWS_APP].length, 50, 'a pool holds 50 at most')
  await host.pools.reset(OFFICE2013_APP)
  t.same(Object.keys(host.pools.read()).sort(), [OFFICE2010_APP, WINDOWS_APP].sort())
  await host.pools.reset()
  t.same(host.pools.read(), {})
  t.equal((await run(host)).results[0].verdict, 'not-enough-count', 'emptied: back to counting from 1')

  host.pools.mode = 'fixed:7'
  t.same(host.pools.mode, { kind: 'fixed', count: 7 })
  t.equal((await run(host)).results[0].answer?.base.currentCount, 7)
  host.pools.mode = { kind: 'charged' }
  t.equal((await run(host)).results[0].answer?.base.currentCount, 50)
  t.throws(() => {
    host.pools.mode = 'lots'
  }, UsageError)
  await t.rejects(host.pools.seed('windows', 3), UsageError)
  await t.rejects(host.pools.seed(WINDOWS_APP, -1), UsageError)
  await t.rejects(host.pools.seed(1.5), UsageError)
})

t.test('the injected clock: the ±4 h check of a strict host', async (t) => {
  const at = Date.UTC(2026, 5, 1, 12)
  const host = await startHost({ strict: true, counter: 'charged', now: () => new Date(at) })
  t.teardown(() => host.close())
  const skewed = async (offset: number) => (await run(host, { time: new Date(at + offset) })).results[0]
  t.equal((await skewed(3.9 * HOUR)).verdict, 'activated', '3.9 h ahead')
  t.equal((await skewed(-3.9 * HOUR)).verdict, 'activated', '3.9 h behind')
  for (const offset of [4.1 * HOUR, -4.1 * HOUR, 365 * DAY]) {
    const r = await skewed(offset)
    t.equal(r.verdict, 'refused')
    t.equal(r.hresult, HRESULT.INVALID_TIMESTAMP, `${offset / HOUR} h off: 0xC004F06C`)
  }
  const real = await run(host)
  t.equal(real.results[0].hresult, HRESULT.INVALID_TIMESTAMP, "today's clock is far from the host's 2026")
  t.same(
    host.history().map((r) => r.time),
    Array(6).fill(at),
    'history rows carry the host clock',
  )
})

t.test('the injected clock: pools age past 30 days', async (t) => {
  let clock = Date.UTC(2026, 0, 1)
  const host = await startHost({ now: () => new Date(clock) })
  t.teardown(() => host.close())
  const client = () => run(host, { now: () => new Date(clock) })
  await host.pools.seed(WINDOWS_APP, 24)
  t.equal((await client()).results[0].verdict, 'activated', '24 + 1')
  clock += 29 * DAY
  t.equal(host.pools.read()[WINDOWS_APP].length, 25, 'all alive after 29 days')
  t.equal((await client()).results[0].answer?.base.currentCount, 26)
  clock += 2 * DAY
  t.same(
    host.pools.read()[WINDOWS_APP].map((e) => e.lastSeen),
    [Date.UTC(2026, 0, 30)],
    'after 31 days only the client seen 2 days ago is left',
  )
  const late = await client()
  t.equal(late.results[0].verdict, 'not-enough-count')
  t.equal(late.results[0].answer?.base.currentCount, 2)
})

t.test('moving the host clock does not cut open connections', async (t) => {
  let clock = Date.now()
  const host = await startHost({ counter: 'charged', now: () => new Date(clock) })
  t.teardown(() => host.close())
  const peer = await RawPeer.open(host.port)
  t.teardown(() => peer.end())
  peer.send(ndr32Bind())
  t.ok(await peer.pdu(), 'bind_ack')
  clock += 365 * DAY
  await new Promise((r) => setTimeout(r, 1300)) // the connection sweeper runs every second
  const built = buildKmsRequest(baseRequest({ requestTime: filetimeFromDate(new Date(clock)) }), cryptoRandom)
  peer.send(
    emitRequestPdu({
      header: makeHeader(PTYPE.REQUEST, 2),
      allocHint: 0,
      contextId: 0,
      opnum: 0,
      stub: emitRequestStub(built.payload, 'ndr32'),
    }),
  )
  const pdu = await peer.pdu()
  t.ok(pdu, 'the connection is still there a "year" later')
  const stub = parseResponseStub(parseResponsePdu(pdu!).stub, 'ndr32')
  t.equal(verifyKmsResponse(built, stub.payload!).base.currentCount, 50)
  t.equal(host.history()[0].time, clock)
})

t.test('faults.failWrites: a request that cannot be recorded is refused, never answered', async (t) => {
  for (const state of ['memory', 'sqlite'] as const) {
    const host = await startHost({
      counter: 'charged',
      state: state === 'memory' ? 'memory' : `${t.testdir()}/state.db`,
    })
    t.teardown(() => host.close())
    const errors: Error[] = []
    host.events.on('store-error', (e) => errors.push(e))
    const records: ActivationRecord[] = []
    host.events.on('activation', (r) => records.push(r))
    host.faults.failWrites('disk full')
    const report = await run(host)
    const r = report.results[0]
    t.equal(r.verdict, 'refused', state)
    t.equal(r.hresult, HRESULT.INVALID_DATA)
    t.type(r.error, RefusedError)
    t.equal(report.exitCode, 3)
    t.equal(errors.length, 1)
    t.type(errors[0], StoreWriteError)
    t.match(errors[0].message, /disk full/)
    t.match(records[0], {
      outcome: 'refuse',
      stored: false,
      hresult: HRESULT.INVALID_DATA,
      reportedCount: null,
    })
    t.match(records[0].reason, /state store write failed: .*disk full/)
    t.same(host.history(), [], 'nothing recorded')
    t.same(host.pools.read(), {}, 'nor counted')
    await t.rejects(host.pools.seed(WINDOWS_APP, 3), StoreWriteError)
    t.same(host.pools.read(), {}, 'a failed seed leaves the pools as they were')
    host.faults.failWrites((batch) => (batch.upserts.length > 0 ? new Error('no new clients') : null))
    t.equal((await run(host)).results[0].hresult, HRESULT.INVALID_DATA, 'a function decides per batch')
    host.faults.failWrites(false)
    const ok = await run(host)
    t.equal(ok.results[0].verdict, 'activated')
    t.equal(host.history().length, 1)
    t.match(host.stats, { storeErrors: 2, refusals: 2, activations: 1 })
  }
})

t.test('options that cannot be used are typed errors', async (t) => {
  await t.rejects(startHost({ listen: ['localhost:99999'] }), UsageError)
  await t.rejects(startHost({ activationInterval: '5m' }), UsageError)
  await t.rejects(startHost({ counter: 'fixed:-1' }), UsageError)
  const busy = createServer()
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => busy.close())
  const port = (busy.address() as { port: number }).port
  await t.rejects(startHost({ listen: [`127.0.0.1:${port}`] }), ListenError)
  const two = await startHost({ listen: ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }] })
  t.equal(two.addresses.length, 2)
  t.not(two.addresses[0].port, two.addresses[1].port)
  await two.close()
})
