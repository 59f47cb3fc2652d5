// Every recorded capture in pcaps/ against the facts written down in its .txt: packet and
// connection counts from the header line, and the tshark "DCE-RPC / TCP summary" (one line per
// frame that completes a PDU, with its type and call_id, plus the FIN/RST frames).
import t from 'tap'
import type { ConnectionPdus } from '../src/capture/index.js'
import { allCaptureNames, hex, loadCapture, loadCaptureText } from './fixtures/pcap.js'

const PTYPE: Record<string, number> = {
  Request: 0,
  Response: 2,
  Fault: 3,
  Bind: 11,
  Bind_ack: 12,
  Alter_context: 14,
  Alter_context_resp: 15,
}

interface SummaryLine {
  frame: number
  sport: number
  dport: number
  proto: string
  info: string
}

interface Txt {
  packets: number
  connections: number
  serverPort: number
  lines: SummaryLine[]
}

function parseTxt(text: string): Txt {
  const header = /; (\d+) packets, (\d+) TCP connection\(s\)/.exec(text)
  const port = /capture filter 'tcp port (\d+)'/.exec(text)
  const section = text.split('== DCE-RPC / TCP summary')[1]?.split('\n== ')[0]
  if (!header || !port || section === undefined) throw new Error('unexpected .txt layout')
  const lines = section
    .split('\n')
    .slice(1)
    .filter((l) => /^\d+ /.test(l))
    .map((l) => {
      const [frame, , , sport, dport, proto, ...info] = l.trim().split(/\s+/)
      return { frame: Number(frame), sport: Number(sport), dport: Number(dport), proto, info: info.join(' ') }
    })
  return { packets: Number(header[1]), connections: Number(header[2]), serverPort: Number(port[1]), lines }
}

// tshark prints one summary line per frame; in these captures one frame carries two PDUs
// (the probe sends BIND and REQUEST in one send(), the line names only the last one)
const EXTRA_CLIENT_PDUS: Record<string, number> = { raw_vlmcsd_pipelined: 1, raw_pykms_pipelined: 1 }

/** Frame number (1-based) in which the last byte of each PDU of one direction arrived. */
function endFrames(
  c: ConnectionPdus,
  fromClient: boolean,
): { frame: number; ptype: number; callId: number }[] {
  const pdus = fromClient ? c.clientPdus : c.serverPdus
  return pdus.map((p) => {
    const last = p.offset + p.bytes.length - 1
    const chunk = c.connection.chunks.find(
      (k) => k.fromClient === fromClient && k.offset <= last && last < k.offset + k.length,
    )
    const callId = new DataView(p.bytes.buffer, p.bytes.byteOffset).getUint32(12, true)
    return { frame: (chunk?.packetIndex ?? -2) + 1, ptype: p.bytes[2], callId }
  })
}

/** Keep the last PDU of each frame, as tshark's one-line-per-frame summary does. */
function lastPerFrame<T extends { frame: number }>(list: T[]): T[] {
  return list.filter((x, i) => i === list.length - 1 || list[i + 1].frame !== x.frame)
}

const names = allCaptureNames()

t.test('the capture set is complete', async (t) => {
  t.equal(names.length, 47, '46 .pcap files and one .pcapng')
  t.equal(names.filter((n) => n.endsWith('.pcapng')).length, 1)
})

