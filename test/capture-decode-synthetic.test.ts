// decodeCapture on captures rebuilt from real PDUs with one thing changed (an unusual opnum, a
// fragmented call, a tampered answer, a cut stream, a missing bind, a stray call id), and on
// randomly damaged captures: whatever the bytes, it decodes what it can, names the rest, and
// never throws anything but CaptureError for a file that is not a capture.
import fc from 'fast-check'
import t from 'tap'
import { CaptureError } from '../src/capture/errors.js'
import { decodeCapture } from '../src/capture/index.js'
import { emitRequestPdu, PFC, parseRequestPdu } from '../src/wire/rpc.js'
import {
  ethernetFrame,
  F,
  ipPacket,
  loadCaptureBytes,
  loadCapturePdus,
  type SynthFrame,
  writePcap,
} from './fixtures/pcap.js'

interface Step {
  fromClient: boolean
  bytes: Uint8Array
}

/** A TCP conversation, each step one segment; handshake first unless not wanted, FINs unless `open`. */
function conversation(
  steps: Step[],
  {
    open = false,
    handshake = true,
    client = '10.0.0.2',
    server = '10.0.0.1',
    cport = 50000,
    sport = 1688,
  } = {},
): Uint8Array {
  const c = { src: client, srcPort: cport, dst: server, dstPort: sport }
  const s = { src: server, srcPort: sport, dst: client, dstPort: cport }
  let cseq = 1000
  let sseq = 9000
  const frames: SynthFrame[] = []
  const add = (seg: Parameters<typeof ipPacket>[0]) => frames.push({ data: ethernetFrame(ipPacket(seg)) })
  if (handshake) {
    add({ ...c, seq: cseq++, flags: F.SYN })
    add({ ...s, seq: sseq++, ack: cseq, flags: F.SYN | F.ACK })
  }
  for (const step of steps) {
    if (step.fromClient) {
      add({ ...c, seq: cseq, ack: sseq, payload: step.bytes })
      cseq += step.bytes.length
    } else {
      add({ ...s, seq: sseq, ack: cseq, payload: step.bytes })
      sseq += step.bytes.length
    }
  }
  if (!open) {
    add({ ...c, seq: cseq, ack: sseq, flags: F.FIN | F.ACK })
    add({ ...s, seq: sseq, ack: cseq + 1, flags: F.FIN | F.ACK })
  }
  return writePcap(frames)
}

/** BIND, BIND_ACK, REQUEST, RESPONSE of a real V6 exchange over NDR32 (vlmcs -N0 -B0). */
const [minimal] = loadCapturePdus('vlmcsd_rpc_minimal_bind')
const [bind, request] = minimal.clientPdus.map((p) => p.bytes)
const [bindAck, response] = minimal.serverPdus.map((p) => p.bytes)
const exchange = (req = request, res = response): Step[] => [
  { fromClient: true, bytes: bind },
  { fromClient: false, bytes: bindAck },
  { fromClient: true, bytes: req },
  { fromClient: false, bytes: res },
]
const decode = (bytes: Uint8Array) => decodeCapture(bytes, 'synthetic.pcap').exchanges

t.test('the rebuilt exchange decodes and verifies, with no findings', async (t) => {
  const [r, ...more] = decode(conversation(exchange()))
  t.equal(more.length, 0)
  t.match(r, {
    client: '10.0.0.2:50000',
    server: '10.0.0.1:1688',
    callId: 2,
    transferSyntax: 'ndr32',
    errors: [],
  })
  t.equal(r.request?.verified, true)
  t.equal(r.response?.verified, true)
})

t.test('an unusual opnum is decoded anyway and named', async (t) => {
  const req = request.slice()
  req[22] = 3
  const [r] = decode(conversation(exchange(req)))
  t.equal(r.opnum, 3)
  t.equal(r.request?.verified, true)
  t.equal(r.response?.verified, true)
  t.match(r.errors, [/opnum 3: the KMS interface has only RequestActivation \(0\)/])
})

