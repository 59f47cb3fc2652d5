import t from 'tap'
import { KmslabError, UsageError } from '../src/errors.js'
import {
  ActivationCounter,
  CMID_RETENTION_MS,
  OFFICE2010_APP_ID,
  OFFICE2013_APP_ID,
  type PoolEntry,
  WINDOWS_APP_ID,
} from '../src/kms/counter.js'
import { cmidOf, DAY, T0 } from './fixtures/store-rows.js'

const W = WINDOWS_APP_ID
/** An application id no table knows (the last group numbers it). */
const unknownApp = (i: number) => `a1b2c3d4-0000-4000-8000-${i.toString(16).padStart(12, '0')}`

t.test('60 distinct CMIDs: counts 1..50, then 50 with the least recently seen dropped', async (t) => {
  const c = new ActivationCounter()
  for (let i = 1; i <= 60; i++) {
    const o = c.record(W, cmidOf(i), 25, T0 + i * 1000)
    t.equal(o.poolSize, Math.min(i, 50), `client ${i} pool size`)
    t.equal(o.reportedCount, Math.min(i, 50), `client ${i} count`)
    t.equal(o.newClient, true)
    t.same(o.removed, i <= 50 ? [] : [{ appId: W, cmid: cmidOf(i - 50) }], `client ${i} removed`)
  }
  t.same(
    c.entries(W, T0 + 61_000).map((e) => e.cmid),
    Array.from({ length: 50 }, (_, k) => cmidOf(k + 11)),
  )
})

t.test('a repeated CMID counts once and becomes the most recent', async (t) => {
  const c = new ActivationCounter()
  for (let i = 1; i <= 50; i++) c.record(W, cmidOf(i), 25, T0 + i)
  const again = c.record(W, cmidOf(1), 25, T0 + 100)
  t.same(again, {
    appId: W,
    cmid: cmidOf(1),
    lastSeen: T0 + 100,
    poolSize: 50,
    reportedCount: 50,
    newClient: false,
    removed: [],
  })
  // cmid 1 was refreshed, so the 51st client pushes out cmid 2, not cmid 1
  t.same(c.record(W, cmidOf(51), 25, T0 + 101).removed, [{ appId: W, cmid: cmidOf(2) }])
  const cmids = c.entries(W, T0 + 101).map((e) => e.cmid)
  t.equal(cmids.at(-2), cmidOf(1))
  t.notOk(cmids.includes(cmidOf(2)))
})

t.test('the first client of a fresh host sees 1, renewals of it keep 1', async (t) => {
  const c = new ActivationCounter()
  t.equal(c.record(W, cmidOf(7), 25, T0).reportedCount, 1)
  t.equal(c.record(W, cmidOf(7), 25, T0 + DAY).reportedCount, 1)
  t.equal(c.record(W, cmidOf(8), 25, T0 + DAY).reportedCount, 2)
})

t.test('CMIDs and application ids compare case-insensitively', async (t) => {
  const c = new ActivationCounter()
  const upper = '2B5C3A89-1F2E-4D3C-9A8B-7C6D5E4F3A2B'
  const o = c.record(W.toUpperCase(), upper, 25, T0)
  t.equal(o.cmid, upper.toLowerCase())
  t.equal(o.appId, W)
  const again = c.record(W, upper.toLowerCase(), 25, T0 + 1)
  t.equal(again.newClient, false)
  t.equal(again.poolSize, 1)
})

t.test('one pool per application; Windows clients and servers share one', async (t) => {
  const c = new ActivationCounter()
  t.equal(c.record(W, cmidOf(1), 25, T0).poolSize, 1) // Windows 10 client
  t.equal(c.record(W, cmidOf(2), 5, T0).poolSize, 2) // Windows Server 2019
  t.equal(c.record(OFFICE2010_APP_ID, cmidOf(1), 5, T0).poolSize, 1)
  t.equal(c.record(OFFICE2013_APP_ID, cmidOf(1), 5, T0).poolSize, 1)
  t.equal(c.record(OFFICE2013_APP_ID, cmidOf(3), 5, T0).poolSize, 2)
  t.same(
    [...c.snapshot(T0).entries()].map(([app, list]) => [app, list.length]),
    [
      [W, 2],
      [OFFICE2010_APP_ID, 1],
      [OFFICE2013_APP_ID, 2],
    ],
  )
})

