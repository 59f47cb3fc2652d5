// DNS auto-discovery (§8) against a loopback DNS stub: SRV priority and weight order (RFC 2782),
// falling back to the next host when one refuses connections; and the target syntax.
import t from 'tap'
import { activate } from '../src/client/activate.js'
import {
  discoverHosts,
  orderSrvRecords,
  parseTarget,
  type SrvRecord,
  systemResolver,
} from '../src/client/discover.js'
import { seededRandom } from '../src/crypto/random.js'
import { startDnsStub } from './fixtures/dns-stub.js'
import { deadPort, kmsScript, startStubHost } from './fixtures/stub-host.js'

const rec = (name: string, priority: number, weight: number, port = 1688): SrvRecord => ({
  name,
  port,
  priority,
  weight,
})

t.test('parseTarget', async (t) => {
  t.same(parseTarget(''), { kind: 'host', host: '127.0.0.1', port: 1688 })
  t.same(parseTarget('kms.example.test'), { kind: 'host', host: 'kms.example.test', port: 1688 })
  t.same(parseTarget('10.0.0.1:16880'), { kind: 'host', host: '10.0.0.1', port: 16880 })
  t.same(parseTarget('[::1]:1688'), { kind: 'host', host: '::1', port: 1688 })
  t.same(parseTarget('[fe80::1]'), { kind: 'host', host: 'fe80::1', port: 1688 })
  t.same(parseTarget('::1'), { kind: 'host', host: '::1', port: 1688 })
  t.same(parseTarget('.example.test'), { kind: 'srv', domain: 'example.test' })
  for (const bad of ['host:0', 'host:65536', 'host:x', '[::1]:', '.', '.bad domain', ':1688']) {
    t.throws(() => parseTarget(bad), { name: 'UsageError' }, bad)
  }
})

t.test('RFC 2782 order: priority first, then weighted draws', async (t) => {
  const records = [rec('c', 20, 0), rec('a1', 10, 10), rec('a2', 10, 90), rec('z', 10, 0), rec('b', 5, 1)]
  const random = seededRandom('srv')
  let a2First = 0
  let zLast = 0
  const ends = new Set<string>()
  for (let i = 0; i < 1000; i++) {
    const order = orderSrvRecords(records, random).map((r) => r.name)
    ends.add(`${order[0]}..${order[4]}`)
    if (order[1] === 'a2') a2First++
    if (order[3] === 'z') zLast++
  }
  t.same([...ends], ['b..c'], 'priority 5 always first, priority 20 always last')
  // Weight 90 against 10 (and 0): ~890 of 1000. A zero weight wins only a draw of exactly 0:
  // 1 in 101, then 1 in 11 or 1 in 91 once a weighted record is gone, so it ends last ~90% of the time.
  t.ok(a2First > 840 && a2First < 940, `a2 first ${a2First} of 1000 times`)
  t.ok(zLast > 850 && zLast < 960, `z last ${zLast} of 1000 times`)
})

t.test('discovery through a DNS server on loopback', async (t) => {
  const dns = await startDnsStub({
    '_vlmcs._tcp.example.test': [
      { priority: 10, weight: 0, port: 1690, target: 'kms3.example.test' },
      { priority: 0, weight: 0, port: 1688, target: 'kms1.example.test.' },
    ],
  })
  t.teardown(() => dns.close())
  const hosts = await discoverHosts('example.test', systemResolver(dns.server), seededRandom(1))
  t.same(hosts, [rec('kms1.example.test', 0, 0, 1688), rec('kms3.example.test', 10, 0, 1690)])
  t.same(dns.queries, ['_vlmcs._tcp.example.test'])
  await t.rejects(discoverHosts('nowhere.test', systemResolver(dns.server), seededRandom(1)), {
    name: 'DiscoveryError',
    message: /no KMS host found: SRV lookup of _vlmcs\._tcp\.nowhere\.test failed \(ENOTFOUND\)/,
  })
})

t.test('activate .DOMAIN: a host refusing connections is skipped for the next one', async (t) => {
  const second = await startStubHost(kmsScript())
  const third = await startStubHost(kmsScript())
  t.teardown(() => Promise.all([second.close(), third.close()]))
  const dead = await deadPort()
  const dns = await startDnsStub({
    '_vlmcs._tcp.lab.test': [
      { priority: 9, weight: 5, port: third.port, target: '127.0.0.1' },
      { priority: 1, weight: 5, port: dead, target: '127.0.0.1' },
      { priority: 3, weight: 5, port: second.port, target: '127.0.0.1' },
    ],
  })
  t.teardown(() => dns.close())
  const report = await activate('.lab.test', {
    resolveSrv: systemResolver(dns.server),
    timeoutMs: 2000,
    requests: 2,
  })
  t.same(
    report.results.map((r) => [r.host, r.verdict]),
    [
      [`127.0.0.1:${second.port}`, 'activated'],
      [`127.0.0.1:${second.port}`, 'activated'],
    ],
  )
  t.match(report.results[0].attempts, [
    { host: '127.0.0.1', port: dead, address: '127.0.0.1', failure: 'refused', error: /ECONNREFUSED/ },
  ])
  t.equal(report.results[0].attempts.length, 1)
  t.same(report.results[0].warnings, [])
  t.same(report.results[1].attempts, [], 'the second request went over the same connection')
  t.equal(second.received.length, 1, 'one connection for both requests')
  t.equal(third.received.length, 0, 'the lower-priority host was not needed')
  t.equal(report.exitCode, 0)
})

t.test('no SRV record, or no host answering: exit 5', async (t) => {
  const dead = await deadPort()
  const dns = await startDnsStub({
    '_vlmcs._tcp.down.test': [{ priority: 0, weight: 0, port: dead, target: '127.0.0.1' }],
  })
  t.teardown(() => dns.close())
  const none = await activate('.void.test', { resolveSrv: systemResolver(dns.server) })
  t.equal(none.results[0].host, '_vlmcs._tcp.void.test')
  t.match(none.results[0].error, { name: 'DiscoveryError', query: '_vlmcs._tcp.void.test' })
  t.equal(none.exitCode, 5)
  const down = await activate('.down.test', { resolveSrv: systemResolver(dns.server) })
  t.match(down.results[0].error, { kind: 'connect' })
  t.equal(down.exitCode, 5)
  const injected = await activate('.injected.test', { resolveSrv: async () => [] })
  t.match(injected.results[0].error?.message, /has no SRV record/)
})
