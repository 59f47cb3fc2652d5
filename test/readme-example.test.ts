import { activate, HRESULT, startHost, VerificationError } from 'kmslab'
import t from 'tap'

t.test('KMS client tooling against an in-process host', async (t) => {
  // 127.0.0.1 on a free port, state in memory; the seed makes every answer reproducible.
  const host = await startHost({ seed: 'readme' })
  t.teardown(() => host.close())
  const target = { host: '127.0.0.1', port: host.port }
  const seen = host.activations()

  // A fresh host counts like a genuine one: the first Windows client hears 0xC004F038.
  const first = await activate(target, { product: 'Windows 11 Enterprise' })
  t.equal(first.results[0].verdict, 'not-enough-count')
  t.equal(first.exitCode, 2)
  const record = (await seen.next()).value
  t.equal(record?.reportedCount, 1)

  // 24 synthetic clients in each application's pool: the next Windows client is the 26th.
  await host.pools.seed(24)
  const second = await activate(target)
  t.equal(second.results[0].verdict, 'activated')
  t.equal(second.results[0].answer?.base.currentCount, 26)

  // Break the HMAC of every answer: the client must notice.
  host.rules.set([{ name: 'forged-hmac', action: { corrupt: 'hmac' } }])
  const forged = await activate(target)
  t.equal(forged.exitCode, 4)
  t.type(forged.results[0].error, VerificationError)

  // Refuse the kiosks, answer the others.
  host.rules.set([{ name: 'no-kiosks', match: { workstation: 'kiosk-*' }, action: { refuse: '0xC004F042' } }])
  const kiosk = await activate(target, { workstation: 'kiosk-12.example.test' })
  t.equal(kiosk.results[0].hresult, HRESULT.KMS_ID_MISMATCH)
  t.equal(kiosk.exitCode, 3)

  // Every request is in the history, with the rule that changed it.
  t.same(
    host.history().map((row) => row.rules),
    [[], [], ['forged-hmac'], ['no-kiosks']],
  )
})

t.test('the host clock is the suite’s: pools expire, clocks are checked', async (t) => {
  let now = Date.parse('2026-01-05T09:00:00Z')
  const host = await startHost({ now: () => new Date(now), strict: true })
  t.teardown(() => host.close())
  const target = { host: '127.0.0.1', port: host.port }
  const sameClock = { now: () => new Date(now) }

  await host.pools.seed(24)
  t.equal((await activate(target, sameClock)).exitCode, 0, 'the 25th client activates')

  now += 31 * 24 * 3600_000
  t.same(host.pools.read(), {}, 'a month later every client has expired')
  t.equal((await activate(target, sameClock)).exitCode, 2, 'counting starts again')

  const skewed = await activate(target, { time: new Date(now + 5 * 3600_000) })
  t.equal(skewed.results[0].hresult, HRESULT.INVALID_TIMESTAMP, 'a clock 5 h off is refused')
})