t.test('30-day expiry: exactly 30 days still counts, one ms more does not', async (t) => {
  t.equal(CMID_RETENTION_MS, 30 * DAY)
  const setup = () => {
    const c = new ActivationCounter()
    c.record(W, cmidOf(1), 25, T0)
    c.record(W, cmidOf(2), 25, T0 + DAY)
    return c
  }
  const atLimit = setup()
  t.equal(atLimit.poolSize(W, T0 + 30 * DAY), 2, 'an entry exactly 30 days old counts')
  const o = atLimit.record(W, cmidOf(3), 25, T0 + 30 * DAY)
  t.same([o.poolSize, o.removed], [3, []])

  const past = setup()
  t.equal(past.poolSize(W, T0 + 30 * DAY + 1), 1, 'queries do not count it')
  t.same(past.entries(W, T0 + 30 * DAY + 1), [{ appId: W, cmid: cmidOf(2), lastSeen: T0 + DAY }])
  const p = past.record(W, cmidOf(3), 25, T0 + 30 * DAY + 1)
  t.same([p.poolSize, p.removed], [2, [{ appId: W, cmid: cmidOf(1) }]])

  const both = setup()
  const q = both.record(W, cmidOf(3), 25, T0 + 365 * DAY)
  t.same([q.poolSize, q.removed.map((r) => r.cmid)], [1, [cmidOf(1), cmidOf(2)]])
})

t.test('an expired CMID that comes back is a new client and is not listed as removed', async (t) => {
  const c = new ActivationCounter()
  c.record(W, cmidOf(1), 25, T0)
  c.record(W, cmidOf(2), 25, T0 + 1)
  const o = c.record(W, cmidOf(1), 25, T0 + 31 * DAY)
  t.equal(o.newClient, true)
  t.equal(o.poolSize, 1)
  t.same(o.removed, [{ appId: W, cmid: cmidOf(2) }])
})

t.test('queries do not prune: reset still lists the expired entries it drops', async (t) => {
  const c = new ActivationCounter()
  c.record(W, cmidOf(1), 25, T0)
  t.equal(c.poolSize(W, T0 + 40 * DAY), 0)
  t.same(c.snapshot(T0 + 40 * DAY).size, 0)
  t.same(c.reset(W).removed, [{ appId: W, cmid: cmidOf(1) }])
  t.same(c.reset(W).removed, [])
})

t.test('a clock stepped backwards never reorders a pool', async (t) => {
  const c = new ActivationCounter()
  c.record(W, cmidOf(1), 25, T0 + 5000)
  const o = c.record(W, cmidOf(2), 25, T0)
  t.equal(o.lastSeen, T0 + 5000, 'stored at the pool time, not earlier than its newest entry')
  t.same(
    c.entries(W, T0 + 5000).map((e) => e.cmid),
    [cmidOf(1), cmidOf(2)],
  )
})

t.test('the 64-pool limit evicts the least recently active unknown application', async (t) => {
  const c = new ActivationCounter()
  // the known applications are the least recently active of all, yet never evicted
  c.record(W, cmidOf(1), 25, T0)
  c.record(OFFICE2010_APP_ID, cmidOf(1), 5, T0)
  c.record(OFFICE2013_APP_ID, cmidOf(1), 5, T0)
  for (let i = 1; i <= 61; i++) {
    const o = c.record(unknownApp(i), cmidOf(1), 5, T0 + i)
    t.same(o.removed, [])
  }
  c.record(unknownApp(1), cmidOf(2), 5, T0 + 100) // application 1 is active again
  const o = c.record(unknownApp(62), cmidOf(1), 5, T0 + 101)
  t.same(
    o.removed,
    [{ appId: unknownApp(2), cmid: cmidOf(1) }],
    'application 2 was the least recently active',
  )
  t.equal(o.poolSize, 1)
  const next = c.record(unknownApp(63), cmidOf(9), 5, T0 + 102)
  t.same(next.removed, [{ appId: unknownApp(3), cmid: cmidOf(1) }])
  const apps = [...c.snapshot(T0 + 102).keys()]
  t.equal(apps.length, 64)
  t.ok(apps.includes(W) && apps.includes(OFFICE2010_APP_ID) && apps.includes(OFFICE2013_APP_ID))
  t.equal(c.poolSize(unknownApp(1), T0 + 102), 2)
})

t.test('a known application arriving at the limit evicts an unknown one', async (t) => {
  const c = new ActivationCounter()
  for (let i = 1; i <= 64; i++) c.record(unknownApp(i), cmidOf(i), 5, T0 + i)
  const o = c.record(W, cmidOf(1), 25, T0 + 100)
  t.same(o.removed, [{ appId: unknownApp(1), cmid: cmidOf(1) }])
  t.equal(c.snapshot(T0 + 100).size, 64)
})

