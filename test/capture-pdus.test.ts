// cutRpcPdus on its own, then capturePdus end to end over synthetic captures: the same RPC
// conversation written with every link layer, byte order and file format gives the same PDUs.
import t, { type Test } from 'tap'
import { CaptureError, capturePdus, cutRpcPdus, decodeCapturePdus } from '../src/capture/index.js'
import {
  ethernetFrame,
  F,
  hex,
  ipPacket,
  loopbackFrame,
  type PcapngBlock,
  rpcPdu,
  type SynthFrame,
  type SynthSegment,
  sll2Frame,
  sllFrame,
  writePcap,
  writePcapng,
} from './fixtures/pcap.js'

/** What `fn` throws (undefined when it returns): matched by class with instanceof, then by fields. */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]))

t.test('cutRpcPdus: whole PDUs back to back', async (t) => {
  const bind = rpcPdu(11, 2, 56)
  const request = rpcPdu(0, 2, 276)
  const r = cutRpcPdus(concat(bind, request))
  t.same(
    r.pdus.map((p) => [p.offset, p.bytes.length, p.bytes[2]]),
    [
      [0, 72, 11],
      [72, 292, 0],
    ],
  )
  t.equal(r.rest, null)
  t.same(cutRpcPdus(new Uint8Array(0)), { pdus: [], rest: null })
  t.equal(cutRpcPdus(rpcPdu(17, 0, 0)).pdus.length, 1, 'a bare 16-byte PDU')
})

t.test('cutRpcPdus: what stops the cut', async (t) => {
  const bind = rpcPdu(11, 2, 56)
  t.same(cutRpcPdus(new TextEncoder().encode('GET / HTTP/1.0\r\n')).rest, {
    offset: 0,
    reason: 'not DCE-RPC: first byte 0x47',
  })
  t.same(cutRpcPdus(concat(bind, new Uint8Array([0x98, 1, 2]))).rest, {
    offset: 72,
    reason: 'not DCE-RPC: first byte 0x98',
  })
  t.same(cutRpcPdus(bind.subarray(0, 40)).rest, {
    offset: 0,
    reason: 'truncated PDU: header says 72 bytes, 40 remain',
  })
  t.same(cutRpcPdus(bind.subarray(0, 12)).rest, {
    offset: 0,
    reason: 'truncated PDU: header says 72 bytes, 12 remain',
  })
  t.same(cutRpcPdus(bind.subarray(0, 3)).rest, {
    offset: 0,
    reason: 'truncated PDU: 3 header bytes, 16 needed',
  })
  const short = rpcPdu(0, 1, 0)
  short[8] = 8
  t.same(cutRpcPdus(short).rest, {
    offset: 0,
    reason: 'not DCE-RPC: frag_length 8 is shorter than the header',
  })
  t.same(cutRpcPdus(concat(bind, bind.subarray(0, 20))).pdus.length, 1)
})

// ---- one conversation, many encodings ----

const bind = rpcPdu(11, 2, 56, 0x11)
const bindAck = rpcPdu(12, 2, 44, 0x22)
const request = rpcPdu(0, 2, 276, 0x33)
const response = rpcPdu(2, 2, 284, 0x44)

function conversation(client: string, server: string, isnC: number, isnS: number): SynthSegment[] {
  const c = (
    seq: number,
    payload: Uint8Array | string = '',
    flags: number = F.ACK | F.PSH,
  ): SynthSegment => ({
    src: client,
    dst: server,
    srcPort: 51000,
    dstPort: 1688,
    seq: seq >>> 0,
    flags,
    payload,
  })
  const s = (
    seq: number,
    payload: Uint8Array | string = '',
    flags: number = F.ACK | F.PSH,
  ): SynthSegment => ({
    src: server,
    dst: client,
    srcPort: 1688,
    dstPort: 51000,
    seq: seq >>> 0,
    flags,
    payload,
  })
  const rq = isnC + 1 + bind.length
  return [
    c(isnC, '', F.SYN),
    s(isnS, '', F.SYN | F.ACK),
    c(isnC + 1, '', F.ACK),
    c(isnC + 1, bind.subarray(0, 30)),
    c(isnC + 31, bind.subarray(30)),
    s(isnS + 1, bindAck),
    // the request in three pieces: the last first, then a retransmission overlapping the first two
    c(rq + 200, request.subarray(200)),
    c(rq, request.subarray(0, 100)),
    c(rq + 50, request.subarray(50, 200)),
    s(isnS + 1 + bindAck.length, response),
    c(rq + 200, request.subarray(200)),
    c(rq + request.length, '', F.FIN | F.ACK),
    s(isnS + 1 + bindAck.length + response.length, '', F.FIN | F.ACK),
  ]
}

function check(t: Test, bytes: Uint8Array, family: 4 | 6 = 4) {
  const r = decodeCapturePdus(bytes, 'synthetic')
  t.same(r.warnings, [])
  t.equal(r.connections.length, 1)
  const [c] = r.connections
  t.same(
    c.clientPdus.map((p) => hex(p.bytes)),
    [hex(bind), hex(request)],
  )
  t.same(
    c.serverPdus.map((p) => hex(p.bytes)),
    [hex(bindAck), hex(response)],
  )
  t.equal(c.clientRest, null)
  t.equal(c.serverRest, null)
  t.equal(c.connection.closedBy, 'client-fin')
  t.same(c.connection.gaps, [])
  t.equal(c.connection.server.port, 1688)
  t.equal(c.connection.family, family)
}

