#!/usr/bin/env node
// npm run soak: the host under hostile load and hard faults, against the build (dist/).
//
// Phase 1: `kmslab serve` (a child process, SQLite state) takes --connections connections over
// loopback, --concurrency at a time: every row of the hostile-input table, mutations of every
// client PDU stream in pcaps/, resets, stalls and pipelining floods, mixed with valid clients
// (every --valid-every-th connection). Each connection's answer is checked against what the
// table says, and each hostile event must be logged exactly once (the JSON log is matched to the
// connections by client port). The child's RSS is sampled from /proc/PID/status; afterwards it
// must answer valid clients at once, with RSS within 50 MB of its level after start-up.
// Phase 2: --kills rounds of kill -9 at a random moment under load on the same state file; after
// each, the database must open intact, hold every answered request, with pools that are exactly
// what its history says, and the restarted host must serve at once. Then SIGTERM: exit 0 in 2 s.
// Prints a summary (--json: one JSON object); exits 1 when a check failed.
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { shebangNodeFlags } from './node-flags.mjs'

const { values: opt } = parseArgs({
  options: {
    connections: { type: 'string', default: '100000' },
    kills: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '64' },
    'valid-every': { type: 'string', default: '10' },
    seed: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
})
const N = Number(opt.connections)
const KILLS = Number(opt.kills)
const CONCURRENCY = Number(opt.concurrency)
const VALID_EVERY = Number(opt['valid-every'])
const SEED = Number(opt.seed ?? Math.floor(Math.random() * 2 ** 31))
const RSS_BUDGET_MB = 50
const root = new URL('..', import.meta.url).pathname
const BIN = join(root, 'dist/cli/bin.js')

const load = async (p) => {
  try {
    return await import(new URL(`../dist/${p}`, import.meta.url))
  } catch (e) {
    throw new Error(`cannot load dist/${p} (build first: npx tsc -p tsconfig.build.json): ${e.message}`)
  }
}
const rpc = await load('wire/rpc.js')
const ndr = await load('wire/ndr.js')
const { verifyKmsResponse } = await load('kms/verify.js')
const { OFFICE2013_APP_ID, WINDOWS_APP_ID } = await load('catalog/index.js')
const hostile = await load('load/hostile.js')
const { capturePdus } = await load('capture/index.js')
const { openStateStore } = await load('store/open.js')
const { default: Database } = await import('better-sqlite3')

// ---------------------------------------------------------------- randomness and bytes

