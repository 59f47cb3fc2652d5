import t from 'tap'
import { UsageError } from '../src/errors.js'
import {
  ActivationCounter,
  type CounterMode,
  describeCounterMode,
  OFFICE2013_APP_ID,
  parseCounterMode,
  WINDOWS_APP_ID,
} from '../src/kms/counter.js'
import { cmidOf, T0 } from './fixtures/store-rows.js'

t.test('parseCounterMode accepts real, charged and fixed:N', async (t) => {
  t.same(parseCounterMode('real'), { kind: 'real' })
  t.same(parseCounterMode('charged'), { kind: 'charged' })
  t.same(parseCounterMode('fixed:0'), { kind: 'fixed', count: 0 })
  t.same(parseCounterMode('fixed:25'), { kind: 'fixed', count: 25 })
  t.same(parseCounterMode('fixed:007'), { kind: 'fixed', count: 7 })
  t.same(parseCounterMode('fixed:4294967295'), { kind: 'fixed', count: 4294967295 })
})

t.test('parseCounterMode rejects anything else with a UsageError naming --counter', async (t) => {
  for (const bad of [
    '',
    'REAL',
    ' real',
    'fake',
    'fixed',
    'fixed:',
    'fixed:-1',
    'fixed:1.5',
    'fixed:0x10',
    'fixed: 5',
    'fixed:4294967296',
    'fixed:99999999999',
    'fixed:5 ',
  ]) {
    const err = t.throws(() => parseCounterMode(bad), UsageError, JSON.stringify(bad)) as UsageError
    t.equal(err.option, '--counter')
    t.match(err.message, /--counter/)
    t.match(err.message, JSON.stringify(bad))
  }
})

t.test('real reports the pool size', async (t) => {
  const c = new ActivationCounter()
  t.equal(c.reported(7, 25), 7)
  t.equal(c.record(WINDOWS_APP_ID, cmidOf(1), 25, T0).reportedCount, 1)
})

t.test('charged reports max(pool size, 2N), at most 50', async (t) => {
  const c = new ActivationCounter({ mode: { kind: 'charged' } })
  t.equal(c.record(WINDOWS_APP_ID, cmidOf(1), 25, T0).reportedCount, 50, 'Windows client, N = 25')
  t.equal(c.record(OFFICE2013_APP_ID, cmidOf(1), 5, T0).reportedCount, 10, 'Office, N = 5, pool of 1')
  for (let i = 2; i <= 12; i++) c.record(OFFICE2013_APP_ID, cmidOf(i), 5, T0 + i)
  t.equal(c.poolSize(OFFICE2013_APP_ID, T0 + 12), 12)
  t.equal(c.record(OFFICE2013_APP_ID, cmidOf(12), 5, T0 + 13).reportedCount, 12, 'the pool beats 2N')
  t.equal(c.reported(1, 30), 50, 'capped at 50')
  t.equal(c.reported(3, 0), 3, 'N = 0: the pool size')
  t.equal(c.reported(3, Number.NaN), 3)
  t.equal(c.poolSize(WINDOWS_APP_ID, T0), 1, 'charged still keeps the genuine pool')
})

t.test('fixed:N reports N, whatever the pool', async (t) => {
  const c = new ActivationCounter({ mode: parseCounterMode('fixed:3') })
  t.equal(c.record(WINDOWS_APP_ID, cmidOf(1), 25, T0).reportedCount, 3)
  c.mode = { kind: 'fixed', count: 0 }
  t.equal(c.record(WINDOWS_APP_ID, cmidOf(2), 25, T0).reportedCount, 0)
  c.mode = { kind: 'fixed', count: 1000 }
  t.equal(c.reported(50, 25), 1000)
  t.throws(() => {
    c.mode = { kind: 'fixed', count: 2.5 }
  }, UsageError)
  t.throws(() => new ActivationCounter({ mode: { kind: 'fixed', count: -1 } }), UsageError)
  t.same(c.mode, { kind: 'fixed', count: 1000 }, 'a rejected mode leaves the old one')
  c.mode = { kind: 'real' }
  t.equal(c.record(WINDOWS_APP_ID, cmidOf(3), 25, T0).reportedCount, 3, 'switching back shows the real pool')
})

t.test('describeCounterMode says what clients will see', async (t) => {
  const d = (m: CounterMode) => describeCounterMode(m)
  t.equal(
    d({ kind: 'real' }),
    'counter real: genuine behaviour, starts empty (saved pools carry over); the first 24 Windows clients ' +
      '(first 4 servers/Office clients) will see 0xC004F038 until enough distinct machines have asked',
  )
  t.match(d({ kind: 'charged' }), /^counter charged: every client activates at once/)
  t.equal(
    d({ kind: 'fixed', count: 50 }),
    'counter fixed:50: reports 50 to every client whatever the pool holds; every client activates',
  )
  t.match(
    d({ kind: 'fixed', count: 10 }),
    /servers and Office activate, Windows clients \(need 25\) see 0xC004F038/,
  )
  t.match(d({ kind: 'fixed', count: 0 }), /no client activates/)
})
