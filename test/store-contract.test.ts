/** What every state store promises, checked on the SQLite file and on the memory store alike. */
import { join } from 'node:path'
import t from 'tap'
import { OFFICE2013_APP_ID, WINDOWS_APP_ID } from '../src/kms/counter.js'
import { StoreWriteError } from '../src/store/errors.js'
import { openStateStore } from '../src/store/open.js'
import { openPgStore, type PgStore } from '../src/store/postgres.js'
import type { StateStore } from '../src/store/types.js'
import { type PgCluster, pgUnavailable, startPgCluster } from './fixtures/pg-cluster.js'
import { cmidOf, DAY, historyRow, IDENTITY_91, T0, tempDir } from './fixtures/store-rows.js'

const W = WINDOWS_APP_ID
type AnyStore = StateStore | PgStore
const kinds: [string, (t: Parameters<typeof tempDir>[0]) => Promise<AnyStore>][] = [
  ['sqlite', async (t) => openStateStore(join(await tempDir(t), 'state.db'))],
  ['memory', async () => openStateStore('memory')],
]

// The same promises from a real PostgreSQL: a throwaway cluster, a fresh database per test.
const noPg = pgUnavailable()
if (noPg && process.env.CI) throw new Error(`CI: ${noPg}; install PostgreSQL (.ci/run does)`)
if (noPg) t.comment(`skipping the PostgreSQL store: ${noPg}`)
else {
  let cluster: Promise<PgCluster> | null = null
  let n = 0
  kinds.push([
    'postgres',
    async () => {
      cluster ??= startPgCluster(t)
      const url = await (await cluster).createDatabase(`contract_${++n}`)
      return openPgStore(url, { connectWaitMs: 5000 })
    },
  ])
}

/** The StoreWriteError a store call throws or rejects with. */
async function failure(fn: () => unknown): Promise<StoreWriteError> {
  try {
    await fn()
  } catch (e) {
    if (e instanceof StoreWriteError) return e
    throw e
  }
  throw new Error('expected a StoreWriteError')
}

