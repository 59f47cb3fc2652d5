// Every row of the hostile-input table against a live host on loopback: the bytes on the wire
// (nothing, BIND_NAK, per-item results, FAULT, refusal) and exactly one logged event per peer,
// with its address and reason. A peer that closes after its error adds no second one.
import t from 'tap'
import { type KmsHost, startHost } from '../src/host/host.js'
import { HRESULT } from '../src/kms/hresult.js'
import { parseResponseStub } from '../src/wire/ndr.js'
import {
  BIND_NAK_REASON,
  NCA_STATUS,
  PTYPE,
  parseBindAckPdu,
  parseBindNakPdu,
  parseFaultPdu,
  parseResponsePdu,
} from '../src/wire/rpc.js'
import {
  badKmsPayloads,
  bind,
  bindDrep,
  bindVersion,
  bindWithLength,
  context,
  EPM_IFACE,
  KMS_IFACE,
  kms,
  NDR32,
  NOT_RPC,
  request,
  sleep,
} from './fixtures/hostile.js'
import { RawPeer } from './fixtures/raw-client.js'

const IDLE_MS = 1000
let host: KmsHost
/** What `kmslab serve` would log per client port (one entry per warning or refusal line). */
const logged = new Map<number, string[]>()
const closedPorts = new Set<number>()
const portOf = (client: string) => Number(client.slice(client.lastIndexOf(':') + 1))
const note = (port: number, line: string) => logged.set(port, [...(logged.get(port) ?? []), line])

t.before(async () => {
  host = await startHost({ state: 'memory', idleTimeoutMs: IDLE_MS })
  host.events.on('connection', (c) => {
    if (c.type !== 'close') return
    closedPorts.add(portOf(c.client))
    if (c.protocolError) note(portOf(c.client), c.reason ?? '')
  })
  host.events.on('fault', (f) => note(portOf(f.client), `FAULT 0x${f.status.toString(16)}: ${f.reason}`))
  host.events.on('protocol', (p) => note(portOf(p.client), p.reason))
  host.events.on('refused', (r) => note(portOf(r.client), r.reason))
  host.events.on('activation', (r) => {
    if (r.hresult !== 0) note(r.clientPort, `refused: ${r.reason}`)
  })
})
t.teardown(() => host.close())

async function open(): Promise<{ peer: RawPeer; port: number }> {
  const peer = await RawPeer.open(host.port)
  return { peer, port: peer.socket.localPort! }
}

/** Closes our side if the host has not, waits for the host to see the close, returns the log. */
async function settle(peer: RawPeer, port: number): Promise<string[]> {
  if (!peer.closed) peer.end()
  for (let i = 0; i < 300 && !closedPorts.has(port); i++) await sleep(10)
  return logged.get(port) ?? []
}

t.test('first bytes that are not an RPC header: closed without a byte sent', async (t) => {
  for (const [name, bytes] of Object.entries(NOT_RPC)) {
    const { peer, port } = await open()
    peer.send(bytes)
    t.ok(await peer.waitClosed(1000), `${name}: closed at once, before any idle timeout`)
    t.equal(peer.received, 0, `${name}: nothing sent`)
    const lines = await settle(peer, port)
    t.equal(lines.length, 1, `${name}: logged once`)
    t.match(lines[0], /^not DCE-RPC \(first bytes [0-9a-f ]+\)$/)
  }
  // byte by byte: judged as soon as the third byte shows it is no BIND
  const { peer, port } = await open()
  await peer.dribble(Buffer.from('GET'), 20)
  t.ok(await peer.waitClosed(1000), 'dribbled HTTP closed after three bytes')
  t.equal(peer.received, 0)
  t.equal((await settle(peer, port)).length, 1)
})

t.test('frag_length below 16 or above the negotiated limit: closed, nothing sent or buffered', async (t) => {
  for (const length of [0, 8, 15, 5841, 0xffff]) {
    const { peer, port } = await open()
    // Only the first 10 bytes: the host must judge the length there, not wait for what it promises.
    peer.send(bindWithLength(length).subarray(0, 10))
    t.ok(await peer.waitClosed(IDLE_MS / 2), `frag_length ${length}: closed before the idle timeout`)
    t.equal(peer.received, 0)
    const lines = await settle(peer, port)
    t.equal(lines.length, 1, 'logged once')
    t.match(lines[0], length < 16 ? /shorter than the header/ : /exceeds the fragment limit 5840/)
  }
  // After a bind that negotiated 1432-byte fragments, a 2000-byte PDU is too long.
  const { peer, port } = await open()
  const small = bind()
  small[16] = 1432 & 0xff
  small[17] = 1432 >> 8
  peer.send(small)
  t.equal(parseBindAckPdu((await peer.pdu())!).maxRecvFrag, 1432)
  peer.send(bindWithLength(2000).subarray(0, 10))
  t.ok(await peer.waitClosed(IDLE_MS / 2))
  t.match(await settle(peer, port), [/frag_length 2000 exceeds the fragment limit 1432/])
})

