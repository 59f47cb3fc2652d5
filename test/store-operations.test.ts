/**
 * What the host's operations read from the state: cumulative request figures that survive a
 * reopen, pool entries with their client details, history by time window and application read a
 * page at a time, a read-only open beside a writer, and the upgrade of a version-1 file.
 */
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { OFFICE2013_APP_ID, WINDOWS_APP_ID } from '../src/kms/counter.js'
import { StoreWriteError } from '../src/store/errors.js'
import { GroupCommitter } from '../src/store/group-commit.js'
import { openStateStore, openStateStoreReadOnly } from '../src/store/open.js'
import { SCHEMA_VERSION } from '../src/store/sqlite.js'
import type { PoolUpsert, StateStore } from '../src/store/types.js'
import { cmidOf, historyRow, T0, tempDir } from './fixtures/store-rows.js'

const W = WINDOWS_APP_ID
const O = OFFICE2013_APP_ID
const details = (i: number, licenseStatus = 1) => ({
  workstation: `pc-${i}`,
  skuId: '2de67392-b7a7-462a-b1ca-108dd189f588',
  licenseStatus,
  vm: i % 2 === 0,
})
const upsert = (i: number, at: number, licenseStatus = 1): PoolUpsert => ({
  appId: W,
  cmid: cmidOf(i),
  lastSeen: at,
  client: details(i, licenseStatus),
})

const kinds: [string, (t: Parameters<typeof tempDir>[0]) => Promise<StateStore>][] = [
  ['sqlite', async (t) => openStateStore(join(await tempDir(t), 'state.db'))],
  ['memory', async () => openStateStore('memory')],
]

for (const [kind, open] of kinds) {
  t.test(`${kind}: request figures and client details grow with each commit`, async (t) => {
    const s = await open(t)
    t.same(s.requestTotals(), { total: 0, failed: 0, byLicenseStatus: {} })
    s.commit({
      history: [
        historyRow({ licenseStatus: 1 }),
        historyRow({ licenseStatus: 1, cmid: cmidOf(2) }),
        historyRow({ licenseStatus: 5, hresult: 0xc004f042, reportedCount: null }),
        historyRow({ licenseStatus: 0 }),
      ],
      upserts: [upsert(1, T0), upsert(2, T0 + 5, 3)],
      removals: [],
    })
    s.commit({ history: [historyRow({ licenseStatus: 1 })], upserts: [upsert(1, T0 + 10, 2)], removals: [] })
    // a seeded entry: no client details, no request
    s.commit({ history: [], upserts: [{ appId: O, cmid: cmidOf(3), lastSeen: T0 + 20 }], removals: [] })
    t.same(s.requestTotals(), { total: 5, failed: 1, byLicenseStatus: { 0: 1, 1: 3, 5: 1 } })
    t.same(s.loadPoolClients(), [
      { appId: W, cmid: cmidOf(2), lastSeen: T0 + 5, firstSeen: T0 + 5, ...details(2, 3), requests: 1 },
      { appId: W, cmid: cmidOf(1), lastSeen: T0 + 10, firstSeen: T0, ...details(1, 2), requests: 2 },
      {
        appId: O,
        cmid: cmidOf(3),
        lastSeen: T0 + 20,
        firstSeen: T0 + 20,
        workstation: null,
        skuId: null,
        licenseStatus: null,
        vm: null,
        requests: 0,
      },
    ])
    t.same(
      s.loadPoolEntries().find((e) => e.cmid === cmidOf(1)),
      { appId: W, cmid: cmidOf(1), lastSeen: T0 + 10 },
      'the counter still loads plain entries',
    )
    s.close()
  })

  t.test(`${kind}: a failed commit adds nothing to the figures`, async (t) => {
    const s = await open(t)
    s.setWriteFailure(() => new Error('injected'))
    t.throws(
      () => s.commit({ history: [historyRow()], upserts: [upsert(1, T0)], removals: [] }),
      StoreWriteError,
    )
    s.setWriteFailure(null)
    t.same(s.requestTotals(), { total: 0, failed: 0, byLicenseStatus: {} })
    t.same(s.loadPoolClients(), [])
    s.close()
  })

  t.test(`${kind}: group commits sum the requests of one client; a removed one starts over`, async (t) => {
    const s = await open(t)
    s.commit({ history: [], upserts: [upsert(1, T0), upsert(2, T0)], removals: [] })
    const g = new GroupCommitter(s)
    await Promise.all([
      g.submit({ history: [historyRow()], upserts: [upsert(1, T0 + 1)], removals: [] }),
      g.submit({ history: [historyRow()], upserts: [upsert(1, T0 + 2)], removals: [] }),
      g.submit({ history: [], upserts: [], removals: [{ appId: W, cmid: cmidOf(2) }] }),
      g.submit({ history: [historyRow()], upserts: [upsert(2, T0 + 3)], removals: [] }),
    ])
    t.equal(g.stats.commits, 1, 'one transaction')
    const byCmid = new Map(s.loadPoolClients().map((c) => [c.cmid, c]))
    t.equal(byCmid.get(cmidOf(1))?.requests, 3)
    t.equal(byCmid.get(cmidOf(1))?.firstSeen, T0)
    t.equal(byCmid.get(cmidOf(2))?.requests, 1, 'dropped, then back as a new entry')
    t.equal(byCmid.get(cmidOf(2))?.firstSeen, T0 + 3)
    t.equal(s.requestTotals().total, 3)
    s.close()
  })

  t.test(`${kind}: history by window, application and limit; iterated like read`, async (t) => {
    const s = await open(t)
    const rows = Array.from({ length: 1234 }, (_, i) =>
      historyRow({ time: T0 + i * 1000, cmid: cmidOf(i), appId: i % 3 === 0 ? O : W }),
    )
    s.commit({ history: rows, upserts: [], removals: [] })
    const queries = [
      {},
      { limit: 10 },
      { limit: 0 },
      { sinceMs: T0 + 100_000 },
      { sinceMs: T0 + 100_000, untilMs: T0 + 700_000 },
      { appId: O },
      { appId: O.toUpperCase(), limit: 501, untilMs: T0 + 1_200_000 },
      { sinceMs: T0 + 5_000_000 },
    ]
    const memoryKeeps = kind === 'memory' ? rows.slice(-1000) : rows
    for (const q of queries) {
      const want = memoryKeeps.filter(
        (r) =>
          r.time >= (q.sinceMs ?? -Infinity) &&
          r.time <= (q.untilMs ?? Infinity) &&
          (q.appId === undefined || r.appId === q.appId.toLowerCase()),
      )
      const expected = q.limit === undefined ? want : q.limit === 0 ? [] : want.slice(-q.limit)
      t.same(s.readHistory(q), expected, `read ${JSON.stringify(q)}`)
      t.same([...s.iterateHistory(q)], expected, `iterate ${JSON.stringify(q)}`)
    }
    s.close()
  })
}

