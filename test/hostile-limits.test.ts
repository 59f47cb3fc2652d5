// The host's limits: what a connection may hold (one read chunk and one fragment, whatever a
// pipelining peer sends), the connection deadline, sockets we ended that the peer keeps open,
// --max-connections, --allow, the exposure warning, and bounded pools.
import { connect } from 'node:net'
import t from 'tap'
import { hostOptionsFromFlags } from '../src/cli/serve.js'
import { cryptoRandom } from '../src/crypto/random.js'
import { startHost } from '../src/host/host.js'
import { MAX_POOLS } from '../src/kms/counter.js'
import type { RpcConnection } from '../src/server/connection.js'
import { DEFAULT_MAX_FRAGMENT } from '../src/server/framer.js'
import { RpcServer } from '../src/server/server.js'
import type { CallHandler } from '../src/server/types.js'
import { bind, bindVersion, request, sleep } from './fixtures/hostile.js'
import {
  activateRaw,
  baseRequest,
  OFFICE2010_APP,
  OFFICE2013_APP,
  WINDOWS_APP,
} from './fixtures/raw-activate.js'
import { RawPeer } from './fixtures/raw-client.js'
import { startServe } from './fixtures/serve-process.js'

/** Node reads a socket in chunks of at most 64 KiB: what one connection may hold unread. */
const READ_CHUNK = 64 * 1024

async function rpcServer(
  handler: CallHandler,
  extra: Partial<ConstructorParameters<typeof RpcServer>[0]> = {},
) {
  const server = new RpcServer({
    listen: [{ host: '127.0.0.1', port: 0 }],
    bindPolicy: { ndr64: true, btfn: true },
    handler,
    random: cryptoRandom,
    ...extra,
  })
  await server.start()
  return server
}

const only = (server: RpcServer): RpcConnection => [...server.connections][0]

/** Bind, then `count` small requests in one go; the peer never reads a byte. */
function flood(port: number, count: number) {
  const socket = connect({ port, host: '127.0.0.1' })
  socket.on('error', () => {})
  const one = request(new Uint8Array(4), { callId: 5 })
  const all = new Uint8Array(one.length * count)
  for (let i = 0; i < count; i++) all.set(one, i * one.length)
  socket.write(bind())
  socket.write(all)
  socket.pause()
  return socket
}

t.test(
  'a pipelining peer that never reads: output backs up, reading stops, memory stays bounded',
  async (t) => {
    // Each 40-byte request is answered with 4 KiB: the peer's kernel buffers fill, then ours.
    const server = await rpcServer(() => ({ kind: 'answer', payload: new Uint8Array(4096) }))
    t.teardown(() => server.stop(0))
    const peer = flood(server.addresses[0].port, 20_000)
    let maxOutput = 0
    let maxHeld = 0
    for (let i = 0; i < 100; i++) {
      await sleep(20)
      const conn = only(server)
      if (!conn) continue
      maxOutput = Math.max(maxOutput, conn.socket.writableLength)
      maxHeld = Math.max(maxHeld, conn.framer.pending)
    }
    const conn = only(server)
    t.ok(conn.isPaused, 'the connection stopped reading')
    t.ok(conn.calls < 20_000, `answered ${conn.calls} of 20000, then waited for the peer`)
    t.ok(maxOutput <= 64 * 1024 + 5000, `output queued in the host at most ${maxOutput} bytes`)
    t.ok(maxHeld <= READ_CHUNK + DEFAULT_MAX_FRAGMENT, `input held at most ${maxHeld} bytes`)
    const sent = bind().length + 20_000 * request(new Uint8Array(4)).length
    t.ok(
      conn.socket.bytesRead < sent,
      `the host read ${conn.socket.bytesRead} of ${sent} bytes sent, then let TCP push back`,
    )
    // Once the peer reads, everything is answered.
    let got = 0
    peer.on('data', (d) => {
      got += d.length
    })
    peer.resume()
    for (let i = 0; i < 1000 && got <= 20_000 * 4096; i++) await sleep(20)
    t.equal(conn.calls, 20_000, 'every request answered once the peer read')
    t.ok(got > 20_000 * 4096, 'and every answer arrived')
    peer.destroy()
  },
)

t.test('pipelined requests behind a slow answer wait unread in the socket, not in a queue', async (t) => {
  const server = await rpcServer(
    () => new Promise((resolve) => setTimeout(() => resolve({ kind: 'refuse', hresult: 0x8007000d }), 25)),
  )
  t.teardown(() => server.stop(0))
  const peer = flood(server.addresses[0].port, 100_000)
  peer.resume()
  let maxHeld = 0
  let paused = 0
  for (let i = 0; i < 40; i++) {
    await sleep(15)
    const conn = only(server)
    if (!conn) continue
    maxHeld = Math.max(maxHeld, conn.framer.pending)
    if (conn.isPaused) paused++
  }
  t.ok(paused >= 35, `paused while answers are in progress (${paused}/40 samples)`)
  t.ok(maxHeld <= READ_CHUNK + DEFAULT_MAX_FRAGMENT, `input held at most ${maxHeld} bytes`)
  t.ok(only(server).calls < 100, 'answered strictly one at a time')
  peer.destroy()
})

t.test('after our BIND_NAK, a peer that neither reads nor closes loses the socket anyway', async (t) => {
  const server = await rpcServer(() => ({ kind: 'refuse', hresult: 0 }), { idleTimeoutMs: 60_000 })
  t.teardown(() => server.stop(0))
  const socket = connect({ port: server.addresses[0].port, host: '127.0.0.1', allowHalfOpen: true })
  socket.on('error', () => {})
  socket.pause()
  socket.write(bindVersion(5, 1))
  for (let i = 0; i < 100 && server.connections.size === 0; i++) await sleep(10)
  t.equal(server.connections.size, 1)
  t.ok(only(server).closed, 'answered and closed on our side')
  for (let i = 0; i < 400 && server.connections.size > 0; i++) await sleep(10)
  t.equal(server.connections.size, 0, 'the socket is gone within seconds, long before the idle timeout')
  socket.destroy()
})

