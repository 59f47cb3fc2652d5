// The load generator checks answers on bytes (its fast path) and falls back to the client's full
// verifier only for answers the fast path does not accept. These tests hold the two together on
// the same answers: every good answer passes the fast path, and every corrupted one gets the
// verdict the full verifier gives it.
import t from 'tap'
import { seededRandom } from '../src/crypto/random.js'
import { VerificationError } from '../src/kms/errors.js'
import { decodeKmsRequest } from '../src/kms/request.js'
import { ANSWER_CORRUPTIONS, type AnswerCorruption, buildKmsResponse } from '../src/kms/response.js'
import { verifyKmsResponse } from '../src/kms/verify.js'
import { ActivationCodec } from '../src/load/codec.js'
import { emitResponseStub, parseRequestStub, type TransferSyntax } from '../src/wire/ndr.js'
import { emitResponsePdu, makeHeader, PTYPE, parseRequestPdu } from '../src/wire/rpc.js'

const SPEC = {
  minor: 0,
  appId: '55c92734-d682-4d71-983e-d6ec3f16059f',
  skuId: 'ed655016-a9e8-4434-95d9-4345352c2552',
  kmsId: '8449b1fb-f0ea-497a-99ab-66ca96e9a0f5',
  requiredCount: 25,
  workstation: 'load-test',
  cmidPrefix: Uint8Array.from({ length: 12 }, (_, i) => 0x11 * (i + 1)),
}
const FIELDS = {
  epid: '06401-00206-551-249031-03-1033-26100.0000-0452025',
  hwid: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8),
  activationInterval: 120,
  renewalInterval: 10080,
}

/** What the client's full verifier says about `payload`, in the load generator's terms. */
function fullVerdict(major: number, request: Uint8Array, payload: Uint8Array): string | null {
  const decoded = decodeKmsRequest(request)
  const base = decoded.base!
  try {
    verifyKmsResponse(
      {
        major,
        minor: 0,
        cmid: base.cmid,
        requestTime: base.requestTime,
        iv: decoded.iv,
        decryptedIv: decoded.decryptedIv,
      },
      payload,
    )
    return null
  } catch (err) {
    if (err instanceof VerificationError) return `verify:${err.check}`
    throw err
  }
}

for (const major of [4, 5, 6]) {
  for (const syntax of ['ndr32', 'ndr64'] as TransferSyntax[]) {
    t.test(`V${major} ${syntax}: fast path and full verifier agree`, async (t) => {
      const codec = new ActivationCodec({ ...SPEC, major })
      const contextId = syntax === 'ndr64' ? 1 : 0
      codec.setContext(syntax, contextId)
      let callId = 1
      for (const corrupt of [undefined, ...ANSWER_CORRUPTIONS] as (AnswerCorruption | undefined)[]) {
        for (const currentCount of [3, 50]) {
          callId++
          const request = parseRequestPdu(codec.request(callId))
          t.equal(request.contextId, contextId)
          const payload = parseRequestStub(request.stub, syntax).payload.slice()
          const answer = buildKmsResponse(
            decodeKmsRequest(payload),
            { ...FIELDS, currentCount },
            seededRandom(`${major}${syntax}${corrupt}${currentCount}`),
            corrupt,
          )
          const stub = emitResponseStub(answer, 0, syntax)
          const pdu = emitResponsePdu({
            header: makeHeader(PTYPE.RESPONSE, callId),
            allocHint: stub.length,
            contextId,
            cancelCount: 0,
            reserved: 0,
            stub,
          })
          const what = `${corrupt ?? 'good'} answer, count ${currentCount}`
          const verdict = codec.check(pdu)
          t.equal(verdict, fullVerdict(major, payload, answer), `${what}: same verdict as the full verifier`)
          // V4 has no IV: its 'iv-rule' answer is a good one
          if (corrupt === undefined || (corrupt === 'iv-rule' && major < 5)) {
            t.equal(codec.warning, null, `${what}: accepted by the fast path itself`)
            t.equal(codec.belowThreshold, currentCount < SPEC.requiredCount, `${what}: threshold`)
          } else if (verdict === null) {
            // the full verifier accepts it with a warning (V6 with the request's IV): so does the fast path's fallback
            t.equal(corrupt, 'iv-rule')
            t.equal(codec.warning, 'iv-rule', `${what}: named`)
          }
        }
      }
    })
  }
}

t.test('an answer to another call id, or a truncated one, is a protocol error', async (t) => {
  const codec = new ActivationCodec({ ...SPEC, major: 6 })
  codec.setContext('ndr32', 0)
  const request = parseRequestPdu(codec.request(5))
  const payload = parseRequestStub(request.stub, 'ndr32').payload.slice()
  const answer = buildKmsResponse(decodeKmsRequest(payload), { ...FIELDS, currentCount: 30 }, seededRandom(1))
  const stub = emitResponseStub(answer, 0, 'ndr32')
  const pdu = (callId: number) =>
    emitResponsePdu({
      header: makeHeader(PTYPE.RESPONSE, callId),
      allocHint: stub.length,
      contextId: 0,
      cancelCount: 0,
      reserved: 0,
      stub,
    })
  t.equal(codec.check(pdu(5)), null)
  t.equal(codec.check(pdu(6)), 'protocol')
  t.equal(codec.check(pdu(5).subarray(0, 40)), 'protocol')
})
