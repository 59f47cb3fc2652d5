import t from 'tap'
import { WINDOWS_APP_ID } from '../src/kms/counter.js'
import { MemoryStore } from '../src/store/memory.js'
import { openStateStore } from '../src/store/open.js'
import { MEMORY_HISTORY_LIMIT } from '../src/store/types.js'
import { cmidOf, historyRow, IDENTITY_91, T0 } from './fixtures/store-rows.js'

const rows = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, k) => historyRow({ time: T0 + from + k, cmid: cmidOf(from + k) }))

t.test('history is a ring of the newest rows', async (t) => {
  const s = new MemoryStore({ historyLimit: 5 })
  s.commit({ history: rows(1, 3), upserts: [], removals: [] })
  s.commit({ history: rows(4, 8), upserts: [], removals: [] })
  t.equal(s.historyCount(), 5)
  t.same(
    s.readHistory().map((r) => r.cmid),
    [4, 5, 6, 7, 8].map(cmidOf),
  )
  t.same(
    s.readHistory({ limit: 2 }).map((r) => r.cmid),
    [7, 8].map(cmidOf),
  )
  t.equal(s.pruneHistory(T0 + 6), 2)
  t.same(
    s.readHistory().map((r) => r.cmid),
    [6, 7, 8].map(cmidOf),
  )
  s.commit({ history: rows(9, 12), upserts: [], removals: [] })
  t.same(
    s.readHistory().map((r) => r.cmid),
    [8, 9, 10, 11, 12].map(cmidOf),
    'wraps again after a prune',
  )
})

t.test('the default ring holds 1,000 rows', async (t) => {
  t.equal(MEMORY_HISTORY_LIMIT, 1_000)
  const s = openStateStore('memory')
  s.commit({ history: rows(1, 10_250), upserts: [], removals: [] })
  t.equal(s.historyCount(), 1_000)
  t.equal(s.readHistory({ limit: 1 })[0].cmid, cmidOf(10_250))
  t.equal(s.readHistory()[0].cmid, cmidOf(9_251))
})

t.test('identity and pool entries come back as copies', async (t) => {
  const s = openStateStore('memory')
  s.saveIdentity(IDENTITY_91)
  const id = s.loadIdentity()!
  id.epids.Windows = 'changed'
  t.same(s.loadIdentity(), IDENTITY_91)
  s.commit({ history: [], upserts: [{ appId: WINDOWS_APP_ID, cmid: cmidOf(1), lastSeen: T0 }], removals: [] })
  s.loadPoolEntries()[0].lastSeen = 0
  t.equal(s.loadPoolEntries()[0].lastSeen, T0)
})
