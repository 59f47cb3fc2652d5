// The host's HTTP port, in-process, on loopback port 0: metrics parsed from the exposition text
// and checked against the requests sent, the JSON API, history in three formats, server-sent
// events, the token, --allow, limits on what a peer may send, and static files.
import { request as httpRequest } from 'node:http'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { type ActivateOptions, activate } from '../src/client/activate.js'
import { UsageError } from '../src/errors.js'
import { startHost } from '../src/host/host.js'
import type { KmsHost } from '../src/host/types.js'
import { HTTP_LIMITS } from '../src/http/server.js'
import { parseExposition, sampleValue } from './fixtures/prom-text.js'

const OFFICE_2016 = 'Office Professional Plus 2016'
const run = (host: KmsHost, options: ActivateOptions = {}) =>
  activate({ host: '127.0.0.1', port: host.port }, { timeoutMs: 5000, ...options })

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers })
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() }
}

/** Sends raw bytes and collects what comes back until the server closes (or `ms` passes). */
function raw(port: number, bytes: string, ms = 5000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let text = ''
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ text, closed: false })
    }, ms)
    s.on('data', (d) => {
      text += d
    })
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ text, closed: true })
    })
    s.on('error', () => {})
    s.write(bytes)
  })
}

const REQUESTS = [
  { workstation: 'pc-unlicensed', licenseStatus: 0 },
  { workstation: 'pc-licensed-1', licenseStatus: 1 },
  { workstation: 'pc-licensed-2', licenseStatus: 1 },
  { workstation: 'pc-notify', licenseStatus: 5 },
  { workstation: 'pc-extended', licenseStatus: 6, vm: true },
  { workstation: 'office,desk', licenseStatus: 2, product: OFFICE_2016 },
  { workstation: 'refuse-me', licenseStatus: 4 },
]