t.test('RPC version other than 5.0: BIND_NAK "protocol version not supported", then close', async (t) => {
  for (const [major, minor] of [
    [5, 1],
    [4, 0],
    [6, 0],
    [255, 7],
  ]) {
    const { peer, port } = await open()
    peer.send(bindVersion(major, minor, 0x1234))
    const pdu = await peer.pdu()
    t.ok(pdu, `RPC ${major}.${minor}: answered`)
    const nak = parseBindNakPdu(pdu!)
    t.equal(nak.header.ptype, PTYPE.BIND_NAK)
    t.equal(nak.header.callId, 0x1234, 'the call id of the bind')
    t.equal(nak.rejectReason, BIND_NAK_REASON.PROTOCOL_VERSION_NOT_SUPPORTED)
    t.same(nak.protocols, [{ major: 5, minor: 0 }])
    t.ok(await peer.waitClosed(), 'then closed')
    t.match(await settle(peer, port), [new RegExp(`^BIND_NAK: RPC version ${major}\\.${minor}`)])
  }
})

t.test('data representation other than little-endian/ASCII/IEEE: BIND_NAK "not specified"', async (t) => {
  for (const drep of [
    [0x00, 0x00],
    [0x11, 0x00],
    [0x10, 0x02],
  ] as [number, number][]) {
    const { peer, port } = await open()
    peer.send(bindDrep(drep))
    const nak = parseBindNakPdu((await peer.pdu())!)
    t.equal(nak.rejectReason, BIND_NAK_REASON.NOT_SPECIFIED)
    t.ok(await peer.waitClosed())
    t.match(await settle(peer, port), [/^BIND_NAK: data representation/])
  }
})

t.test('context lists: longer than the fragment, more than 64 items, 64 per connection', async (t) => {
  // 100 items, the KMS one at index 70: every item answered, none past 64 accepted.
  const many = Array.from({ length: 100 }, (_, i) => context(i, i === 70 ? KMS_IFACE : EPM_IFACE))
  let { peer, port } = await open()
  peer.send(bind(many))
  const ack = parseBindAckPdu((await peer.pdu())!)
  t.equal(ack.results.length, 100, 'every item answered')
  t.equal(ack.results.filter((r) => r.result === 0).length, 0, 'none accepted')
  t.same([ack.results[0].result, ack.results[0].reason], [2, 1])
  t.ok(
    ack.results.slice(64).every((r) => r.result === 2 && r.reason === 3),
    'items past 64: local limit exceeded',
  )
  t.match(await settle(peer, port), [/BIND .*100 presentation contexts, those past 64 rejected/])

  // 255 declared, 2 in the fragment: 255 results, the KMS context accepted and usable.
  ;({ peer, port } = await open())
  peer.send(bind([context(0), context(1, EPM_IFACE)], { declared: 255 }))
  const ack2 = parseBindAckPdu((await peer.pdu())!)
  t.equal(ack2.results.length, 255)
  t.same(
    ack2.results.slice(0, 3).map((r) => [r.result, r.reason]),
    [
      [0, 0],
      [2, 1],
      [2, 3],
    ],
  )
  const built = kms(6)
  peer.send(request(built.payload))
  t.equal(parseResponseStub(parseResponsePdu((await peer.pdu())!).stub, 'ndr32').hresult, 0, 'still serves')
  t.match(await settle(peer, port), [/declares 255 presentation contexts, 2 fit the fragment/])

  // ALTER_CONTEXT after ALTER_CONTEXT: a connection keeps 64 contexts at most.
  ;({ peer, port } = await open())
  peer.send(bind())
  await peer.pdu()
  const results: number[][] = []
  for (let id = 1; id < 70; id++) {
    peer.send(bind([context(id)], { alter: true, callId: id }))
    const r = parseBindAckPdu((await peer.pdu())!).results[0]
    results.push([r.result, r.reason])
  }
  t.same(results.slice(0, 63), Array(63).fill([0, 0]), 'contexts 1..63 accepted')
  t.same(results.slice(63), Array(6).fill([2, 3]), 'the 65th and later: local limit exceeded')
  peer.send(request(kms(5).payload, { contextId: 63 }))
  t.equal(parseResponsePdu((await peer.pdu())!).contextId, 63)
  peer.send(request(kms(5).payload, { contextId: 64, callId: 77 }))
  t.equal(parseFaultPdu((await peer.pdu())!).header.callId, 77, 'context 64 was never accepted')
  t.equal((await settle(peer, port)).length, 7, 'six rejected alters and one FAULT, once each')
})

t.test('bind for another interface: per-item rejection (2, 1)', async (t) => {
  const { peer, port } = await open()
  peer.send(bind([context(0, EPM_IFACE, [NDR32])]))
  const ack = parseBindAckPdu((await peer.pdu())!)
  t.same(
    ack.results.map((r) => [r.result, r.reason]),
    [[2, 1]],
  )
  t.match(await settle(peer, port), [
    /^BIND for another interface \(e1af8308-5d1f-11c9-91a4-08002b14a0fa v3\.0\), rejected$/,
  ])
})

