// reassembleTcp over synthetic segments: handshake, out-of-order, retransmitted and overlapping
// data, sequence wrap-around, connections without SYN, FIN/RST, gaps and port reuse.
import t from 'tap'
import { type CapturedPacket, reassembleTcp, type TcpConnection } from '../src/capture/index.js'
import { F, ipPacket, type SynthSegment } from './fixtures/pcap.js'

const C = { addr: '10.0.0.1', port: 50123 }
const S = { addr: '10.0.0.2', port: 16880 }

/** a segment from the client (c) or the server (s) */
function c(seq: number, payload = '', flags: number = F.ACK | (payload ? F.PSH : 0)): SynthSegment {
  return { src: C.addr, dst: S.addr, srcPort: C.port, dstPort: S.port, seq: seq >>> 0, flags, payload }
}
function s(seq: number, payload = '', flags: number = F.ACK | (payload ? F.PSH : 0)): SynthSegment {
  return { src: S.addr, dst: C.addr, srcPort: S.port, dstPort: C.port, seq: seq >>> 0, flags, payload }
}

function packets(segs: (SynthSegment | Uint8Array)[]): CapturedPacket[] {
  return segs.map((seg, index) => {
    const data = seg instanceof Uint8Array ? seg : ipPacket(seg)
    return {
      index,
      timestampNs: 1000n * BigInt(index),
      linkType: 101,
      data,
      originalLength: data.length,
      fileOffset: 0,
    }
  })
}

function one(segs: (SynthSegment | Uint8Array)[], warnings: string[] = []): TcpConnection {
  const conns = reassembleTcp(packets(segs), warnings)
  if (conns.length !== 1) throw new Error(`expected one connection, got ${conns.length}`)
  return conns[0]
}

const text = (b: Uint8Array) => Buffer.from(b).toString()

const ISN_C = 1000
const ISN_S = 5000
const handshake = [c(ISN_C, '', F.SYN), s(ISN_S, '', F.SYN | F.ACK), c(ISN_C + 1)]

t.test('handshake, data both ways, client FIN', async (t) => {
  const conn = one([
    ...handshake,
    c(ISN_C + 1, 'bind'),
    s(ISN_S + 1, 'ack!'),
    c(ISN_C + 5, 'request'),
    s(ISN_S + 5, 'response'),
    c(ISN_C + 12, '', F.FIN | F.ACK),
    s(ISN_S + 13, '', F.FIN | F.ACK),
    c(ISN_C + 13),
  ])
  t.same(conn.client, { address: '10.0.0.1', port: 50123 })
  t.same(conn.server, { address: '10.0.0.2', port: 16880 })
  t.equal(text(conn.clientData), 'bindrequest')
  t.equal(text(conn.serverData), 'ack!response')
  t.equal(conn.closedBy, 'client-fin')
  t.same(conn.gaps, [])
  t.equal(conn.firstTimestampNs, 0n)
  t.same(conn.chunks, [
    { fromClient: true, offset: 0, length: 4, timestampNs: 3000n, packetIndex: 3 },
    { fromClient: false, offset: 0, length: 4, timestampNs: 4000n, packetIndex: 4 },
    { fromClient: true, offset: 4, length: 7, timestampNs: 5000n, packetIndex: 5 },
    { fromClient: false, offset: 4, length: 8, timestampNs: 6000n, packetIndex: 6 },
  ])
})

t.test(
  'out-of-order segments are put back in order; bytes count as readable when the hole fills',
  async (t) => {
    const conn = one([
      ...handshake,
      c(ISN_C + 7, 'CCC'),
      c(ISN_C + 1, 'AAA'),
      c(ISN_C + 4, 'BBB'),
      c(ISN_C + 10, 'D'),
    ])
    t.equal(text(conn.clientData), 'AAABBBCCCD')
    t.same(conn.gaps, [])
    t.same(
      conn.chunks.map((k) => [k.offset, k.length, k.packetIndex]),
      [
        [0, 3, 4],
        [3, 6, 5], // BBB arrives in frame 5 and makes CCC (frame 3) readable with it
        [9, 1, 6],
      ],
    )
  },
)

