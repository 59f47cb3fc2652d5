// readCapture over synthetic files: both pcap byte orders and resolutions, pcapng sections,
// interfaces, EPB/SPB, and damaged tails (kept as warnings, earlier packets still read).
import t, { type Test } from 'tap'
import { CaptureError, readCapture } from '../src/capture/index.js'
import {
  ethernetFrame,
  hex,
  ipv4Packet,
  loadCaptureBytes,
  type SynthFrame,
  sllFrame,
  writePcap,
  writePcapng,
} from './fixtures/pcap.js'

const seg = { src: '10.0.0.1', dst: '10.0.0.2', srcPort: 50000, dstPort: 1688, seq: 1000, payload: 'hello' }
const frameA = ethernetFrame(ipv4Packet(seg))
const frameB = ethernetFrame(ipv4Packet({ ...seg, seq: 1005, payload: 'world!' }))
const T0 = 1_764_077_226_123_456_789n // 2025-11-25T13:27:06.123456789Z

function frames(): SynthFrame[] {
  return [
    { data: frameA, ts: T0 },
    { data: frameB, ts: T0 + 1_500_000_000n },
  ]
}

function throwsCapture(t: Test, fn: () => unknown, what: RegExp | string, offset?: number) {
  try {
    fn()
    t.fail('expected a CaptureError')
  } catch (e) {
    t.ok(e instanceof CaptureError, 'a CaptureError')
    if (e instanceof CaptureError) {
      t.match(e.what, what)
      if (offset !== undefined) t.equal(e.offset, offset, 'offset in the file')
    }
  }
}

t.test('classic pcap, little-endian microseconds', async (t) => {
  const file = writePcap(frames())
  t.same([...file.subarray(0, 4)], [0xd4, 0xc3, 0xb2, 0xa1])
  const r = readCapture(file)
  t.equal(r.format, 'pcap')
  t.same(r.warnings, [])
  t.equal(r.packets.length, 2)
  t.equal(r.packets[0].timestampNs, 1_764_077_226_123_456_000n, 'microseconds: the ns digits are lost')
  t.equal(r.packets[1].timestampNs, 1_764_077_227_623_456_000n)
  t.equal(r.packets[0].linkType, 1)
  t.equal(hex(r.packets[0].data), hex(frameA))
  t.equal(r.packets[1].index, 1)
  t.equal(r.packets[0].fileOffset, 40, '24-byte file header + 16-byte record header')
  t.equal(r.packets[0].originalLength, frameA.length)
})

t.test('classic pcap, big-endian and nanosecond magic', async (t) => {
  for (const [bigEndian, nano, magic] of [
    [true, false, 'a1b2c3d4'],
    [false, true, '4d3cb2a1'],
    [true, true, 'a1b23c4d'],
  ] as const) {
    const file = writePcap(frames(), { bigEndian, nano, linkType: 113 })
    t.equal(hex(file.subarray(0, 4)), magic)
    const r = readCapture(file)
    t.equal(r.packets.length, 2)
    t.equal(r.packets[0].linkType, 113)
    t.equal(r.packets[0].timestampNs, nano ? T0 : 1_764_077_226_123_456_000n)
    t.equal(hex(r.packets[1].data), hex(frameB))
  }
})

t.test(
  'classic pcap: FCS bits above the link type are ignored; snapped frames keep their wire length',
  async (t) => {
    const file = writePcap([{ data: frameA.subarray(0, 40), originalLength: frameA.length }])
    file[23] = 0x14 // "FCS present, 2 bytes"-style flags in the upper bits
    const r = readCapture(file)
    t.equal(r.packets[0].linkType, 1)
    t.equal(r.packets[0].data.length, 40)
    t.equal(r.packets[0].originalLength, frameA.length)
  },
)

