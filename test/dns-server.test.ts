// The lab DNS server (startDns) on loopback, asked by dig as an independent client over UDP and
// TCP: SRV with the targets' addresses in the additional section, A/AAAA, SOA/NS at the apex,
// NXDOMAIN with SOA, REFUSED outside the zone, case-insensitive names, TC without EDNS, EDNS(0)
// sizes, several queries per TCP connection, the idle timeout, junk and a flood survived.
import dgram from 'node:dgram'
import net from 'node:net'
import dnsPacket from 'dns-packet'
import t from 'tap'
import { type DnsServer, startDns } from '../src/index.js'
import { DnsTcpFramer, frameTcp } from '../src/wire/dns.js'
import { dig, digOrFail, needsDig } from './fixtures/dig.js'

const D = 'lab.test'

async function server(
  t: { teardown(f: () => unknown): void },
  hosts: string[],
  extra = {},
): Promise<DnsServer> {
  const dns = await startDns({ domain: D, listen: ['127.0.0.1:0'], hosts, ...extra })
  t.teardown(() => dns.close())
  return dns
}

function query(id: number, name: string, type: dnsPacket.RecordType = 'A'): Buffer {
  return dnsPacket.encode({ type: 'query', id, questions: [{ type, name }] })
}

/** Sends `packets` over UDP from `from` and collects what comes back within `waitMs`. */
async function udpExchange(
  port: number,
  packets: Buffer[],
  from = '127.0.0.1',
  waitMs = 300,
): Promise<Buffer[]> {
  const socket = dgram.createSocket('udp4')
  const got: Buffer[] = []
  socket.on('message', (m) => got.push(m))
  await new Promise<void>((resolve) => socket.bind(0, from, resolve))
  for (const p of packets) socket.send(p, port, '127.0.0.1')
  await new Promise((r) => setTimeout(r, waitMs))
  socket.close()
  return got
}

t.test(
  'dig over UDP and TCP: SRV, additional addresses, A/AAAA, apex, errors',
  { skip: needsDig },
  async (t) => {
    const bin = digOrFail(t)
    if (!bin) return
    const dns = await server(t, [
      'kms1=127.0.0.2:1688,priority=0,weight=10',
      'kms2=[::1]:1690,priority=5,weight=3,ttl=60',
    ])
    for (const transport of ['+notcp', '+tcp']) {
      const srv = await dig(bin, dns.port, [transport, '_VLMCS._tcp.Lab.Test', 'SRV'])
      t.equal(srv.status, 'NOERROR', transport)
      t.ok(srv.flags.includes('aa'), 'authoritative')
      t.same(
        srv.answer.map((r) => [r.name, r.ttl, r.type, r.data]),
        [
          ['_VLMCS._tcp.Lab.Test.', 3600, 'SRV', '0 10 1688 kms1.lab.test.'],
          ['_VLMCS._tcp.Lab.Test.', 60, 'SRV', '5 3 1690 kms2.lab.test.'],
        ],
        'the question spelling is kept, the records match case-insensitively',
      )
      t.same(
        srv.additional.map((r) => [r.name, r.type, r.data]),
        [
          ['kms1.lab.test.', 'A', '127.0.0.2'],
          ['kms2.lab.test.', 'AAAA', '::1'],
        ],
      )
      t.match(srv.server, transport === '+tcp' ? /TCP/ : /UDP/)
      const a = await dig(bin, dns.port, [transport, 'kms1.lab.test', 'A'])
      t.same(
        a.answer.map((r) => r.data),
        ['127.0.0.2'],
      )
      const aaaa = await dig(bin, dns.port, [transport, 'KMS2.lab.test', 'AAAA'])
      t.same(
        aaaa.answer.map((r) => r.data),
        ['::1'],
      )
    }
    const soa = await dig(bin, dns.port, [D, 'SOA'])
    t.match(soa.answer, [
      {
        name: 'lab.test.',
        type: 'SOA',
        data: /^ns\.lab\.test\. hostmaster\.lab\.test\. \d+ 3600 600 86400 60$/,
      },
    ])
    const ns = await dig(bin, dns.port, [D, 'NS'])
    t.same(
      ns.answer.map((r) => r.data),
      ['ns.lab.test.'],
    )
    t.same(
      ns.additional.map((r) => [r.name, r.data]),
      [['ns.lab.test.', '127.0.0.1']],
      'glue for the name server',
    )
    const nx = await dig(bin, dns.port, ['nope.lab.test', 'A'])
    t.equal(nx.status, 'NXDOMAIN')
    t.same(nx.answer, [])
    t.match(nx.authority, [{ name: 'lab.test.', type: 'SOA', ttl: 60 }])
    const nodata = await dig(bin, dns.port, ['kms1.lab.test', 'AAAA'])
    t.equal(nodata.status, 'NOERROR', 'a name without that type: NODATA')
    t.same(nodata.answer, [])
    t.match(nodata.authority, [{ type: 'SOA' }])
    const between = await dig(bin, dns.port, ['_tcp.lab.test', 'A'])
    t.equal(between.status, 'NOERROR', '_tcp exists (a name below it does): not NXDOMAIN')
    const outside = await dig(bin, dns.port, ['example.com', 'A'])
    t.equal(outside.status, 'REFUSED')
    t.notOk(outside.flags.includes('aa'))
    const chaos = await dig(bin, dns.port, ['version.bind', 'TXT', 'CH'])
    t.equal(chaos.status, 'REFUSED')
    const axfr = await dig(bin, dns.port, ['+tcp', D, 'AXFR'])
    t.match(axfr.raw, /Transfer failed|REFUSED/)
  },
)