for (const [kind, open] of kinds) {
  t.test(`${kind}: a fresh store is empty`, async (t) => {
    const s = await open(t)
    t.equal(await s.loadIdentity(), null)
    t.same(await s.loadPoolEntries(), [])
    t.equal(await s.historyCount(), 0)
    t.same(await s.readHistory(), [])
    t.equal(s.historyRetentionMs, 90 * DAY)
    await s.close()
  })

  t.test(`${kind}: identity, pool and history round-trip`, async (t) => {
    const s = await open(t)
    await s.saveIdentity(IDENTITY_91)
    t.same(await s.loadIdentity(), IDENTITY_91)
    const refused = historyRow({
      time: T0 + 1,
      cmid: cmidOf(2),
      reportedCount: null,
      hresult: 0xc004f042,
      epid: null,
      vm: true,
      rules: ['refuse-office', 'slow'],
      protocol: '4.0',
    })
    await s.commit({
      history: [historyRow(), refused],
      upserts: [
        { appId: W, cmid: cmidOf(1), lastSeen: T0 },
        { appId: OFFICE2013_APP_ID, cmid: cmidOf(1), lastSeen: T0 + 1 },
      ],
      removals: [],
    })
    t.same(await s.readHistory(), [historyRow(), refused])
    t.equal((await s.readHistory())[1].hresult, 0xc004f042)
    t.equal(await s.historyCount(), 2)
    t.same(
      new Set((await s.loadPoolEntries()).map((e) => JSON.stringify(e))),
      new Set([
        JSON.stringify({ appId: W, cmid: cmidOf(1), lastSeen: T0 }),
        JSON.stringify({ appId: OFFICE2013_APP_ID, cmid: cmidOf(1), lastSeen: T0 + 1 }),
      ]),
    )
    await s.close()
  })

  t.test(`${kind}: upserts refresh, removals delete`, async (t) => {
    const s = await open(t)
    const e = (i: number, at: number) => ({ appId: W, cmid: cmidOf(i), lastSeen: at })
    await s.commit({ history: [], upserts: [e(1, T0), e(2, T0), e(3, T0)], removals: [] })
    await s.commit({
      history: [],
      upserts: [e(2, T0 + DAY), e(4, T0 + DAY)],
      removals: [{ appId: W, cmid: cmidOf(1) }],
    })
    const sorted = (await s.loadPoolEntries()).sort((a, b) => a.cmid.localeCompare(b.cmid))
    t.same(sorted, [e(2, T0 + DAY), e(3, T0), e(4, T0 + DAY)])
    await s.commit({ history: [], upserts: [], removals: [{ appId: W, cmid: cmidOf(99) }] })
    t.equal((await s.loadPoolEntries()).length, 3, 'removing a missing key is not an error')
    await s.close()
  })

  t.test(`${kind}: readHistory limit and sinceMs; pruning`, async (t) => {
    const s = await open(t)
    const times = [T0, T0 + DAY, T0 + 2 * DAY, T0 + 100 * DAY]
    await s.commit({
      history: times.map((time, i) => historyRow({ time, cmid: cmidOf(i) })),
      upserts: [],
      removals: [],
    })
    t.same(
      (await s.readHistory({ limit: 2 })).map((r) => r.cmid),
      [cmidOf(2), cmidOf(3)],
      'the newest rows, oldest first',
    )
    t.same(
      (await s.readHistory({ sinceMs: T0 + DAY })).map((r) => r.cmid),
      [cmidOf(1), cmidOf(2), cmidOf(3)],
    )
    t.same(
      (await s.readHistory({ sinceMs: T0 + DAY, limit: 1 })).map((r) => r.cmid),
      [cmidOf(3)],
    )
    t.same(await s.readHistory({ limit: 0 }), [])
    t.equal(await s.pruneHistory(T0 + DAY), 1, 'only time < beforeMs goes')
    t.equal(await s.pruneExpiredHistory(T0 + 100 * DAY), 2, '90 days before the last row')
    t.same(
      (await s.readHistory()).map((r) => r.time),
      [T0 + 100 * DAY],
    )
    t.equal(await s.historyCount(), 1)
    await s.close()
  })

  t.test(`${kind}: a failing write keeps nothing of its batch`, async (t) => {
    const s = await open(t)
    await s.commit({
      history: [historyRow()],
      upserts: [{ appId: W, cmid: cmidOf(1), lastSeen: T0 }],
      removals: [],
    })
    const seen: number[] = []
    s.setWriteFailure((batch) => {
      seen.push(batch.history.length)
      return new Error('injected: disk on fire')
    })
    const err = await failure(() =>
      s.commit({
        history: [historyRow({ cmid: cmidOf(2) }), historyRow({ cmid: cmidOf(3) })],
        upserts: [{ appId: W, cmid: cmidOf(2), lastSeen: T0 + 1 }],
        removals: [{ appId: W, cmid: cmidOf(1) }],
      }),
    )
    t.type(err, StoreWriteError)
    t.equal(err.location, s.location)
    t.match(err.message, 'injected: disk on fire')
    t.match(err.message, s.location)
    t.same(seen, [2])
    t.equal(await s.historyCount(), 1)
    t.same(await s.loadPoolEntries(), [{ appId: W, cmid: cmidOf(1), lastSeen: T0 }])
    s.setWriteFailure(null)
    await s.commit({ history: [historyRow({ cmid: cmidOf(4) })], upserts: [], removals: [] })
    t.equal(await s.historyCount(), 2)
    await s.close()
    t.type(
      await failure(() => s.commit({ history: [], upserts: [], removals: [] })),
      StoreWriteError,
      'closed',
    )
  })
}

t.test('memory: the location is "memory" and a history row is a copy', async (t) => {
  const s = openStateStore('memory')
  t.equal(s.location, 'memory')
  const row = historyRow({ rules: ['a'] })
  s.commit({ history: [row], upserts: [], removals: [] })
  row.rules.push('b')
  t.same(s.readHistory()[0].rules, ['a'])
})