t.test('metrics, status, clients and history tell the requests sent', async (t) => {
  const host = await startHost({
    http: { listen: '127.0.0.1:0' },
    rules: [{ name: 'no', match: { workstation: 'refuse-me' }, action: { refuse: 0xc004f042 } }],
  })
  t.teardown(() => host.close())
  t.match(host.httpUrl, /^http:\/\/127\.0\.0\.1:\d+\/$/)
  const base = host.httpUrl!
  for (const r of REQUESTS) await run(host, r)
  // the same client twice more: counted once in the pool, three requests in its entry
  const again = {
    workstation: 'pc-licensed-1',
    licenseStatus: 1,
    cmid: '6f1e0a52-7c3d-4b8e-9a10-000000000001',
  }
  await run(host, again)
  await run(host, again)
  await run(host, again)
  const sent = REQUESTS.length + 3

  const m = await get(`${base}metrics`)
  t.equal(m.status, 200)
  t.match(m.type, /^text\/plain; version=0\.0\.4/)
  const f = parseExposition(m.body)
  t.equal(f.get('kmslab_requests_total')?.type, 'counter')
  const req = (labels: Record<string, string>) => sampleValue(f, 'kmslab_requests_total', labels)
  // real counter, an empty pool: every answer is below its threshold
  t.equal(
    req({ application: 'windows', outcome: 'below_threshold', license_status: 'unlicensed', protocol: '6' }),
    1,
  )
  t.equal(
    req({ application: 'windows', outcome: 'below_threshold', license_status: 'licensed', protocol: '6' }),
    5,
  )
  t.equal(req({ application: 'windows', outcome: 'below_threshold', license_status: 'notification' }), 1)
  t.equal(req({ application: 'windows', outcome: 'below_threshold', license_status: 'extended_grace' }), 1)
  t.equal(req({ application: 'office2013', outcome: 'below_threshold', license_status: 'initial_grace' }), 1)
  t.equal(req({ application: 'windows', outcome: 'refused', license_status: 'non_genuine_grace' }), 1)
  const all = f.get('kmslab_requests_total')!.samples.reduce((n, s) => n + s.value, 0)
  t.equal(all, sent, 'every request in exactly one series')
  t.equal(sampleValue(f, 'kmslab_current_count', { application: 'windows' }), 6)
  t.equal(sampleValue(f, 'kmslab_current_count', { application: 'office2013' }), 1)
  t.equal(sampleValue(f, 'kmslab_current_count', { application: 'office2010' }), 0)
  t.equal(f.get('kmslab_request_duration_seconds')?.type, 'histogram')
  t.equal(sampleValue(f, 'kmslab_request_duration_seconds_count'), sent)
  t.equal(sampleValue(f, 'kmslab_request_duration_seconds_bucket', { le: '+Inf' }), sent)
  t.equal(f.get('kmslab_connections_active')?.type, 'gauge')
  t.ok((sampleValue(f, 'kmslab_connections_active') ?? -1) >= 0)
  t.equal(sampleValue(f, 'kmslab_build_info', { version: '0.1.0' }), 1)
  t.equal(f.get('kmslab_rpc_faults_total')?.type, 'counter')
  t.ok((sampleValue(f, 'process_cpu_user_seconds_total') ?? 0) > 0, 'default process metrics')
  t.equal(f.get('nodejs_eventloop_lag_seconds')?.type, 'gauge')

  const status = JSON.parse((await get(`${base}api/status`)).body)
  t.same(status.requests, {
    total: sent,
    failed: 1,
    byLicenseStatus: {
      unlicensed: 1,
      licensed: 5,
      initialGrace: 1,
      outOfToleranceGrace: 0,
      nonGenuineGrace: 1,
      notification: 1,
      extendedGrace: 1,
    },
    otherLicenseStatus: 0,
  })
  t.same(status, host.status(), '/api/status is host.status()')
  const windows = status.pools.find((p: { application: string }) => p.application === 'windows')
  t.equal(windows.currentCount, 6, 'five clients and the one that came back')
  t.same(
    windows.thresholds.map((x: { required: number; missing: number }) => [x.required, x.missing]),
    [
      [5, 0],
      [25, 19],
    ],
  )
  t.equal(status.recent.length, 5)
  t.equal(status.recent.at(-1).workstation, 'pc-licensed-1')

  const clients = JSON.parse((await get(`${base}api/clients`)).body)
  t.equal(clients.length, 7, 'the refused one is not in a pool')
  const again1 = clients.find((c: { cmid: string }) => c.cmid === again.cmid)
  t.match(again1, { workstation: 'pc-licensed-1', licenseStatus: 1, requests: 3, application: 'windows' })
  t.ok(Date.parse(again1.firstSeen) <= Date.parse(again1.lastSeen))
  t.match(
    clients.find((c: { workstation: string }) => c.workstation === 'pc-extended'),
    { vm: true, licenseStatus: 6 },
  )
  const office = JSON.parse((await get(`${base}api/clients?application=office2013`)).body)
  t.same(
    office.map((c: { workstation: string }) => c.workstation),
    ['office,desk'],
  )
  t.match(office[0].product, /Office/)
  t.equal((await get(`${base}api/clients?application=nonsense`)).status, 400)

  // history, three formats, the same rows
  const json = JSON.parse((await get(`${base}api/history?format=json`)).body)
  t.equal(json.length, sent)
  const nd = (await get(`${base}api/history?format=ndjson`)).body
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l))
  t.same(nd, json)
  const csv = await get(`${base}api/history?format=csv`)
  t.match(csv.type, /^text\/csv/)
  const lines = csv.body.split('\r\n').filter((l) => l !== '')
  t.same(lines[0].split(','), Object.keys(json[0]), 'CSV header names the JSON keys')
  t.equal(lines.length, sent + 1)
  t.ok(
    lines.some((l) => l.includes('"office,desk"')),
    'a comma in a field is quoted',
  )
  for (const r of json) {
    t.match(r.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    t.match(r.clientTime, /Z$/)
  }
  t.same(
    json.map((r: { licenseStatus: number }) => r.licenseStatus),
    [...REQUESTS.map((r) => r.licenseStatus), 1, 1, 1],
  )
  t.equal(json[6].hresult, '0xC004F042')
  const last2 = JSON.parse((await get(`${base}api/history?limit=2`)).body)
  t.same(last2, json.slice(-2))
  const since = JSON.parse((await get(`${base}api/history?since=${json[3].time}&until=${json[5].time}`)).body)
  t.same(
    since.map((r: { workstation: string }) => r.workstation),
    json
      .filter((r: { time: string }) => r.time >= json[3].time && r.time <= json[5].time)
      .map((r: { workstation: string }) => r.workstation),
  )
  const officeRows = JSON.parse((await get(`${base}api/history?application=office2013`)).body)
  t.equal(officeRows.length, 1)
  const bad = await get(`${base}api/history?format=xml`)
  t.equal(bad.status, 400)
  t.match(JSON.parse(bad.body).error, /format/)
  t.equal((await get(`${base}api/history?since=yesterday`)).status, 400)
})

