// decodeFrame over every supported link layer, IPv4/IPv6 details and RFC 5952 address text.
import t, { type Test } from 'tap'
import { CaptureError, decodeFrame, ipv6Text, LINKTYPE } from '../src/capture/index.js'
import {
  ethernetFrame,
  F,
  hex,
  ipv4Packet,
  ipv6Bytes,
  ipv6Packet,
  loopbackFrame,
  type SynthSegment,
  sll2Frame,
  sllFrame,
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

const v4: SynthSegment = {
  src: '192.168.1.20',
  dst: '192.168.1.1',
  srcPort: 49772,
  dstPort: 1688,
  seq: 0xfffffff0,
  ack: 0x01020304,
  flags: F.PSH | F.ACK,
  payload: 'KMS!',
}
const v6: SynthSegment = { ...v4, src: '2001:db8::20', dst: 'fe80::1' }

const expected4 = {
  src: '192.168.1.20',
  dst: '192.168.1.1',
  srcPort: 49772,
  dstPort: 1688,
  seq: 0xfffffff0,
  ack: 0x01020304,
  flags: 0x18,
  family: 4,
}
const expected6 = { ...expected4, src: '2001:db8::20', dst: 'fe80::1', family: 6 }

function check(t: Test, got: ReturnType<typeof decodeFrame>, want: object, payload = 'KMS!') {
  t.ok(got, 'decoded')
  if (!got) return
  const { payload: p, ...rest } = got
  t.same(rest, want)
  t.equal(Buffer.from(p).toString(), payload)
}

t.test('Ethernet, with and without VLAN tags', async (t) => {
  check(t, decodeFrame(LINKTYPE.ETHERNET, ethernetFrame(ipv4Packet(v4))), expected4)
  check(t, decodeFrame(1, ethernetFrame(ipv4Packet(v4), [100])), expected4)
  check(t, decodeFrame(1, ethernetFrame(ipv6Packet(v6), [0x88a8, 200])), expected6, 'KMS!')
})

t.test('Ethernet padding after a short IPv4 packet is not payload', async (t) => {
  const frame = ethernetFrame(ipv4Packet({ ...v4, payload: '' }), [], 60)
  t.equal(frame.length, 60)
  const seg = decodeFrame(1, frame)
  t.equal(seg?.payload.length, 0)
})

t.test('Linux cooked v1 and v2', async (t) => {
  check(t, decodeFrame(LINKTYPE.LINUX_SLL, sllFrame(ipv4Packet(v4))), expected4)
  check(t, decodeFrame(LINKTYPE.LINUX_SLL2, sll2Frame(ipv6Packet(v6))), expected6)
})

t.test('raw IP: 101, 12 and 14 (BSD DLT_RAW values), 228/229', async (t) => {
  for (const lt of [101, 12, 14]) {
    check(t, decodeFrame(lt, ipv4Packet(v4)), expected4)
    check(t, decodeFrame(lt, ipv6Packet(v6)), expected6)
  }
  check(t, decodeFrame(228, ipv4Packet(v4)), expected4)
  check(t, decodeFrame(229, ipv6Packet(v6)), expected6)
  t.equal(decodeFrame(101, new Uint8Array([0x50, 1, 2, 3])), null, 'IP version 5: not ours')
})

t.test('BSD loopback: AF in either byte order; 2 = IPv4, 24/28/30 = IPv6', async (t) => {
  check(t, decodeFrame(LINKTYPE.NULL, loopbackFrame(ipv4Packet(v4), 2)), expected4)
  check(t, decodeFrame(0, loopbackFrame(ipv4Packet(v4), 2, true)), expected4)
  for (const af of [24, 28, 30]) {
    check(t, decodeFrame(0, loopbackFrame(ipv6Packet(v6), af)), expected6)
    check(t, decodeFrame(0, loopbackFrame(ipv6Packet(v6), af, true)), expected6)
  }
  check(t, decodeFrame(LINKTYPE.LOOP, loopbackFrame(ipv4Packet(v4), 2, true)), expected4)
  check(t, decodeFrame(12, loopbackFrame(ipv6Packet(v6), 24, true)), expected6)
  t.equal(decodeFrame(0, loopbackFrame(ipv4Packet(v4), 7)), null, 'unknown family')
})

t.test('IPv4 options, TCP options, NS flag', async (t) => {
  const frame = ipv4Packet(
    { ...v4, flags: F.SYN },
    { ipOptions: new Uint8Array([1, 1, 1, 0]), tcpOptions: new Uint8Array([2, 4, 0x05, 0xb4, 1, 1, 1, 0]) },
  )
  frame[20 + 4 + 12] |= 1 // NS bit in the TCP data offset byte
  const seg = decodeFrame(101, frame)
  t.equal(seg?.flags, 0x102)
  t.equal(Buffer.from(seg?.payload ?? []).toString(), 'KMS!')
})

t.test('IPv4 fragments: later ones are skipped with a warning, the first is decoded', async (t) => {
  const warnings: string[] = []
  t.equal(decodeFrame(101, ipv4Packet(v4, { fragmentOffset: 1480 }), warnings), null)
  t.same(warnings, [
    'IPv4 fragment at offset 1480 (id 4660, 192.168.1.20 > 192.168.1.1) skipped: only first fragments are decoded',
  ])
  const first: string[] = []
  check(t, decodeFrame(101, ipv4Packet(v4, { moreFragments: true }), first), expected4)
  t.match(first[0], /^first IPv4 fragment/)
  const udp: string[] = []
  t.equal(decodeFrame(101, ipv4Packet(v4, { fragmentOffset: 8, protocol: 17 }), udp), null)
  t.same(udp, [], 'fragments of other protocols are not our business')
})

t.test('IPv6 extension headers are walked to TCP', async (t) => {
  const hopByHop = new Uint8Array(8) // next, len 0, PadN
  hopByHop.set([0, 0, 1, 4, 0, 0, 0, 0])
  const destination = new Uint8Array(16)
  destination.set([0, 1, 1, 12])
  const routing = new Uint8Array(8)
  routing.set([0, 0, 0, 0])
  const ah = new Uint8Array(16)
  ah.set([0, 2]) // (2 + 2) * 4 = 16 bytes
  const frame = ipv6Packet(v6, [
    [0, hopByHop],
    [60, destination],
    [43, routing],
    [51, ah],
  ])
  check(t, decodeFrame(101, frame), expected6)
  const fragment = new Uint8Array(8)
  const warnings: string[] = []
  t.ok(decodeFrame(101, ipv6Packet(v6, [[44, fragment]]), warnings), 'offset 0, no more fragments: whole')
  t.same(warnings, [])
  fragment[3] = 1 // M flag: first of several
  t.ok(decodeFrame(101, ipv6Packet(v6, [[44, fragment]]), warnings))
  t.match(warnings[0], /^first IPv6 fragment/)
  fragment[2] = 0x05 // offset 0x0500 & 0xfff8
  t.equal(decodeFrame(101, ipv6Packet(v6, [[44, fragment]]), warnings), null)
  t.match(warnings[1], /^IPv6 fragment at offset 1280/)
  const esp = ipv6Packet(v6)
  esp[6] = 50
  t.equal(decodeFrame(101, esp), null, 'ESP: cannot see inside')
})

t.test('not TCP -> null', async (t) => {
  t.equal(decodeFrame(1, ethernetFrame(ipv4Packet(v4, { protocol: 17 }))), null, 'UDP')
  const arp = ethernetFrame(ipv4Packet(v4))
  arp[12] = 0x08
  arp[13] = 0x06
  t.equal(decodeFrame(1, arp), null, 'ARP')
  const llc = ethernetFrame(ipv4Packet(v4))
  llc[12] = 0x00
  llc[13] = 0x40
  t.equal(decodeFrame(1, llc), null, '802.3 length field')
  t.equal(decodeFrame(147, ipv4Packet(v4)), null, 'unsupported link type')
  t.equal(decodeFrame(101, new Uint8Array(0)), null, 'empty raw frame')
})

t.test('broken frames throw CaptureError with the offset (plus the base offset)', async (t) => {
  const cases: [number, Uint8Array, string, number][] = [
    [1, new Uint8Array(10), 'truncated Ethernet header', 1010],
    [1, ethernetFrame(ipv4Packet(v4), [7]).subarray(0, 16), 'truncated VLAN tag', 1016],
    [113, new Uint8Array(15), 'truncated Linux cooked header', 1015],
    [276, new Uint8Array(19), 'truncated Linux cooked v2 header', 1019],
    [0, new Uint8Array(3), 'truncated loopback header', 1003],
    [101, ipv4Packet(v4).subarray(0, 19), 'truncated IPv4 header', 1019],
    [101, ipv4Packet(v4).subarray(0, 30), 'truncated TCP header', 1030],
    [101, ipv6Packet(v6).subarray(0, 39), 'truncated IPv6 header', 1039],
    [228, ipv6Packet(v6), 'IPv4 header with version 6', 1000],
  ]
  for (const [lt, frame, what, offset] of cases) {
    try {
      decodeFrame(lt, frame, [], 1000)
      t.fail(`${what}: no error`)
    } catch (e) {
      t.ok(e instanceof CaptureError, what)
      t.same(e instanceof CaptureError && [e.what, e.offset], [what, offset])
    }
  }
  const badIhl = ipv4Packet(v4)
  badIhl[0] = 0x44
  t.ok(thrown(() => decodeFrame(101, badIhl)) instanceof CaptureError)
  t.match(
    thrown(() => decodeFrame(101, badIhl)),
    { what: 'IPv4 header length 16 < 20', offset: 0 },
  )
  const badDoff = ipv4Packet(v4)
  badDoff[32] = 0x40
  t.ok(thrown(() => decodeFrame(101, badDoff)) instanceof CaptureError)
  t.match(
    thrown(() => decodeFrame(101, badDoff)),
    { what: 'TCP data offset 16 < 20', offset: 32 },
  )
  const badTotal = ipv4Packet(v4)
  badTotal[2] = 0
  badTotal[3] = 10
  t.ok(thrown(() => decodeFrame(101, badTotal)) instanceof CaptureError)
  t.match(
    thrown(() => decodeFrame(101, badTotal)),
    { what: 'IPv4 total length 10 < header length 20' },
  )
})

t.test('snapped packets: payload is what was captured, with a warning', async (t) => {
  const warnings: string[] = []
  const frame = ipv4Packet(v4)
  const seg = decodeFrame(101, frame.subarray(0, frame.length - 2), warnings)
  t.equal(Buffer.from(seg?.payload ?? []).toString(), 'KM')
  t.same(warnings, ['IPv4 packet 192.168.1.20 > 192.168.1.1 cut by the snapshot length: 42 of 44 bytes'])
  const zeroLength = ipv4Packet(v4)
  zeroLength[2] = 0
  zeroLength[3] = 0
  t.equal(
    decodeFrame(101, zeroLength)?.payload.length,
    4,
    'total length 0 (segmentation offload): frame length',
  )
})

t.test('IPv6 text is RFC 5952', async (t) => {
  const text = (s: string) => ipv6Text(ipv6Bytes(s), 0)
  t.equal(text('0:0:0:0:0:0:0:1'), '::1')
  t.equal(text('0:0:0:0:0:0:0:0'), '::')
  t.equal(text('2001:0db8:0:0:0:0:0:1'), '2001:db8::1')
  t.equal(text('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1', 'a single zero group is not compressed')
  t.equal(text('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1', 'the longest run')
  t.equal(text('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'the first of equal runs')
  t.equal(text('FE80:0:0:0:0:0:0:0'), 'fe80::')
  t.equal(text('2001:DB8:AAAA:BBBB:CCCC:DDDD:EEEE:0001'), '2001:db8:aaaa:bbbb:cccc:dddd:eeee:1')
  const mapped = new Uint8Array(16)
  mapped.set([0xff, 0xff, 192, 0, 2, 1], 10)
  t.equal(ipv6Text(mapped, 0), '::ffff:192.0.2.1', 'IPv4-mapped in mixed notation')
  t.equal(hex(ipv6Bytes('::1')), '00000000000000000000000000000001')
})
