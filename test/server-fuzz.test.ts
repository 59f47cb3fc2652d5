// Property tests of the host's whole PDU path: PduFramer + RpcConnection + the KMS logic, fed
// mutations of every client PDU stream in pcaps/ (and random bytes), in random chunks, with the
// answer given at once or after a wait. Whatever comes in: nothing is thrown, no close is
// reported twice or blamed on an internal error, nothing is written after the close, every byte
// written is a whole, well-formed RPC PDU, and what the connection holds stays bounded. A smaller
// run goes through a real socket to a live host, which must still serve a valid client after.
// KMSLAB_FUZZ_RUNS raises the number of runs.
import { EventEmitter } from 'node:events'
import { connect, type Socket } from 'node:net'
import fc from 'fast-check'
import t from 'tap'
import { startHost } from '../src/api/host.js'
import { seededRandom } from '../src/crypto/random.js'
import { answerKmsRequest, type HostContext } from '../src/kms/answer.js'
import { ActivationCounter } from '../src/kms/counter.js'
import { decodeKmsRequest } from '../src/kms/request.js'
import { RpcConnection } from '../src/server/connection.js'
import { DEFAULT_MAX_FRAGMENT } from '../src/server/framer.js'
import type { CallHandler, CallOutcome } from '../src/server/types.js'
import { PTYPE, parsePdu } from '../src/wire/rpc.js'
import { bind, kms, request } from './fixtures/hostile.js'
import { allCaptureNames, loadCapturePdus } from './fixtures/pcap.js'
import { activateRaw, baseRequest } from './fixtures/raw-activate.js'

const RUNS = Number(process.env.KMSLAB_FUZZ_RUNS ?? 300)

/** Every client-side PDU sequence of every capture (one per TCP connection), and a few of ours. */
const STREAMS: Uint8Array[][] = [
  ...allCaptureNames().flatMap((name) =>
    loadCapturePdus(name)
      .filter((c) => c.clientPdus.length > 0)
      .map((c) => c.clientPdus.map((p) => p.bytes)),
  ),
  [
    bind(),
    request(kms(4).payload),
    request(kms(5).payload, { callId: 4 }),
    request(kms(6).payload, { callId: 5 }),
  ],
]
const ANSWERS = new Set<number>([
  PTYPE.BIND_ACK,
  PTYPE.ALTER_CONTEXT_RESP,
  PTYPE.BIND_NAK,
  PTYPE.RESPONSE,
  PTYPE.FAULT,
])

const EPID = '06401-00206-271-395032-03-1033-9600.0000-0452015'

function kmsHandler(delay: 'none' | 'microtask' | 'timer'): CallHandler {
  const ctx: HostContext = {
    now: Date.now(),
    random: seededRandom('fuzz-host'),
    counter: new ActivationCounter(),
    strict: false,
    activationInterval: 120,
    renewalInterval: 10080,
    hwid: new Uint8Array(8).fill(0x3a),
    epidFor: () => EPID,
    kmsIdStatus: () => 'volume',
  }
  return (call) => {
    const answer = answerKmsRequest(decodeKmsRequest(call.payload), ctx)
    const outcome: CallOutcome = answer.payload
      ? { kind: 'answer', payload: answer.payload }
      : { kind: 'refuse', hresult: answer.hresult }
    if (delay === 'none') return outcome
    if (delay === 'microtask') return Promise.resolve(outcome)
    return new Promise((resolve) => setTimeout(() => resolve(outcome), 0))
  }
}

/** Enough of a net.Socket for RpcConnection, recording what the host does with it. */
class FakeSocket extends EventEmitter {
  readonly written: Uint8Array[] = []
  writableLength = 0
  ended = false
  destroyed = false
  paused = false
  misuse: string[] = []
  write(bytes: Uint8Array): boolean {
    if (this.ended || this.destroyed) this.misuse.push('write after the close')
    this.written.push(Uint8Array.from(bytes))
    return true
  }
  end(): this {
    this.ended = true
    return this
  }
  destroy(): this {
    this.destroyed = true
    return this
  }
  pause(): this {
    this.paused = true
    return this
  }
  resume(): this {
    this.paused = false
    return this
  }
  isPaused(): boolean {
    return this.paused
  }
}

const header = fc.oneof(fc.nat({ max: 27 }), fc.nat({ max: 400 }))
const edit = fc.oneof(
  fc.record({ kind: fc.constant('byte' as const), pdu: fc.nat(), at: header, value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('u16' as const), pdu: fc.nat(), at: header, value: fc.nat({ max: 0xffff }) }),
  fc.record({
    kind: fc.constant('u32' as const),
    pdu: fc.nat(),
    at: header,
    value: fc.nat({ max: 0xffffffff }),
  }),
  fc.record({ kind: fc.constant('cut' as const), pdu: fc.nat(), at: fc.nat({ max: 400 }) }),
  fc.record({ kind: fc.constant('dup' as const), pdu: fc.nat() }),
  fc.record({ kind: fc.constant('drop' as const), pdu: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), pdu: fc.nat(), bytes: fc.uint8Array({ maxLength: 64 }) }),
)
const stream = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      base: fc.nat({ max: STREAMS.length - 1 }),
      edits: fc.array(edit, { maxLength: 6 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ random: fc.uint8Array({ minLength: 1, maxLength: 2000 }) }) },
)
type Edit = typeof edit extends fc.Arbitrary<infer E> ? E : never
type StreamSpec = { base: number; edits: Edit[] } | { random: Uint8Array }

