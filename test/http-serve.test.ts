// `kmslab serve --http` as users run it (a child process from dist/, a state file in a temp dir):
// request figures per license status carried across a restart, read over HTTP, by
// `kmslab status` and `kmslab history` beside the running host; SIGUSR1's report; exit 64 for an
// exposed HTTP port without a token.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { activate } from '../src/client/activate.js'
import { BIN, type ServeProcess, startServe } from './fixtures/serve-process.js'
import { tempDir } from './fixtures/store-rows.js'

function kmslab(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      err += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, out, err })
    })
  })
}

function httpUrlOf(p: ServeProcess): string {
  const listening = p
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .find((e) => e.event === 'listening')
  return listening.http
}

async function stop(p: ServeProcess): Promise<void> {
  p.child.kill('SIGTERM')
  await p.exited
}

const send = (port: number, licenseStatus: number, workstation: string) =>
  activate({ host: '127.0.0.1', port }, { timeoutMs: 5000, licenseStatus, workstation })

t.test('figures survive a restart; status and history read them beside the host', async (t) => {
  const state = join(await tempDir(t), 'state.db')
  const args = ['--state', state, '--http', '127.0.0.1:0', '--log-format', 'json', '--counter', 'charged']
  const first = await startServe(args)
  t.teardown(() => first.child.kill('SIGKILL'))
  t.match(httpUrlOf(first), /^http:\/\/127\.0\.0\.1:\d+\/$/, 'the JSON listening event names the URL')
  for (const s of [0, 1, 1, 5]) t.equal((await send(first.port, s, `first-${s}`)).exitCode, 0)
  await stop(first)

  const second = await startServe(args)
  t.teardown(() => second.child.kill('SIGKILL'))
  for (const s of [1, 3, 6]) await send(second.port, s, `second-${s}`)
  const url = httpUrlOf(second)
  const status = (await (await fetch(`${url}api/status`)).json()) as {
    requests: unknown
    pools: { currentCount: number }[]
  }
  const expected = {
    total: 7,
    failed: 0,
    byLicenseStatus: {
      unlicensed: 1,
      licensed: 3,
      initialGrace: 0,
      outOfToleranceGrace: 1,
      nonGenuineGrace: 0,
      notification: 1,
      extendedGrace: 1,
    },
    otherLicenseStatus: 0,
  }
  t.same(status.requests, expected, 'counted across the restart')
  t.equal(status.pools[0].currentCount, 7)

  // the CLI, from the state file, while the host runs on it
  const text = await kmslab(['status', '--state', state])
  t.equal(text.code, 0, text.err)
  for (const line of [
    'Current count: 7',
    'Total requests received: 7',
    'Failed requests received: 0',
    'Requests with License Status Unlicensed: 1',
    'Requests with License Status Licensed: 3',
    'Requests with License Status Initial grace period: 0',
    'Requests with License Status License expired or Hardware out of tolerance: 1',
    'Requests with License Status Non-genuine grace period: 0',
    'Requests with License Status Notification: 1',
  ])
    t.ok(
      text.out.split('\n').some((l) => l.trim() === line),
      line,
    )
  const fromFile = JSON.parse((await kmslab(['status', '--state', state, '--json'])).out)
  t.same(fromFile.requests, expected)
  const fromUrl = JSON.parse((await kmslab(['status', '--url', url, '--json'])).out)
  t.same(Object.keys(fromUrl), Object.keys(status), '--url --json prints /api/status')
  t.same(fromUrl.requests, expected)

  const csv = await kmslab(['history', '--state', state, '--format', 'csv'])
  t.equal(csv.code, 0, csv.err)
  const rows = csv.out.trimEnd().split('\r\n')
  t.equal(rows.length, 8)
  t.match(rows[0], /^time,clientAddress,workstation,cmid,/)
  const nd = await kmslab(['history', '--url', url, '--format', 'ndjson', '--limit', '3'])
  t.same(
    nd.out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).workstation),
    ['second-1', 'second-3', 'second-6'],
  )
  const lines = await kmslab(['history', '--state', state, '--since', '1h'])
  t.equal(lines.out.trimEnd().split('\n').length, 7)
  t.match(lines.out, /first-0 {2}V6\.0/)
  t.equal((await kmslab(['history', '--state', state, '--since', 'someday'])).code, 64)
  t.equal((await kmslab(['status', '--url', 'http://127.0.0.1:1/'])).code, 1)

  // SIGUSR1: the report in the log, the host goes on
  second.child.kill('SIGUSR1')
  await second.waitOutput(/"event":"status"/)
  const report = second
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .find((e) => e.event === 'status')
  t.same(report.status.requests, expected)
  t.equal((await send(second.port, 2, 'after-usr1')).exitCode, 0, 'still serving')
  await stop(second)
})

t.test('SIGUSR1 in text mode: the slmgr-like report', async (t) => {
  const p = await startServe(['--state', 'memory', '--counter', 'charged'])
  t.teardown(() => p.child.kill('SIGKILL'))
  await send(p.port, 1, 'usr1-text')
  p.child.kill('SIGUSR1')
  await p.waitOutput(/Requests with License Status Licensed: 1/)
  t.match(p.stdout(), /status report \(SIGUSR1\)\nkmslab [^\n]+host started/)
  t.notMatch(p.stderr(), /Debugger listening/, 'no inspector opened')
  await stop(p)
})

t.test('an exposed HTTP port without a token is refused: exit 64, saying why', async (t) => {
  const r = await kmslab(['serve', '--listen', '127.0.0.1:0', '--state', 'memory', '--http', '0.0.0.0:0'], {
    KMSLAB_HTTP_TOKEN: '',
  })
  t.equal(r.code, 64)
  t.match(r.err, /--http 0\.0\.0\.0: .*needs --http-token TOKEN \(or KMSLAB_HTTP_TOKEN\)/)
  t.equal(r.out, '', 'nothing started')
  const tokenOnly = await kmslab(['serve', '--state', 'memory', '--http-token', 'abcdefgh12'])
  t.equal(tokenOnly.code, 64)
  t.match(tokenOnly.err, /--http-token needs --http/)
})

t.test('with KMSLAB_HTTP_TOKEN an exposed port starts and asks for it', async (t) => {
  const token = 'env-token-123456'
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--listen', '127.0.0.1:0', '--state', 'memory', '--http', '0.0.0.0:0'],
    { env: { ...process.env, KMSLAB_HTTP_TOKEN: token } },
  )
  t.teardown(() => child.kill('SIGKILL'))
  let out = ''
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d
      const m = /HTTP on http:\/\/0\.0\.0\.0:(\d+)\//.exec(out)
      if (m) resolve(`http://127.0.0.1:${m[1]}/`)
    })
    child.on('exit', (code) => reject(new Error(`exited ${code}`)))
  })
  t.equal((await fetch(`${url}api/status`)).status, 401)
  t.equal((await fetch(`${url}api/status`, { headers: { authorization: `Bearer ${token}` } })).status, 200)
  t.equal((await fetch(`${url}healthz`)).status, 200)
  child.kill('SIGTERM')
})