t.test('server-sent events: an activation arrives as it happens', async (t) => {
  const host = await startHost({ http: { listen: '127.0.0.1:0' }, counter: 'fixed:30' })
  t.teardown(() => host.close())
  const url = new URL('api/events', host.httpUrl!)
  const got = new Promise<{ type: string; data: Record<string, unknown> }>((resolve, reject) => {
    const req = httpRequest(url, (res) => {
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], /^text\/event-stream/)
      let buf = ''
      res.on('data', (d) => {
        buf += d
        const m = /event: activation\ndata: (.*)\n\n/.exec(buf)
        if (m) {
          resolve({ type: 'activation', data: JSON.parse(m[1]) })
          req.destroy()
        } else if (buf.includes('kmslab activations'))
          void run(host, { workstation: 'sse-pc', licenseStatus: 1 })
      })
    })
    req.on('error', reject)
    req.end()
  })
  const ev = await got
  t.match(ev.data, {
    event: 'activation',
    workstation: 'sse-pc',
    licenseStatus: 1,
    reportedCount: 30,
    outcome: 'answer',
  })
  t.equal(ev.data.request, undefined, 'the decoded request stays out, as in the JSON log')
})

t.test('a token guards every endpoint but /healthz', async (t) => {
  const token = 's3cret-token-for-tests'
  const host = await startHost({ http: { listen: '127.0.0.1:0', token } })
  t.teardown(() => host.close())
  const base = host.httpUrl!
  t.equal((await get(`${base}healthz`)).status, 200)
  for (const path of [
    'readyz',
    'metrics',
    'api/status',
    'api/clients',
    'api/history',
    'api/events',
    'api/products',
    'api/config',
  ]) {
    const none = await get(`${base}${path}`)
    t.equal(none.status, 401, `/${path} without a token`)
    t.equal((await get(`${base}${path}`, { authorization: 'Bearer wrong-token-x' })).status, 401)
  }
  t.equal((await get(`${base}api/status`, { authorization: `Bearer ${token}` })).status, 200)
  t.equal((await get(`${base}readyz?token=${token}`)).status, 200, '?token= for EventSource and the page')
  t.equal((await get(`${base}api/status?token=nope`)).status, 401)
  // the page asks for the token, so it and its files load without it; they hold no host data
  t.equal((await get(base)).status, 200, 'the page loads without the token')
  t.equal((await get(`${base}web/app.js`)).status, 200, 'its script too')
})

t.test('off loopback without a token: refused before anything listens', async (t) => {
  await t.rejects(startHost({ http: { listen: '0.0.0.0:0' } }), UsageError)
  await t.rejects(startHost({ http: { listen: '0.0.0.0:0' } }), { message: /needs --http-token/ })
  await t.rejects(startHost({ http: { listen: '127.0.0.1:0', token: 'short' } }), UsageError)
})