for (const name of names) {
  t.test(name, async (t) => {
    const base = name.replace(/\.pcap(ng)?$/, '')
    const txt = parseTxt(loadCaptureText(base))
    const decoded = loadCapture(name)
    t.equal(decoded.format, name.endsWith('.pcapng') ? 'pcapng' : 'pcap')
    t.equal(decoded.packetCount, txt.packets, 'packets as in the .txt header')
    t.equal(decoded.connections.length, txt.connections, 'TCP connections as in the .txt header')
    t.same(decoded.warnings, [], 'no findings at file level')
    for (const c of decoded.connections) {
      const conn = c.connection
      t.equal(conn.server.port, txt.serverPort, 'server is the filtered port')
      t.same(conn.gaps, [], 'no missing bytes')
      const mine = txt.lines.filter((l) => l.sport === conn.client.port || l.dport === conn.client.port)
      for (const fromClient of [true, false]) {
        const dir = fromClient ? 'client' : 'server'
        const expected = mine
          .filter((l) => l.proto === 'DCERPC' && (l.sport === conn.client.port) === fromClient)
          .map((l) => ({
            frame: l.frame,
            ptype: PTYPE[l.info.split(':')[0]],
            callId: Number(/call_id: (\d+)/.exec(l.info)?.[1]),
          }))
        const got = endFrames(c, fromClient)
        const pdus = fromClient ? c.clientPdus : c.serverPdus
        const extra = fromClient ? (EXTRA_CLIENT_PDUS[base] ?? 0) : 0
        t.equal(pdus.length, expected.length + extra, `${dir} PDU count: summary lines + ${extra}`)
        t.same(
          lastPerFrame(got),
          expected,
          `${dir} PDUs end in the frames tshark names, same type and call_id`,
        )
      }
      const close = mine.find((l) => l.proto === 'TCP' && /\[(?:[A-Z]+, )*(?:FIN|RST)\b/.test(l.info))
      const expectedClose = close
        ? `${close.sport === txt.serverPort ? 'server' : 'client'}-${/\bRST\b/.test(close.info) ? 'rst' : 'fin'}`
        : undefined
      t.equal(conn.closedBy, expectedClose, 'closed by the side of the first FIN/RST')
    }
  })
}

// the raw_* probes log every byte they sent and received: the reassembled streams are exactly that
function loggedHex(text: string, arrow: 'C->S' | 'S->C'): string {
  let out = ''
  for (const line of text.split('\n')) {
    if (!line.includes(`] ${arrow}`)) continue
    const tokens = line.split(/\s+/).map((w) => w.replace(/;$/, ''))
    const hexes = tokens.filter((w) => /^(?:[0-9a-f]{2})+$/.test(w))
    hexes.sort((a, b) => b.length - a.length)
    if (hexes.length) out += hexes[0]
  }
  return out
}

for (const name of names.filter((n) => n.startsWith('raw_'))) {
  t.test(`${name}: streams equal the probe's byte log`, async (t) => {
    const text = loadCaptureText(name)
    const [c] = loadCapture(name).connections
    t.equal(hex(c.connection.clientData), loggedHex(text, 'C->S'))
    t.equal(hex(c.connection.serverData), loggedHex(text, 'S->C'))
  })
}

t.test('raw_vlmcsd_slow: hundreds of one-byte segments reassemble into whole PDUs', async (t) => {
  const [c] = loadCapture('raw_vlmcsd_slow').connections
  const clientChunks = c.connection.chunks.filter((k) => k.fromClient)
  t.equal(clientChunks.length, 364, 'every client byte arrived in its own segment')
  t.ok(clientChunks.every((k) => k.length === 1))
  t.same(
    c.clientPdus.map((p) => [p.offset, p.bytes.length, p.bytes[2]]),
    [
      [0, 72, 11],
      [72, 292, 0],
    ],
  )
  t.same(
    c.serverPdus.map((p) => [p.offset, p.bytes.length, p.bytes[2]]),
    [
      [0, 60, 12],
      [60, 300, 2],
    ],
  )
  t.equal(c.clientRest, null)
  t.equal(c.serverRest, null)
})

t.test('garbage and HTTP end in rest with a reason', async (t) => {
  const rest = (name: string) => loadCapture(name).connections[0]
  t.same(rest('raw_vlmcsd_garbage').clientRest, { offset: 0, reason: 'not DCE-RPC: first byte 0x98' })
  t.same(rest('raw_pykms_garbage').clientRest, { offset: 0, reason: 'not DCE-RPC: first byte 0x98' })
  t.same(rest('raw_vlmcsd_http').clientRest, { offset: 0, reason: 'not DCE-RPC: first byte 0x47' })
  t.same(rest('raw_vlmcsd_truncated_bind_close').clientRest, {
    offset: 0,
    reason: 'truncated PDU: header says 72 bytes, 40 remain',
  })
  t.equal(rest('raw_vlmcsd_garbage').connection.closedBy, 'server-rst')
  const idle = rest('raw_vlmcsd_idle')
  t.equal(idle.connection.clientData.length + idle.connection.serverData.length, 0)
  t.equal(idle.clientRest, null)
  t.equal(idle.connection.closedBy, 'server-fin', 'vlmcsd drops the idle connection after 30 s')
})

t.test('the pcapng copy gives the same packets and PDUs as its .pcap twin', async (t) => {
  const a = loadCapture('vlmcsd_rpc_ndr64_3req.pcap')
  const b = loadCapture('vlmcsd_rpc_ndr64_3req.pcapng')
  t.equal(b.format, 'pcapng')
  t.equal(a.connections.length, 1)
  t.equal(b.connections.length, 1)
  const [x] = a.connections
  const [y] = b.connections
  t.same(
    y.clientPdus.map((p) => hex(p.bytes)),
    x.clientPdus.map((p) => hex(p.bytes)),
  )
  t.same(
    y.serverPdus.map((p) => hex(p.bytes)),
    x.serverPdus.map((p) => hex(p.bytes)),
  )
  t.equal(x.clientPdus.length, 5)
  t.equal(x.serverPdus.length, 5)
  t.same(y.connection.chunks, x.connection.chunks, 'same chunks, frames and timestamps')
  t.equal(y.connection.firstTimestampNs, x.connection.firstTimestampNs)
})

t.test('IPv6 capture gives ::1 addresses', async (t) => {
  const [c] = loadCapture('vlmcsd_v6_ipv6_win10ent').connections
  t.same(c.connection.client, { address: '::1', port: 37136 })
  t.same(c.connection.server, { address: '::1', port: 16880 })
  t.equal(c.connection.family, 6)
  t.equal(c.clientPdus.length, 3)
  t.equal(c.serverPdus.length, 3)
})

t.test('IPv4 capture endpoints and first timestamp', async (t) => {
  const [c] = loadCapture('raw_vlmcsd_slow').connections
  t.same(c.connection.client, { address: '127.0.0.1', port: 49772 })
  t.same(c.connection.server, { address: '127.0.0.1', port: 16880 })
  t.equal(c.connection.family, 4)
  t.type(c.connection.firstTimestampNs, 'bigint')
  t.ok(c.connection.firstTimestampNs > 1_700_000_000_000_000_000n, 'a 2020s date in ns')
})