t.test(
  'sqlite: figures and client details survive a reopen; rows after the start are not iterated',
  async (t) => {
    const path = join(await tempDir(t), 'state.db')
    const a = openStateStore(path)
    a.commit({ history: [historyRow({ licenseStatus: 4 })], upserts: [upsert(1, T0, 4)], removals: [] })
    a.close()
    const b = openStateStore(path)
    t.same(b.requestTotals(), { total: 1, failed: 0, byLicenseStatus: { 4: 1 } })
    t.equal(b.loadPoolClients()[0].workstation, 'pc-1')
    const it = b.iterateHistory()
    b.commit({ history: [historyRow({ time: T0 + 1 })], upserts: [], removals: [] })
    t.equal([...it].length, 1, 'the row committed after the iteration began is left out')
    // an iteration in progress does not hold the connection: commits go on between pages
    const many = Array.from({ length: 1200 }, (_, i) => historyRow({ time: T0 + 10 + i }))
    b.commit({ history: many, upserts: [], removals: [] })
    let seen = 0
    for (const _ of b.iterateHistory()) {
      if (seen++ === 700) b.commit({ history: [historyRow()], upserts: [], removals: [] })
    }
    t.equal(seen, 1202)
    b.close()
  },
)

t.test('sqlite: a read-only open reads beside a writer and refuses to write', async (t) => {
  const path = join(await tempDir(t), 'state.db')
  const writer = openStateStore(path)
  writer.commit({ history: [historyRow()], upserts: [upsert(1, T0)], removals: [] })
  const reader = openStateStoreReadOnly(path)
  t.equal(reader.historyCount(), 1)
  writer.commit({ history: [historyRow({ licenseStatus: 6 })], upserts: [], removals: [] })
  t.equal(reader.historyCount(), 2, 'sees the writer commit')
  t.same(reader.requestTotals(), { total: 2, failed: 0, byLicenseStatus: { 2: 1, 6: 1 } })
  t.throws(() => reader.commit({ history: [historyRow()], upserts: [], removals: [] }), StoreWriteError)
  reader.close()
  writer.commit({ history: [historyRow()], upserts: [], removals: [] })
  t.equal(writer.historyCount(), 3, 'the writer goes on')
  writer.close()
  t.throws(() => openStateStoreReadOnly(join(path, '..', 'missing.db')), { name: 'ConfigError' })
  t.throws(() => openStateStoreReadOnly('memory'), { name: 'UsageError' })
})