t.test('request before any bind, unknown context, unknown opnum: FAULT with the call id', async (t) => {
  const cases = [
    { name: 'before any bind', bound: false, opts: { callId: 41 }, status: NCA_STATUS.UNK_IF },
    { name: 'unknown context', bound: true, opts: { callId: 42, contextId: 9 }, status: NCA_STATUS.UNK_IF },
    { name: 'opnum 1', bound: true, opts: { callId: 43, opnum: 1 }, status: NCA_STATUS.OP_RNG_ERROR },
  ]
  for (const c of cases) {
    const { peer, port } = await open()
    if (c.bound) {
      peer.send(bind())
      await peer.pdu()
    }
    peer.send(request(kms(6).payload, c.opts))
    const fault = parseFaultPdu((await peer.pdu())!)
    t.equal(fault.header.callId, c.opts.callId, `${c.name}: the request's call id`)
    t.equal(fault.status, c.status)
    peer.send(bind([context(0)], { alter: true }))
    t.ok(await peer.pdu(), `${c.name}: the connection goes on`)
    const lines = await settle(peer, port)
    t.equal(lines.length, 1, `${c.name}: logged once`)
    t.match(lines[0], /^FAULT 0x1c01000[23]: (request before any bind|unknown context id 9|unknown opnum 1)$/)
  }
})

t.test('bad KMS payloads: refusal 0x8007000D, one line each, all in the history', async (t) => {
  const payloads = badKmsPayloads()
  const { peer, port } = await open()
  peer.send(bind())
  await peer.pdu()
  const before = host.history().length
  let callId = 10
  for (const [name, payload] of Object.entries(payloads)) {
    peer.send(request(payload, { callId }))
    const resp = parseResponsePdu((await peer.pdu())!)
    t.equal(resp.header.callId, callId++)
    const stub = parseResponseStub(resp.stub, 'ndr32')
    t.equal(stub.hresult, HRESULT.INVALID_DATA, name)
    t.equal(stub.payload, null)
  }
  const lines = await settle(peer, port)
  t.equal(lines.length, Object.keys(payloads).length, 'one line per refused request')
  t.match(lines, [
    /V4 request of 251 bytes/,
    /V4 request of 260 bytes, expected 252/,
    /V6 request of 250 bytes, needs 260/,
    /V5 request of 276 bytes, expected 260/,
    /padding is not 04 04 04 04/,
    /MAC does not verify/,
    /unsupported KMS protocol version 7\.0/,
    /unsupported KMS protocol version 3\.0/,
    /unsupported KMS minor version 6\.1/,
    /has no version/,
  ])
  const history = host.history().slice(before)
  t.equal(history.length, lines.length)
  t.ok(
    history.every((r) => r.hresult === HRESULT.INVALID_DATA && r.reportedCount === null),
    'every refusal recorded as such',
  )
})

t.test('a stream that stops mid-PDU is closed at the idle timeout; a FIN mid-PDU at once', async (t) => {
  const bytes = bind()
  let { peer, port } = await open()
  const started = Date.now()
  peer.send(bytes.subarray(0, 30))
  t.ok(await peer.waitClosed(IDLE_MS * 5), 'closed')
  t.ok(Date.now() - started >= IDLE_MS - 50, 'not before the idle timeout')
  t.equal(peer.received, 0)
  t.match(await settle(peer, port), [/^idle timeout in the middle of a PDU$/])

  // A foreign first byte followed by silence is held too, and closed the same way.
  ;({ peer, port } = await open())
  peer.send(Uint8Array.of(0))
  t.ok(await peer.waitClosed(IDLE_MS * 5))
  t.match(await settle(peer, port), [/^idle timeout in the middle of a PDU$/])

  ;({ peer, port } = await open())
  peer.send(bytes.subarray(0, 30))
  await sleep(20)
  peer.socket.end()
  t.ok(await peer.waitClosed(IDLE_MS / 2), 'FIN mid-PDU: closed before the idle timeout')
  t.equal(peer.received, 0)
  t.match(await settle(peer, port), [/^peer closed in the middle of a PDU$/])

  // Silence between PDUs is no error: closed at the timeout, not logged.
  ;({ peer, port } = await open())
  peer.send(bytes)
  await peer.pdu()
  t.ok(await peer.waitClosed(IDLE_MS * 5))
  t.same(await settle(peer, port), [])
})

t.test('after all that, a valid client is served', async (t) => {
  const { peer, port } = await open()
  peer.send(bind())
  await peer.pdu()
  peer.send(request(kms(4).payload))
  t.equal(parseResponseStub(parseResponsePdu((await peer.pdu())!).stub, 'ndr32').hresult, 0)
  t.same(await settle(peer, port), [], 'nothing logged as a problem')
})
