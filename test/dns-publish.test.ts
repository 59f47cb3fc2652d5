// kmslab serve --dns-domain: the host publishes itself (SRV with its KMS port, A of its listen
// address) on a DNS server of its own, and a client finds it there with --dns-server.
import t from 'tap'
import { publishHost } from '../src/api/dns-publish.js'
import { activateVerb } from '../src/cli/activate.js'
import { serverResolver } from '../src/client/server-resolver.js'
import { seededRandom } from '../src/crypto/random.js'
import { startHost } from '../src/index.js'
import { runVerb } from './fixtures/cli-io.js'
import { startServe } from './fixtures/serve-process.js'

t.test('kmslab serve --dns-domain: discovered and activated through its own DNS', async (t) => {
  const serve = await startServe([
    '--state',
    'memory',
    '--counter',
    'charged',
    '--dns-domain',
    'pub.test',
    '--dns-listen',
    '127.0.0.1:0',
    '--dns-name',
    'kms9',
    '--dns-priority',
    '3',
    '--dns-weight',
    '7',
  ])
  t.teardown(() => serve.child.kill('SIGKILL'))
  await serve.waitOutput(/DNS: pub\.test on 127\.0\.0\.1:\d+/)
  const dnsPort = Number(/DNS: pub\.test on 127\.0\.0\.1:(\d+)/.exec(serve.stdout())![1])
  t.match(
    serve.stdout(),
    `_vlmcs._tcp.pub.test SRV 3 7 ${serve.port} kms9.pub.test, kms9.pub.test -> 127.0.0.1`,
  )
  const lab = serverResolver(`127.0.0.1:${dnsPort}`, 3000, seededRandom(1))
  t.same(await lab.resolveSrv('_vlmcs._tcp.pub.test'), [
    { name: 'kms9.pub.test', port: serve.port, priority: 3, weight: 7, addresses: ['127.0.0.1'] },
  ])
  const out = await runVerb(activateVerb, ['.pub.test', '--dns-server', `127.0.0.1:${dnsPort}`, '--json'])
  t.equal(out.code, 0, out.err)
  const record = JSON.parse(out.out)
  t.equal(record.host, `kms9.pub.test:${serve.port}`)
  t.equal(record.address, '127.0.0.1')
  serve.child.kill('SIGTERM')
  t.equal(await serve.exited, 0)
})

t.test('--dns-address publishes another address', async (t) => {
  const host = await startHost({ listen: ['127.0.0.1:0'] })
  t.teardown(() => host.close())
  const p = await publishHost(host, {
    domain: 'pub.test',
    listen: '127.0.0.1:0',
    name: 'kms',
    address: '127.0.0.5',
  })
  t.teardown(() => p.close())
  t.same(p.published, [{ address: '127.0.0.5', port: host.port }])
  t.equal(p.note, null)
  t.equal(p.name, 'kms.pub.test')
  const lab = serverResolver(`127.0.0.1:${p.dns.port}`, 3000, seededRandom(1))
  t.same(await lab.resolveAddresses('kms.pub.test'), ['127.0.0.5'])
  await t.rejects(publishHost(host, { domain: 'pub.test', listen: '127.0.0.1:0', address: 'kms.example' }), {
    name: 'ZoneError',
    message: /--dns-address takes an IP address/,
  })
})

t.test('serve: a --dns-* flag without --dns-domain is a usage error', async (t) => {
  const { main } = await import('../src/cli/main.js')
  const { Writable } = await import('node:stream')
  let err = ''
  const sink = new Writable({ write: (_c, _e, done) => done() })
  const errSink = new Writable({
    write: (c, _e, done) => {
      err += String(c)
      done()
    },
  })
  const code = await main(['serve', '--listen', '127.0.0.1:0', '--state', 'memory', '--dns-name', 'kms1'], {
    stdout: sink,
    stderr: errSink,
    stderrIsTty: false,
  })
  t.equal(code, 64)
  t.match(err, 'kmslab serve: --dns-name needs --dns-domain DOMAIN')
})
