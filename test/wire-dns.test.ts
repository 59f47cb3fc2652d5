// src/wire/dns.ts on literal bytes: a query as dig sends it (RFC 1035 §4.1), the RCODE in the
// header's low bits, the header of bytes too broken to decode, and RFC 7766 TCP framing cut at
// every byte boundary.
import t from 'tap'
import {
  canonicalName,
  DnsTcpFramer,
  DnsWireError,
  decodeDnsMessage,
  encodeDnsMessage,
  frameTcp,
  peekHeader,
  RCODE,
} from '../src/wire/dns.js'

// id 0xbeef, RD, 1 question: _vlmcs._tcp.lab.test SRV IN
const QUERY = Buffer.from(
  'beef01000001000000000000' + '065f766c6d6373045f746370036c6162047465737400' + '00210001',
  'hex',
)

t.test('decodes a literal query', async (t) => {
  const m = decodeDnsMessage(QUERY)
  t.equal(m.id, 0xbeef)
  t.equal(m.flag_qr, false)
  t.equal(m.flag_rd, true)
  t.equal(m.opcode, 'QUERY')
  t.same(m.questions, [{ name: '_vlmcs._tcp.lab.test', type: 'SRV', class: 'IN' }])
  t.same(peekHeader(QUERY), { id: 0xbeef, response: false, opcode: 0 })
})

t.test('encodes an answer with its RCODE in the low header bits', async (t) => {
  const bytes = encodeDnsMessage(
    { type: 'response', id: 0xbeef, flags: 0x0400, questions: [{ name: 'x.lab.test', type: 'A' }] },
    RCODE.NXDOMAIN,
  )
  t.equal(bytes.subarray(0, 12).toString('hex'), 'beef840300010000000000' + '00')
  t.equal((decodeDnsMessage(bytes) as { rcode: string }).rcode, 'NXDOMAIN')
})

t.test('broken bytes: a typed error, and the header when there is one', async (t) => {
  t.throws(() => decodeDnsMessage(Buffer.from([1, 2, 3])), DnsWireError)
  t.throws(
    () => decodeDnsMessage(Buffer.concat([QUERY.subarray(0, 12), Buffer.from([0x3f, 0x41])])),
    DnsWireError,
  )
  t.equal(peekHeader(Buffer.from([1, 2, 3])), null)
  t.same(peekHeader(Buffer.from('12348180000000000000000000', 'hex')), {
    id: 0x1234,
    response: true,
    opcode: 0,
  })
  t.equal(canonicalName('Kms1.LAB.test.'), 'kms1.lab.test')
})

t.test('TCP framing: a two-byte length, messages cut out whatever the segmentation', async (t) => {
  const framed = frameTcp(QUERY)
  t.equal(framed.subarray(0, 2).toString('hex'), QUERY.length.toString(16).padStart(4, '0'))
  const stream = Buffer.concat([framed, frameTcp(Buffer.from([9, 9])), framed])
  for (let cut = 0; cut <= stream.length; cut++) {
    const f = new DnsTcpFramer()
    const got = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))]
    if (
      got.length !== 3 ||
      !got[0].equals(QUERY) ||
      !got[1].equals(Buffer.from([9, 9])) ||
      !got[2].equals(QUERY)
    )
      t.fail(`cut at ${cut}`)
    if (f.pending !== 0) t.fail(`bytes left after cut ${cut}`)
  }
  const f = new DnsTcpFramer()
  t.same(f.push(Buffer.from([0x00])), [])
  t.equal(f.pending, 1)
  t.throws(() => frameTcp(new Uint8Array(65536)), DnsWireError)
})
