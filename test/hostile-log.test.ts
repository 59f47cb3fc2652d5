// What `kmslab serve` prints for hostile input: one line per event, with the peer's address and
// the reason, never a second line when the peer then closes (checked on the real CLI output).
import t from 'tap'
import {
  bind,
  bindDrep,
  bindVersion,
  bindWithLength,
  context,
  EPM_IFACE,
  kms,
  NOT_RPC,
  request,
  sleep,
} from './fixtures/hostile.js'
import { RawPeer } from './fixtures/raw-client.js'
import { startServe } from './fixtures/serve-process.js'

interface Case {
  name: string
  run(peer: RawPeer): Promise<void>
  line: RegExp
}

const answered = async (peer: RawPeer, bytes: Uint8Array) => {
  peer.send(bytes)
  await peer.pdu()
}

const CASES: Case[] = [
  ...Object.entries(NOT_RPC).map(([name, bytes]) => ({
    name,
    run: async (peer: RawPeer) => {
      peer.send(bytes)
      await peer.waitClosed()
    },
    line: /warning: 127\.0\.0\.1:\d+: not DCE-RPC \(first bytes/,
  })),
  {
    name: 'frag_length 8',
    run: async (peer) => {
      peer.send(bindWithLength(8))
      await peer.waitClosed()
    },
    line: /warning: 127\.0\.0\.1:\d+: frag_length 8 is shorter than the header/,
  },
  {
    name: 'frag_length 9000',
    run: async (peer) => {
      peer.send(bindWithLength(9000).subarray(0, 10))
      await peer.waitClosed()
    },
    line: /warning: 127\.0\.0\.1:\d+: frag_length 9000 exceeds the fragment limit 5840/,
  },
  {
    name: 'RPC 4.0',
    run: (peer) => answered(peer, bindVersion(4, 0)),
    line: /warning: 127\.0\.0\.1:\d+: BIND_NAK: RPC version 4\.0 not supported/,
  },
  {
    name: 'RPC 5.1',
    run: (peer) => answered(peer, bindVersion(5, 1)),
    line: /warning: 127\.0\.0\.1:\d+: BIND_NAK: RPC version 5\.1/,
  },
  {
    name: 'big-endian',
    run: (peer) => answered(peer, bindDrep([0, 0])),
    line: /warning: 127\.0\.0\.1:\d+: BIND_NAK: data representation 0x/,
  },
  {
    name: '100 contexts',
    run: (peer) => answered(peer, bind(Array.from({ length: 100 }, (_, i) => context(i)))),
    line: /warning: 127\.0\.0\.1:\d+: BIND 100 presentation contexts, those past 64 rejected/,
  },
  {
    name: 'declared 200',
    run: (peer) => answered(peer, bind([context(0)], { declared: 200 })),
    line: /warning: 127\.0\.0\.1:\d+: BIND declares 200 presentation contexts, 1 fit the fragment/,
  },
  {
    name: 'foreign interface',
    run: (peer) => answered(peer, bind([context(0, EPM_IFACE)])),
    line: /warning: 127\.0\.0\.1:\d+: BIND for another interface \(e1af8308/,
  },
  {
    name: 'request before bind',
    run: (peer) => answered(peer, request(kms().payload, { callId: 7 })),
    line: /warning: 127\.0\.0\.1:\d+: FAULT 0x1C010003 for call 7: request before any bind/,
  },
  {
    name: 'unknown context',
    run: async (peer) => {
      await answered(peer, bind())
      await answered(peer, request(kms().payload, { callId: 8, contextId: 3 }))
    },
    line: /warning: 127\.0\.0\.1:\d+: FAULT 0x1C010003 for call 8: unknown context id 3/,
  },
  {
    name: 'unknown opnum',
    run: async (peer) => {
      await answered(peer, bind())
      await answered(peer, request(kms().payload, { callId: 9, opnum: 4 }))
    },
    line: /warning: 127\.0\.0\.1:\d+: FAULT 0x1C010002 for call 9: unknown opnum 4/,
  },
  {
    name: 'KMS version 7',
    run: async (peer) => {
      await answered(peer, bind())
      const p = kms(6).payload
      p[2] = 7
      await answered(peer, request(p))
    },
    line: /^\S+ refused 127\.0\.0\.1:\d+ V7\.0 .*: 0x8007000D .*\(unsupported KMS protocol version 7\.0/,
  },
  {
    name: 'stops mid-PDU',
    run: async (peer) => {
      peer.send(bind().subarray(0, 20))
      await peer.waitClosed()
    },
    line: /warning: 127\.0\.0\.1:\d+: idle timeout in the middle of a PDU/,
  },
  {
    name: 'FIN mid-PDU',
    run: async (peer) => {
      peer.send(bind().subarray(0, 20))
      await sleep(20)
      peer.socket.end()
      await peer.waitClosed()
    },
    line: /warning: 127\.0\.0\.1:\d+: peer closed in the middle of a PDU/,
  },
]

t.test('one log line per hostile event, with the address and the reason', async (t) => {
  const host = await startServe(['--state', 'memory', '--idle-timeout', '0.3'])
  t.teardown(() => host.child.kill('SIGKILL'))
  const ports = new Map<string, number>()
  await Promise.all(
    CASES.map(async (c) => {
      const peer = await RawPeer.open(host.port)
      ports.set(c.name, peer.socket.localPort!)
      await c.run(peer)
      peer.end() // closing after the error must not add a line
    }),
  )
  const valid = await RawPeer.open(host.port)
  const validPort = valid.socket.localPort!
  await answered(valid, bind())
  await answered(valid, request(kms(6).payload))
  valid.end()
  await sleep(400)
  host.child.kill('SIGTERM')
  t.equal(await host.exited, 0)

  const lines = `${host.stdout()}${host.stderr()}`.split('\n')
  const linesOf = (port: number) => lines.filter((l) => new RegExp(`127\\.0\\.0\\.1:${port}\\b`).test(l))
  for (const c of CASES) {
    const mine = linesOf(ports.get(c.name)!)
    t.equal(mine.length, 1, `${c.name}: one line (${mine.join(' | ')})`)
    t.match(mine[0] ?? '', c.line, `${c.name}: address and reason`)
  }
  const validLines = linesOf(validPort)
  t.equal(validLines.length, 1, 'the valid client: its activation line only')
  t.match(validLines[0], /activation 127\.0\.0\.1:\d+ V6\.0/)
  t.notMatch(host.stderr(), /internal error|Error:/, 'no internal errors')
})