t.test('sqlite: a version-1 file is upgraded at open, figures taken from its history', async (t) => {
  const path = join(await tempDir(t), 'state.db')
  const db = new Database(path)
  db.exec(`
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE identity (
      id INTEGER PRIMARY KEY CHECK (id = 1), epids TEXT NOT NULL, hwid TEXT NOT NULL,
      host_build INTEGER NOT NULL, lcid INTEGER NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE pool (
      app_id TEXT NOT NULL, cmid TEXT NOT NULL, last_seen INTEGER NOT NULL,
      PRIMARY KEY (app_id, cmid)) WITHOUT ROWID;
    CREATE TABLE history (
      id INTEGER PRIMARY KEY, time INTEGER NOT NULL, client_address TEXT NOT NULL,
      workstation TEXT NOT NULL, cmid TEXT NOT NULL, previous_cmid TEXT NOT NULL, app_id TEXT NOT NULL,
      sku_id TEXT NOT NULL, kms_id TEXT NOT NULL, required_count INTEGER NOT NULL, reported_count INTEGER,
      hresult INTEGER NOT NULL, protocol TEXT NOT NULL, vm INTEGER NOT NULL, license_status INTEGER NOT NULL,
      epid TEXT, rules TEXT NOT NULL);
    CREATE INDEX history_time ON history (time);
    INSERT INTO meta VALUES ('application', 'kmslab'), ('schema_version', '1');
    INSERT INTO pool VALUES ('${W}', '${cmidOf(1)}', ${T0 + 2000}), ('${W}', '${cmidOf(9)}', ${T0});
  `)
  const ins = db.prepare(
    `INSERT INTO history (time, client_address, workstation, cmid, previous_cmid, app_id, sku_id, kms_id,
      required_count, reported_count, hresult, protocol, vm, license_status, epid, rules)
     VALUES (?, '192.0.2.1', ?, ?, '', ?, 'sku', 'kms', 25, ?, ?, '6.0', ?, ?, NULL, '[]')`,
  )
  ins.run(T0, 'old-name', cmidOf(1), W, 3, 0, 0, 1)
  ins.run(T0 + 1000, 'other', cmidOf(2), W, null, 0xc004f042, 0, 1)
  ins.run(T0 + 2000, 'new-name', cmidOf(1), W, 4, 0, 1, 2)
  db.close()
  t.throws(() => openStateStoreReadOnly(path), { name: 'ConfigError', message: /schema version 1/ })
  const s = openStateStore(path)
  t.same(s.requestTotals(), { total: 3, failed: 1, byLicenseStatus: { 1: 2, 2: 1 } })
  const clients = s.loadPoolClients()
  t.same(clients[1], {
    appId: W,
    cmid: cmidOf(1),
    lastSeen: T0 + 2000,
    firstSeen: T0,
    workstation: 'new-name',
    skuId: 'sku',
    licenseStatus: 2,
    vm: true,
    requests: 2,
  })
  t.same(
    { ...clients[0], appId: undefined },
    {
      appId: undefined,
      cmid: cmidOf(9),
      lastSeen: T0,
      firstSeen: T0,
      workstation: null,
      skuId: null,
      licenseStatus: null,
      vm: null,
      requests: 0,
    },
    'an entry with no history left keeps what it had',
  )
  s.close()
  const again = new Database(path, { readonly: true })
  t.equal(
    again.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).pluck().get(),
    String(SCHEMA_VERSION),
  )
  again.close()
  t.ok(openStateStoreReadOnly(path).requestTotals().total === 3, 'readable read-only once upgraded')
})
