// The client against kmslab's own host (src/host startHost) on loopback port 0: every protocol
// version and RPC switch must give zero warnings and exit 0; charging a fresh counter works.
import t from 'tap'
import { activate, CLOSED_WARNING } from '../src/client/activate.js'
import { startHost } from '../src/host/host.js'
import { HRESULT } from '../src/kms/hresult.js'

const target = (port: number) => `127.0.0.1:${port}`

t.test('every protocol and RPC switch: verified, no warnings, exit 0', async (t) => {
  for (const hostRpc of [{}, { ndr64: false }, { btfn: false }]) {
    const host = await startHost({ counter: 'fixed:50', ...hostRpc })
    t.teardown(() => host.close())
    for (const protocol of [4, 5, 6]) {
      for (const rpc of [
        {},
        { ndr64: false },
        { btfn: false },
        { multiplex: false },
        { ndr64: false, btfn: false },
        { newConnection: true },
      ]) {
        const what = `host ${JSON.stringify(hostRpc)}, client V${protocol} ${JSON.stringify(rpc)}`
        const report = await activate(target(host.port), { protocol, requests: 3, timeoutMs: 5000, ...rpc })
        t.same(
          report.results.map((r) => [r.verdict, r.warnings, r.error?.message ?? null]),
          Array(3).fill(['activated', [], null]),
          what,
        )
        t.equal(report.exitCode, 0, what)
      }
    }
  }
})

t.test('Office and server products, raw ids and the catalogue defaults', async (t) => {
  const host = await startHost({ counter: 'fixed:50' })
  t.teardown(() => host.close())
  for (const product of [
    'Office Professional Plus 2019',
    'Windows Server 2025 Standard',
    'Windows 7 Enterprise',
    'Office Standard 2010',
  ]) {
    const report = await activate(target(host.port), { product, timeoutMs: 5000 })
    t.same([report.results[0].verdict, report.results[0].warnings], ['activated', []], product)
  }
})

t.test('charging a fresh host counts 1, 2, ... up to the threshold', async (t) => {
  const host = await startHost({ counter: 'real' })
  t.teardown(() => host.close())
  const report = await activate(target(host.port), {
    product: 'Windows Server 2022 Standard',
    charge: true,
    timeoutMs: 5000,
  })
  t.same(
    report.results.map((r) => r.answer?.base.currentCount),
    [1, 2, 3, 4, 5],
  )
  t.equal(report.exitCode, 0)
  const again = await activate(target(host.port), {
    product: 'Windows Server 2022 Standard',
    timeoutMs: 5000,
  })
  t.equal(again.results[0].answer?.base.currentCount, 6)
})

t.test('a host closing after each answer, a strict host refusing a skewed clock', async (t) => {
  const closing = await startHost({ counter: 'fixed:50', disconnectAfterAnswer: true })
  t.teardown(() => closing.close())
  const report = await activate(target(closing.port), { requests: 3, timeoutMs: 5000 })
  t.same(
    report.results.map((r) => r.warnings),
    [[], [CLOSED_WARNING], [CLOSED_WARNING]],
  )
  t.equal(report.exitCode, 0)
  const strict = await startHost({ counter: 'fixed:50', strict: true })
  t.teardown(() => strict.close())
  const skewed = await activate(target(strict.port), {
    time: new Date(Date.now() - 24 * 3600_000),
    timeoutMs: 5000,
  })
  t.equal(skewed.results[0].hresult, HRESULT.INVALID_TIMESTAMP)
  t.equal(skewed.exitCode, 3)
})
