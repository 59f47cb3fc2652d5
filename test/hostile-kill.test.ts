// kill -9 at random moments under load, three times on the same state file: after each restart
// the database opens and is intact, every answered request is in the history and its pools are
// exactly what the history says, and the host serves at once. (`npm run soak` does it 20 times.)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { openStateStore } from '../src/store/open.js'
import { sleep } from './fixtures/hostile.js'
import { type Answered, loadUntil, poolsDisagree } from './fixtures/hostile-load.js'
import { activateRaw, baseRequest } from './fixtures/raw-activate.js'
import { startServe } from './fixtures/serve-process.js'

const KILLS = 3
const dir = mkdtempSync(join(tmpdir(), 'kmslab-kill-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test(`kill -9 under load, ${KILLS} times`, async (t) => {
  const path = join(dir, 'state.db')
  const answered: Answered[] = []
  for (let round = 1; round <= KILLS; round++) {
    const host = await startServe(['--state', path, '--quiet'])
    t.teardown(() => host.child.kill('SIGKILL'))
    const started = performance.now()
    const [first] = await activateRaw(host.port, [baseRequest()])
    const firstMs = performance.now() - started
    t.equal(first.hresult, 0, `round ${round}: served at once after the start (${firstMs.toFixed(0)} ms)`)

    let killed = false
    const load = loadUntil(host.port, () => killed, 6)
    await sleep(150 + Math.random() * 600)
    host.child.kill('SIGKILL')
    killed = true
    t.equal(await host.exited, 'SIGKILL')
    const result = await load
    t.equal(result.bad, 0, `round ${round}: no damaged answer`)
    t.ok(result.answered.length > 0, `round ${round}: ${result.answered.length} answered before the kill`)
    answered.push(...result.answered)

    const db = new Database(path)
    t.same(db.pragma('integrity_check'), [{ integrity_check: 'ok' }], `round ${round}: integrity ok`)
    db.close()
    const store = openStateStore(path)
    const history = store.readHistory()
    const entries = store.loadPoolEntries()
    const actual = new Map<string, Set<string>>()
    for (const e of entries) actual.set(e.appId, (actual.get(e.appId) ?? new Set()).add(e.cmid))
    store.close()
    const recorded = new Set(history.map((r) => r.cmid))
    t.same(
      answered.filter((a) => !recorded.has(a.cmid)).map((a) => a.cmid),
      [],
      `round ${round}: all ${answered.length} answered requests so far are in the history`,
    )
    t.same(poolsDisagree(history, entries), [], `round ${round}: the pools are what the history says`)
    // Directly: an answered request missing from its pool was pushed out by 50 clients seen since.
    const lastSeen = new Map(history.map((r) => [r.cmid, r.time]))
    const unexplained = answered.filter((a) => {
      const pool = actual.get(a.appId) ?? new Set<string>()
      if (pool.has(a.cmid)) return false
      const mine = lastSeen.get(a.cmid) ?? Infinity
      return !(pool.size === 50 && [...pool].every((c) => (lastSeen.get(c) ?? -1) >= mine))
    })
    t.same(
      unexplained,
      [],
      `round ${round}: every answered request is in its pool or was pushed out by newer ones`,
    )
  }
  const last = await startServe(['--state', path, '--quiet'])
  t.teardown(() => last.child.kill('SIGKILL'))
  const [after] = await activateRaw(last.port, [baseRequest()])
  t.equal(after.hresult, 0, 'the host serves after the last kill')
  last.child.kill('SIGTERM')
  t.equal(await last.exited, 0)
})
