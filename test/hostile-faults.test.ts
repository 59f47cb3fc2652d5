// Faults around the state file, through `kmslab serve` as users run it:
// - an unusable state at start (corrupt, read-only file or directory, parent not a directory) is
//   a clear error naming the path and exit code 78;
// - a write that fails during a run turns into a refusal to that client and a loud log line,
//   never a crash and never an answer that was not recorded;
// - SIGTERM under load: answers in flight complete, exit 0 within 2 s, the database is intact and
//   holds every answered request.
// The tests run as root, where permission bits do not stop writes: "read-only" is made with the
// immutable attribute (chattr +i), which binds root too, and removed in teardown. Where chattr
// does not work (another filesystem), those cases are skipped and say so.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { startHost } from '../src/host/host.js'
import { HRESULT } from '../src/kms/hresult.js'
import { openStateStore } from '../src/store/open.js'
import { parseResponseStub } from '../src/wire/ndr.js'
import { parseResponsePdu } from '../src/wire/rpc.js'
import { bind, kms, request, sleep } from './fixtures/hostile.js'
import { loadUntil, poolsDisagree, runServe } from './fixtures/hostile-load.js'
import { activateRaw, baseRequest, WINDOWS_APP } from './fixtures/raw-activate.js'
import { RawPeer } from './fixtures/raw-client.js'
import { startServe } from './fixtures/serve-process.js'

const dir = mkdtempSync(join(tmpdir(), 'kmslab-faults-'))
const immutable: string[] = []
const chattr = (flag: '+i' | '-i', path: string) => execFileSync('chattr', [flag, path], { stdio: 'ignore' })
t.teardown(() => {
  for (const p of immutable) {
    try {
      chattr('-i', p)
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true })
})

/** Whether chattr +i works here and really stops root. */
const chattrWorks = (() => {
  const probe = join(dir, 'probe')
  writeFileSync(probe, 'x')
  try {
    chattr('+i', probe)
  } catch {
    return false
  }
  let blocked = false
  try {
    writeFileSync(probe, 'y')
  } catch {
    blocked = true
  }
  chattr('-i', probe)
  return blocked
})()
const noChattr = chattrWorks ? false : 'chattr +i is not available or does not stop writes here'

function makeImmutable(path: string): void {
  chattr('+i', path)
  immutable.push(path)
}

/** A real state database, made by a host that served one client. */
async function realState(path: string): Promise<void> {
  const host = await startServe(['--state', path, '--quiet'])
  await activateRaw(host.port, [baseRequest()])
  host.child.kill('SIGTERM')
  await host.exited
}

t.test('unusable state at start: a clear error naming the path, exit 78', async (t) => {
  t.test('a file of random bytes', async (t) => {
    const path = join(dir, 'random.db')
    writeFileSync(path, randomBytes(8192))
    const r = await runServe(['--state', path])
    t.equal(r.code, 78)
    t.match(r.stderr, `${path} is not a kmslab state database`)
    t.equal(r.stdout, '', 'no banner: the host never started')
  })

  t.test('a real database with a page overwritten by random bytes', async (t) => {
    const path = join(dir, 'damaged.db')
    await realState(path)
    const fd = openSync(path, 'r+')
    writeSync(fd, randomBytes(4096), 0, 4096, 4096) // page 2 of the 4 KiB pages
    closeSync(fd)
    const r = await runServe(['--state', path])
    t.equal(r.code, 78)
    t.match(r.stderr, new RegExp(`state file ${path} is (corrupt|not a kmslab state database)`))
  })

  t.test('a state path whose parent is a regular file', async (t) => {
    const file = join(dir, 'plain-file')
    writeFileSync(file, 'not a directory')
    const path = join(file, 'state.db')
    const r = await runServe(['--state', path])
    t.equal(r.code, 78)
    t.match(r.stderr, `cannot create directory ${file} for the state file ${path}`)
  })

  t.test('a read-only (immutable) state file', { skip: noChattr }, async (t) => {
    const path = join(dir, 'immutable-file', 'state.db')
    await realState(path)
    makeImmutable(path)
    const r = await runServe(['--state', path])
    t.equal(r.code, 78)
    t.match(r.stderr, `state file ${path} is read-only`)
  })

  t.test('a read-only (immutable) directory, no file yet', { skip: noChattr }, async (t) => {
    const ro = join(dir, 'immutable-dir')
    mkdirSync(ro)
    makeImmutable(ro)
    const path = join(ro, 'state.db')
    const r = await runServe(['--state', path])
    t.equal(r.code, 78)
    t.match(r.stderr, `state directory ${ro} is read-only`)
  })

  t.test('a writable file in a read-only (immutable) directory', { skip: noChattr }, async (t) => {
    const ro = join(dir, 'immutable-dir-with-file')
    const path = join(ro, 'state.db')
    await realState(path)
    makeImmutable(ro)
    const r = await runServe(['--state', path])
    t.equal(r.code, 78)
    t.match(r.stderr, `state directory ${ro} is read-only`)
  })
})

