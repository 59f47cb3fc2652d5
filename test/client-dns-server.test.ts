// activate .DOMAIN --dns-server: the SRV targets' addresses come from the server asked (its
// additional section, else A/AAAA queries to it), never from the system resolver, which does not
// know the lab's names; each address is tried in turn and the one used is reported.
import t from 'tap'
import { activateVerb } from '../src/cli/activate.js'
import { activate } from '../src/client/activate.js'
import { discoverHosts } from '../src/client/discover.js'
import { serverResolver } from '../src/client/server-resolver.js'
import { seededRandom } from '../src/crypto/random.js'
import { startDns, startHost } from '../src/index.js'
import { runVerb } from './fixtures/cli-io.js'
import { startDnsStub } from './fixtures/dns-stub.js'

// Names under .invalid (RFC 6761) are never known to the system resolver.
const DOMAIN = 'lab17.invalid'

t.test('targets resolved by the --dns-server, from its additional section or A/AAAA', async (t) => {
  const host = await startHost({ listen: ['127.0.0.3:0'], counter: 'charged' })
  t.teardown(() => host.close())
  const records = {
    [`_vlmcs._tcp.${DOMAIN}`]: [{ priority: 0, weight: 0, port: host.port, target: `kms2.${DOMAIN}` }],
    [`kms2.${DOMAIN}`]: ['127.0.0.3'],
  }
  for (const additional of [true, false]) {
    const dns = await startDnsStub(records, { additional })
    const lab = serverResolver(dns.server, 2000, seededRandom(1))
    const report = await activate(`.${DOMAIN}`, { ...lab, timeoutMs: 2000 })
    await dns.close()
    const r = report.results[0]
    t.equal(r.verdict, 'activated', `additional ${additional}: ${r.error?.message}`)
    t.equal(r.host, `kms2.${DOMAIN}:${host.port}`)
    t.equal(r.address, '127.0.0.3')
    t.same(r.attempts, [])
    t.same(
      dns.queries,
      additional
        ? [`_vlmcs._tcp.${DOMAIN}`]
        : [`_vlmcs._tcp.${DOMAIN}`, `kms2.${DOMAIN} A`, `kms2.${DOMAIN} AAAA`],
      additional ? 'the additional section answered for the target' : 'A and AAAA asked of the same server',
    )
  }
})

t.test('each address of a target in turn; --json says which one answered', async (t) => {
  const host = await startHost({ listen: ['127.0.0.3:0'], counter: 'charged' })
  t.teardown(() => host.close())
  // 127.0.0.2 has nothing on the host's port: refused; 127.0.0.3 answers.
  const dns = await startDnsStub({
    [`_vlmcs._tcp.${DOMAIN}`]: [{ priority: 0, weight: 0, port: host.port, target: `kms.${DOMAIN}` }],
    [`kms.${DOMAIN}`]: ['127.0.0.2', '127.0.0.3'],
  })
  t.teardown(() => dns.close())
  const out = await runVerb(activateVerb, [
    `.${DOMAIN}`,
    '--dns-server',
    dns.server,
    '--timeout',
    '2s',
    '--json',
  ])
  t.equal(out.code, 0, out.err)
  const record = JSON.parse(out.out)
  t.equal(record.verdict, 'activated')
  t.equal(record.host, `kms.${DOMAIN}:${host.port}`)
  t.equal(record.address, '127.0.0.3')
  t.match(record.attempts, [
    {
      host: `kms.${DOMAIN}`,
      port: host.port,
      address: '127.0.0.2',
      failure: 'refused',
      error: /ECONNREFUSED/,
    },
  ])
  t.equal(record.attempts.length, 1)
  const text = await runVerb(activateVerb, [`.${DOMAIN}`, '--dns-server', dns.server, '--timeout', '2s'])
  t.equal(text.code, 0, text.err)
  t.match(text.out, `1/1 kms.${DOMAIN}:${host.port} (127.0.0.3) V6 NDR32: activated`)
  t.match(text.out, `  tried kms.${DOMAIN}:${host.port} (127.0.0.2): refused: cannot connect`)
})

t.test('a target the server has no address for is passed over; none left: exit 5', async (t) => {
  const host = await startHost({ listen: ['127.0.0.3:0'], counter: 'charged' })
  t.teardown(() => host.close())
  const dns = await startDnsStub({
    [`_vlmcs._tcp.${DOMAIN}`]: [
      { priority: 0, weight: 0, port: host.port, target: `ghost.${DOMAIN}` },
      { priority: 1, weight: 0, port: host.port, target: `kms2.${DOMAIN}` },
    ],
    [`kms2.${DOMAIN}`]: ['127.0.0.3'],
    [`_vlmcs._tcp.down.${DOMAIN}`]: [{ priority: 0, weight: 0, port: host.port, target: `ghost.${DOMAIN}` }],
  })
  t.teardown(() => dns.close())
  const lab = serverResolver(dns.server, 2000, seededRandom(2))
  const ok = await activate(`.${DOMAIN}`, { ...lab, timeoutMs: 2000 })
  t.equal(ok.results[0].verdict, 'activated')
  t.match(ok.results[0].attempts, [
    {
      host: `ghost.${DOMAIN}`,
      address: null,
      failure: 'unresolved',
      error: /ghost\.lab17\.invalid: it has no address/,
    },
  ])
  const down = await activate(`.down.${DOMAIN}`, { ...lab, timeoutMs: 2000 })
  t.equal(down.exitCode, 5)
  t.match(down.results[0].error, { name: 'RpcError', kind: 'connect' })
})

t.test('--dns-server must be an IP address', async (t) => {
  const out = await runVerb(activateVerb, [`.${DOMAIN}`, '--dns-server', 'dns.example'])
  t.equal(out.code, 64)
  t.match(out.err, /--dns-server takes an IP address/)
})

t.test('a truncated UDP answer is asked again over TCP (kmslab dns with 40 hosts)', async (t) => {
  const hosts = Array.from({ length: 40 }, (_, i) => `kms${i}=127.0.2.${i + 1}:1688,priority=${i}`)
  const dns = await startDns({ domain: DOMAIN, listen: ['127.0.0.1:0'], hosts })
  t.teardown(() => dns.close())
  const lab = serverResolver(`127.0.0.1:${dns.port}`, 2000, seededRandom(3))
  const found = await discoverHosts(DOMAIN, lab.resolveSrv, seededRandom(3))
  t.equal(found.length, 40)
  t.same(
    found[0],
    { name: `kms0.${DOMAIN}`, port: 1688, priority: 0, weight: 0, addresses: ['127.0.2.1'] },
    'over TCP the whole answer, its additional section too',
  )
  t.equal(dns.stats.truncated, 1, 'the UDP answer was truncated')
  t.same(await lab.resolveAddresses(`kms7.${DOMAIN}`), ['127.0.2.8'])
  await t.rejects(lab.resolveSrv(`_vlmcs._tcp.nothing.${DOMAIN}`), {
    name: 'DnsQueryError',
    code: 'NXDOMAIN',
  })
  await t.rejects(lab.resolveSrv('_vlmcs._tcp.elsewhere.example'), { name: 'DnsQueryError', code: 'REFUSED' })
})