t.test('classic pcap: a truncated last record is a warning, earlier packets stay', async (t) => {
  const file = writePcap(frames())
  const cut = file.subarray(0, file.length - 10)
  const r = readCapture(cut)
  t.equal(r.packets.length, 1)
  t.same(r.warnings, [
    `truncated last record at byte ${24 + 16 + frameA.length}: header says ${frameB.length} bytes, ${frameB.length - 10} remain`,
  ])
  const headerCut = file.subarray(0, 24 + 16 + frameA.length + 7)
  t.same(readCapture(headerCut).warnings, [
    `truncated last record at byte ${24 + 16 + frameA.length}: 7 of 16 header bytes`,
  ])
  t.same(readCapture(file.subarray(0, 24)).packets, [], 'header only: no packets, no warnings')
})

t.test('not a capture', async (t) => {
  throwsCapture(
    t,
    () => readCapture(new TextEncoder().encode('GET / HTTP/1.0\r\n\r\n')),
    'not a pcap or pcapng file',
    0,
  )
  throwsCapture(t, () => readCapture(new Uint8Array(0)), 'not a pcap or pcapng file', 0)
  throwsCapture(t, () => readCapture(new Uint8Array([0xd4, 0xc3])), 'not a pcap or pcapng file', 0)
  throwsCapture(
    t,
    () => readCapture(writePcap([]).subarray(0, 20)),
    /truncated pcap file header: 20 of 24/,
    20,
  )
  throwsCapture(
    t,
    () => readCapture(new Uint8Array([0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0])),
    'not a pcap or pcapng file',
  )
})

t.test('pcapng: little-endian section, IDB, EPB in microseconds', async (t) => {
  const units = T0 / 1000n
  const file = writePcapng([
    { kind: 'shb' },
    { kind: 'idb', linkType: 1, snaplen: 262144 },
    { kind: 'epb', units, data: frameA },
    { kind: 'epb', units: units + 7n, data: frameB },
  ])
  const r = readCapture(file)
  t.equal(r.format, 'pcapng')
  t.same(r.warnings, [])
  t.equal(r.packets.length, 2)
  t.equal(r.packets[0].timestampNs, units * 1000n)
  t.equal(r.packets[1].timestampNs, (units + 7n) * 1000n)
  t.equal(hex(r.packets[1].data), hex(frameB))
  t.equal(r.packets[0].fileOffset, 28 + 20 + 28, 'SHB 28 + IDB 20 + EPB header 28')
})

t.test('pcapng: big-endian section, if_tsresol / if_tsoffset, SPB with snaplen', async (t) => {
  const file = writePcapng([
    { kind: 'shb', bigEndian: true },
    { kind: 'idb', linkType: 1, snaplen: 30, tsresol: 9, tsoffset: 10n },
    { kind: 'epb', units: 5n, data: frameA.subarray(0, 30), originalLength: frameA.length },
    { kind: 'spb', data: frameB },
  ])
  t.equal(hex(file.subarray(8, 12)), '1a2b3c4d', 'big-endian byte-order magic')
  const r = readCapture(file)
  t.same(r.warnings, [])
  t.equal(r.packets.length, 2)
  t.equal(r.packets[0].timestampNs, 10_000_000_005n, 'nanosecond units plus a 10 s offset')
  t.equal(r.packets[0].originalLength, frameA.length)
  t.equal(r.packets[1].data.length, 30, 'SPB: captured length is the IDB 0 snaplen')
  t.equal(r.packets[1].originalLength, frameB.length)
  t.equal(hex(r.packets[1].data), hex(frameB.subarray(0, 30)))
  t.equal(r.packets[1].timestampNs, 10_000_000_005n, 'SPB has no time: the previous one is kept')
})

