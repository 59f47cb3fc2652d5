/**
 * `kmslab serve --workers N` is one host: each CMID counted once whichever worker answers, a
 * worker killed -9 under load loses nothing answered and is replaced, SIGTERM stops them all.
 * Runs dist/ as users do (npm run build first).
 */
import { execFileSync } from 'node:child_process'
import { Resolver } from 'node:dns/promises'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import { openStateStoreReadOnly } from '../src/store/open.js'
import { pgUnavailable, startPgCluster } from './fixtures/pg-cluster.js'
import { parseExposition } from './fixtures/prom-text.js'
import { activateRaw, baseRequest } from './fixtures/raw-activate.js'
import { type ServeProcess, startServe } from './fixtures/serve-process.js'
import { tempDir } from './fixtures/store-rows.js'

// several hosts of several processes each: slow to start on a loaded 2-core machine
t.setTimeout(300_000)

const workersOf = (p: ServeProcess): number[] => {
  try {
    return execFileSync('ps', ['--ppid', String(p.child.pid), '-o', 'pid='], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.trim())
      .map(Number)
  } catch {
    return []
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** 40 distinct CMIDs over 8 connections at once, then each again on other connections. */
async function countsOnce(t: Tap, port: number) {
  const clients = Array.from({ length: 40 }, () => baseRequest())
  const spread = (shift: number) =>
    Promise.all(
      [0, 1, 2, 3, 4, 5, 6, 7].map((k) =>
        activateRaw(
          port,
          clients.filter((_, i) => (i + shift) % 8 === k),
        ),
      ),
    ).then((a) => a.flat())
  const first = await spread(0)
  t.same(
    first.map((a) => a.count).sort((a, b) => a! - b!),
    Array.from({ length: 40 }, (_, i) => i + 1),
    'N distinct CMIDs over several workers count exactly N, each count reported once',
  )
  const again = await spread(3)
  t.ok(
    again.every((a) => a.count === 40),
    'a repeated CMID counts once, whichever worker sees it',
  )
}
type Tap = Pick<typeof t, 'same' | 'ok'>

t.test('memory state, two workers: one identity, one count; SIGTERM stops all', async (t) => {
  const host = await startServe(['--state', 'memory', '--workers', '2', '--quiet'], 40_000)
  t.teardown(() => host.child.kill('SIGKILL'))
  const workers = workersOf(host)
  t.equal(workers.length, 2, 'two worker processes')
  t.equal(host.stdout().match(/HWID/g)?.length, 1, 'one banner')
  await countsOnce(t, host.port)
  const hwid = /HWID ([0-9A-F]{16})/.exec(host.stdout())?.[1]
  const seen = await Promise.all(Array.from({ length: 6 }, () => activateRaw(host.port, [baseRequest()])))
  t.ok(
    seen.every(([a]) => a.hwid === hwid),
    'every worker answers with the one identity',
  )
  host.child.kill('SIGTERM')
  t.equal(await host.exited, 0)
  t.same(workers.filter(alive), [], 'the workers are gone')
})

/** The SSE stream's activation CMIDs, as they arrive, until `stop`. */
function activationStream(url: URL, opened: () => void) {
  const cmids = new Set<string>()
  const req = httpRequest(url, (res) => {
    let buf = ''
    let started = false
    res.on('data', (d) => {
      buf += d
      if (!started && buf.includes('kmslab activations')) {
        started = true
        opened()
      }
      for (const m of buf.matchAll(/event: activation\ndata: (.*)\n\n/g)) cmids.add(JSON.parse(m[1]).cmid)
    })
  })
  req.on('error', () => {})
  req.end()
  return { cmids, stop: () => req.destroy() }
}

t.test('two workers, one --http and one DNS: status, metrics and events cover both workers', async (t) => {
  const host = await startServe(
    ['--state', 'memory', '--workers', '2', '--http', '127.0.0.1:0', '--quiet'].concat([
      '--dns-domain',
      'lab.test',
      '--dns-listen',
      '127.0.0.1:0',
      '--dns-name',
      'kms',
    ]),
    40_000,
  )
  t.teardown(() => host.child.kill('SIGKILL'))
  const base = /HTTP on (http:\/\/\S+?\/)[;\s]/.exec(host.stdout())?.[1]
  t.ok(base, `the banner names the one HTTP port: ${host.stdout()}`)
  if (!base) return
  t.equal(host.stdout().match(/HTTP on/g)?.length, 1, 'one HTTP port')
  // the DNS publication starts once the banner is out
  await host.waitOutput(/DNS: lab\.test on /)
  const dnsPort = /DNS: lab\.test on 127\.0\.0\.1:(\d+)/.exec(host.stdout())?.[1]
  t.equal(host.stdout().match(/DNS: /g)?.length, 1, 'one DNS publication')
  const resolver = new Resolver()
  resolver.setServers([`127.0.0.1:${dnsPort}`])
  t.same(
    (await resolver.resolveSrv('_vlmcs._tcp.lab.test')).map((r) => [r.name, r.port]),
    [['kms.lab.test', host.port]],
    'the primary publishes the shared KMS port',
  )
  let opened: () => void = () => {}
  const open = new Promise<void>((resolve) => {
    opened = resolve
  })
  const stream = activationStream(new URL('api/events', base), () => opened())
  await open
  // 40 CMIDs on 8 connections, then again: 80 requests spread over both workers
  await countsOnce(t, host.port)
  // each on its own connection: the workers take connections in turn
  const single = Array.from({ length: 6 }, () => baseRequest())
  for (const req of single) await activateRaw(host.port, [req])
  const deadline = Date.now() + 5000
  while (Date.now() < deadline && !single.every((r) => stream.cmids.has(r.cmid)))
    await new Promise((r) => setTimeout(r, 50))
  stream.stop()
  t.same(
    single.filter((r) => !stream.cmids.has(r.cmid)),
    [],
    'the event stream carries the activations of either worker',
  )
  const fetchText = async (path: string) => (await fetch(new URL(path, base))).text()
  const status = JSON.parse(await fetchText('api/status'))
  t.equal(status.requests.total, 86, '/api/status counts every request, whichever worker took it')
  t.equal(status.clientsSeen, 46)
  const families = parseExposition(await fetchText('metrics'))
  const requests = families.get('kmslab_requests_total')?.samples ?? []
  t.equal(
    requests.reduce((n, s) => n + s.value, 0),
    86,
    'kmslab_requests_total sums the requests of both workers',
  )
  const active = families.get('kmslab_connections_active')?.samples[0]?.value
  t.equal(active, 0, 'no KMS connection left open')
  host.child.kill('SIGTERM')
  t.equal(await host.exited, 0)
})

t.test('SQLite state: kill -9 of a worker under load loses nothing answered; it is replaced', async (t) => {
  const state = join(await tempDir(t), 'state.db')
  const host = await startServe(['--state', state, '--workers', '2', '--quiet'], 40_000)
  t.teardown(() => host.child.kill('SIGKILL'))
  const [victim] = workersOf(host)
  const answered: string[] = []
  let stop = false
  const load = Array.from({ length: 6 }, async () => {
    while (!stop) {
      const req = baseRequest()
      try {
        const [a] = await activateRaw(host.port, [req])
        if (a.hresult === 0) answered.push(req.cmid)
      } catch {
        // a connection the killed worker held fails: that request was never answered
      }
    }
  })
  await new Promise((r) => setTimeout(r, 700))
  process.kill(victim, 'SIGKILL')
  await host.waitOutput(/./, 100).catch(() => {})
  await new Promise((r) => setTimeout(r, 700))
  stop = true
  await Promise.all(load)
  t.ok(answered.length > 10, `answered under load: ${answered.length}`)
  t.match(host.stderr(), `worker ${victim} died (SIGKILL); starting another`)
  const after = workersOf(host)
  t.equal(after.length, 2, 'a new worker took its place')
  t.notOk(after.includes(victim))
  const [late] = await activateRaw(host.port, [baseRequest()])
  t.equal(late.hresult, 0, 'the host still serves')

  host.child.kill('SIGTERM')
  t.equal(await host.exited, 0)
  const store = openStateStoreReadOnly(state)
  const recorded = new Set(store.readHistory().map((r) => r.cmid))
  store.close()
  const lost = answered.filter((c) => !recorded.has(c))
  t.same(lost, [], 'every answered request is in the history')
})

t.test('a second host on a SQLite file a --workers host owns exits 78', async (t) => {
  const state = join(await tempDir(t), 'state.db')
  const host = await startServe(['--state', state, '--workers', '2', '--quiet'], 40_000)
  t.teardown(() => host.child.kill('SIGKILL'))
  const second = await startServe(['--state', state], 40_000).then(
    () => null,
    (e: Error) => e,
  )
  t.match(second?.message, /serve exited 78/)
  t.match(second?.message, `is in use by kmslab host pid ${host.child.pid}`)
  host.child.kill('SIGTERM')
  t.equal(await host.exited, 0)
})

const noPg = pgUnavailable()
if (noPg && process.env.CI) throw new Error(`CI: ${noPg}; install PostgreSQL (.ci/run does)`)
if (noPg) t.comment(`skipping workers on PostgreSQL: ${noPg}`)
else {
  t.test('PostgreSQL state: workers and a second host count as one', async (t) => {
    const url = await (await startPgCluster(t)).createDatabase('workers')
    const a = await startServe(['--state', url, '--workers', '2', '--http', '127.0.0.1:0', '--quiet'], 40_000)
    t.teardown(() => a.child.kill('SIGKILL'))
    await countsOnce(t, a.port)
    // the primary's HTTP port reads the database (a snapshot refreshed every 2 s)
    const base = /HTTP on (http:\/\/\S+?\/)[;\s]/.exec(a.stdout())?.[1]
    let total = -1
    for (let i = 0; i < 50 && total !== 80 && base; i++) {
      await new Promise((r) => setTimeout(r, 200))
      const status = (await (await fetch(new URL('api/status', base))).json()) as {
        requests: { total: number }
      }
      total = status.requests.total
    }
    t.equal(total, 80, "the primary's /api/status counts what both workers recorded in the database")
    const b = await startServe(['--state', url, '--quiet'], 40_000)
    t.teardown(() => b.child.kill('SIGKILL'))
    const [seen] = await activateRaw(b.port, [baseRequest()])
    t.equal(seen.count, 41, 'a separate host on the same database continues the count')
    a.child.kill('SIGTERM')
    b.child.kill('SIGTERM')
    t.equal(await a.exited, 0)
    t.equal(await b.exited, 0)
  })
}
