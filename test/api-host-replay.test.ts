// Every client PDU recorded in pcaps/ (vlmcs and the py-kms client) is replayed against kmslab's
// host; every answer must pass the client's hard checks and raise none of vlmcs's warnings.
import t from 'tap'
import { startHost } from '../src/api/host.js'
import {
  checkContextResults,
  checkHeader,
  checkResponse,
  flagWarnings,
  type OfferedContext,
} from '../src/client/checks.js'
import { HRESULT } from '../src/kms/hresult.js'
import { decodeKmsRequest } from '../src/kms/request.js'
import { verifyKmsResponse } from '../src/kms/verify.js'
import { parseRequestStub, type TransferSyntax } from '../src/wire/ndr.js'
import {
  isBtfnSyntax,
  NDR32_UUID,
  NDR64_UUID,
  PTYPE,
  parseBindAckPdu,
  parseBindPdu,
  parseFaultPdu,
  parseRequestPdu,
  parseResponsePdu,
  parseRpcHeader,
} from '../src/wire/rpc.js'
import { allCaptureNames, loadCapturePdus } from './fixtures/pcap.js'
import { RawPeer } from './fixtures/raw-client.js'

function offeredOf(bind: ReturnType<typeof parseBindPdu>): OfferedContext[] {
  return bind.contexts.map((c) => {
    const s = c.transferSyntaxes[0]
    const syntax = s.uuid === NDR64_UUID ? 'ndr64' : s.uuid === NDR32_UUID ? 'ndr32' : 'btfn'
    return {
      contextId: c.contextId,
      syntax,
      uuid: s.uuid,
      version: s.version,
      bits: isBtfnSyntax(s.uuid) ? 3 : undefined,
    }
  })
}

const names = allCaptureNames().filter((n) => n.endsWith('.pcap'))

t.test('recorded client PDUs get answers that verify, without warnings', async (t) => {
  const host = await startHost({ state: 'memory', counter: 'charged' })
  t.teardown(() => host.close())
  let requests = 0
  let binds = 0
  for (const name of names) {
    for (const conn of loadCapturePdus(name)) {
      if (conn.clientRest || conn.clientPdus.length === 0) continue
      const first = parseRpcHeader(conn.clientPdus[0].bytes)
      const iface =
        first.ptype === PTYPE.BIND
          ? parseBindPdu(conn.clientPdus[0].bytes).contexts[0]?.abstractSyntax.uuid
          : null
      if (iface && iface !== '51c82175-844e-4750-b0d8-ec255555bc06') continue
      const peer = await RawPeer.open(host.port)
      const contexts = new Map<number, TransferSyntax>()
      const warnings: string[] = []
      for (const { bytes } of conn.clientPdus) {
        const header = parseRpcHeader(bytes)
        peer.send(bytes)
        const answer = await peer.pdu()
        if (!answer) {
          t.fail(`${name}: no answer to PDU type ${header.ptype}`)
          break
        }
        const ah = parseRpcHeader(answer)
        checkHeader(ah, 'answer', header.callId)
        if (header.ptype === PTYPE.BIND || header.ptype === PTYPE.ALTER_CONTEXT) {
          binds++
          const bind = parseBindPdu(bytes)
          const ack = parseBindAckPdu(answer)
          const what = header.ptype === PTYPE.BIND ? 'bind_ack' : 'alter_context_resp'
          warnings.push(...flagWarnings(ah, what, header.ptype === PTYPE.BIND ? header.flags : undefined))
          const outcome = checkContextResults(ack, offeredOf(bind), what)
          warnings.push(...outcome.warnings)
          for (const [id, syntax] of outcome.accepted) contexts.set(id, syntax)
          continue
        }
        const request = parseRequestPdu(bytes)
        const syntax = contexts.get(request.contextId)
        if (syntax === undefined) {
          t.equal(ah.ptype, PTYPE.FAULT, `${name}: a request on no accepted context gets a FAULT`)
          t.equal(parseFaultPdu(answer).header.callId, header.callId)
          continue
        }
        requests++
        const response = parseResponsePdu(answer)
        warnings.push(...flagWarnings(ah, 'response'))
        const { stub, warnings: stubWarnings } = checkResponse(response, request.contextId, syntax)
        warnings.push(...stubWarnings)
        const decoded = decodeKmsRequest(parseRequestStub(request.stub, syntax).payload)
        if (decoded.problems.length > 0) {
          t.equal(stub.hresult, HRESULT.INVALID_DATA, `${name}: ${decoded.problems[0].message} is refused`)
          continue
        }
        t.equal(stub.hresult, 0, `${name}: answered`)
        const base = decoded.base!
        const sent = {
          major: decoded.major,
          minor: decoded.minor,
          cmid: base.cmid,
          requestTime: base.requestTime,
          iv: decoded.iv,
          decryptedIv: decoded.decryptedIv,
        }
        const verified = verifyKmsResponse(sent, stub.payload!)
        warnings.push(...verified.warnings)
      }
      peer.end()
      t.same(warnings, [], `${name}: no warnings`)
    }
  }
  t.equal(requests, 51, 'every recorded KMS request on an accepted context replayed')
  t.equal(binds, 71, 'every recorded BIND and ALTER_CONTEXT replayed')
})
