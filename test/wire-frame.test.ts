import t from 'tap'
import { checkRpcFrame, readCallId, readFragLength } from '../src/wire/rpc.js'

// A 16-byte RPC 5.0 header of a BIND (PTYPE 11), first and last fragment, call id 2.
const LE_BIND = Uint8Array.from([
  0x05, 0x00, 0x0b, 0x03, 0x10, 0x00, 0x00, 0x00, 0x48, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
])
// The same header with a big-endian packed drep (00 00 00 00): frag_length and call_id turn around.
const BE_BIND = Uint8Array.from([
  0x05, 0x00, 0x0b, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x48, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
])

function pdu(header: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length)
  out.set(header)
  return out
}

t.test('frag_length and call_id are read as the drep says', async (t) => {
  t.equal(readFragLength(LE_BIND), 72)
  t.equal(readFragLength(BE_BIND), 72)
  t.equal(readCallId(LE_BIND), 2)
  t.equal(readCallId(BE_BIND), 2)
})

t.test('a whole PDU, either byte order', async (t) => {
  t.same(checkRpcFrame(pdu(LE_BIND, 72)), { verdict: 'pdu', length: 72 })
  t.same(checkRpcFrame(pdu(BE_BIND, 72)), { verdict: 'pdu', length: 72 })
  // bytes past the PDU belong to the next one
  t.same(checkRpcFrame(pdu(LE_BIND, 100)), { verdict: 'pdu', length: 72 })
  // judged from an offset into a buffer, up to an end short of the buffer's
  const two = new Uint8Array(200)
  two.set(BE_BIND, 72)
  t.same(checkRpcFrame(two, 72, 144), { verdict: 'pdu', length: 72 })
  t.same(checkRpcFrame(two, 72, 143), { verdict: 'need-more', length: 72 })
})

t.test('need more: before frag_length, and before the announced end', async (t) => {
  t.same(checkRpcFrame(new Uint8Array(0)), { verdict: 'need-more', length: 0 })
  t.same(checkRpcFrame(LE_BIND.subarray(0, 9)), { verdict: 'need-more', length: 0 })
  t.same(checkRpcFrame(LE_BIND.subarray(0, 10)), { verdict: 'need-more', length: 72 })
  t.same(checkRpcFrame(BE_BIND), { verdict: 'need-more', length: 72 })
})

t.test('not RPC: a bogus length or garbage, at the first telling byte', async (t) => {
  const short = LE_BIND.slice()
  short[8] = 0x08
  t.same(checkRpcFrame(short), {
    verdict: 'not-rpc',
    reason: 'frag_length 8 is shorter than the header',
    offset: 8,
  })
  // 0x0048 read little-endian is 0x4800: beyond a 5840-byte limit
  const swapped = LE_BIND.slice()
  swapped[4] = 0x00
  t.same(checkRpcFrame(swapped, 0, swapped.length, { maxFragment: 5840 }), {
    verdict: 'not-rpc',
    reason: 'frag_length 18432 exceeds the fragment limit 5840',
    offset: 8,
  })
  t.same(checkRpcFrame(Buffer.from('GET / HTTP/1.1\r\n')), {
    verdict: 'not-rpc',
    reason: 'not DCE-RPC (first bytes 47 45 54 20 2f 20 48 54)',
    offset: 0,
  })
  t.same(checkRpcFrame(Buffer.from('GE')), { verdict: 'need-more', length: 0 }, 'could be RPC 4')
  // another version with a drep byte that is neither 0x10 nor 0x00
  t.equal(checkRpcFrame(Uint8Array.from([4, 0, 11, 3, 0x11])).verdict, 'not-rpc')
})

t.test('another rpc_vers: its shape, its length and call id', async (t) => {
  const v4 = pdu(LE_BIND, 72)
  v4[0] = 4
  t.same(checkRpcFrame(v4), {
    verdict: 'other-version',
    rpcVersion: 4,
    rpcVersionMinor: 0,
    ptype: 11,
    callId: 2,
    length: 72,
    whole: true,
  })
  const v4be = BE_BIND.slice()
  v4be[0] = 4
  t.same(checkRpcFrame(v4be), {
    verdict: 'other-version',
    rpcVersion: 4,
    rpcVersionMinor: 0,
    ptype: 11,
    callId: 2,
    length: 72,
    whole: false,
  })
  t.same(checkRpcFrame(v4be.subarray(0, 15)), { verdict: 'need-more', length: 0 })
  // a host counts only a BIND of another version as RPC; a decoder only rpc_vers 4
  const request = v4.slice()
  request[2] = 0
  t.equal(checkRpcFrame(request, 0, 72, { otherVersionPtypes: [11, 14] }).verdict, 'not-rpc')
  const v6 = v4.slice()
  v6[0] = 6
  t.equal(checkRpcFrame(v6, 0, 72, { otherVersions: [4] }).verdict, 'not-rpc')
  t.equal(checkRpcFrame(v6).verdict, 'other-version')
})