function build(spec: StreamSpec): Uint8Array {
  if ('random' in spec) return spec.random
  const pdus = STREAMS[spec.base].map((p) => Uint8Array.from(p))
  for (const e of spec.edits) {
    if (pdus.length === 0) break
    const i = e.pdu % pdus.length
    const p = pdus[i]
    const dv = new DataView(p.buffer, p.byteOffset, p.byteLength)
    if (e.kind === 'byte' && p.length > 0) p[e.at % p.length] = e.value
    else if (e.kind === 'u16' && p.length >= 2) dv.setUint16(e.at % (p.length - 1), e.value, true)
    else if (e.kind === 'u32' && p.length >= 4) dv.setUint32(e.at % (p.length - 3), e.value, true)
    else if (e.kind === 'cut') pdus[i] = p.subarray(0, e.at % (p.length + 1))
    else if (e.kind === 'dup') pdus.splice(i, 0, Uint8Array.from(p))
    else if (e.kind === 'drop') pdus.splice(i, 1)
    else if (e.kind === 'insert') pdus.splice(i, 0, e.bytes)
  }
  const out = new Uint8Array(pdus.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of pdus) {
    out.set(p, o)
    o += p.length
  }
  return out
}

function chunks(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  let o = 0
  for (let i = 0; o < bytes.length; i++) {
    const n = sizes.length > 0 ? 1 + (sizes[i % sizes.length] % 600) : bytes.length
    out.push(bytes.subarray(o, o + n))
    o += n
  }
  return out
}

/** PTYPEs answered and close reasons seen over a run, to show the mutations reach every layer. */
const seen = new Map<string, number>()
const saw = (what: string) => seen.set(what, (seen.get(what) ?? 0) + 1)

/** Splits the host's output by frag_length; every PDU must parse and be an answer type. */
function checkOutput(bytes: Uint8Array): string | null {
  let o = 0
  while (o < bytes.length) {
    if (bytes.length - o < 10) return `${bytes.length - o} stray bytes at ${o}`
    const length = bytes[o + 8] | (bytes[o + 9] << 8)
    if (length < 16 || o + length > bytes.length) return `bad frag_length ${length} at ${o}`
    const pdu = parsePdu(bytes.subarray(o, o + length))
    if (!ANSWERS.has(pdu.header.ptype)) return `PTYPE ${pdu.header.ptype} sent`
    saw(`ptype ${pdu.header.ptype}`)
    o += length
  }
  return null
}

const tick = () => new Promise((r) => setImmediate(r))

t.test('RpcConnection + KMS logic on mutated capture streams, in random chunks', async (t) => {
  t.ok(STREAMS.length > 40, `${STREAMS.length} client streams from ${allCaptureNames().length} captures`)
  await fc.assert(
    fc.asyncProperty(
      stream,
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.constantFrom('none', 'microtask', 'timer') as fc.Arbitrary<'none' | 'microtask' | 'timer'>,
      fc.record({ ndr64: fc.boolean(), btfn: fc.boolean() }),
      fc.boolean(),
      async (spec, sizes, delay, bindPolicy, fin) => {
        const socket = new FakeSocket()
        const closes: string[] = []
        const conn = new RpcConnection(
          1,
          socket as unknown as Socket,
          { address: '192.0.2.7', port: 50000 },
          1688,
          {
            bindPolicy,
            handler: kmsHandler(delay),
            random: seededRandom('conn'),
            now: Date.now,
            events: {
              onBind() {},
              onFault() {},
              onNotice() {},
              onClose: (_c, reason) => closes.push(reason),
            },
          },
        )
        const input = build(spec as StreamSpec)
        let held = 0
        for (const chunk of chunks(input, sizes)) {
          // a paused socket delivers nothing: wait for the answer in progress, as the kernel would
          for (let i = 0; i < 50 && socket.paused && !socket.destroyed; i++) await tick()
          if (socket.destroyed || socket.ended) break
          conn.onData(chunk)
          held = Math.max(held, conn.framer.pending - chunk.length)
        }
        if (fin) conn.peerEnded()
        for (let i = 0; i < 50 && conn.isBusy; i++) await tick()
        const out = new Uint8Array(socket.written.reduce((n, w) => n + w.length, 0))
        let o = 0
        for (const w of socket.written) {
          out.set(w, o)
          o += w.length
        }
        const problems = [
          ...socket.misuse,
          ...(closes.length > 1 ? [`close reported ${closes.length} times: ${closes.join(' / ')}`] : []),
          ...closes.filter((r) => r.startsWith('internal error')),
          ...(held > DEFAULT_MAX_FRAGMENT ? [`held ${held} bytes beyond the chunk being read`] : []),
          ...(fin && !conn.isBusy && closes.length === 0
            ? ['peer finished but the connection stayed open']
            : []),
        ]
        for (const c of closes) saw(`close: ${c.replace(/[\d(].*$/, '')}`)
        const bad = checkOutput(out)
        if (bad) problems.push(bad)
        if (problems.length > 0) throw new Error(problems.join('; '))
      },
    ),
    { numRuns: RUNS },
  )
  const count = (re: RegExp) => [...seen].filter(([k]) => re.test(k)).reduce((n, [, v]) => n + v, 0)
  t.ok(count(/^ptype 12$/) > 0, `BIND_ACKs: ${count(/^ptype 12$/)}`)
  t.ok(count(/^ptype 2$/) > 0, `RESPONSEs: ${count(/^ptype 2$/)}`)
  t.ok(count(/^ptype 3$/) > 0, `FAULTs: ${count(/^ptype 3$/)}`)
  t.ok(count(/^ptype 13$/) > 0, `BIND_NAKs: ${count(/^ptype 13$/)}`)
  t.ok(
    count(/^close: /) > 0,
    `closes: ${[...seen]
      .filter(([k]) => k.startsWith('close'))
      .map(([k, v]) => `${k.slice(7).trim()} ×${v}`)
      .join(', ')}`,
  )
})