t.test('pcapng: binary tsresol and decimal resolutions coarser/finer than ns', async (t) => {
  const at = (tsresol: number, units: bigint) =>
    readCapture(
      writePcapng([
        { kind: 'shb' },
        { kind: 'idb', linkType: 1, tsresol },
        { kind: 'epb', units, data: frameA },
      ]),
    ).packets[0].timestampNs
  t.equal(at(0x80 | 10, 3n * 1024n), 3_000_000_000n, '2^-10 s units')
  t.equal(at(3, 1500n), 1_500_000_000n, 'milliseconds')
  t.equal(at(12, 7_000_000_123_456n), 7_000_000_123n, 'picoseconds round down to ns')
})

t.test('pcapng: several sections (byte order switches), interfaces, unknown blocks', async (t) => {
  const file = writePcapng([
    { kind: 'shb' },
    { kind: 'idb', linkType: 1 },
    { kind: 'idb', linkType: 113 },
    { kind: 'raw', type: 5, body: new Uint8Array(12) }, // interface statistics: skipped
    { kind: 'epb', units: 1n, data: frameA },
    { kind: 'epb', units: 2n, data: sllFrame(ipv4Packet(seg)), iface: 1 },
    { kind: 'raw', type: 0x0bad, body: new Uint8Array([1, 2, 3]) }, // custom block: skipped
    { kind: 'shb', bigEndian: true },
    { kind: 'idb', linkType: 101 },
    { kind: 'epb', units: 3n, data: ipv4Packet(seg) },
    { kind: 'epb', units: 4n, data: frameA, iface: 1 }, // interface 1 belonged to the first section
  ])
  const r = readCapture(file)
  t.same(
    r.packets.map((p) => [p.index, p.linkType, Number(p.timestampNs)]),
    [
      [0, 1, 1000],
      [1, 113, 2000],
      [2, 101, 3000],
    ],
  )
  t.equal(r.warnings.length, 1)
  t.match(r.warnings[0], /names unknown interface 1; skipped/)
})

t.test('pcapng: damaged tails are warnings, damaged starts are errors', async (t) => {
  const file = writePcapng([
    { kind: 'shb' },
    { kind: 'idb', linkType: 1 },
    { kind: 'epb', units: 1n, data: frameA },
    { kind: 'epb', units: 2n, data: frameB },
  ])
  const lastBlock = file.length - (32 + ((frameB.length + 3) & ~3))
  const cut = readCapture(file.subarray(0, file.length - 5))
  t.equal(cut.packets.length, 1)
  t.match(cut.warnings[0], `truncated last block at byte ${lastBlock}`)
  const bad = new Uint8Array(file)
  bad[lastBlock + 4] = 13 // length not a multiple of 4
  t.match(readCapture(bad).warnings[0], `block at byte ${lastBlock} has invalid length 13`)
  const mismatch = new Uint8Array(file)
  mismatch[mismatch.length - 4] ^= 4
  t.match(readCapture(mismatch).warnings[0], /length \d+ at its start, \d+ at its end/)
  t.equal(readCapture(mismatch).packets.length, 1)
  throwsCapture(t, () => readCapture(file.subarray(0, 20)), /truncated pcapng section header: 20 of 28/, 0)
  const noMagic = new Uint8Array(file)
  noMagic[8] = 0
  throwsCapture(t, () => readCapture(noMagic), 'not a pcap or pcapng file', 0)
  const v2 = new Uint8Array(file)
  v2[12] = 2
  throwsCapture(t, () => readCapture(v2), 'unsupported pcapng version 2', 12)
})

t.test('the real pcapng file: one Ethernet interface, 18 packets, microsecond times', async (t) => {
  const ng = readCapture(loadCaptureBytes('vlmcsd_rpc_ndr64_3req.pcapng'))
  const classic = readCapture(loadCaptureBytes('vlmcsd_rpc_ndr64_3req'))
  t.equal(ng.packets.length, 18)
  t.same(ng.warnings, [])
  t.same(
    ng.packets.map((p) => [p.linkType, p.timestampNs, hex(p.data), p.originalLength]),
    classic.packets.map((p) => [p.linkType, p.timestampNs, hex(p.data), p.originalLength]),
  )
})
