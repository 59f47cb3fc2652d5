/**
 * Read-only state: a clear ConfigError at start, naming the path. Root ignores file modes, so
 * when the tests run as root the opening happens in a child process that is root without any
 * capability (setpriv empties its bounding set): the kernel then applies the modes to it like to
 * any owner, and refuses the writes exactly as it would to an unprivileged host. It stays uid 0,
 * so it still reads the checkout wherever that is (a 0700 home or mktemp -d, which a child
 * running as nobody could not enter). As any other user the child runs under the test's own uid.
 */
import { spawnSync } from 'node:child_process'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { openStateStore } from '../src/store/open.js'
import { historyRow, tempDir } from './fixtures/store-rows.js'
import { runTs } from './fixtures/store-spawn.js'

const asRoot = process.getuid?.() === 0
const opener = new URL('./fixtures/store-open.ts', import.meta.url)
const hasSetpriv = asRoot && spawnSync('setpriv', ['--version']).status === 0

interface Outcome {
  ok: boolean
  name?: string
  message?: string
  path?: string
}

async function openElsewhere(path: string): Promise<Outcome> {
  // Without setpriv, root's child runs as nobody (uid 65534): then the checkout must be readable by all.
  const as = asRoot && !hasSetpriv ? { uid: 65534, gid: 65534 } : {}
  const wrap = hasSetpriv ? ['setpriv', '--bounding-set=-all', '--inh-caps=-all', '--'] : []
  const r = await runTs(opener, [path], { ...as, cwd: process.cwd() }, wrap)
  if (r.code !== 0) throw new Error(`store-open fixture exited ${r.code}: ${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!)
}

/** A temp dir the unprivileged child can enter. */
async function sharedDir(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t)
  await chmod(dir, 0o755)
  return dir
}

t.test('a writable file opens in the child (the fixture itself works)', async (t) => {
  const dir = await sharedDir(t)
  await chmod(dir, 0o777)
  t.same(await openElsewhere(join(dir, 'state.db')), { ok: true })
})

t.test('a read-only state file', async (t) => {
  const dir = await sharedDir(t)
  await chmod(dir, 0o777)
  const path = join(dir, 'state.db')
  const s = openStateStore(path)
  s.commit({ history: [historyRow()], upserts: [], removals: [] })
  s.close()
  await chmod(path, 0o444)
  t.same(await openElsewhere(path), {
    ok: false,
    name: 'ConfigError',
    message: `state file ${path} is read-only`,
    path,
  })
})

t.test('a read-only directory, no file yet', async (t) => {
  const dir = await sharedDir(t)
  const ro = join(dir, 'ro')
  await mkdir(ro, { mode: 0o555 })
  await chmod(ro, 0o555)
  const path = join(ro, 'state.db')
  const out = await openElsewhere(path)
  t.equal(out.name, 'ConfigError')
  t.equal(out.path, path)
  t.equal(
    out.message,
    `state directory ${ro} is read-only: SQLite needs to create state.db and its -wal and -shm files there`,
  )
})

t.test('a writable file in a read-only directory (SQLite could not create its -wal)', async (t) => {
  const dir = await sharedDir(t)
  const ro = join(dir, 'ro')
  await mkdir(ro)
  const path = join(ro, 'state.db')
  await writeFile(path, '')
  await chmod(path, 0o666)
  await chmod(ro, 0o555)
  const out = await openElsewhere(path)
  t.equal(out.name, 'ConfigError')
  t.match(out.message, `state directory ${ro} is read-only`)
})

t.test('a directory that cannot be created for lack of permission', async (t) => {
  const dir = await sharedDir(t)
  await chmod(dir, 0o555) // not even its owner may add to it
  const path = join(dir, 'sub', 'state.db')
  const out = await openElsewhere(path)
  t.equal(out.name, 'ConfigError')
  t.match(out.message, `cannot create directory ${join(dir, 'sub')} for the state file ${path}: EACCES`)
})