t.test(
  'a write that fails during a run: a refusal and a loud line, then service goes on',
  { skip: noChattr },
  async (t) => {
    const path = join(dir, 'fail-during-run', 'state.db')
    const host = await startServe(['--state', path])
    t.teardown(() => host.child.kill('SIGKILL'))
    const first = baseRequest()
    const [a] = await activateRaw(host.port, [first])
    t.same([a.hresult, a.count], [0, 1])

    // The WAL is where every commit goes: make it immutable under the running host.
    makeImmutable(`${path}-wal`)
    const lost = baseRequest()
    const [b] = await activateRaw(host.port, [lost])
    t.equal(b.hresult, HRESULT.INVALID_DATA, 'refused, not answered')
    await host.waitOutput(/./) // the host is alive
    for (let i = 0; i < 100 && !/error: /.test(host.stderr()); i++) await sleep(10)
    const errors = host
      .stderr()
      .split('\n')
      .filter((l) => l.includes('error: '))
    t.equal(errors.length, 1, 'one line for the one failed write')
    t.match(errors[0], `error: cannot write state file ${path}`)
    t.match(errors[0], 'the client was refused, nothing was answered')

    chattr('-i', `${path}-wal`)
    const third = baseRequest()
    const [c] = await activateRaw(host.port, [third])
    t.same([c.hresult, c.count], [0, 2], 'served again; the refused client was not counted')
    host.child.kill('SIGTERM')
    t.equal(await host.exited, 0)

    const store = openStateStore(path)
    const history = store.readHistory()
    const pool = store.loadPoolEntries().map((e) => e.cmid)
    store.close()
    t.same(
      history.map((r) => [r.cmid, r.reportedCount]),
      [
        [first.cmid, 1],
        [third.cmid, 2],
      ],
      'the history holds exactly the answered requests',
    )
    t.same(pool.sort(), [first.cmid, third.cmid].sort(), 'the pool too')
  },
)

t.test('through the library: failWrites under concurrent load, memory and SQLite', async (t) => {
  for (const state of ['memory', join(dir, 'fail-writes-api', 'state.db')]) {
    // The memory ring must hold every row of this load, whatever the machine's speed.
    const host = await startHost({ state, memoryHistoryLimit: 1_000_000 })
    t.teardown(() => host.close())
    const errors: Error[] = []
    host.events.on('store-error', (e) => errors.push(e))
    let stop = false
    const load = loadUntil(host.port, () => stop, 6)
    await sleep(150)
    host.faults.failWrites('disk on fire')
    await sleep(150)
    host.faults.failWrites(false)
    await sleep(150)
    stop = true
    const result = await load
    t.equal(result.bad, 0, `${state}: no damaged answer`)
    t.ok(errors.length > 0, `${state}: ${errors.length} failed writes reported`)
    t.equal(result.refused, errors.length, `${state}: each one a refusal to its client`)
    t.ok(result.answered.length > 0, `${state}: ${result.answered.length} answered around them`)
    const history = host.history()
    const recorded = new Set(history.map((r) => r.cmid))
    t.same(
      result.answered.filter((a) => !recorded.has(a.cmid)),
      [],
      `${state}: every answered request is recorded`,
    )
    const pool = Object.entries(host.pools.read()).flatMap(([appId, list]) =>
      list.map((e) => ({ appId, cmid: e.cmid })),
    )
    t.same(poolsDisagree(history, pool), [], `${state}: the live pools agree with the history`)
    const [after] = await activateRaw(host.port, [baseRequest()])
    t.equal(after.hresult, 0, `${state}: serves normally afterwards`)
    await host.close()
  }
})

t.test('SIGTERM under load: answers complete, exit 0 within 2 s, database intact', async (t) => {
  const path = join(dir, 'sigterm', 'state.db')
  const host = await startServe(['--state', path, '--quiet'])
  t.teardown(() => host.child.kill('SIGKILL'))
  let stopping = false
  const load = loadUntil(host.port, () => stopping, 8)
  // a pipelining client whose requests are in flight when the signal lands
  const piper = await RawPeer.open(host.port)
  piper.send(bind())
  await piper.pdu()
  await sleep(600)
  const built = Array.from({ length: 20 }, () => kms(6))
  for (const [i, b] of built.entries()) piper.send(request(b.payload, { callId: 100 + i }))
  const signalled = Date.now()
  host.child.kill('SIGTERM')
  const code = await host.exited
  const took = Date.now() - signalled
  stopping = true
  const result = await load
  t.equal(code, 0, 'exit 0')
  t.ok(took < 2000, `exited ${took} ms after SIGTERM`)
  t.match(host.stdout(), /SIGTERM: stopping[\s\S]*stopped/)
  t.equal(result.bad, 0, 'no answer arrived damaged')
  t.ok(result.answered.length > 20, `answers under load: ${result.answered.length}`)
  const piped: string[] = []
  for (const b of built) {
    const pdu = await piper.pdu(100)
    if (!pdu) break
    t.equal(parseResponseStub(parseResponsePdu(pdu).stub, 'ndr32').hresult, 0)
    piped.push(b.cmid)
  }
  piper.end()
  t.equal(piped.length, built.length, 'the pipelined requests in flight at the signal were all answered')

  const db = new Database(path)
  t.same(db.pragma('integrity_check'), [{ integrity_check: 'ok' }], 'PRAGMA integrity_check = ok')
  db.close()
  const store = openStateStore(path)
  const history = store.readHistory()
  const pool = store.loadPoolEntries()
  store.close()
  const recorded = new Set(history.map((r) => r.cmid))
  const missing = [...result.answered.map((a) => a.cmid), ...piped].filter((c) => !recorded.has(c))
  t.same(missing, [], `all ${result.answered.length + piped.length} answered requests are in the history`)
  t.same(poolsDisagree(history, pool), [], 'the pools are what the history says')
  t.ok(
    pool.some((e) => e.appId === WINDOWS_APP),
    'and they are not empty',
  )
})
