/** One running host owns a SQLite state file: a second is refused (exit 78), a crash frees it. */
import { hostname } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { ConfigError } from '../src/errors.js'
import { openStateStore } from '../src/store/open.js'
import { startServe } from './fixtures/serve-process.js'
import { tempDir } from './fixtures/store-rows.js'

t.test('a second owner in this process is refused, naming the file and the owner', async (t) => {
  const path = join(await tempDir(t), 'state.db')
  const first = openStateStore(path)
  const err = t.throws(() => openStateStore(path), ConfigError) as ConfigError
  t.equal(err.path, path)
  t.match(err.message, `state file ${path} is in use by kmslab host pid ${process.pid} on ${hostname()}`)
  t.match(err.message, /started \d{4}-\d\d-\d\dT/)
  // Readers are not owners: the state file stays readable while its owner runs.
  const reader = new Database(path, { readonly: true })
  t.equal(reader.prepare(`SELECT value FROM meta WHERE key = 'application'`).pluck().get(), 'kmslab')
  reader.close()
  first.close()
  const again = openStateStore(path)
  again.close()
})

// child hosts start slowly on a loaded machine
t.setTimeout(300_000)

t.test(
  'two hosts on one file: the second exits 78; after kill -9 of the first a new host starts',
  async (t) => {
    const path = join(await tempDir(t), 'state.db')
    const first = await startServe(['--state', path], 40_000)
    t.teardown(() => {
      first.child.kill('SIGKILL')
    })
    const second = await startServe(['--state', path], 40_000).then(
      () => null,
      (e: Error) => e,
    )
    t.ok(second, 'the second host did not start')
    t.match(second?.message, /serve exited 78/)
    t.match(second?.message, `state file ${path} is in use by kmslab host pid ${first.child.pid}`)

    first.child.kill('SIGKILL')
    t.equal(await first.exited, 'SIGKILL')
    const third = await startServe(['--state', path], 40_000)
    third.child.kill('SIGTERM')
    t.equal(await third.exited, 0, 'the lock died with its owner')
  },
)
