import { join } from 'node:path'
import t from 'tap'
import { ActivationCounter, type PoolEntry, WINDOWS_APP_ID } from '../src/kms/counter.js'
import { StoreWriteError } from '../src/store/errors.js'
import { GroupCommitter, mergeBatches } from '../src/store/group-commit.js'
import { openStateStore } from '../src/store/open.js'
import type { CommitBatch, StateStore } from '../src/store/types.js'
import { cmidOf, historyRow, T0, tempDir } from './fixtures/store-rows.js'

const W = WINDOWS_APP_ID

/** The store, with every commit call recorded. */
function counting(store: StateStore) {
  const commits: CommitBatch[] = []
  const wrapped: StateStore = Object.create(store)
  wrapped.commit = (batch) => {
    commits.push(batch)
    store.commit(batch)
  }
  return { store: wrapped, commits }
}

const one = (i: number): CommitBatch => ({
  history: [historyRow({ time: T0 + i, cmid: cmidOf(i) })],
  upserts: [{ appId: W, cmid: cmidOf(i), lastSeen: T0 + i }],
  removals: [],
})

t.test('submits of one event-loop turn go into one commit', async (t) => {
  const path = join(await tempDir(t), 'state.db')
  const base = openStateStore(path)
  const { store, commits } = counting(base)
  const g = new GroupCommitter(store)
  const all = Array.from({ length: 100 }, (_, i) => g.submit(one(i)))
  t.equal(commits.length, 0, 'nothing is written before the turn ends')
  await Promise.all(all)
  t.equal(commits.length, 1)
  t.equal(commits[0].history.length, 100)
  t.equal(base.historyCount(), 100)
  t.same(g.stats, { commits: 1, batches: 100, failures: 0 })

  await g.submit(one(100))
  await Promise.all([g.submit(one(101)), g.submit(one(102))])
  t.same(
    commits.map((c) => c.history.length),
    [100, 1, 2],
    'a later turn is a later commit',
  )
  await g.close()
  base.close()
})

t.test('maxBatch commits at once; flush commits what waits', async (t) => {
  const { store, commits } = counting(openStateStore('memory'))
  const g = new GroupCommitter(store, { maxBatch: 10 })
  const all = Array.from({ length: 25 }, (_, i) => g.submit(one(i)))
  t.same(
    commits.map((c) => c.history.length),
    [10, 10],
    'two full groups went at once',
  )
  await Promise.all(all)
  t.same(
    commits.map((c) => c.history.length),
    [10, 10, 5],
  )
  const late = g.submit(one(30))
  await g.flush()
  t.equal(commits.length, 4)
  await late
})

t.test('a failed group rejects every submit in it, once reported, nothing kept', async (t) => {
  const path = join(await tempDir(t), 'state.db')
  const store = openStateStore(path)
  const errors: StoreWriteError[] = []
  const g = new GroupCommitter(store, { onError: (e) => errors.push(e) })
  store.setWriteFailure(() => new Error('injected: no space left on device'))
  const results = await Promise.allSettled([g.submit(one(1)), g.submit(one(2)), g.submit(one(3))])
  t.same(
    results.map((r) => r.status),
    ['rejected', 'rejected', 'rejected'],
  )
  const reasons = results.map((r) => (r as PromiseRejectedResult).reason)
  t.type(reasons[0], StoreWriteError)
  t.ok(
    reasons.every((r) => r === reasons[0]),
    'the same error for all',
  )
  t.same(errors, [reasons[0]])
  t.match(reasons[0].message, `cannot write state file ${path}: injected: no space left on device`)
  t.equal(store.historyCount(), 0)
  t.same(store.loadPoolEntries(), [])

  store.setWriteFailure(null)
  await g.submit(one(4))
  t.equal(store.historyCount(), 1, 'the next group goes through')
  await g.close()
  await t.rejects(g.submit(one(5)), StoreWriteError, 'closed')
  store.close()
})

t.test('a throwing onError does not leave submits hanging', async (t) => {
  const store = openStateStore('memory')
  store.setWriteFailure(() => new Error('injected'))
  const g = new GroupCommitter(store, {
    onError: () => {
      throw new Error('logger broke')
    },
  })
  await t.rejects(g.submit(one(1)), StoreWriteError)
})

t.test('merging keeps the order of pool operations', async (t) => {
  const e = (i: number, at: number): PoolEntry => ({ appId: W, cmid: cmidOf(i), lastSeen: at })
  const merged = mergeBatches([
    { history: [historyRow({ cmid: cmidOf(1) })], upserts: [e(1, T0), e(2, T0)], removals: [] },
    { history: [], upserts: [e(3, T0 + 1)], removals: [{ appId: W, cmid: cmidOf(1) }] }, // 1 dropped
    {
      history: [historyRow({ cmid: cmidOf(2) })],
      upserts: [e(1, T0 + 2)],
      removals: [{ appId: W, cmid: cmidOf(3) }],
    },
    { history: [], upserts: [e(2, T0 + 3)], removals: [] }, // 2 refreshed
  ])
  t.same(
    merged.history.map((r) => r.cmid),
    [cmidOf(1), cmidOf(2)],
  )
  t.same(merged.upserts, [e(1, T0 + 2), e(2, T0 + 3)])
  // 1 was dropped, then recorded again: it is removed first, then comes back as a new entry
  t.same(merged.removals, [
    { appId: W, cmid: cmidOf(1) },
    { appId: W, cmid: cmidOf(3) },
  ])
  const single = one(9)
  t.equal(mergeBatches([single]), single, 'a lone batch passes as is')
})

t.test('counter + group commit + SQLite: the file mirrors the counter, across a reopen', async (t) => {
  const path = join(await tempDir(t), 'state.db')
  const store = openStateStore(path)
  const counter = new ActivationCounter()
  const g = new GroupCommitter(store)
  // 60 Windows clients in one turn, then 10 of the first ones again in the next, 31 days later
  const requests = (from: number, to: number, now: number) => {
    const done: Promise<void>[] = []
    for (let i = from; i <= to; i++) {
      const o = counter.record(W, cmidOf(i), 25, now + i)
      done.push(
        g.submit({
          history: [historyRow({ time: now + i, cmid: o.cmid, reportedCount: o.reportedCount })],
          upserts: [{ appId: o.appId, cmid: o.cmid, lastSeen: o.lastSeen }],
          removals: o.removed,
        }),
      )
    }
    return Promise.all(done)
  }
  await requests(1, 60, T0)
  await requests(1, 10, T0 + 31 * 86_400_000)
  t.equal(g.stats.commits, 2)
  const live = counter.entries(W, T0 + 31 * 86_400_000 + 10)
  t.equal(live.length, 10)
  const sort = (l: PoolEntry[]) => [...l].sort((a, b) => a.cmid.localeCompare(b.cmid))
  t.same(sort(store.loadPoolEntries()), sort(live), 'expired and dropped entries left the file too')
  t.same(
    store.readHistory().map((r) => r.reportedCount),
    [
      ...Array.from({ length: 60 }, (_, i) => Math.min(i + 1, 50)),
      ...Array.from({ length: 10 }, (_, i) => i + 1),
    ],
  )
  await g.close()
  store.close()

  const again = openStateStore(path)
  const restored = new ActivationCounter()
  t.same(restored.load(again.loadPoolEntries(), T0 + 31 * 86_400_000 + 10).removed, [])
  t.same(restored.entries(W, T0 + 31 * 86_400_000 + 10), live)
  again.close()
})
