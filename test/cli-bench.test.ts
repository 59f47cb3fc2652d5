// `kmslab bench` against kmslab's own host (startHost, state in memory, loopback port 0): every
// mode gives zero errors and the documented JSON summary; a host whose answers are corrupted by
// fault-injection rules is counted by verification kind; usage errors exit 64. No timing asserts.
import { createServer } from 'node:net'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { startHost } from '../src/api/host.js'
import type { FaultRule } from '../src/api/rules.js'
import { benchVerb } from '../src/cli/bench.js'
import { main } from '../src/cli/main.js'
import { UsageError } from '../src/errors.js'

/** Every key of the --json summary, as the help and the lead's docs list them. */
const KEYS = [
  'target',
  'protocol',
  'product',
  'bind',
  'connections',
  'newConnection',
  'busyPoll',
  'loop',
  'rate',
  'warmupS',
  'durationS',
  'measureWindowEpochMs',
  'requests',
  'activations',
  'activationsPerSec',
  'belowThreshold',
  'latencyMs',
  'sendLagMs',
  'errors',
  'errorsByKind',
  'warningsByKind',
  'warmupErrorsByKind',
  'connects',
  'benchCpuS',
  'interrupted',
  'hosts',
].sort()

function io() {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d) => {
    out += d
  })
  stderr.on('data', (d) => {
    err += d
  })
  return { io: { stdout, stderr, stderrIsTty: false }, out: () => out, err: () => err }
}

async function bench(argv: string[]) {
  const c = io()
  const code = await benchVerb.run(argv, c.io)
  return { code, out: c.out(), err: c.err() }
}

async function benchJson(argv: string[]) {
  const r = await bench([...argv, '--json'])
  return { code: r.code, report: JSON.parse(r.out) }
}

t.test('every mode against kmslab: all verified, no errors, documented keys', async (t) => {
  const host = await startHost({ counter: 'charged' })
  t.teardown(() => host.close())
  const target = `127.0.0.1:${host.port}`
  const modes: [string, string[], number][] = [
    ['serial', ['-n', '300'], 300],
    ['4 connections', ['-c', '4', '-n', '400'], 400],
    ['new connection per activation', ['--new-connection', '-n', '200'], 200],
    ['new connections, 4 at a time', ['--new-connection', '-c', '4', '-n', '200'], 200],
    ['open loop', ['--rate', '2000', '-c', '4', '-n', '300'], 300],
    ['V4', ['--protocol', '4', '-n', '200'], 200],
    ['V5', ['--protocol', '5', '-n', '200'], 200],
    ['vlmcs bind (NDR64)', ['--bind', 'vlmcs', '-c', '2', '-n', '200'], 200],
    ['Office', ['--product', 'Office Professional Plus 2021', '-n', '100'], 100],
    ['busy polling', ['--busy-poll', '-n', '200'], 200],
  ]
  let total = 0
  for (const [what, argv, n] of modes) {
    total += n
    const { code, report } = await benchJson([target, ...argv])
    t.equal(code, 0, `${what}: exit 0`)
    t.same(Object.keys(report).sort(), KEYS, `${what}: keys`)
    t.equal(report.errors, 0, `${what}: no errors ${JSON.stringify(report.errorsByKind)}`)
    t.same(report.errorsByKind, {}, `${what}: no error kinds`)
    t.same(report.warningsByKind, {}, `${what}: no warnings`)
    t.equal(report.requests, n, `${what}: requests`)
    t.equal(report.activations, n, `${what}: every answer verified`)
    t.equal(report.belowThreshold, 0, `${what}: charged counter`)
    t.ok(report.activationsPerSec > 0, `${what}: a rate`)
    for (const k of ['p50', 'p90', 'p99', 'max', 'mean']) t.type(report.latencyMs[k], 'number')
    t.ok(report.latencyMs.p50 <= report.latencyMs.max, `${what}: p50 <= max`)
  }
  const open = await benchJson([target, '--rate', '1000', '-n', '100', '-c', '2'])
  t.equal(open.report.loop, 'open')
  t.type(open.report.sendLagMs.p99, 'number')
  const persistent = await benchJson([target, '-c', '3', '-n', '30'])
  t.equal(persistent.report.connects, 0, 'persistent connections open before the clock')
  const fresh = await benchJson([target, '--new-connection', '-n', '30'])
  t.equal(fresh.report.connects, 30, 'one connection per activation')
  t.equal(host.stats.activations, total + 100 + 30 + 30, 'the host answered exactly what the bench counted')
})

