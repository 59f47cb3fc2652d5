/**
 * kill -9: a child commits request after request and prints each id once its commit returned;
 * we SIGKILL it mid-stream and reopen the file. Every id it printed must be in the history and in
 * the pool (an answer leaves the host only after its request is committed). Run with both the
 * direct commit path and the group committer.
 */
import { join } from 'node:path'
import t from 'tap'
import { WINDOWS_APP_ID } from '../src/kms/counter.js'
import { openStateStore } from '../src/store/open.js'
import { cmidOf, tempDir } from './fixtures/store-rows.js'
import { spawnTs } from './fixtures/store-spawn.js'

const writer = new URL('./fixtures/store-writer.ts', import.meta.url)
const KILL_AFTER = 400

/** Runs the writer until it printed KILL_AFTER ids, SIGKILLs it, returns every complete id line. */
function writeAndKill(
  path: string,
  how: string,
): Promise<{ ids: number[]; signal: string | null; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const child = spawnTs(writer, [path, how], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let killed = false
    const started = Date.now()
    // a loaded machine can make the child slow; this only stops a stuck one (tap allows 120 s)
    const guard = setTimeout(() => child.kill('SIGKILL'), 90_000)
    child.stderr!.on('data', (d) => (err += d))
    child.stdout!.on('data', (d) => {
      out += d
      if (!killed && out.split('\n').length > KILL_AFTER + 2) {
        killed = true
        child.kill('SIGKILL')
      }
    })
    child.on('error', reject)
    child.on('close', (_code, signal) => {
      clearTimeout(guard)
      const lines = out.split('\n')
      lines.pop() // a line without its newline may be cut short
      if (lines[0] !== 'ready') return reject(new Error(`writer did not start (${signal}): ${err}`))
      resolve({ ids: lines.slice(1).map(Number), signal, stderr: err, ms: Date.now() - started })
    })
  })
}

for (const how of ['direct', 'group']) {
  t.test(`${how}: every printed id survives SIGKILL`, async (t) => {
    const path = join(await tempDir(t), 'state.db')
    const { ids, signal, stderr, ms } = await writeAndKill(path, how)
    t.equal(signal, 'SIGKILL', stderr)
    t.ok(ids.length >= KILL_AFTER, `${ids.length} ids acknowledged before the kill, after ${ms} ms`, {
      stderr,
    })
    t.ok(
      ids.every((id, i) => id === i),
      'acknowledged in order',
    )

    const store = openStateStore(path)
    const history = new Set(store.readHistory().map((r) => r.cmid))
    const pool = new Set(
      store
        .loadPoolEntries()
        .filter((e) => e.appId === WINDOWS_APP_ID)
        .map((e) => e.cmid),
    )
    const lostHistory = ids.filter((id) => !history.has(cmidOf(id)))
    const lostPool = ids.filter((id) => !pool.has(cmidOf(id)))
    t.same(lostHistory, [], 'no acknowledged request is missing from the history')
    t.same(lostPool, [], 'nor from the pool')
    t.ok(store.historyCount() >= ids.length, `${store.historyCount()} rows committed in all`)
    store.close()
  })
}
