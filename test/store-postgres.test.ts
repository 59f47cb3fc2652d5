/**
 * Several hosts on one PostgreSQL database are one KMS host: one identity, one count, across
 * restarts and a database outage. A real throwaway cluster (test/fixtures/pg-cluster.ts).
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { startHost } from '../src/api/host.js'
import { ConfigError } from '../src/errors.js'
import { OFFICE2013_APP_ID } from '../src/kms/counter.js'
import { HRESULT } from '../src/kms/hresult.js'
import { openPgStore } from '../src/store/postgres.js'
import { type PgCluster, pgUnavailable, startPgCluster } from './fixtures/pg-cluster.js'
import { activateRaw, baseRequest, WINDOWS_APP } from './fixtures/raw-activate.js'
import { cmidOf, historyRow, T0 } from './fixtures/store-rows.js'

const noPg = pgUnavailable()
if (noPg && process.env.CI) throw new Error(`CI: ${noPg}; install PostgreSQL (.ci/run does)`)
if (noPg) {
  t.comment(`skipping the PostgreSQL host tests: ${noPg}`)
  process.exit(0)
}

let clusterP: Promise<PgCluster> | null = null
const cluster = () => {
  clusterP ??= startPgCluster(t)
  return clusterP
}
const T1 = T0 + 86_400_000
let n = 0
const freshDb = async () => (await cluster()).createDatabase(`hosts_${++n}`)

t.test('two hosts on one database: one identity, each CMID counted once, across restarts', async (t) => {
  const url = await freshDb()
  const a = await startHost({ state: url })
  const b = await startHost({ state: url })
  t.equal(a.stateLocation, url, 'the location names user, host, port and database')
  t.same(b.identity, a.identity, 'the second host reads the identity the first created')
  // 40 distinct clients, spread over both hosts and four connections at once.
  const clients = Array.from({ length: 40 }, () => baseRequest())
  const answers = (
    await Promise.all(
      [0, 1, 2, 3].map((k) =>
        activateRaw(
          (k % 2 ? b : a).port,
          clients.filter((_, i) => i % 4 === k),
        ),
      ),
    )
  ).flat()
  t.ok(answers.every((x) => x.hresult === 0 && x.epid === a.identity.epids.windows))
  t.same(
    answers.map((x) => x.count).sort((x, y) => x! - y!),
    Array.from({ length: 40 }, (_, i) => i + 1),
    'each count reported once: what one host would report',
  )
  // One CMID again, on both hosts: it counts once.
  const again = baseRequest({ cmid: clients[0].cmid })
  t.same((await activateRaw(a.port, [again]))[0].count, 40)
  t.same((await activateRaw(b.port, [again]))[0].count, 40)
  t.equal((await b.pools.fetch())[WINDOWS_APP].length, 40)
  t.equal((await a.readHistory()).length, 42)

  await a.close()
  await b.close()
  const c = await startHost({ state: url })
  t.teardown(() => c.close())
  t.same(c.identity, a.identity, 'the identity survives restarts')
  t.same((await activateRaw(c.port, [baseRequest()]))[0].count, 41, 'and so does the count')
})

t.test('a database outage: requests refused, host up, one error, back on its own', async (t) => {
  const pgc = await cluster()
  const url = await freshDb()
  const host = await startHost({ state: url })
  t.teardown(() => host.close())
  const errors: Error[] = []
  let recovered = 0
  host.events.on('store-error', (e) => errors.push(e))
  host.events.on('store-recovered', () => recovered++)
  t.equal((await activateRaw(host.port, [baseRequest()]))[0].count, 1)

  pgc.stopServer()
  try {
    const during = await activateRaw(host.port, [baseRequest(), baseRequest(), baseRequest()])
    t.same(
      during.map((x) => x.hresult),
      [HRESULT.INVALID_DATA, HRESULT.INVALID_DATA, HRESULT.INVALID_DATA],
      'never answered unrecorded',
    )
    t.equal(errors.length, 1, 'one error per outage, not one per request')
    t.match(errors[0].message, url)
    t.equal(host.stateReady, false)
    t.equal(host.stats.storeErrors, 3)
  } finally {
    pgc.startServer()
  }
  const after = await activateRaw(host.port, [baseRequest()])
  t.same(
    after.map((x) => [x.hresult, x.count]),
    [[0, 2]],
    'the refused requests were not counted',
  )
  t.equal(recovered, 1)
  t.equal(host.stateReady, true)
  t.equal((await host.readHistory()).length, 2)
})

t.test('a database that does not answer at start: ConfigError naming host and port, bounded', async (t) => {
  const port = (await cluster()).port
  const url = `postgres://kmslab@127.0.0.1:${port + 1}/nowhere`
  const started = Date.now()
  const err = await startHost({ state: url, stateWaitMs: 600 }).then(
    () => null,
    (e: Error) => e,
  )
  t.type(err, ConfigError)
  t.match(err?.message, `cannot reach PostgreSQL at 127.0.0.1:${port + 1}`)
  t.ok(Date.now() - started < 5000, 'the wait is bounded')
  const missing = await startHost({
    state: `postgres://kmslab@127.0.0.1:${port}/no_such_db_${randomUUID().slice(0, 8)}`,
  }).then(
    () => null,
    (e: Error) => e,
  )
  t.type(missing, ConfigError, 'a database that refuses us is not waited for')
  t.match(missing?.message, 'does not exist')
})

t.test('the operations figures from PostgreSQL: totals, client details, history windows', async (t) => {
  const url = await freshDb()
  const s = await openPgStore(url)
  t.teardown(() => s.close())
  const O = OFFICE2013_APP_ID
  const client = (i: number, licenseStatus = 1) => ({
    workstation: `pc-${i}`,
    skuId: '2de67392-b7a7-462a-b1ca-108dd189f588',
    licenseStatus,
    vm: i % 2 === 0,
  })
  await s.commit({
    history: [
      historyRow({ licenseStatus: 1 }),
      historyRow({ licenseStatus: 5, hresult: 0xc004f042, reportedCount: null }),
    ],
    upserts: [{ appId: WINDOWS_APP, cmid: cmidOf(1), lastSeen: T0, client: client(1) }],
    removals: [],
  })
  // one batch: a second request of cmid 1, and cmid 2 dropped then back (it starts over)
  await s.commit({
    history: [historyRow({ licenseStatus: 1 })],
    upserts: [
      { appId: WINDOWS_APP, cmid: cmidOf(1), lastSeen: T0 + 10, client: client(1, 2) },
      { appId: WINDOWS_APP, cmid: cmidOf(2), lastSeen: T0 + 20, client: client(2) },
    ],
    removals: [{ appId: WINDOWS_APP, cmid: cmidOf(2) }],
  })
  t.same(await s.requestTotals(), { total: 3, failed: 1, byLicenseStatus: { 1: 2, 5: 1 } })
  t.same(await s.loadPoolClients(), [
    { appId: WINDOWS_APP, cmid: cmidOf(1), lastSeen: T0 + 10, firstSeen: T0, ...client(1, 2), requests: 2 },
    { appId: WINDOWS_APP, cmid: cmidOf(2), lastSeen: T0 + 20, firstSeen: T0 + 20, ...client(2), requests: 1 },
  ])
  const rows = Array.from({ length: 1234 }, (_, i) =>
    historyRow({
      time: T1 + i * 1000,
      cmid: cmidOf(i),
      appId: i % 3 === 0 ? O : WINDOWS_APP,
      clientTime: T1,
      graceMinutes: i,
    }),
  )
  await s.commit({ history: rows, upserts: [], removals: [] })
  const queries = [
    { sinceMs: T1 },
    { sinceMs: T1, limit: 10 },
    { limit: 0 },
    { sinceMs: T1 + 100_000, untilMs: T1 + 700_000 },
    { appId: O.toUpperCase(), limit: 501, untilMs: T1 + 1_200_000 },
  ]
  for (const q of queries) {
    const want = rows.filter(
      (r) =>
        r.time >= (q.sinceMs ?? -Infinity) &&
        r.time <= (q.untilMs ?? Infinity) &&
        (q.appId === undefined || r.appId === q.appId.toLowerCase()),
    )
    const expected = q.limit === undefined ? want : q.limit === 0 ? [] : want.slice(-q.limit)
    t.same(await s.readHistory(q), expected, `read ${JSON.stringify(q)}`)
    const iterated = []
    for await (const r of s.iterateHistory(q)) iterated.push(r)
    t.same(iterated, expected, `iterate ${JSON.stringify(q)}`)
  }
})

t.test(
  'values a client chooses travel as literals intact: quotes, backslashes, dollars, semicolons',
  async (t) => {
    const url = await freshDb()
    const s = await openPgStore(url)
    t.teardown(() => s.close())
    const hostile = [
      `o'brien\\'; DROP TABLE kmslab_pool; --`,
      'back\\slash \\\\ "quoted" $$dollar$$ $x$tag$x$',
      'ünïcödé \u2028 tab\tnewline\n',
    ]
    const limits = { capacity: 50, maxPools: 16, retentionMs: 30 * 86_400_000 }
    const items = hostile.map((workstation, i) => {
      const row = historyRow({ workstation, cmid: cmidOf(i + 1), time: T0 + i, rules: [`rule '${i}' \\`] })
      return {
        row,
        count: {
          appId: row.appId,
          cmid: row.cmid,
          requiredCount: 25,
          now: T0 + i,
          mode: { kind: 'real' as const },
        },
      }
    })
    const counted = await s.recordItems(items, limits)
    t.same(
      counted.map((c) => c?.outcome.poolSize),
      [1, 2, 3],
      'counted in order',
    )
    const history = await s.readHistory()
    t.same(
      history.map((r) => [r.workstation, r.rules]),
      hostile.map((w, i) => [w, [`rule '${i}' \\`]]),
    )
    t.same(
      (await s.loadPoolClients()).map((c) => c.workstation),
      hostile,
    )
    t.equal((await s.loadPoolEntries()).length, 3, 'the pool table is still there')
  },
)