t.test(
  'UDP sizes: TC over 512 bytes without EDNS, EDNS(0) honoured up to 1232',
  { skip: needsDig },
  async (t) => {
    const bin = digOrFail(t)
    if (!bin) return
    const hosts = Array.from({ length: 15 }, (_, i) => `kms${i + 10}=127.0.1.${i + 1}:1688,weight=${i}`)
    const dns = await server(t, hosts)
    const cut = await dig(bin, dns.port, ['+noedns', '+ignore', `_vlmcs._tcp.${D}`, 'SRV'])
    t.ok(cut.flags.includes('tc'), 'truncated without EDNS')
    t.same(cut.answer, [], 'no partial RRset')
    const retried = await dig(bin, dns.port, ['+noedns', `_vlmcs._tcp.${D}`, 'SRV'])
    t.equal(retried.answer.length, 15, 'dig retries over TCP and gets them all')
    t.match(retried.server, /TCP/)
    const edns = await dig(bin, dns.port, ['+bufsize=4096', '+ignore', `_vlmcs._tcp.${D}`, 'SRV'])
    t.notOk(edns.flags.includes('tc'), 'fits in 1232 bytes once the additional section is left out')
    t.equal(edns.answer.length, 15)
    t.same(edns.additional, [], 'the addresses are left out rather than truncating')
    t.equal(edns.ednsUdp, 1232, "our EDNS size, not the client's 4096")
    const small = await dig(bin, dns.port, ['+bufsize=512', '+ignore', `_vlmcs._tcp.${D}`, 'SRV'])
    t.ok(small.flags.includes('tc'), "the client's smaller EDNS size is honoured")
    const few = await server(t, ['kms1=127.0.0.2'])
    const whole = await dig(bin, few.port, ['+noedns', `_vlmcs._tcp.${D}`, 'SRV'])
    t.equal(whole.ednsUdp, null, 'no OPT in the answer to a query without one')
    t.same(
      whole.answer.map((r) => r.data),
      ['0 0 1688 kms1.lab.test.'],
    )
  },
)

t.test('TCP: several queries on one connection, answered in order; idle connections closed', async (t) => {
  const dns = await server(t, ['kms1=127.0.0.2:1688'], { idleTimeoutMs: 300 })
  const socket = net.connect(dns.port, '127.0.0.1')
  const framer = new DnsTcpFramer()
  const answers: dnsPacket.DecodedPacket[] = []
  socket.on('data', (c) => answers.push(...framer.push(c).map((m) => dnsPacket.decode(m))))
  const closed = new Promise<number>((resolve) => {
    const start = Date.now()
    socket.on('close', () => resolve(Date.now() - start))
  })
  await new Promise((r) => socket.once('connect', r))
  // two in one write, the third split across writes
  socket.write(Buffer.concat([frameTcp(query(1, 'kms1.lab.test')), frameTcp(query(2, 'nope.lab.test'))]))
  const third = frameTcp(query(3, `_vlmcs._tcp.${D}`, 'SRV'))
  socket.write(third.subarray(0, 5))
  await new Promise((r) => setTimeout(r, 50))
  socket.write(third.subarray(5))
  const ms = await closed
  t.same(
    answers.map((a) => [a.id, (a as { rcode?: string }).rcode, a.answers?.length]),
    [
      [1, 'NOERROR', 1],
      [2, 'NXDOMAIN', 0],
      [3, 'NOERROR', 1],
    ],
  )
  t.ok(ms >= 250 && ms < 5000, `closed after ${ms} ms of silence`)
})