t.test('a call split into two fragments is joined and named', async (t) => {
  const pdu = parseRequestPdu(request)
  const half = 100
  const first = emitRequestPdu({
    ...pdu,
    header: { ...pdu.header, flags: PFC.FIRST_FRAG },
    stub: pdu.stub.subarray(0, half),
  })
  const second = emitRequestPdu({
    ...pdu,
    header: { ...pdu.header, flags: PFC.LAST_FRAG },
    stub: pdu.stub.subarray(half),
  })
  const steps = exchange()
  steps.splice(2, 1, { fromClient: true, bytes: first }, { fromClient: true, bytes: second })
  const [r, ...more] = decode(conversation(steps))
  t.equal(more.length, 0)
  t.equal(r.request?.verified, true)
  t.equal(r.response?.verified, true)
  t.match(r.errors, [/REQUEST arrived in 2 fragments \(joined\)/])

  const [cut] = decode(conversation(exchange(first, response)))
  t.equal(cut.request, null, 'half a stub is no KMS request')
  t.match(cut.errors.join('\n'), /REQUEST has no fragment with PFC_LAST_FRAG/)
  t.match(cut.errors.join('\n'), /request stub is not NDR/)
  t.match(cut.errors.join('\n'), /the answer cannot be verified without a readable request/)
  t.equal(cut.response?.epid, '06401-00206-568-844243-03-10249-9600.0000-1602020', 'answer shown unverified')
  t.equal(cut.response?.verified, false)
})

t.test('a tampered answer: verified false, the check named, the fields still shown', async (t) => {
  const res = response.slice()
  // RPC header 24 + NDR32 stub header 12 + version/IV 20, then ciphertext block 12 (HWID, XorSalts)
  res[24 + 12 + 20 + 16 * 12] ^= 0x5a
  const [r] = decode(conversation(exchange(request, res)))
  t.equal(r.request?.verified, true)
  t.equal(r.response?.verified, false)
  t.match(r.errors, [/answer does not verify \(xor-salts\)/])
  t.equal(r.response?.epid, '06401-00206-568-844243-03-10249-9600.0000-1602020')
  t.equal(r.response?.cmid, r.request?.cmid)
})

t.test('an answer cut short by the end of the capture', async (t) => {
  const records = decode(
    conversation(exchange(request, response.subarray(0, response.length - 10)), { open: true }),
  )
  t.equal(records.length, 2)
  t.equal(records[0].response, null)
  t.match(records[0].errors, [/no answer to this request: the capture ends first/])
  t.equal(records[1].callId, null)
  t.match(records[1].errors, [
    /server bytes 60-349 \(290 bytes\) are not a DCE-RPC PDU: truncated PDU: header says 300 bytes, 290 remain/,
  ])
})

t.test('an NDR64 call with no bind: the syntax is guessed from the stub', async (t) => {
  const [conn] = loadCapturePdus('vlmcsd_rpc_ndr64_3req')
  const ndr64Request = conn.clientPdus[3].bytes
  const ndr64Response = conn.serverPdus[3].bytes
  t.equal(ndr64Request[2], 0, 'a REQUEST')
  const [r] = decode(
    conversation([
      { fromClient: true, bytes: ndr64Request },
      { fromClient: false, bytes: ndr64Response },
    ]),
  )
  t.equal(r.transferSyntax, 'ndr64')
  t.equal(r.contextId, 1)
  t.equal(r.request?.verified, true)
  t.equal(r.response?.verified, true)
  t.match(r.errors, [/no accepted BIND on this connection; transfer syntax guessed from the stub: ndr64/])
})

t.test('an answer with another call id answers nothing', async (t) => {
  const res = response.slice()
  res[12] = 7
  const records = decode(conversation(exchange(request, res)))
  t.equal(records.length, 2)
  t.equal(records[0].response, null)
  t.match(records[0].errors, [/no answer to this request/])
  t.match(records[1].errors, [/RESPONSE \(call id 7, frame 6\) answers no captured request/])
})

