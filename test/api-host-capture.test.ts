import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startHost } from '../src/api/host.js'
import { decodeCapturePdus } from '../src/capture/index.js'
import { cryptoRandom } from '../src/crypto/random.js'
import { buildKmsRequest } from '../src/kms/verify.js'
import { concatBytes } from '../src/wire/bytes.js'
import { emitRequestStub } from '../src/wire/ndr.js'
import {
  btfnUuid,
  emitBindPdu,
  emitRequestPdu,
  KMS_INTERFACE_UUID,
  makeHeader,
  NDR32_UUID,
  NDR64_UUID,
  PTYPE,
} from '../src/wire/rpc.js'
import { activateRaw, baseRequest } from './fixtures/raw-activate.js'
import { RawPeer } from './fixtures/raw-client.js'

const dir = mkdtempSync(join(tmpdir(), 'kmslab-capture-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const KMS = { uuid: KMS_INTERFACE_UUID, versionMajor: 1, versionMinor: 0 }
const SYNTAX = {
  ndr32: { uuid: NDR32_UUID, version: 2 },
  ndr64: { uuid: NDR64_UUID, version: 1 },
  btfn: { uuid: btfnUuid(3), version: 1 },
}
type Syntax = keyof typeof SYNTAX

const bind = (names: Syntax[], ptype: number = PTYPE.BIND, flags = 0x13) =>
  emitBindPdu({
    header: makeHeader(ptype, 2, flags),
    maxXmitFrag: 5840,
    maxRecvFrag: 5840,
    assocGroupId: 0,
    contexts: names.map((n, i) => ({ contextId: i, abstractSyntax: KMS, transferSyntaxes: [SYNTAX[n]] })),
  })

const request = (callId: number, contextId: number, syntax: 'ndr32' | 'ndr64', major = 6) =>
  emitRequestPdu({
    header: makeHeader(PTYPE.REQUEST, callId),
    allocHint: 0,
    contextId,
    opnum: 0,
    stub: emitRequestStub(
      buildKmsRequest(baseRequest({ versionMajor: major }), cryptoRandom).payload,
      syntax,
    ),
  })

/** Sends the PDUs in order, waiting for each answer the host owes. */
async function exchange(port: number, steps: { send: Uint8Array; answers: number }[]): Promise<void> {
  const peer = await RawPeer.open(port)
  for (const step of steps) {
    peer.send(step.send)
    for (let i = 0; i < step.answers; i++) await peer.pdu()
  }
  peer.end()
  await new Promise((r) => setTimeout(r, 20))
}

t.test('--capture records every RPC variant; our decoder and Wireshark read it cleanly', async (t) => {
  const file = join(dir, 'host.pcap')
  const host = await startHost({ state: 'memory', counter: 'charged', capture: file })
  const p = host.port
  await exchange(p, [
    { send: bind(['ndr32', 'ndr64', 'btfn']), answers: 1 },
    { send: bind(['ndr32'], PTYPE.ALTER_CONTEXT), answers: 1 },
    { send: request(2, 0, 'ndr32'), answers: 1 },
    { send: request(3, 1, 'ndr64', 5), answers: 1 },
    { send: request(4, 1, 'ndr64', 4), answers: 1 },
  ])
  await exchange(p, [
    { send: bind(['ndr32', 'btfn']), answers: 1 },
    { send: request(2, 0, 'ndr32'), answers: 1 },
  ])
  await exchange(p, [
    { send: bind(['ndr32', 'ndr64']), answers: 1 },
    { send: request(2, 1, 'ndr64'), answers: 1 },
  ])
  await exchange(p, [
    { send: bind(['ndr32'], PTYPE.BIND, 0x03), answers: 1 },
    { send: request(2, 0, 'ndr32'), answers: 1 },
  ])
  await exchange(p, [{ send: concatBytes(bind(['ndr32']), request(2, 0, 'ndr32')), answers: 2 }])
  await exchange(p, [{ send: request(2, 0, 'ndr32'), answers: 1 }])
  const refusal = request(2, 0, 'ndr32')
  refusal[24 + 8 + 2] = 7
  await exchange(p, [
    { send: bind(['ndr32']), answers: 1 },
    { send: refusal, answers: 1 },
  ])
  await activateRaw(p, [baseRequest(), baseRequest()])
  await host.close()

  const decoded = decodeCapturePdus(readFileSync(file))
  t.equal(decoded.connections.length, 8, 'eight connections recorded')
  const serverPdus = decoded.connections.flatMap((c) => c.serverPdus)
  const clientPdus = decoded.connections.flatMap((c) => c.clientPdus)
  t.equal(clientPdus.length, 19)
  t.equal(serverPdus.length, 19, 'one answer per client PDU')
  for (const c of decoded.connections) {
    t.equal(c.connection.client.address, '127.0.0.1')
    t.equal(c.connection.server.port, p)
    t.same(c.connection.gaps, [])
  }

  const missing = spawnSync('tshark', ['--version'], { encoding: 'utf8' }).error
  if (missing && process.env.CI) t.fail('tshark is not installed (.ci/run installs it)')
  if (missing) {
    t.test(
      'Wireshark reads it',
      { skip: 'tshark is not installed here; .ci/run installs it for CI' },
      async () => {},
    )
    return
  }
  const run = (fields: string[], filter?: string) =>
    execFileSync(
      'tshark',
      [
        '-r',
        file,
        '-d',
        `tcp.port==${p},dcerpc`,
        ...(filter ? ['-Y', filter] : []),
        '-T',
        'fields',
        ...fields.flatMap((f) => ['-e', f]),
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    )
  const types = run(['dcerpc.pkt_type'], 'dcerpc').trim().split('\n')
  t.equal(types.length, 37, 'Wireshark sees every PDU (the pipelined pair shares a frame)')
  t.equal(run(['frame.number'], '_ws.malformed').trim(), '', 'no malformed PDU')
  t.equal(run(['frame.number'], '_ws.expert.severity >= 8388608').trim(), '', 'no error-severity finding')
  const results = run(['dcerpc.cn_ack_result'], 'dcerpc.pkt_type == 12').trim().split('\n')
  t.equal(results[0], '2,0,3', 'first bind_ack: NDR32 rejected, NDR64 accepted, BTFN negotiated')
  t.equal(results.length, 7, 'seven binds answered')
})