t.test('the connection deadline closes a busy connection', async (t) => {
  const host = await startHost({ state: 'memory', connectionDeadlineMs: 600, idleTimeoutMs: 5000 })
  t.teardown(() => host.close())
  const reasons: string[] = []
  host.events.on('connection', (c) => c.type === 'close' && reasons.push(c.reason ?? ''))
  const peer = await RawPeer.open(host.port)
  const started = Date.now()
  while (!peer.closed && Date.now() - started < 8000) {
    peer.send(bind([], { alter: true }))
    await peer.pdu(200)
    await sleep(80)
  }
  t.ok(peer.closed, 'closed although never idle')
  t.ok(
    Date.now() - started < 8000,
    `after ${Date.now() - started} ms: the deadline and one sweep, not the idle timeout`,
  )
  t.same(reasons, ['connection deadline reached'])
})

t.test('--max-connections: one over the limit is closed at once and counted', async (t) => {
  const host = await startHost({ state: 'memory', maxConnections: 5 })
  t.teardown(() => host.close())
  const refused: string[] = []
  host.events.on('refused', (r) => refused.push(r.reason))
  const idle = await Promise.all(Array.from({ length: 5 }, () => RawPeer.open(host.port)))
  await sleep(50)
  const extra = await RawPeer.open(host.port)
  extra.send(bind())
  t.ok(await extra.waitClosed(1000), 'closed at once')
  t.equal(extra.received, 0, 'without a byte')
  t.equal(host.stats.refusedMaxConnections, 1)
  t.same(refused, ['max-connections'])
  const freed = new Promise<void>((resolve) =>
    host.events.on('connection', (c) => {
      if (c.type === 'close') resolve()
    }),
  )
  idle[0].end()
  await freed
  const [answer] = await activateRaw(host.port, [baseRequest()])
  t.equal(answer.hresult, 0, 'a slot freed: served')
  for (const p of idle) p.end()
})

t.test('--allow: a peer outside the networks is closed without a byte sent', async (t) => {
  const denied = await startHost({ state: 'memory', allow: ['10.0.0.0/8', 'fd00::/8'] })
  t.teardown(() => denied.close())
  const peer = await RawPeer.open(denied.port)
  peer.send(bind())
  t.ok(await peer.waitClosed(1000))
  t.equal(peer.received, 0)
  t.equal(denied.stats.refusedNotAllowed, 1)
  t.equal(denied.stats.accepted, 0)

  const allowed = await startHost({ state: 'memory', allow: ['10.0.0.0/8', '127.0.0.0/8'] })
  t.teardown(() => allowed.close())
  const [answer] = await activateRaw(allowed.port, [baseRequest()])
  t.equal(answer.hresult, 0, 'a peer inside is served')
  t.equal(allowed.stats.refusedNotAllowed, 0)
})

t.test('the banner warns when listening beyond loopback without --allow', async (t) => {
  const exposed = await startServe(['--state', 'memory', '--listen', '0.0.0.0:0'])
  exposed.child.kill('SIGTERM')
  t.equal(await exposed.exited, 0)
  t.match(exposed.stderr(), /warning: listening on a non-loopback address \(0\.0\.0\.0\) without --allow/)

  const guarded = await startServe(['--state', 'memory', '--listen', '0.0.0.0:0', '--allow', '127.0.0.1/32'])
  const [answer] = await activateRaw(guarded.port, [baseRequest()])
  t.equal(answer.hresult, 0)
  guarded.child.kill('SIGTERM')
  t.equal(await guarded.exited, 0)
  t.notMatch(guarded.stderr(), /non-loopback/)

  const local = await startServe(['--state', 'memory'])
  local.child.kill('SIGTERM')
  await local.exited
  t.notMatch(local.stderr(), /non-loopback/, 'loopback only: no warning')

  // Loopback unless told otherwise: the CLI's default address, and the API's.
  t.same(hostOptionsFromFlags({}).listen, [{ host: '127.0.0.1', port: 1688 }])
  const api = await startHost({ state: 'memory' })
  t.same(
    api.addresses.map((a) => a.host),
    ['127.0.0.1'],
  )
  await api.close()
})

t.test('pools are bounded: 70 application ids give 64 pools, 60 clients give 50', async (t) => {
  const host = await startHost({ state: 'memory' })
  t.teardown(() => host.close())
  const known = [WINDOWS_APP, OFFICE2010_APP, OFFICE2013_APP].map((appId) => baseRequest({ appId }))
  const apps = Array.from({ length: 70 }, (_, i) =>
    baseRequest({ appId: `${(0x10000000 + i).toString(16)}-0000-4000-8000-000000000000` }),
  )
  const answers = await activateRaw(host.port, [...known, ...apps])
  t.ok(
    answers.every((a) => a.hresult === 0 && a.count === 1),
    'every request answered',
  )
  const pools = host.pools.read()
  t.equal(Object.keys(pools).length, MAX_POOLS)
  t.ok(
    [WINDOWS_APP, OFFICE2010_APP, OFFICE2013_APP].every((a) => pools[a]?.length === 1),
    'the known applications keep their pools',
  )
  t.notOk(pools[apps[0].appId], 'the least recently seen unknown application was evicted')
  t.ok(pools[apps[69].appId], 'the newest is kept')
  await activateRaw(
    host.port,
    Array.from({ length: 60 }, () => baseRequest()),
  )
  t.equal(host.pools.read()[WINDOWS_APP].length, 50)
})