t.test('retransmissions and overlaps add nothing', async (t) => {
  const conn = one([
    ...handshake,
    c(ISN_C + 1, 'abcdef'),
    c(ISN_C + 1, 'abcdef'), // exact duplicate
    c(ISN_C + 4, 'defghi'), // overlaps 3, adds 3
    c(ISN_C + 2, 'bc'), // inside
    c(ISN_C + 8, 'hijk'), // overlaps 2, adds 2
  ])
  t.equal(text(conn.clientData), 'abcdefghijk')
  t.same(conn.gaps, [])
})

t.test('a retransmission that disagrees is reported, the first copy kept', async (t) => {
  const conn = one([...handshake, c(ISN_C + 1, 'abcdef'), c(ISN_C + 5, 'XYgh')])
  t.equal(text(conn.clientData), 'abcdefgh')
  t.same(conn.gaps, [
    'client: retransmitted bytes differ from the first copy at data offset 4; first copy kept',
  ])
})

t.test('sequence numbers wrap around 2^32', async (t) => {
  const isn = 0xfffffff8
  const conn = one([
    c(isn, '', F.SYN),
    s(0xfffffffe, '', F.SYN | F.ACK),
    c(isn + 1, '0123'), // 0xfffffff9 .. 0xfffffffc
    c(isn + 9, '89ab'), // 0x00000001 .. wrapped, out of order
    c(isn + 5, '4567'), // 0xfffffffd .. 0x00000000
    s(0xffffffff, 'srv-'), // server data starts exactly at the wrap
    s(3, 'wrapped'),
    c(isn + 13, '', F.FIN | F.ACK),
  ])
  t.equal(text(conn.clientData), '0123456789ab')
  t.equal(text(conn.serverData), 'srv-wrapped')
  t.same(conn.gaps, [])
  t.equal(conn.closedBy, 'client-fin')
})

t.test('without a SYN, a stream that crosses 2^32 stays in one piece', async (t) => {
  const segs: SynthSegment[] = []
  const chunk = 'x'.repeat(1000)
  let seq = 0xffffff00
  for (let i = 0; i < 20; i++) {
    segs.push(c(seq, chunk))
    seq = (seq + 1000) >>> 0
  }
  const conn = one(segs)
  t.equal(conn.clientData.length, 20000)
  t.same(conn.gaps, [])
})

t.test('no SYN captured: the stream starts at the lowest sequence seen', async (t) => {
  const conn = one([c(2000 + 3, 'def'), s(9000, 'server'), c(2000, 'abc'), c(2006, 'ghi')])
  t.equal(text(conn.clientData), 'abcdefghi', 'an earlier segment captured later still leads')
  t.same(conn.client, { address: '10.0.0.1', port: 50123 }, 'higher port is the client')
  t.equal(conn.closedBy, undefined)
})

t.test('client choice without SYN: SYN-ACK, KMS port, higher port, first sender', async (t) => {
  const synAckOnly = one([s(ISN_S, '', F.SYN | F.ACK), c(ISN_C + 1, 'x')])
  t.equal(synAckOnly.client.port, C.port, 'the SYN-ACK comes from the server')
  const seg = (srcPort: number, dstPort: number, src = '10.0.0.1', dst = '10.0.0.2'): SynthSegment => ({
    src,
    dst,
    srcPort,
    dstPort,
    seq: 1,
    payload: 'x',
  })
  t.equal(one([seg(1688, 1500)]).client.port, 1500, 'the KMS port 1688 is the server even if higher')
  t.equal(one([seg(16880, 40000)]).client.port, 40000, 'higher port')
  t.same(
    one([seg(7000, 7000, '10.0.0.9', '10.0.0.1')]).client,
    { address: '10.0.0.9', port: 7000 },
    'first sender',
  )
})

