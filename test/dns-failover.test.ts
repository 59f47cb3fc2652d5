// Discovery and failover end to end: the lab DNS server (startDns) publishes KMS hosts on distinct
// loopback addresses with different priorities and weights, some broken (refusing, accepting and
// closing, accepting and never answering); kmslab's own discovery asks it. Every discovery
// activates, a lower priority is used only when all higher ones fail, and each host of a priority
// is tried first in proportion to its weight.
import net from 'node:net'
import t from 'tap'
import { activateVerb } from '../src/cli/activate.js'
import { orderSrvRecords, type SrvRecord } from '../src/client/discover.js'
import { serverResolver } from '../src/client/server-resolver.js'
import { seededRandom } from '../src/crypto/random.js'
import { activate, type KmsHost, startDns, startHost } from '../src/index.js'
import { runVerb } from './fixtures/cli-io.js'
import { deadPort } from './fixtures/stub-host.js'

/** A TCP listener that accepts and closes at once, or accepts and never says a word. */
async function brokenHost(
  address: string,
  mode: 'close' | 'silent',
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    if (mode === 'close') s.destroy()
    else {
      sockets.add(s)
      s.on('error', () => {})
    }
  })
  await new Promise<void>((resolve) => server.listen(0, address, resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

const kms = (address: string): Promise<KmsHost> => startHost({ listen: [`${address}:0`], counter: 'charged' })

t.test('RFC 2782 weights: each host of a priority comes first in proportion to its weight', async (t) => {
  const records: SrvRecord[] = [
    { name: 'heavy', port: 1, priority: 0, weight: 60 },
    { name: 'middle', port: 1, priority: 0, weight: 30 },
    { name: 'light', port: 1, priority: 0, weight: 10 },
    { name: 'zero', port: 1, priority: 0, weight: 0 },
    { name: 'backup', port: 1, priority: 1, weight: 100 },
  ]
  const n = 20_000
  const random = seededRandom('weights')
  const first = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const order = orderSrvRecords(records, random)
    first.set(order[0].name, (first.get(order[0].name) ?? 0) + 1)
    if (order[4].name !== 'backup') t.fail('the priority 1 record came before a priority 0 one')
  }
  // A draw in [0, 100]: a zero weight wins only a draw of 0 (1 in 101), the others weight/101.
  // Bounds of 6 standard deviations: a correct selection falls outside them about once in 10^9.
  for (const [name, weight] of [
    ['heavy', 60],
    ['middle', 30],
    ['light', 10],
    ['zero', 1],
  ] as const) {
    const p = weight / 101
    const sd = Math.sqrt(n * p * (1 - p))
    const got = first.get(name) ?? 0
    t.ok(
      Math.abs(got - n * p) < 6 * sd,
      `${name} first ${got} times of ${n} (expected ${Math.round(n * p)} ± ${Math.round(6 * sd)})`,
    )
  }
})

t.test('every discovery activates; a broken host is passed over; weights seen live', async (t) => {
  const [a, b, low] = await Promise.all([kms('127.0.0.2'), kms('127.0.0.3'), kms('127.0.0.6')])
  const closer = await brokenHost('127.0.0.4', 'close')
  t.teardown(() => Promise.all([a.close(), b.close(), low.close(), closer.close()]))
  const dns = await startDns({
    domain: 'lab.test',
    listen: ['127.0.0.1:0'],
    rateLimit: 0,
    hosts: [
      `kms-a=127.0.0.2:${a.port},priority=0,weight=30`,
      `kms-b=127.0.0.3:${b.port},priority=0,weight=10`,
      `kms-broken=127.0.0.4:${closer.port},priority=0,weight=60`,
      `kms-low=127.0.0.6:${low.port},priority=10,weight=5`,
    ],
  })
  t.teardown(() => dns.close())
  const random = seededRandom('live')
  const lab = serverResolver(`127.0.0.1:${dns.port}`, 2000, random)
  const runs = 60
  const firstTried = new Map<string, number>()
  for (let i = 0; i < runs; i++) {
    const report = await activate('.lab.test', { ...lab, random, timeoutMs: 2000 })
    const r = report.results[0]
    if (r.verdict !== 'activated') t.fail(`run ${i}: ${r.verdict} ${r.error?.message}`)
    if (r.address !== '127.0.0.2' && r.address !== '127.0.0.3') t.fail(`run ${i} answered by ${r.address}`)
    for (const x of r.attempts) {
      if (x.address !== '127.0.0.4' || x.failure !== 'closed') t.fail(`run ${i}: ${JSON.stringify(x)}`)
    }
    const first = r.attempts[0]?.address ?? r.address!
    firstTried.set(first, (firstTried.get(first) ?? 0) + 1)
  }
  t.equal(low.stats.activations, 0, 'the lower priority was never needed')
  t.equal(a.stats.activations + b.stats.activations, runs, 'every discovery activated')
  // 60:30:10 over 60 runs; bounds of 5 standard deviations (the draws are seeded, so no flake).
  for (const [address, weight] of [
    ['127.0.0.4', 60],
    ['127.0.0.2', 30],
    ['127.0.0.3', 10],
  ] as const) {
    const p = weight / 101
    const sd = Math.sqrt(runs * p * (1 - p))
    const got = firstTried.get(address) ?? 0
    t.ok(Math.abs(got - runs * p) < 5 * sd, `${address} tried first ${got} of ${runs} times`)
  }
})

t.test('a lower priority only when every higher one fails: refused, closed, timed out', async (t) => {
  const low = await kms('127.0.0.6')
  const closer = await brokenHost('127.0.0.4', 'close')
  const silent = await brokenHost('127.0.0.7', 'silent')
  const dead = await deadPort('127.0.0.5')
  t.teardown(() => Promise.all([low.close(), closer.close(), silent.close()]))
  const dns = await startDns({
    domain: 'down.test',
    listen: ['127.0.0.1:0'],
    hosts: [
      `closes=127.0.0.4:${closer.port},weight=1`,
      `refuses=127.0.0.5:${dead},weight=1`,
      `silent=127.0.0.7:${silent.port},weight=1`,
      `backup=127.0.0.6:${low.port},priority=1`,
    ],
  })
  t.teardown(() => dns.close())
  const server = `127.0.0.1:${dns.port}`
  const out = await runVerb(activateVerb, [
    '.down.test',
    '--dns-server',
    server,
    '--timeout',
    '500ms',
    '--json',
  ])
  t.equal(out.code, 0, out.err)
  const record = JSON.parse(out.out)
  t.equal(record.verdict, 'activated')
  t.equal(record.host, `backup.down.test:${low.port}`)
  t.equal(record.address, '127.0.0.6')
  t.same(record.attempts.map((x: { host: string; failure: string }) => [x.host, x.failure]).sort(), [
    ['closes.down.test', 'closed'],
    ['refuses.down.test', 'refused'],
    ['silent.down.test', 'timed-out'],
  ])
  const text = await runVerb(activateVerb, ['.down.test', '--dns-server', server, '--timeout', '500ms'])
  t.equal(text.code, 0, text.err)
  t.match(text.out, `1/1 backup.down.test:${low.port} (127.0.0.6) `)
  t.match(text.out, `  tried closes.down.test:${closer.port} (127.0.0.4): closed without an answer: `)
  t.match(text.out, `  tried refuses.down.test:${dead} (127.0.0.5): refused: `)
  t.match(text.out, `  tried silent.down.test:${silent.port} (127.0.0.7): timed out: `)
  await low.close()
  const none = await runVerb(activateVerb, [
    '.down.test',
    '--dns-server',
    server,
    '--timeout',
    '500ms',
    '--json',
  ])
  t.equal(none.code, 5, 'no host left: exit 5')
  t.equal(JSON.parse(none.out).attempts.length, 4)
})