t.test('--allow applies to the HTTP port too', async (t) => {
  const host = await startHost({ http: { listen: '127.0.0.1:0' }, allow: ['192.0.2.0/24'] })
  t.teardown(() => host.close())
  const port = Number(new URL(host.httpUrl!).port)
  const r = await raw(port, 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n')
  t.same(r, { text: '', closed: true }, 'closed without a byte')
})

t.test('read-only, 404s, static files and no way out of web/', async (t) => {
  const host = await startHost({ http: { listen: '127.0.0.1:0' } })
  t.teardown(() => host.close())
  const base = host.httpUrl!
  const port = Number(new URL(base).port)
  t.equal((await get(`${base}readyz`)).status, 200)
  const post = await fetch(`${base}api/status`, { method: 'POST', body: 'x' })
  t.equal(post.status, 405)
  t.equal(post.headers.get('allow'), 'GET, HEAD')
  t.equal((await get(`${base}api/nothing`)).status, 404)
  const page = await get(base)
  t.equal(page.status, 200)
  t.match(page.type, /^text\/html/)
  t.match(page.body, /<html/i)
  for (const path of [
    '/web/../package.json',
    '/web/%2e%2e/package.json',
    '/web/..%2fpackage.json',
    '/web/%00x.js',
  ]) {
    const r = await raw(port, `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`)
    t.match(r.text, /^HTTP\/1\.1 (404|400) /, `${path} is not served`)
    t.notMatch(r.text, /"name": "kmslab"/)
  }
  const products = JSON.parse((await get(`${base}api/products`)).body)
  t.ok(products.length > 50)
  t.match(
    products.find((p: { name: string }) => p.name === OFFICE_2016),
    { gvlk: /^[A-Z0-9]{5}(-[A-Z0-9]{5}){4}$/ },
  )
  const config = JSON.parse((await get(`${base}api/config`)).body)
  t.equal(config.kmsPort, host.port)
  t.equal(config.targets[0].commands.windows, `slmgr /skms 127.0.0.1:${host.port}`)
  t.same(config.targets[0].commands.office.slice(0, 2), [
    'cscript ospp.vbs /sethst:127.0.0.1',
    `cscript ospp.vbs /setprt:${host.port}`,
  ])
  t.match(config.targets[0].dnsSrv, new RegExp(`^_vlmcs\\._tcp\\.\\S+ \\d+ IN SRV 0 0 ${host.port} \\S+\\.$`))
})

t.test('junk, oversized and slowloris requests on HTTP do not disturb activations', async (t) => {
  const host = await startHost({ http: { listen: '127.0.0.1:0' }, counter: 'fixed:30' })
  t.teardown(() => host.close())
  const port = Number(new URL(host.httpUrl!).port)
  // slowloris: 20 sockets dribbling a header a byte at a time
  const slow: Socket[] = []
  const closed: Promise<void>[] = []
  for (let i = 0; i < 20; i++) {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    s.resume()
    closed.push(new Promise((r) => s.on('close', () => r())))
    s.write('GET /api/status HTTP/1.1\r\nx-a: ')
    slow.push(s)
  }
  const dribble = setInterval(() => {
    for (const s of slow) if (!s.destroyed) s.write('a')
  }, 200)
  t.teardown(() => {
    clearInterval(dribble)
    for (const s of slow) s.destroy()
  })
  const junk = raw(port, '\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n')
  const huge = raw(
    port,
    `GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(HTTP_LIMITS.maxHeaderBytes * 2)}\r\n\r\n`,
  )
  const reports = []
  for (let i = 0; i < 10; i++) reports.push(await run(host, { workstation: `busy-${i}` }))
  t.same(
    reports.map((r) => r.exitCode),
    Array(10).fill(0),
    'every activation succeeded meanwhile',
  )
  t.match((await junk).text, /^HTTP\/1\.1 400 /)
  t.match((await huge).text, /^HTTP\/1\.1 431 /)
  // the slow ones are cut off once the header deadline passes
  const cut = await Promise.race([
    Promise.all(closed).then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), HTTP_LIMITS.headersTimeoutMs + 5000)),
  ])
  t.ok(cut, `slowloris sockets closed within ${HTTP_LIMITS.headersTimeoutMs / 1000} s (+ the check interval)`)
  t.equal((await run(host, { workstation: 'after' })).exitCode, 0)
})