t.test('--duration runs for a while and the human summary names the figures', async (t) => {
  const host = await startHost({ counter: 'charged' })
  t.teardown(() => host.close())
  const r = await bench([`127.0.0.1:${host.port}`, '-d', '0.3', '--warmup', '0.1'])
  t.equal(r.code, 0)
  t.match(r.out, /activations\s+[\d,]+ verified of [\d,]+ requests: [\d,.]+\/s/)
  t.match(r.out, /latency ms\s+p50 [\d.]+\s+p90 [\d.]+\s+p99 [\d.]+\s+max [\d.]+/)
  t.match(r.out, /errors\s+none/)
  t.equal(r.err, '', 'no progress line when stderr is not a terminal')
})

t.test('a real counter: answers below the threshold verify and are counted apart', async (t) => {
  const host = await startHost()
  t.teardown(() => host.close())
  const { code, report } = await benchJson([`127.0.0.1:${host.port}`, '-n', '30'])
  t.equal(code, 0)
  t.equal(report.errors, 0)
  t.equal(report.activations, 30)
  t.equal(report.belowThreshold, 24, 'the first 24 Windows clients see a count below 25')
})

t.test('corrupted, refused and faulted answers are counted by kind', async (t) => {
  const cases: [string, FaultRule[], string[], Record<string, number>, Record<string, number>][] = [
    ['hmac', [{ action: { corrupt: 'hmac' } }], [], { 'verify:hmac': 40 }, {}],
    ['hash', [{ action: { corrupt: 'hash' } }], [], { 'verify:hash': 40 }, {}],
    ['cmid', [{ action: { corrupt: 'cmid' } }], [], { 'verify:cmid': 40 }, {}],
    ['time', [{ action: { corrupt: 'time' } }], [], { 'verify:time': 40 }, {}],
    ['pid', [{ action: { corrupt: 'pid' } }], [], { 'verify:pid': 40 }, {}],
    ['V5 iv', [{ action: { corrupt: 'iv-rule' } }], ['--protocol', '5'], { 'verify:iv': 40 }, {}],
    ['V4 mac', [{ action: { corrupt: 'hmac' } }], ['--protocol', '4'], { 'verify:mac': 40 }, {}],
    ['refusal', [{ action: { refuse: '0xC004F042' } }], [], { 'refused:0xc004f042': 40 }, {}],
    ['fault', [{ action: { fault: '0x1C010003' } }], [], { 'fault:0x1c010003': 40 }, {}],
  ]
  // new-connection mode checks each answer later (while the next connection binds): same counts
  for (const mode of [[], ['--new-connection']])
    for (const [name, rules, argv, kinds, warnings] of cases) {
      const what = `${name} ${mode.join(' ')}`
      const host = await startHost({ counter: 'charged', rules })
      const { code, report } = await benchJson([
        `127.0.0.1:${host.port}`,
        ...mode,
        '-c',
        '2',
        '-n',
        '40',
        ...argv,
      ])
      await host.close()
      t.equal(code, 1, `${what}: nothing verified, exit 1`)
      t.equal(report.activations, 0, what)
      t.equal(report.errors, 40, what)
      t.same(report.errorsByKind, kinds, what)
      t.same(report.warningsByKind, warnings, what)
    }
  // every other answer corrupted: half verify, half are counted, the run exits 0
  const host = await startHost({
    counter: 'charged',
    rules: [{ match: { nthOnConnection: 2 }, action: { corrupt: 'hmac' } }],
  })
  t.teardown(() => host.close())
  const { code, report } = await benchJson([`127.0.0.1:${host.port}`, '--new-connection', '-n', '20'])
  t.equal(code, 0)
  t.equal(report.activations, 20, 'one request per connection: the rule never matches')
  const persistent = await benchJson([`127.0.0.1:${host.port}`, '-n', '20'])
  t.equal(persistent.code, 0, 'some answers verified')
  t.same(persistent.report.errorsByKind, { 'verify:hmac': 1 }, 'the second request of the connection')
  t.equal(persistent.report.activations, 19)
})