t.test('junk over UDP and TCP: FORMERR or dropped, never a crash', async (t) => {
  const dns = await server(t, ['kms1=127.0.0.2:1688'], { rateLimit: 0 })
  const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0])
  const junk = [
    Buffer.alloc(0),
    Buffer.from([1, 2, 3]),
    Buffer.concat([header, Buffer.from([0x3f, 0x41])]), // a label running past the end
    Buffer.concat([header, Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]), // a pointer to itself
    Buffer.from([0xab, 0xcd, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]), // a response: never answered
    Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff)),
    Buffer.concat([
      header.subarray(0, 4),
      Buffer.from([0, 2]),
      header.subarray(6),
      query(9, 'a.lab.test').subarray(12),
      query(9, 'b.lab.test').subarray(12),
    ]),
  ]
  const replies = (await udpExchange(dns.port, junk)).map(
    (m) => dnsPacket.decode(m) as dnsPacket.DecodedPacket & { rcode: string },
  )
  t.ok(replies.length >= 2, `${replies.length} replies`)
  t.ok(
    replies.every((r) => r.rcode === 'FORMERR' && r.flag_qr),
    'every reply is a FORMERR',
  )
  t.ok(
    replies.some((r) => r.id === 0x1234),
    'with the query id',
  )
  t.equal(dns.stats.formerr, replies.length)
  // TCP: garbage inside a frame gets FORMERR; a frame too short for a header closes the connection.
  const socket = net.connect(dns.port, '127.0.0.1')
  const framer = new DnsTcpFramer()
  const got: Buffer[] = []
  socket.on('data', (c) => got.push(...framer.push(c)))
  const closed = new Promise((r) => socket.on('close', r))
  socket.write(frameTcp(Buffer.concat([header, Buffer.from([0x3f])])))
  socket.write(frameTcp(Buffer.from([7])))
  await closed
  t.equal(got.length, 1)
  t.equal((dnsPacket.decode(got[0]) as { rcode?: string }).rcode, 'FORMERR')
  const after = (await udpExchange(dns.port, [query(77, 'kms1.lab.test')])).map((m) => dnsPacket.decode(m))
  t.same(
    after.map((a) => (a.answers?.[0] as { data?: unknown } | undefined)?.data),
    ['127.0.0.2'],
    'still answering',
  )
})

t.test('a flood from one address is rate-limited; other sources and TCP still answered', async (t) => {
  const dns = await server(t, ['kms1=127.0.0.2:1688'], { rateLimit: 50, burst: 100 })
  const flood = Array.from({ length: 1000 }, (_, i) => query(i, 'kms1.lab.test'))
  const started = Date.now()
  const replies = await udpExchange(dns.port, flood, '127.0.0.9', 500)
  const seconds = (Date.now() - started) / 1000
  const decoded = replies.map((m) => dnsPacket.decode(m))
  const full = decoded.filter((m) => !m.flag_tc).length
  const tc = decoded.filter((m) => m.flag_tc).length
  // 100 at once plus 50/s while it lasts (the kernel may drop part of the flood before the server
  // reads it); of the rest, every second query gets an empty TC answer
  t.ok(full >= 100 && full <= 100 + 50 * seconds + 1, `${full} answered of 1000 in ${seconds} s`)
  t.equal(dns.stats.answered, full)
  t.ok(dns.stats.rateLimited >= 100, `${dns.stats.rateLimited} over the rate`)
  t.ok(tc > 0 && tc <= dns.stats.rateLimited / 2 + 1, `${tc} TC answers (no amplification)`)
  t.ok(decoded.filter((m) => m.flag_tc).every((m) => (m.answers ?? []).length === 0))
  const other = await udpExchange(dns.port, [query(5, 'kms1.lab.test')], '127.0.0.1')
  t.equal(other.length, 1, 'another source is answered at once')
  if (needsDig) return t.comment(needsDig)
  const bin = digOrFail(t)
  if (!bin) return
  const viaTcp = await dig(bin, dns.port, ['+tcp', '-b', '127.0.0.9', 'kms1.lab.test', 'A'])
  t.same(
    viaTcp.answer.map((r) => r.data),
    ['127.0.0.2'],
    'the flooding address itself gets answers over TCP',
  )
})