t.test('missing bytes are reported and left out', async (t) => {
  const conn = one([
    ...handshake,
    c(ISN_C + 1, 'abc'),
    c(ISN_C + 10, 'xyz'),
    c(ISN_C + 13, '', F.FIN | F.ACK),
  ])
  t.equal(text(conn.clientData), 'abcxyz')
  t.same(conn.gaps, ['client: 6 bytes missing at data offset 3 (seq 1004), left out'])
  const lostStart = one([...handshake, c(ISN_C + 4, 'def')])
  t.same(lostStart.gaps, ['client: 3 bytes missing at data offset 0 (seq 1001), left out'])
  const lostTail = one([...handshake, c(ISN_C + 1, 'abc'), c(ISN_C + 8, '', F.FIN | F.ACK)])
  t.same(lostTail.gaps, ['client: 4 bytes missing before its FIN'])
  const afterFin = one([...handshake, c(ISN_C + 1, 'abc', F.FIN | F.ACK), c(ISN_C + 4, 'zz')])
  t.same(afterFin.gaps, ['client: 2 bytes after its FIN'])
})

t.test('RST closes; its sequence number and data are not stream data', async (t) => {
  const conn = one([...handshake, c(ISN_C + 1, 'GET / HTTP/1.0'), s(0, 'reset reason', F.RST | F.ACK)])
  t.equal(conn.closedBy, 'server-rst')
  t.equal(conn.serverData.length, 0)
  t.same(conn.gaps, [])
  const first = one([...handshake, c(ISN_C + 1, '', F.FIN | F.ACK), s(ISN_S + 1, '', F.RST)])
  t.equal(first.closedBy, 'client-fin', 'the first of FIN/RST counts')
})

t.test('SYN carrying data (TCP Fast Open)', async (t) => {
  const conn = one([c(ISN_C, 'early', F.SYN), s(ISN_S, '', F.SYN | F.ACK), c(ISN_C + 6, 'late')])
  t.equal(text(conn.clientData), 'earlylate')
})

t.test('retransmitted SYN stays one connection; a new SYN after close is a new one', async (t) => {
  const conns = reassembleTcp(
    packets([
      c(ISN_C, '', F.SYN),
      c(ISN_C, '', F.SYN),
      s(ISN_S, '', F.SYN | F.ACK),
      c(ISN_C + 1, 'one'),
      c(ISN_C + 4, '', F.FIN | F.ACK),
      s(ISN_S + 1, '', F.FIN | F.ACK),
      c(77777, '', F.SYN),
      s(88888, '', F.SYN | F.ACK),
      c(77778, 'two'),
    ]),
  )
  t.equal(conns.length, 2)
  t.same(
    conns.map((k) => [text(k.clientData), k.firstTimestampNs]),
    [
      ['one', 0n],
      ['two', 6000n],
    ],
  )
})

t.test('interleaved connections come out in order of first packet', async (t) => {
  const other = (seq: number, payload: string, flags: number = F.ACK | F.PSH): SynthSegment => ({
    src: '::1',
    dst: '::1',
    srcPort: 40000,
    dstPort: 1688,
    seq,
    payload,
    flags,
  })
  const conns = reassembleTcp(
    packets([c(ISN_C, '', F.SYN), other(1, '', F.SYN), c(ISN_C + 1, 'v4'), other(2, 'v6')]),
  )
  t.same(
    conns.map((k) => [k.client.address, k.family, text(k.clientData)]),
    [
      ['10.0.0.1', 4, 'v4'],
      ['::1', 6, 'v6'],
    ],
  )
})

t.test('undecodable frames become warnings naming the frame', async (t) => {
  const warnings: string[] = []
  const broken = ipPacket(c(1, 'x')).subarray(0, 30)
  const conn = one([c(1, 'ok'), broken], warnings)
  t.equal(text(conn.clientData), 'ok')
  t.same(warnings, [
    'frame 2: IPv4 packet 10.0.0.1 > 10.0.0.2 cut by the snapshot length: 30 of 41 bytes',
    'frame 2: truncated TCP header (byte 30)',
  ])
})