t.test("vlmcsd's FAULT with a fixed call id 2 still answers the request it refers to", async (t) => {
  const [conn] = loadCapturePdus('raw_vlmcsd_request_without_bind')
  const req = conn.clientPdus[0].bytes.slice()
  const fault = conn.serverPdus[0].bytes
  t.equal(fault[2], 3, 'a FAULT')
  req[12] = 5
  const [r, ...more] = decode(
    conversation([
      { fromClient: true, bytes: req },
      { fromClient: false, bytes: fault },
    ]),
  )
  t.equal(more.length, 0)
  t.equal(r.callId, 5)
  t.equal(r.responseFrame, 4)
  t.match(r.errors.join('\n'), /FAULT: 0x1C010003 nca_s_unk_if \(did not execute\)/)
  t.match(r.errors.join('\n'), /the FAULT carries call id 2, not the request's 5/)
})

t.test('IPv6 endpoints are bracketed', async (t) => {
  const [r] = decode(conversation(exchange(), { client: 'fe80::2', server: '2001:db8::1' }))
  t.equal(r.client, '[fe80::2]:50000')
  t.equal(r.server, '[2001:db8::1]:1688')
  t.equal(r.response?.verified, true)
})

t.test('no handshake captured and the host on the higher port: the caller is the client', async (t) => {
  const [r, ...more] = decode(conversation(exchange(), { handshake: false, cport: 40000, sport: 50000 }))
  t.equal(more.length, 0)
  t.equal(r.client, '10.0.0.2:40000')
  t.equal(r.server, '10.0.0.1:50000')
  t.equal(r.requestFrame, 3, 'frames: bind 1, bind_ack 2, request 3, response 4')
  t.equal(r.responseFrame, 4)
  t.equal(r.response?.verified, true)
  t.same(r.errors, [])
})

const SEEDS = [
  'vlmcsd_rpc_ndr64_3req',
  'vlmcsd_v4_win10ent',
  'vlmcsd_v5_win10ent',
  'srvK3_retail_kmsid_refused',
]
const seeds = SEEDS.map((n) => loadCaptureBytes(n))

function survives(bytes: Uint8Array): boolean {
  try {
    const d = decodeCapture(bytes, 'fuzz.pcap')
    for (const r of d.exchanges) {
      if (!Array.isArray(r.errors)) return false
      JSON.stringify(r)
    }
    return true
  } catch (err) {
    return err instanceof CaptureError
  }
}

t.test('damaged captures: records or CaptureError, never another exception', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: seeds.length - 1 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }),
      (i, edits) => {
        const bytes = seeds[i].slice()
        for (const [at, value] of edits) bytes[at % bytes.length] = value
        return survives(bytes)
      },
    ),
    { numRuns: 400, seed: 1688 },
  )
  fc.assert(
    fc.property(fc.integer({ min: 0, max: seeds.length - 1 }), fc.nat(), (i, cut) =>
      survives(seeds[i].subarray(0, cut % (seeds[i].length + 1))),
    ),
    { numRuns: 200, seed: 4711 },
  )
  // damage inside the PDUs only, so that every layer above TCP sees it
  const pdus = [bind, bindAck, request, response]
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.nat(), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 6,
      }),
      (edits) => {
        const copy = pdus.map((p) => p.slice())
        for (const [which, at, value] of edits) copy[which][at % copy[which].length] = value
        const [b, a, q, r] = copy
        return survives(
          conversation([
            { fromClient: true, bytes: b },
            { fromClient: false, bytes: a },
            { fromClient: true, bytes: q },
            { fromClient: false, bytes: r },
          ]),
        )
      },
    ),
    { numRuns: 600, seed: 16880 },
  )
  t.pass('no unexpected exception')
})

t.test('rpc_vers 4 that the host echoed: the exchange is decoded, the version named', async (t) => {
  // vlmcsd neither checks rpc_vers nor sets its own: a client's 4 comes back in every answer
  const v4 = (pdu: Uint8Array) => {
    const out = pdu.slice()
    t.equal(out[0], 5, 'the captured PDU was RPC 5')
    out[0] = 4
    return out
  }
  const steps: Step[] = [
    { fromClient: true, bytes: v4(bind) },
    { fromClient: false, bytes: v4(bindAck) },
    { fromClient: true, bytes: v4(request) },
    { fromClient: false, bytes: v4(response) },
  ]
  const [r, findings, ...more] = decode(conversation(steps))
  t.equal(more.length, 0)
  t.equal(r.callId, 2)
  t.equal(r.transferSyntax, 'ndr32', 'the BIND_ACK of version 4 gave the context')
  t.equal(r.request?.verified, true)
  t.equal(r.response?.verified, true)
  t.same(r.errors, [
    'REQUEST: RPC version 4.0, expected 5.0',
    'RESPONSE: RPC version 4.0, expected 5.0',
    'REQUEST of RPC version 4.0 was served; a DCE-RPC 5 host does not answer it',
  ])
  t.same(findings.callId, null, 'the connection-level record')
  t.same(findings.errors, [
    'bind: RPC version 4.0, expected 5.0',
    'bind_ack: RPC version 4.0, expected 5.0',
    'BIND (call id 2) of RPC version 4.0 was served; a DCE-RPC 5 host answers it with BIND_NAK',
  ])
})

t.test('any other first byte is still not DCE-RPC', async (t) => {
  const odd = bind.slice()
  odd[0] = 6
  const [r] = decode(conversation([{ fromClient: true, bytes: odd }]))
  t.match(
    r.errors.join('\n'),
    /client bytes 0-71 \(72 bytes\) are not a DCE-RPC PDU: not DCE-RPC: first byte 0x06/,
  )
})