t.test('options are checked', async (t) => {
  t.throws(() => new ActivationCounter({ maxPools: 3 }), UsageError, 'no room for an unknown application')
  t.throws(() => new ActivationCounter({ capacity: 0 }), UsageError)
  t.throws(() => new ActivationCounter({ retentionMs: 0 }), UsageError)
  const small = new ActivationCounter({ maxPools: 4, capacity: 2 })
  for (let i = 1; i <= 3; i++) small.record(unknownApp(i), cmidOf(1), 5, T0 + i)
  small.record(W, cmidOf(1), 5, T0 + 10)
  t.same(small.record(unknownApp(9), cmidOf(1), 5, T0 + 11).removed, [
    { appId: unknownApp(1), cmid: cmidOf(1) },
  ])
})

t.test('load keeps what live recording would have kept and lists the rest', async (t) => {
  const c = new ActivationCounter({ capacity: 3, maxPools: 4 })
  const saved: PoolEntry[] = [
    { appId: W, cmid: cmidOf(4), lastSeen: T0 + 4 * DAY },
    { appId: W, cmid: cmidOf(1), lastSeen: T0 - 40 * DAY }, // expired
    { appId: W, cmid: cmidOf(3), lastSeen: T0 + 3 * DAY },
    { appId: W, cmid: cmidOf(2), lastSeen: T0 + 2 * DAY }, // over capacity (oldest live)
    { appId: W, cmid: cmidOf(5).toUpperCase(), lastSeen: T0 + 5 * DAY },
    { appId: unknownApp(1), cmid: cmidOf(1), lastSeen: T0 + 1 }, // the least recently active pool
    { appId: unknownApp(2), cmid: cmidOf(1), lastSeen: T0 + 2 },
    { appId: unknownApp(3), cmid: cmidOf(1), lastSeen: T0 + 3 },
    { appId: unknownApp(4), cmid: cmidOf(1), lastSeen: T0 + 4 },
  ]
  const { removed } = c.load(saved, T0 + 6 * DAY)
  t.same(
    new Set(removed.map((r) => `${r.appId} ${r.cmid}`)),
    new Set([`${unknownApp(1)} ${cmidOf(1)}`, `${W} ${cmidOf(1)}`, `${W} ${cmidOf(2)}`]),
  )
  t.same(
    c.entries(W, T0 + 6 * DAY).map((e) => e.cmid),
    [cmidOf(3), cmidOf(4), cmidOf(5)],
  )
  t.equal(c.snapshot(T0 + 6 * DAY).size, 4)
  // the order survived: the next Windows client drops cmid 3, the oldest
  t.same(c.record(W, cmidOf(6), 25, T0 + 6 * DAY).removed, [{ appId: W, cmid: cmidOf(3) }])
  t.same(c.load([], T0).removed, [], 'load replaces everything')
  t.equal(c.snapshot(T0).size, 0)
})

t.test('seed adds distinct machines, at most the capacity', async (t) => {
  let n = 1000
  const next = () => cmidOf(n++)
  const c = new ActivationCounter()
  const { added, removed } = c.seed(W, 24, T0, next)
  t.equal(added.length, 24)
  t.same(removed, [])
  t.same(added[0], { appId: W, cmid: cmidOf(1000), lastSeen: T0 })
  t.equal(c.record(W, cmidOf(1), 25, T0 + 1).reportedCount, 25, 'the next Windows client activates')

  const full = c.seed(W, 60, T0 + 2, next)
  t.equal(full.added.length, 50)
  t.equal(full.removed.length, 25, 'every earlier entry was pushed out')
  t.equal(c.poolSize(W, T0 + 2), 50)

  const before = c.entries(W, T0 + 2)
  t.throws(() => c.seed(W, 1, T0 + 3, () => before[0].cmid), KmslabError)
  t.same(c.entries(W, T0 + 3), before, 'a failed seed changes nothing')
  t.same(c.seed(W, 0, T0 + 3, next), { added: [], removed: [] })
  t.throws(() => c.seed(W, -1, T0, next), UsageError)
})

t.test('reset of every pool', async (t) => {
  const c = new ActivationCounter()
  c.record(W, cmidOf(1), 25, T0)
  c.record(OFFICE2013_APP_ID, cmidOf(2), 5, T0)
  t.same(c.reset().removed, [
    { appId: W, cmid: cmidOf(1) },
    { appId: OFFICE2013_APP_ID, cmid: cmidOf(2) },
  ])
  t.equal(c.record(W, cmidOf(1), 25, T0).reportedCount, 1)
})
