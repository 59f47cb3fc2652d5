import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { openStateStore } from '../src/store/open.js'
import { activateRaw, baseRequest, WINDOWS_APP } from './fixtures/raw-activate.js'
import { startServe } from './fixtures/serve-process.js'

const dir = mkdtempSync(join(tmpdir(), 'kmslab-persist-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function identityLines(out: string): string[] {
  return out
    .split('\n')
    .filter((l) => /ePID |HWID /.test(l))
    .map((l) => l.replace(/^\S+ /, ''))
}

t.test('a restart keeps pools, ePIDs and HWID', async (t) => {
  const state = join(dir, 'restart', 'state.db')
  const first = await startServe(['--state', state])
  const a = await activateRaw(first.port, [baseRequest(), baseRequest(), baseRequest()])
  t.same(
    a.map((x) => x.count),
    [1, 2, 3],
  )
  first.child.kill('SIGTERM')
  t.equal(await first.exited, 0, 'SIGTERM exits 0')
  t.match(first.stdout(), /stopped/)

  const second = await startServe(['--state', state])
  t.teardown(() => second.child.kill('SIGKILL'))
  t.same(identityLines(second.stdout()), identityLines(first.stdout()), 'same ePIDs and HWID')
  const b = await activateRaw(second.port, [baseRequest()])
  t.equal(b[0].count, 4, 'the pool carried over')
  t.equal(b[0].epid, a[0].epid)
  t.equal(b[0].hwid, a[0].hwid)
  second.child.kill('SIGTERM')
  await second.exited
})

t.test('kill -9 in the middle of a burst loses no answered request', async (t) => {
  const state = join(dir, 'kill', 'state.db')
  const host = await startServe(['--state', state, '--quiet'])
  const answered: string[] = []
  // Four connections firing at once; the kill lands while requests are in flight.
  const burst = Array.from({ length: 4 }, async () => {
    for (let i = 0; i < 200; i++) {
      const req = baseRequest()
      try {
        const [ans] = await activateRaw(host.port, [req])
        if (ans.hresult === 0) answered.push(req.cmid)
      } catch {
        return
      }
    }
  })
  await new Promise((r) => setTimeout(r, 400))
  host.child.kill('SIGKILL')
  await Promise.all(burst)
  t.equal(await host.exited, 'SIGKILL')
  t.ok(answered.length > 10, `answers before the kill: ${answered.length}`)

  const store = openStateStore(state)
  const history = new Set(store.readHistory().map((r) => r.cmid))
  const pool = new Set(
    store
      .loadPoolEntries()
      .filter((e) => e.appId === WINDOWS_APP)
      .map((e) => e.cmid),
  )
  store.close()
  const missingHistory = answered.filter((c) => !history.has(c))
  t.same(missingHistory, [], 'every answered request is in the history')
  // The pool keeps the 50 most recent; every answered CMID among the newest 50 must be there.
  const recent = answered.slice(-Math.min(50, answered.length)).filter((c) => !pool.has(c))
  t.ok(recent.length <= 4, `recent answered CMIDs missing from the pool: ${recent.length} (concurrent order)`)

  const again = await startServe(['--state', state, '--quiet'])
  const [next] = await activateRaw(again.port, [baseRequest()])
  t.equal(next.hresult, 0, 'the host serves at once after the restart')
  t.equal(next.count, Math.min(pool.size + 1, 50), 'the pool carried over the kill')
  again.child.kill('SIGTERM')
  await again.exited
})
