import t from 'tap'
import { cryptoRandom, type RandomSource } from '../src/crypto/random.js'
import { VerificationError } from '../src/kms/errors.js'
import { decodeKmsRequest } from '../src/kms/request.js'
import { ANSWER_CORRUPTIONS, buildKmsResponse } from '../src/kms/response.js'
import { buildKmsRequest, verifyKmsResponse } from '../src/kms/verify.js'
import { concatBytes, toHex } from '../src/wire/bytes.js'
import { parseBaseRequest } from '../src/wire/kms-request.js'
import {
  BASE_REQUEST_V6,
  INPUTS,
  V4_REQUEST,
  V4_RESPONSE,
  V5_REQUEST,
  V5_RESPONSE,
  V6_REQUEST,
  V6_RESPONSE,
} from './fixtures/wire-vectors.js'

const R = Uint8Array.from([
  0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f,
])

/** Hands out the §9 "random" values in the order the host draws them: R, then the V6 response IV. */
function vectorRandom(): RandomSource {
  const queue = [R, INPUTS.responseIvV6]
  return (n) => {
    const next = queue.shift()
    if (!next || next.length !== n) throw new Error(`unexpected draw of ${n} bytes`)
    return next.slice()
  }
}

const FIELDS = {
  epid: INPUTS.epid,
  hwid: INPUTS.hwid,
  currentCount: 50,
  activationInterval: 120,
  renewalInterval: 10080,
}

function baseFor(major: number) {
  const bytes = BASE_REQUEST_V6.slice()
  bytes[2] = major
  return parseBaseRequest(bytes)
}

for (const [major, request, response] of [
  [4, V4_REQUEST, V4_RESPONSE],
  [5, V5_REQUEST, V5_RESPONSE],
  [6, V6_REQUEST, V6_RESPONSE],
] as const) {
  t.test(`V${major}: §9 request and response byte for byte`, async (t) => {
    const built = buildKmsRequest(baseFor(major), cryptoRandom, INPUTS.requestIv)
    t.equal(toHex(built.payload), toHex(request), 'client request bytes')

    const decoded = decodeKmsRequest(request)
    t.same(decoded.problems, [], 'no problems')
    t.equal(decoded.base?.cmid, INPUTS.cmid)
    t.equal(decoded.base?.workstation, INPUTS.workstation)
    t.equal(decoded.base?.requestTime, INPUTS.requestTime)
    t.equal(decoded.base?.requiredCount, 25)

    const answer = buildKmsResponse(decoded, FIELDS, vectorRandom())
    t.equal(toHex(answer), toHex(response), 'host response bytes')

    const verified = verifyKmsResponse(built, response)
    t.equal(verified.base.epid, INPUTS.epid)
    t.equal(verified.base.currentCount, 50)
    t.equal(verified.base.activationInterval, 120)
    t.equal(verified.base.renewalInterval, 10080)
    t.equal(verified.hwid ? toHex(verified.hwid) : null, major === 6 ? '3a1c049600b60076' : null)
    t.equal(verified.hmacSlot, major === 6 ? 0 : null)
    t.same(verified.warnings, [])
  })
}

t.test('each corruption breaks exactly its check', async (t) => {
  const expected: Record<string, Record<number, string | 'warning'>> = {
    hmac: { 4: 'mac', 5: 'hash', 6: 'hmac' },
    hash: { 4: 'mac', 5: 'hash', 6: 'hash' },
    'iv-rule': { 4: 'none', 5: 'iv', 6: 'warning' },
    cmid: { 4: 'cmid', 5: 'cmid', 6: 'cmid' },
    time: { 4: 'time', 5: 'time', 6: 'time' },
    pid: { 4: 'pid', 5: 'pid', 6: 'pid' },
  }
  for (const corrupt of ANSWER_CORRUPTIONS) {
    for (const major of [4, 5, 6]) {
      const built = buildKmsRequest(baseFor(major), cryptoRandom)
      const answer = buildKmsResponse(decodeKmsRequest(built.payload), FIELDS, cryptoRandom, corrupt)
      const want = expected[corrupt][major]
      if (want === 'none' || want === 'warning') {
        const v = verifyKmsResponse(built, answer)
        t.equal(v.warnings.length, want === 'warning' ? 1 : 0, `${corrupt} V${major}`)
        continue
      }
      t.throws(() => verifyKmsResponse(built, answer), VerificationError, `${corrupt} V${major}`)
      try {
        verifyKmsResponse(built, answer)
      } catch (err) {
        t.equal((err as VerificationError).check, want, `${corrupt} V${major} check`)
      }
    }
  }
})

t.test('decode reports what the host refuses', async (t) => {
  const v6 = buildKmsRequest(baseFor(6), cryptoRandom).payload
  const badPadding = v6.slice()
  badPadding[259] ^= 0xff
  t.same(
    decodeKmsRequest(badPadding).problems.map((p) => p.check),
    ['padding'],
  )
  const badMac = V4_REQUEST.slice()
  badMac[251] ^= 1
  t.same(
    decodeKmsRequest(badMac).problems.map((p) => p.check),
    ['mac'],
  )
  const v7 = v6.slice()
  v7[2] = 7
  t.same(
    decodeKmsRequest(v7).problems.map((p) => p.check),
    ['version', 'inner-version'],
  )
  t.same(
    decodeKmsRequest(v6.subarray(0, 200)).problems.map((p) => p.check),
    ['short'],
  )
  t.same(
    decodeKmsRequest(concatBytes(v6, new Uint8Array(16))).problems.map((p) => p.check),
    ['size'],
  )
  const minor = V4_REQUEST.slice()
  minor[0] = 1
  t.same(
    decodeKmsRequest(minor).problems.map((p) => p.check),
    ['minor-version', 'mac'],
  )
})