t.test('a V6 answer that reuses the request IV verifies with a warning', async (t) => {
  const host = await startHost({ counter: 'charged', rules: [{ action: { corrupt: 'iv-rule' } }] })
  t.teardown(() => host.close())
  for (const mode of [[], ['--new-connection']]) {
    const { code, report } = await benchJson([`127.0.0.1:${host.port}`, ...mode, '-n', '20'])
    t.equal(code, 0)
    t.equal(report.activations, 20)
    t.same(report.warningsByKind, { 'iv-rule': 20 })
  }
})

t.test('nothing listening: no connection, exit 1', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
  const c = io()
  const code = await main(['bench', `127.0.0.1:${port}`, '-n', '5'], c.io)
  t.equal(code, 1)
  t.match(c.err(), /connect:ECONNREFUSED/)
  const fresh = await bench([`127.0.0.1:${port}`, '--new-connection', '-n', '5', '--json'])
  t.equal(fresh.code, 1, 'new-connection mode: every activation failed')
  t.same(JSON.parse(fresh.out).errorsByKind, { 'connect:ECONNREFUSED': 5 })
})

t.test('usage errors exit 64', async (t) => {
  const bad = [
    [],
    ['127.0.0.1:1688', 'extra'],
    ['127.0.0.1:99999'],
    ['127.0.0.1', '--connections', '0'],
    ['127.0.0.1', '--requests', 'many'],
    ['127.0.0.1', '--requests', '5', '--duration', '1'],
    ['127.0.0.1', '--rate', '-3'],
    ['127.0.0.1', '--protocol', '7'],
    ['127.0.0.1', '--bind', 'ndr128'],
    ['127.0.0.1', '--product', 'no such product at all'],
    ['127.0.0.1', '--warmup', 'x'],
    ['127.0.0.1', '--frobnicate'],
  ]
  for (const argv of bad) {
    await t.rejects(bench(argv), UsageError, JSON.stringify(argv))
    const c = io()
    t.equal(await main(['bench', ...argv], c.io), 64, `main ${JSON.stringify(argv)}`)
  }
  const c = io()
  t.equal(await main(['bench', '--help'], c.io), 0)
  t.match(c.out(), /Exit codes: 0/)
})

t.test('a silent host times out, a host speaking something else is a protocol error', async (t) => {
  const sockets = new Set<import('node:net').Socket>()
  const serve = (onData: (s: import('node:net').Socket) => void) =>
    new Promise<{ port: number; close: () => Promise<void> }>((resolve) => {
      const server = createServer((s) => {
        sockets.add(s)
        s.on('error', () => {})
        s.on('data', () => onData(s))
      })
      server.listen(0, '127.0.0.1', () =>
        resolve({
          port: (server.address() as { port: number }).port,
          close: () => {
            for (const s of sockets) s.destroy()
            return new Promise((r) => server.close(() => r()))
          },
        }),
      )
    })
  const silent = await serve(() => {})
  const quiet = await bench([
    `127.0.0.1:${silent.port}`,
    '--new-connection',
    '-n',
    '2',
    '--timeout',
    '200',
    '--json',
  ])
  t.equal(quiet.code, 1)
  t.same(JSON.parse(quiet.out).errorsByKind, { timeout: 2 })
  await silent.close()
  const http = await serve((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'))
  const garbage = await bench([`127.0.0.1:${http.port}`, '--new-connection', '-n', '3', '--json'])
  t.equal(garbage.code, 1)
  t.same(JSON.parse(garbage.out).errorsByKind, { protocol: 3 })
  await http.close()
})
