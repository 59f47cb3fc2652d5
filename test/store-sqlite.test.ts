/** The SQLite store: what survives a reopen, the file layout, and every way opening can fail. */
import { randomBytes } from 'node:crypto'
import { mkdir, open as openFile, stat, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join, relative } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { ConfigError, UsageError } from '../src/errors.js'
import { WINDOWS_APP_ID } from '../src/kms/counter.js'
import { StoreWriteError } from '../src/store/errors.js'
import { defaultStatePath, openStateStore } from '../src/store/open.js'
import { SCHEMA_VERSION } from '../src/store/sqlite.js'
import { cmidOf, historyRow, IDENTITY_91, T0, tempDir } from './fixtures/store-rows.js'

const W = WINDOWS_APP_ID

/** Expects a ConfigError whose message names `path` and matches `what`. */
function failsToOpen(t: Tap, path: string, what: RegExp, opts = {}) {
  const err = t.throws(() => openStateStore(path, opts), ConfigError) as ConfigError
  t.match(err.message, path, 'the message names the path')
  t.match(err.message, what)
  return err
}
type Tap = Pick<typeof t, 'throws' | 'match'>

t.test('a reopened store has its identity, pools and history', async (t) => {
  const path = join(await tempDir(t), 'nested', 'dirs', 'state.db')
  const first = openStateStore(path)
  t.equal(first.location, path)
  first.saveIdentity(IDENTITY_91)
  for (let i = 0; i < 3; i++) {
    first.commit({
      history: [historyRow({ time: T0 + i, cmid: cmidOf(i) })],
      upserts: [{ appId: W, cmid: cmidOf(i), lastSeen: T0 + i }],
      removals: i === 2 ? [{ appId: W, cmid: cmidOf(0) }] : [],
    })
  }
  first.close()
  first.close() // twice is harmless
  t.ok((await stat(path)).isFile(), 'the directory was created')

  const again = openStateStore(path)
  t.same(again.loadIdentity(), IDENTITY_91)
  t.same(again.loadPoolEntries(), [
    { appId: W, cmid: cmidOf(1), lastSeen: T0 + 1 },
    { appId: W, cmid: cmidOf(2), lastSeen: T0 + 2 },
  ])
  t.same(
    again.readHistory().map((r) => r.cmid),
    [cmidOf(0), cmidOf(1), cmidOf(2)],
  )
  again.close()

  const db = new Database(path, { readonly: true })
  const meta = Object.fromEntries(
    (db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [
      r.key,
      r.value,
    ]),
  )
  t.match(JSON.parse(meta.owner), { pid: process.pid, hostname: hostname() }, 'the last owner')
  delete meta.owner
  t.same(meta, { application: 'kmslab', schema_version: String(SCHEMA_VERSION), open_count: '2' })
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  t.ok(db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'history_time'`).get())
  db.close()
})

t.test('a relative path is resolved; an empty existing file becomes a store', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'empty.db')
  await writeFile(path, '')
  const s = openStateStore(relative(process.cwd(), path))
  t.equal(s.location, path)
  s.commit({ history: [historyRow()], upserts: [], removals: [] })
  t.equal(s.historyCount(), 1)
  s.close()
})

t.test('a directory where the file should be', async (t) => {
  const dir = await tempDir(t)
  failsToOpen(t, dir, /is a directory; give the database file/)
})

t.test('a directory that cannot be created', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'plain-file'), 'x')
  failsToOpen(t, join(dir, 'plain-file', 'state.db'), /cannot create directory .*plain-file/)
  // /proc refuses new entries even to root
  failsToOpen(t, '/proc/kmslab-test/state.db', /cannot create directory \/proc\/kmslab-test/)
})

t.test('random bytes: not a kmslab state database', async (t) => {
  const path = join(await tempDir(t), 'state.db')
  await writeFile(path, randomBytes(8192))
  failsToOpen(t, path, /is not a kmslab state database \(file is not a database\)/)
})

t.test('another application’s SQLite file is refused, not adopted', async (t) => {
  const path = join(await tempDir(t), 'notes.db')
  const db = new Database(path)
  db.exec(`CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')`)
  db.close()
  failsToOpen(t, path, /is not a kmslab state database \(it holds tables notes\)/)
  const back = new Database(path, { readonly: true })
  t.equal(back.prepare('SELECT body FROM notes').pluck().get(), 'keep me')
  back.close()
})

t.test('a newer schema version is refused', async (t) => {
  const path = join(await tempDir(t), 'state.db')
  openStateStore(path).close()
  const db = new Database(path)
  db.prepare(`UPDATE meta SET value = '${SCHEMA_VERSION + 1}' WHERE key = 'schema_version'`).run()
  db.close()
  failsToOpen(
    t,
    path,
    new RegExp(`has schema version ${SCHEMA_VERSION + 1}; this kmslab reads versions 1 to ${SCHEMA_VERSION}`),
  )
})

t.test('a damaged page is found at open', async (t) => {
  const path = join(await tempDir(t), 'state.db')
  const s = openStateStore(path)
  const rows = Array.from({ length: 2000 }, (_, i) => historyRow({ time: T0 + i, cmid: cmidOf(i) }))
  s.commit({ history: rows, upserts: [], removals: [] })
  s.close()
  const size = (await stat(path)).size
  t.ok(size > 20 * 4096, `a file of many pages (${size} bytes)`)
  const fh = await openFile(path, 'r+')
  await fh.write(randomBytes(4096 * 4), 0, 4096 * 4, 4096 * 8) // pages 9..12
  await fh.close()
  const err = failsToOpen(t, path, /is corrupt \(/)
  t.notMatch(err.message, /\n/, 'one line')
  const unchecked = openStateStore(path, { check: false })
  t.ok(unchecked, 'check: false skips the scan (and finds out later)')
  unchecked.close()
})

t.test('a file locked by another writer: ConfigError at open, StoreWriteError mid-run', async (t) => {
  const path = join(await tempDir(t), 'state.db')
  openStateStore(path).close()
  const other = new Database(path)
  other.exec('BEGIN IMMEDIATE')
  failsToOpen(t, path, /is locked by another process/, { busyTimeoutMs: 20 })
  other.exec('ROLLBACK')

  const s = openStateStore(path, { busyTimeoutMs: 20 })
  other.exec('BEGIN IMMEDIATE')
  const err = t.throws(
    () =>
      s.commit({
        history: [historyRow()],
        upserts: [{ appId: W, cmid: cmidOf(1), lastSeen: T0 }],
        removals: [],
      }),
    StoreWriteError,
  ) as StoreWriteError
  t.match(err.message, `cannot write state file ${path}: database is locked`)
  t.equal((err.cause as { code?: string }).code, 'SQLITE_BUSY')
  other.exec('ROLLBACK')
  t.equal(s.historyCount(), 0, 'nothing of the failed batch')
  s.commit({ history: [historyRow()], upserts: [], removals: [] })
  t.equal(s.historyCount(), 1, 'and the next write goes through')
  s.close()
  other.close()
})

t.test('synchronous FULL is available for power-loss safety', async (t) => {
  const path = join(await tempDir(t), 'state.db')
  const s = openStateStore(path, { synchronous: 'full' })
  s.commit({ history: [historyRow()], upserts: [], removals: [] })
  s.close()
  const again = openStateStore(path)
  t.equal(again.historyCount(), 1)
  again.close()
})

t.test('memory and the history retention option', async (t) => {
  t.equal(openStateStore('memory').location, 'memory')
  t.equal(openStateStore('memory', { historyDays: 7 }).historyRetentionMs, 7 * 86_400_000)
  t.throws(() => openStateStore('memory', { historyDays: 0 }), UsageError)
  const dir = await tempDir(t)
  await mkdir(join(dir, 'memory'))
  t.throws(
    () => openStateStore(join(dir, 'memory')),
    ConfigError,
    'a path that merely ends in memory is a path',
  )
})

t.test('defaultStatePath follows XDG_STATE_HOME, else ~/.local/state', async (t) => {
  t.equal(
    defaultStatePath({ XDG_STATE_HOME: '/var/lib/lab' }, '/srv/users/ada'),
    '/var/lib/lab/kmslab/state.db',
  )
  t.equal(defaultStatePath({}, '/srv/users/ada'), '/srv/users/ada/.local/state/kmslab/state.db')
  t.equal(
    defaultStatePath({ XDG_STATE_HOME: '' }, '/srv/users/ada'),
    '/srv/users/ada/.local/state/kmslab/state.db',
  )
  t.equal(
    defaultStatePath({ XDG_STATE_HOME: 'rel/dir' }, '/srv/users/ada'),
    '/srv/users/ada/.local/state/kmslab/state.db',
  )
})