let s = SEED >>> 0 || 1
const rnd = () => {
  s ^= s << 13
  s ^= s >>> 17
  s ^= s << 5
  return (s >>> 0) / 2 ** 32
}
const int = (n) => Math.floor(rnd() * n)
const pick = (list) => list[int(list.length)]
const bytes = (n) => Uint8Array.from({ length: n }, () => int(256))
const concat = (...parts) => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.length)))
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const uuid = () => {
  const h = Buffer.from(bytes(16)).toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20)}`
}

// The hostile builders are the product's catalogue (src/load/hostile.ts), the same the tests use.
const KMS = hostile.KMS_IFACE
const EPM = hostile.EPM_IFACE
const APPS = [WINDOWS_APP_ID, OFFICE2013_APP_ID, uuid()]
const ctx = (contextId, iface = KMS) => hostile.context(contextId, iface)
const bind = (contexts, declared) => hostile.bind(contexts, { declared })
const { request } = hostile
/** Soak clients ask for N = 5 and name themselves, on top of the catalogue's base request. */
const kms = (major, fields) =>
  hostile.kms(major, { requiredCount: 5, workstation: 'soak.example.test', ...fields })
/** A KMS payload the host must refuse: a row of the catalogue, or random bytes. */
function badPayload() {
  const rows = Object.values(hostile.badKmsPayloads())
  return int(rows.length + 1) < rows.length ? pick(rows) : bytes(int(300))
}

/** Client PDU streams of every capture, for mutations. */
const STREAMS = readdirSync(join(root, 'pcaps'))
  .filter((n) => /\.pcap(ng)?$/.test(n))
  .flatMap((n) => capturePdus(readFileSync(join(root, 'pcaps', n)), n))
  .filter((c) => c.clientPdus.length > 0)
  .map((c) => c.clientPdus.map((p) => Uint8Array.from(p.bytes)))
function mutated() {
  const pdus = pick(STREAMS).map((p) => Uint8Array.from(p))
  for (let e = 1 + int(4); e > 0 && pdus.length > 0; e--) {
    const i = int(pdus.length)
    const p = pdus[i]
    const at = int(2) ? int(28) : int(400)
    const op = int(6)
    if (op === 0 && p.length) p[at % p.length] = int(256)
    else if (op === 1 && p.length > 3) new DataView(p.buffer).setUint16(at % (p.length - 1), int(65536), true)
    else if (op === 2) pdus[i] = p.subarray(0, int(p.length + 1))
    else if (op === 3) pdus.splice(i, 0, Uint8Array.from(p))
    else if (op === 4) pdus.splice(i, 1)
    else pdus.splice(i, 0, bytes(int(64)))
  }
  return concat(...pdus)
}

// ---------------------------------------------------------------- a peer

class Peer {
  constructor(port) {
    this.buf = Buffer.alloc(0)
    this.received = 0
    this.closed = false
    this.waiters = []
    this.ready = new Promise((resolve, reject) => {
      this.socket = connect({ port, host: '127.0.0.1', noDelay: true }, () => {
        this.port = this.socket.localPort
        resolve(this)
      })
      this.socket.once('error', reject)
    })
    this.socket.on('data', (d) => {
      this.received += d.length
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
      this.wake()
    })
    this.socket.on('close', () => {
      this.closed = true
      this.wake()
    })
    this.socket.on('error', () => {})
  }
  wake() {
    for (const w of this.waiters.splice(0)) w()
  }
  wait(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms)
      this.waiters.push(() => {
        clearTimeout(t)
        resolve()
      })
    })
  }
  send(b) {
    if (!this.socket.destroyed) this.socket.write(b)
  }
  // Generous waits: they only bound a failure, and a host sharing two cores with other test files
  // can be starved for seconds without being wrong.
  async pdu(ms = 15_000) {
    const deadline = Date.now() + ms
    for (;;) {
      if (this.buf.length >= 10) {
        const n = this.buf.readUInt16LE(8)
        if (this.buf.length >= n) {
          const out = this.buf.subarray(0, n)
          this.buf = this.buf.subarray(n)
          return out
        }
      }
      if (this.closed || Date.now() >= deadline) return null
      await this.wait(deadline - Date.now())
    }
  }
  async closedWithin(ms) {
    const deadline = Date.now() + ms
    while (!this.closed && Date.now() < deadline) await this.wait(deadline - Date.now())
    return this.closed
  }
  end() {
    this.socket.destroy()
  }
}

// ---------------------------------------------------------------- what each kind sends and expects

const fail = (why) => {
  throw new Error(why)
}
const expectSilentClose = async (p, ms = 10_000) => {
  if (!(await p.closedWithin(ms))) fail('not closed')
  if (p.received !== 0) fail(`${p.received} bytes sent`)
}
const expectNak = async (p, reason) => {
  const nak = rpc.parseBindNakPdu((await p.pdu()) ?? fail('no BIND_NAK'))
  if (nak.rejectReason !== reason) fail(`BIND_NAK reason ${nak.rejectReason}`)
  if (!(await p.closedWithin(10_000))) fail('not closed after BIND_NAK')
}
const expectAck = async (p) => rpc.parseBindAckPdu((await p.pdu()) ?? fail('no BIND_ACK'))
const expectFault = async (p, callId, status) => {
  const f = rpc.parseFaultPdu((await p.pdu()) ?? fail('no FAULT'))
  if (f.header.callId !== callId || f.status !== status) fail(`FAULT ${f.status} for call ${f.header.callId}`)
}
const notRpc = () => {
  const b = bytes(1 + int(300))
  if (b[0] === 5) b[0] = 0x47
  if (b.length > 2 && (b[2] === 11 || b[2] === 14)) b[2] = 0
  return b
}

/** The largest BIND that fits 5840 bytes: 28 + 44 bytes per one-syntax context. */
const MAX_FITTING_CONTEXTS = Math.floor((5840 - 28) / 44)

/** kind -> weight, lines the host must log for one such connection (null: not checked), run(peer) */
const KINDS = {
  garbage: {
    weight: 10,
    lines: 1,
    run: async (p) => {
      p.send(notRpc())
      await expectSilentClose(p)
    },
  },
  http: {
    weight: 5,
    lines: 1,
    run: async (p) => {
      p.send(hostile.NOT_RPC['HTTP request'])
      await expectSilentClose(p)
    },
  },
  tls: {
    weight: 5,
    lines: 1,
    run: async (p) => {
      p.send(hostile.NOT_RPC['TLS client hello'])
      await expectSilentClose(p)
    },
  },
  'short-frag': {
    weight: 4,
    lines: 1,
    run: async (p) => {
      p.send(hostile.bindWithLength(int(16)))
      await expectSilentClose(p)
    },
  },
  'long-frag': {
    weight: 4,
    lines: 1,
    run: async (p) => {
      const n = 5841 + int(65536 - 5841)
      // only the header: the host must not wait for what the length promises
      p.send(hostile.bindWithLength(n).subarray(0, 10))
      await expectSilentClose(p)
    },
  },
  'rpc-version': {
    weight: 5,
    lines: 1,
    run: async (p) => {
      const [major, minor] = pick([
        [5, 1],
        [4, 0],
        [6, 0],
        [7, 3],
      ])
      p.send(hostile.bindVersion(major, minor))
      await expectNak(p, rpc.BIND_NAK_REASON.PROTOCOL_VERSION_NOT_SUPPORTED)
    },
  },
  drep: {
    weight: 4,
    lines: 1,
    run: async (p) => {
      p.send(hostile.bindDrep([0x10, 1 + int(3)]))
      await expectNak(p, rpc.BIND_NAK_REASON.NOT_SPECIFIED)
    },
  },
  'many-contexts': {
    weight: 4,
    lines: 1,
    run: async (p) => {
      const n = 65 + int(MAX_FITTING_CONTEXTS - 64)
      const kmsAt = 64 + int(n - 64)
      p.send(bind(Array.from({ length: n }, (_, i) => ctx(i, i === kmsAt ? KMS : EPM))))
      const ack = await expectAck(p)
      if (ack.results.length !== n) fail(`${ack.results.length} results for ${n} items`)
      if (ack.results.some((r) => r.result === 0)) fail('an item past 64 accepted')
    },
  },
  'declared-contexts': {
    weight: 4,
    lines: 1,
    run: async (p) => {
      const declared = 3 + int(253)
      p.send(bind([ctx(0), ctx(1, EPM)], declared))
      const ack = await expectAck(p)
      if (ack.results.length !== declared || ack.results[0].result !== 0)
        fail(`${ack.results.length} results`)
    },
  },
  'foreign-interface': {
    weight: 5,
    lines: 1,
    run: async (p) => {
      p.send(bind([ctx(0, EPM)]))
      const r = (await expectAck(p)).results
      if (r.length !== 1 || r[0].result !== 2 || r[0].reason !== 1) fail('not rejected (2, 1)')
    },
  },
  'before-bind': {
    weight: 4,
    lines: 1,
    run: async (p) => {
      p.send(request(kms(6).payload, { callId: 41 }))
      await expectFault(p, 41, rpc.NCA_STATUS.UNK_IF)
    },
  },
  'unknown-context': {
    weight: 4,
    lines: 1,
    run: async (p) => {
      p.send(concat(bind(), request(kms(5).payload, { callId: 42, contextId: 1 + int(100) })))
      await expectAck(p)
      await expectFault(p, 42, rpc.NCA_STATUS.UNK_IF)
    },
  },
  'unknown-opnum': {
    weight: 4,
    lines: 1,
    run: async (p) => {
      p.send(concat(bind(), request(kms(4).payload, { callId: 43, opnum: 1 + int(1000) })))
      await expectAck(p)
      await expectFault(p, 43, rpc.NCA_STATUS.OP_RNG_ERROR)
    },
  },
  'bad-kms': {
    weight: 8,
    lines: 1,
    run: async (p) => {
      p.send(concat(bind(), request(badPayload())))
      await expectAck(p)
      const pdu = (await p.pdu()) ?? fail('no answer')
      const stub = ndr.parseResponseStub(rpc.parseResponsePdu(pdu).stub, 'ndr32')
      if (stub.hresult !== 0x8007000d) fail(`HRESULT 0x${stub.hresult.toString(16)}`)
    },
  },
  'fin-mid-pdu': {
    weight: 4,
    lines: 1,
    run: async (p) => {
      const b = bind()
      p.send(b.subarray(0, 1 + int(b.length - 1)))
      await sleep(int(5))
      p.socket.end()
      await expectSilentClose(p)
    },
  },
  mutation: {
    weight: 15,
    lines: null,
    run: async (p) => {
      p.send(mutated())
      p.socket.end()
      if (!(await p.closedWithin(5000))) fail('not closed after FIN')
      const out = p.buf
      for (let o = 0; o < out.length; ) {
        const n = out.length - o >= 10 ? out.readUInt16LE(o + 8) : 0
        if (n < 16 || o + n > out.length) fail('output is not whole PDUs')
        rpc.parsePdu(out.subarray(o, o + n))
        o += n
      }
    },
  },
  reset: {
    weight: 2,
    lines: null,
    run: async (p) => {
      if (int(2)) p.send(bind())
      p.socket.resetAndDestroy()
    },
  },
  stall: {
    weight: 0.3,
    lines: 1,
    run: async (p) => {
      p.send(bind().subarray(0, 1 + int(40)))
      await expectSilentClose(p, 4000)
    },
  },
  flood: {
    weight: 0.2,
    lines: null,
    run: async (p) => {
      const one = request(kms(6).payload)
      p.send(concat(bind(), ...Array.from({ length: 500 }, () => one)))
      p.socket.pause()
      await sleep(50 + int(200))
    },
  },
}
const TABLE = Object.entries(KINDS)
const TOTAL = TABLE.reduce((n, [, k]) => n + k.weight, 0)
const pickKind = () => {
  let x = rnd() * TOTAL
  for (const [name, k] of TABLE) {
    x -= k.weight
    if (x < 0) return name
  }
  return 'garbage'
}

/** A valid client: bind, 1-3 verified requests, each pushed to `answered` once verified. */
async function valid(p, answered, latencies) {
  const started = performance.now()
  p.send(bind())
  await expectAck(p)
  for (let i = 0; i < 1 + int(3); i++) {
    const appId = pick(APPS)
    const built = kms(4 + int(3), { appId })
    p.send(request(built.payload, { callId: 3 + i }))
    const pdu = (await p.pdu(10_000)) ?? fail('no answer')
    const stub = ndr.parseResponseStub(rpc.parseResponsePdu(pdu).stub, 'ndr32')
    if (stub.hresult !== 0) fail(`refused 0x${stub.hresult.toString(16)}`)
    verifyKmsResponse(built, stub.payload)
    answered.push({ cmid: built.cmid, appId })
    if (i === 0) latencies.push(performance.now() - started)
  }
}

// ---------------------------------------------------------------- the host

function startHost(state) {
  const child = spawn(
    process.execPath,
    [
      ...shebangNodeFlags(BIN),
      BIN,
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--state',
      state,
      '--log-format',
      'json',
      '--idle-timeout',
      '1',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const host = { child, lines: 0, events: {}, onLine: null, exited: null, port: 0 }
  host.exited = new Promise((r) => child.on('exit', (code, signal) => r(code ?? signal)))
  const reader = (stream) => {
    let rest = ''
    stream.setEncoding('utf8')
    stream.on('data', (d) => {
      const parts = (rest + d).split('\n')
      rest = parts.pop()
      for (const line of parts) {
        host.lines++
        let e
        try {
          e = JSON.parse(line)
        } catch {
          e = { event: 'not-json', text: line }
        }
        host.events[e.event] = (host.events[e.event] ?? 0) + 1
        if (e.event === 'listening') host.port = Number(e.addresses[0].split(':').pop())
        host.onLine?.(e)
      }
    })
  }
  reader(child.stdout)
  reader(child.stderr)
  host.ready = (async () => {
    for (let i = 0; i < 1500 && !host.events.hwid; i++) await sleep(10)
    if (!host.port) throw new Error(`the host did not start: ${JSON.stringify(host.events)}`)
    return host
  })()
  return host
}

const rssMb = (pid) => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : null
  } catch {
    return null
  }
}
const pct = (list, q) => {
  if (list.length === 0) return null
  const sorted = [...list].sort((a, b) => a - b)
  return Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(1))
}

function checkState(path, answered) {
  const db = new Database(path)
  const integrity = db.pragma('integrity_check', { simple: true })
  db.close()
  const store = openStateStore(path)
  const history = store.readHistory()
  const pool = store.loadPoolEntries()
  store.close()
  const recorded = new Set(history.map((r) => r.cmid))
  const missing = answered.filter((a) => !recorded.has(a.cmid)).length
  // Pools as the history says: per application the newest 50 distinct answered CMIDs. Clients
  // seen in the same millisecond are equally old, so at the capacity edge either may be kept.
  const seen = new Map()
  for (const r of history) {
    if (r.hresult !== 0) continue
    const app = seen.get(r.appId) ?? new Map()
    app.delete(r.cmid)
    app.set(r.cmid, r.time)
    seen.set(r.appId, app)
  }
  const have = new Map()
  for (const e of pool) have.set(e.appId, new Set([...(have.get(e.appId) ?? []), e.cmid]))
  // The three known applications are never evicted: their pools must be exactly that. Garbage
  // that decrypts to random application ids (V5/V6 carry no integrity check, §7.4) makes more
  // than 64 pools, so unknown ones may have been evicted whole: theirs must be a subset of it.
  const KNOWN = APPS.slice(0, 2).concat('59a52881-a989-479d-af46-f275c6370663')
  const same =
    have.size <= 64 &&
    [...have.keys()].every((app) => seen.has(app)) &&
    [...seen].every(([app, times]) => {
      const newest = [...times].slice(-50)
      const edge = Math.min(...newest.map(([, t]) => t))
      const got = have.get(app) ?? new Set()
      const subset = got.size <= newest.length && [...got].every((cmid) => (times.get(cmid) ?? -1) >= edge)
      if (!KNOWN.includes(app)) return subset && (got.size > 0 || have.size === 64)
      return subset && got.size === newest.length && newest.every(([cmid, t]) => t === edge || got.has(cmid))
    })
  return { integrity, missing, poolsMatchHistory: same, history: history.length }
}

// ---------------------------------------------------------------- phase 1: hostile load

const dir = mkdtempSync(join(tmpdir(), 'kmslab-soak-'))
const state = join(dir, 'state.db')
const summary = { seed: SEED, connections: 0, byKind: {}, errors: {}, log: {}, valid: {}, rss: {}, kills: [] }
const errors = summary.errors
const err = (kind) => {
  errors[kind] = (errors[kind] ?? 0) + 1
}
const answered = []
const latencies = []
const t0 = performance.now()

let host = await startHost(state).ready
/** port -> the connection using it, to match the JSON log to connections. */
const byPort = new Map()
const records = []
host.onLine = (e) => {
  if (e.event === 'connection') return
  const port = e.clientPort ?? (typeof e.client === 'string' ? Number(e.client.split(':').pop()) : null)
  if (port === null) return
  const rec = byPort.get(port)
  if (rec) rec.lines++
  else err('log line for no connection')
}

/** One connection of `kind`, its log lines counted against what the table expects. */
async function session(kind, answeredTo, latencyTo, counted = true) {
  if (counted) summary.byKind[kind] = (summary.byKind[kind] ?? 0) + 1
  let p
  try {
    p = await new Peer(host.port).ready
  } catch (e) {
    err(`connect: ${e.code ?? e.message}`)
    return
  }
  const rec = { kind, lines: 0, expect: kind === 'valid' ? 0 : KINDS[kind].lines }
  byPort.set(p.port, rec)
  records.push(rec)
  const mine = []
  try {
    if (kind === 'valid') await valid(p, mine, latencyTo)
    else await KINDS[kind].run(p)
  } catch (e) {
    err(`${kind}: ${e.message}`)
  } finally {
    if (kind === 'valid') rec.expect = mine.length // one activation line per answered request
    answeredTo.push(...mine)
    p.end()
  }
  if (counted) summary.connections++
}

for (let i = 0; i < 50; i++) await session('valid', answered, [], false) // warm-up
const warmed = answered.length
const rssStart = rssMb(host.child.pid)
let rssPeak = rssStart
const sampler = setInterval(() => {
  const r = rssMb(host.child.pid)
  if (r !== null) rssPeak = Math.max(rssPeak, r)
}, 200)

let next = 0
async function worker() {
  while (next < N) {
    const i = next++
    await session(i % VALID_EVERY === 0 ? 'valid' : pickKind(), answered, latencies)
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, worker))
const runActivations = answered.length - warmed
const loadSeconds = (performance.now() - t0) / 1000
await sleep(2000) // stalls time out, the last log lines arrive, the heap settles
for (const r of records) {
  if (r.expect === null) continue
  if (r.lines !== r.expect) err(`log: ${r.kind} logged ${r.lines} lines, expected ${r.expect}`)
}
const after = []
for (let i = 0; i < 20; i++) await session('valid', answered, after, false)
clearInterval(sampler)
// V8 keeps the heap it grew under load (the young generation alone reaches 32 MB) until its
// memory reducer runs, some tens of seconds after the load stops: wait for that, 90 s at most.
const rssRightAfter = rssMb(host.child.pid)
const idleSince = Date.now()
let rssEnd = rssRightAfter
while (rssEnd - rssStart > RSS_BUDGET_MB && Date.now() - idleSince < 90_000) {
  await sleep(1000)
  rssEnd = rssMb(host.child.pid)
}
const idleSeconds = Math.round((Date.now() - idleSince) / 1000)
summary.log = { ...host.events }
summary.valid = {
  sessions: latencies.length,
  activations: runActivations,
  latencyMs: {
    p50: pct(latencies, 0.5),
    p95: pct(latencies, 0.95),
    p99: pct(latencies, 0.99),
    max: pct(latencies, 1),
  },
  afterRunMs: { p50: pct(after, 0.5), max: pct(after, 1) },
}
summary.rss = {
  startMb: Number(rssStart.toFixed(1)),
  peakMb: Number(rssPeak.toFixed(1)),
  rightAfterLoadMb: Number(rssRightAfter.toFixed(1)),
  endMb: Number(rssEnd.toFixed(1)),
  endAfterIdleSeconds: idleSeconds,
  budgetMb: RSS_BUDGET_MB,
  withinBudget: rssEnd - rssStart <= RSS_BUDGET_MB,
}
summary.loadSeconds = Number(loadSeconds.toFixed(1))
summary.connectionsPerSecond = Math.round(summary.connections / loadSeconds)
const stopAt = Date.now()
host.child.kill('SIGTERM')
summary.sigterm = { exit: await host.exited, ms: Date.now() - stopAt }
summary.afterPhase1 = checkState(state, answered)

// ---------------------------------------------------------------- phase 2: kill -9 under load

for (let round = 1; round <= KILLS; round++) {
  host = await startHost(state).ready
  const first = []
  const got = []
  try {
    await valid(await new Peer(host.port).ready, got, first)
  } catch (e) {
    err(`kill round: first activation: ${e.message}`)
  }
  let killed = false
  const lanes = Array.from({ length: 12 }, async (_, lane) => {
    while (!killed) {
      let p
      try {
        p = await new Peer(host.port).ready
      } catch {
        return
      }
      try {
        if (lane < 6) await valid(p, got, [])
        else await KINDS[pickKind()][2](p)
      } catch {
        // connections cut by the kill fail; the state check below is what counts
      } finally {
        p.end()
      }
    }
  })
  const at = 200 + int(1300)
  await sleep(at)
  host.child.kill('SIGKILL')
  killed = true
  await host.exited
  await Promise.all(lanes)
  answered.push(...got)
  const check = checkState(state, answered)
  summary.kills.push({
    round,
    killedAfterMs: at,
    answered: got.length,
    firstActivationMs: pct(first, 0.5),
    ...check,
  })
  if (check.integrity !== 'ok') err('kill: integrity_check failed')
  if (check.missing > 0) err('kill: answered requests missing from the history')
  if (!check.poolsMatchHistory) err('kill: pools differ from the history')
}
if (KILLS > 0) {
  host = await startHost(state).ready
  const first = []
  await valid(await new Peer(host.port).ready, answered, first).catch((e) => err(`final: ${e.message}`))
  const at = Date.now()
  host.child.kill('SIGTERM')
  summary.final = { firstActivationMs: pct(first, 0.5), exit: await host.exited, sigtermMs: Date.now() - at }
  summary.final.state = checkState(state, answered)
}
rmSync(dir, { recursive: true, force: true })

// ---------------------------------------------------------------- verdict

if (!summary.rss.withinBudget) err(`rss: grew ${(rssEnd - rssStart).toFixed(1)} MB`)
if (summary.sigterm.exit !== 0 || summary.sigterm.ms > 2000) err('sigterm: not a clean exit within 2 s')
if (summary.afterPhase1.integrity !== 'ok' || summary.afterPhase1.missing > 0)
  err('phase 1: state check failed')
if (summary.final && (summary.final.exit !== 0 || summary.final.sigtermMs > 2000)) err('final sigterm')
summary.ok = Object.keys(errors).length === 0
if (opt.json) console.log(JSON.stringify(summary))
else {
  const k = summary.kills
  console.log(
    `soak (seed ${SEED}): ${summary.connections} connections in ${summary.loadSeconds} s (${summary.connectionsPerSecond}/s), concurrency ${CONCURRENCY}`,
  )
  console.log(
    `  by kind: ${Object.entries(summary.byKind)
      .map(([a, b]) => `${a} ${b}`)
      .join(', ')}`,
  )
  console.log(
    `  valid: ${summary.valid.sessions} sessions, ${summary.valid.activations} verified activations; first answer p50 ${summary.valid.latencyMs.p50} ms, p95 ${summary.valid.latencyMs.p95}, p99 ${summary.valid.latencyMs.p99}, max ${summary.valid.latencyMs.max}`,
  )
  console.log(
    `  after the run: valid activations p50 ${summary.valid.afterRunMs.p50} ms, max ${summary.valid.afterRunMs.max} ms`,
  )
  console.log(
    `  host RSS: start ${summary.rss.startMb} MB, peak ${summary.rss.peakMb} MB, right after the load ${summary.rss.rightAfterLoadMb} MB, end ${summary.rss.endMb} MB ${summary.rss.endAfterIdleSeconds} s later (budget +${RSS_BUDGET_MB} MB: ${summary.rss.withinBudget ? 'ok' : 'EXCEEDED'})`,
  )
  console.log(
    `  log lines by event: ${Object.entries(summary.log)
      .map(([a, b]) => `${a} ${b}`)
      .join(', ')}`,
  )
  console.log(
    `  SIGTERM: exit ${summary.sigterm.exit} in ${summary.sigterm.ms} ms; state: integrity ${summary.afterPhase1.integrity}, ${summary.afterPhase1.history} history rows, answered missing ${summary.afterPhase1.missing}`,
  )
  if (k.length > 0) {
    console.log(
      `  kill -9: ${k.length} rounds, killed after ${Math.min(...k.map((r) => r.killedAfterMs))}-${Math.max(...k.map((r) => r.killedAfterMs))} ms, ${k.reduce((n, r) => n + r.answered, 0)} answered; every round: integrity ${k.every((r) => r.integrity === 'ok') ? 'ok' : 'FAILED'}, answered missing ${k.reduce((n, r) => n + r.missing, 0)}, pools match history ${k.every((r) => r.poolsMatchHistory)}; first activation after restart max ${Math.max(...k.map((r) => r.firstActivationMs ?? Infinity))} ms`,
    )
    console.log(
      `  final: exit ${summary.final.exit} ${summary.final.sigtermMs} ms after SIGTERM, integrity ${summary.final.state.integrity}, ${summary.final.state.history} history rows`,
    )
  }
  console.log(
    `  errors: ${
      Object.keys(errors).length === 0
        ? 'none'
        : Object.entries(errors)
            .map(([a, b]) => `${a} ×${b}`)
            .join('; ')
    }`,
  )
  console.log(summary.ok ? 'soak: ok' : 'soak: FAILED')
}
process.exit(summary.ok ? 0 : 1)