t.test('a live host on loopback: mutated streams, then a valid client is served', async (t) => {
  const host = await startHost({ state: 'memory', idleTimeoutMs: 300 })
  t.teardown(() => host.close())
  const internal: string[] = []
  host.events.on('connection', (c) => {
    if (c.reason?.startsWith('internal error')) internal.push(c.reason)
  })
  const send = (bytes: Uint8Array, sizes: number[]) =>
    new Promise<Uint8Array>((resolve) => {
      const got: Buffer[] = []
      const socket = connect({ host: '127.0.0.1', port: host.port }, async () => {
        for (const c of chunks(bytes, sizes)) {
          if (socket.destroyed) break
          socket.write(c)
          if (sizes.length > 0) await tick()
        }
        if (!socket.destroyed) socket.end()
      })
      socket.on('data', (d) => got.push(d))
      socket.on('error', () => {})
      socket.on('close', () => resolve(Buffer.concat(got)))
    })
  await fc.assert(
    fc.asyncProperty(stream, fc.array(fc.nat(), { maxLength: 4 }), async (spec, sizes) => {
      const bad = checkOutput(await send(build(spec as StreamSpec), sizes))
      if (bad) throw new Error(bad)
    }),
    { numRuns: Math.max(20, Math.round(RUNS / 3)) },
  )
  t.same(internal, [], 'no connection closed on an internal error')
  const [answer] = await activateRaw(host.port, [baseRequest()])
  t.equal(answer.hresult, 0, 'the host still serves')
  t.equal(host.stats.accepted >= 20, true)
})

t.test('decodeKmsRequest and answerKmsRequest on random and mutated payloads', async (t) => {
  const valid = [4, 5, 6].map((major) => kms(major).payload)
  const payload = fc.oneof(
    fc.uint8Array({ maxLength: 400 }),
    fc
      .record({
        base: fc.constantFrom(...valid),
        writes: fc.array(fc.record({ at: fc.nat(), value: fc.nat({ max: 255 }) }), { maxLength: 8 }),
        cut: fc.option(fc.nat({ max: 300 })),
        extra: fc.uint8Array({ maxLength: 40 }),
      })
      .map(({ base, writes, cut, extra }) => {
        let b = Uint8Array.from(base)
        for (const w of writes) b[w.at % b.length] = w.value
        if (cut !== null) b = b.subarray(0, cut)
        const out = new Uint8Array(b.length + extra.length)
        out.set(b)
        out.set(extra, b.length)
        return out
      }),
  )
  const handler = kmsHandler('none')
  fc.assert(
    fc.property(payload, (p) => {
      const decoded = decodeKmsRequest(p)
      const outcome = handler({ payload: p } as Parameters<CallHandler>[0]) as CallOutcome
      if (decoded.problems.length > 0 && outcome.kind !== 'refuse')
        throw new Error(
          `answered a request with problems: ${decoded.problems.map((x) => x.message).join('; ')}`,
        )
      if (outcome.kind === 'refuse' && outcome.hresult === 0) throw new Error('refused with HRESULT 0')
    }),
    { numRuns: RUNS * 5 },
  )
  t.pass(`${RUNS * 5} payloads decoded and answered without an exception`)
})