const v4 = conversation('192.0.2.10', '192.0.2.1', 0x7ffffff0, 0xffffffc0) // server seq wraps
const v6 = conversation('2001:db8::10', '2001:db8::1', 42, 0xfffffff0)
const frames = (segs: SynthSegment[], wrap: (ip: Uint8Array) => Uint8Array): SynthFrame[] =>
  segs.map((seg, i) => ({ data: wrap(ipPacket(seg)), ts: 1_700_000_000_000_000_000n + BigInt(i) * 1000n }))

t.test('classic pcap variants give the same PDUs', async (t) => {
  check(t, writePcap(frames(v4, (ip) => ethernetFrame(ip))))
  check(
    t,
    writePcap(
      frames(v4, (ip) => ethernetFrame(ip, [], 60)),
      { bigEndian: true },
    ),
  )
  check(
    t,
    writePcap(
      frames(v4, (ip) => ethernetFrame(ip, [10, 20])),
      { nano: true },
    ),
  )
  check(t, writePcap(frames(v4, sllFrame), { linkType: 113 }))
  check(t, writePcap(frames(v4, sll2Frame), { linkType: 276, bigEndian: true, nano: true }))
  check(
    t,
    writePcap(
      frames(v4, (ip) => ip),
      { linkType: 101 },
    ),
  )
  check(
    t,
    writePcap(
      frames(v4, (ip) => ip),
      { linkType: 12 },
    ),
  )
  check(
    t,
    writePcap(
      frames(v4, (ip) => loopbackFrame(ip, 2)),
      { linkType: 0 },
    ),
  )
  check(
    t,
    writePcap(
      frames(v6, (ip) => ethernetFrame(ip)),
      {},
    ),
    6,
  )
  check(
    t,
    writePcap(
      frames(v6, (ip) => loopbackFrame(ip, 30, true)),
      { linkType: 0, bigEndian: true },
    ),
    6,
  )
  check(
    t,
    writePcap(
      frames(v6, (ip) => ip),
      { linkType: 229 },
    ),
    6,
  )
})

t.test('pcapng variants: big-endian section, EPB and SPB, two interfaces', async (t) => {
  const eth = frames(v4, (ip) => ethernetFrame(ip))
  const epbs: PcapngBlock[] = eth.map((f, i) => ({ kind: 'epb', units: BigInt(i), data: f.data }))
  check(t, writePcapng([{ kind: 'shb', bigEndian: true }, { kind: 'idb', linkType: 1 }, ...epbs]))
  const spbs: PcapngBlock[] = eth.map((f) => ({ kind: 'spb', data: f.data }))
  check(t, writePcapng([{ kind: 'shb' }, { kind: 'idb', linkType: 1, snaplen: 65535 }, ...spbs]))
  // the client's frames on a cooked interface, the server's on Ethernet
  const mixed: PcapngBlock[] = v4.map((seg, i) => {
    const fromClient = seg.srcPort === 51000
    const ip = ipPacket(seg)
    return {
      kind: 'epb',
      units: BigInt(i),
      iface: fromClient ? 1 : 0,
      data: fromClient ? sllFrame(ip) : ethernetFrame(ip),
    }
  })
  check(
    t,
    writePcapng([
      { kind: 'shb', bigEndian: true },
      { kind: 'idb', linkType: 1, tsresol: 9 },
      { kind: 'idb', linkType: 113, tsresol: 9 },
      ...mixed,
    ]),
  )
})

t.test('capturePdus: connections only; the file name goes into errors', async (t) => {
  const bytes = writePcap(frames(v4, (ip) => ethernetFrame(ip)))
  const list = capturePdus(bytes)
  t.equal(list.length, 1)
  t.equal(list[0].clientPdus.length, 2)
  t.ok(thrown(() => capturePdus(new Uint8Array(10), 'x.pcap')) instanceof CaptureError)
  t.match(
    thrown(() => capturePdus(new Uint8Array(10), 'x.pcap')),
    { what: 'x.pcap: not a pcap or pcapng file', offset: 0 },
  )
  t.ok(thrown(() => capturePdus(new Uint8Array(10))) instanceof CaptureError)
  t.match(
    thrown(() => capturePdus(new Uint8Array(10))),
    { what: 'not a pcap or pcapng file' },
  )
})

t.test('file-level warnings: truncated tail, unsupported link types, broken frames', async (t) => {
  const bytes = writePcap(frames(v4, (ip) => ethernetFrame(ip)))
  const cut = decodeCapturePdus(bytes.subarray(0, bytes.length - 3))
  t.match(cut.warnings[0], /^truncated last record at byte \d+: header says 54 bytes, 51 remain$/)
  t.equal(cut.connections[0].serverPdus.length, 2, 'everything before the cut is still there')
  const odd = decodeCapturePdus(
    writePcap(
      frames(v4, (ip) => ip),
      { linkType: 147 },
    ),
  )
  t.same(odd.warnings, ['link type 147 is not supported; its frames are skipped'])
  t.equal(odd.connections.length, 0)
})
