// Exchange decoding: one REQUEST and its answer, down to the KMS request and the verified
// (or at least described) KMS response.
import type { Catalog } from '../catalog/index.js'
import { KmslabError } from '../errors.js'
import { VerificationError } from '../kms/errors.js'
import { describeHresult } from '../kms/hresult.js'
import {
  type ResponseReport,
  refusalReport,
  requestReport,
  responseReport,
  unverifiedResponseReport,
  versionText,
} from '../kms/report.js'
import { type DecodedRequest, decodeKmsRequest } from '../kms/request.js'
import { type SentRequest, verifyKmsResponse } from '../kms/verify.js'
import { KMS_VERSION_LENGTH, readKmsVersion } from '../wire/kms-request.js'
import { guessSyntax, parseRequestStub, parseResponseStub, type TransferSyntax } from '../wire/ndr.js'
import { PFC } from '../wire/rpc.js'
import type { Answer, RequestCall } from './calls.js'
import {
  baseFindings,
  closedText,
  faultText,
  fragmentFindings,
  headerFindings,
  otherVersionServed,
} from './findings.js'
import type { ExchangeRecord } from './records.js'
import type { TcpConnection } from './tcp.js'

export function decodeExchange(
  record: ExchangeRecord,
  req: RequestCall,
  answer: Answer | null,
  contexts: Map<number, TransferSyntax>,
  conn: TcpConnection,
  catalog: Catalog | null,
): void {
  const errors = record.errors
  const pdu = req.pdu
  record.callId = pdu.header.callId
  record.contextId = pdu.contextId
  record.opnum = pdu.opnum
  record.requestFrame = req.frame
  record.time = req.ns === null ? null : new Date(Number(req.ns / 1_000_000n)).toISOString()
  headerFindings(pdu.header, 'REQUEST', errors)
  fragmentFindings('REQUEST', req, errors)
  if (pdu.opnum !== 0) errors.push(`opnum ${pdu.opnum}: the KMS interface has only RequestActivation (0)`)
  if (pdu.objectUuid !== undefined) errors.push(`REQUEST carries an object UUID ${pdu.objectUuid}`)
  if (pdu.allocHint !== 0 && pdu.allocHint !== req.stub.length)
    errors.push(`REQUEST alloc_hint ${pdu.allocHint} ≠ stub length ${req.stub.length}`)
  let syntax = contexts.get(pdu.contextId) ?? null
  if (syntax === null) {
    const guess = guessSyntax(req.stub, true)
    const why =
      contexts.size === 0
        ? 'no accepted BIND on this connection'
        : `context ${pdu.contextId} was never accepted`
    errors.push(`${why}; transfer syntax ${guess ? `guessed from the stub: ${guess}` : 'not recognisable'}`)
    syntax = guess
  }
  const stub = readRequestStub(req.stub, syntax, errors)
  record.transferSyntax = stub?.syntax ?? syntax
  let decoded: DecodedRequest | null = null
  if (stub) {
    decoded = decodeKmsRequest(stub.payload)
    if (decoded.major >= 0) record.wireVersion = versionText(decoded.major, decoded.minor)
    for (const p of decoded.problems) errors.push(p.message)
    if (decoded.base) {
      baseFindings(decoded.base, errors)
      const bad = decoded.problems.some((p) => ['short', 'padding', 'mac', 'inner-version'].includes(p.check))
      record.request = requestReport(decoded.base, !bad)
      record.products = {
        app: catalog?.appName(decoded.base.appId) ?? null,
        sku: catalog?.skuName(decoded.base.skuId) ?? null,
        kms: catalog?.kmsName(decoded.base.kmsId) ?? null,
      }
    }
  }
  if (!answer) {
    errors.push(`no answer to this request${closedText(conn.closedBy)}`)
    return
  }
  record.responseFrame = answer.frame
  const a = answer.pdu
  headerFindings(a.header, a.kind === 'fault' ? 'FAULT' : 'RESPONSE', errors)
  fragmentFindings(a.kind === 'fault' ? 'FAULT' : 'RESPONSE', answer, errors)
  if (a.kind === 'fault') {
    const flag = a.header.flags & PFC.DID_NOT_EXECUTE ? ' (did not execute)' : ''
    errors.push(`the host answered with a FAULT: ${faultText(a.status)}${flag}`)
    if (a.header.callId !== pdu.header.callId)
      errors.push(`the FAULT carries call id ${a.header.callId}, not the request's ${pdu.header.callId}`)
    return
  }
  const served = otherVersionServed(pdu.header, 'REQUEST', 'a DCE-RPC 5 host does not answer it')
  if (served) errors.push(served)
  if (a.contextId !== pdu.contextId)
    errors.push(`RESPONSE on context ${a.contextId}, the request's was ${pdu.contextId}`)
  if (a.allocHint !== 0 && a.allocHint !== answer.stub.length)
    errors.push(`RESPONSE alloc_hint ${a.allocHint} ≠ stub length ${answer.stub.length}`)
  record.response = decodeAnswer(answer.stub, record.transferSyntax, decoded, record.wireVersion, errors)
}

function readRequestStub(
  stub: Uint8Array,
  syntax: TransferSyntax | null,
  errors: string[],
): { syntax: TransferSyntax; payload: Uint8Array } | null {
  const order: TransferSyntax[] = syntax === 'ndr64' ? ['ndr64', 'ndr32'] : ['ndr32', 'ndr64']
  const failures: string[] = []
  for (const s of order) {
    try {
      const value = parseRequestStub(stub, s)
      if (syntax !== null && s !== syntax)
        errors.push(`request stub is not ${syntax} (${failures[0]}); read as ${s}`)
      // py-kms' client pads its V4 stub with a few zero bytes: harmless, not worth a finding
      const t = value.trailing
      if (t && (t.length >= 8 || t.some((b) => b !== 0)))
        errors.push(`${t.length} bytes after the KMS request in the stub`)
      if (value.padding) errors.push(`NDR64 request stub alignment bytes are 0x${value.padding.toString(16)}`)
      return { syntax: s, payload: value.payload }
    } catch (err) {
      if (!(err instanceof KmslabError)) throw err
      failures.push(err.message)
    }
  }
  errors.push(`request stub is not NDR: ${failures.join('; ')}`)
  return null
}

function decodeAnswer(
  stubBytes: Uint8Array,
  syntax: TransferSyntax | null,
  request: DecodedRequest | null,
  wireVersion: string | null,
  errors: string[],
): ResponseReport | null {
  const first = syntax ?? guessSyntax(stubBytes, false) ?? 'ndr32'
  let stub: ReturnType<typeof parseResponseStub> | null = null
  for (const s of first === 'ndr32' ? (['ndr32', 'ndr64'] as const) : (['ndr64', 'ndr32'] as const)) {
    try {
      stub = parseResponseStub(stubBytes, s)
      if (s !== first) errors.push(`response stub is not ${first}; read as ${s}`)
      break
    } catch (err) {
      if (!(err instanceof KmslabError)) throw err
      if (s !== first) errors.push(`response stub is not NDR: ${err.message}`)
    }
  }
  if (!stub) return null
  if (stub.paddingNonZero) errors.push('response stub has non-zero alignment padding')
  if (stub.trailing) errors.push(`${stub.trailing.length} bytes after the HRESULT in the response stub`)
  if (stub.payload === null) return refusalReport(stub.hresult, wireVersion)
  const payload = stub.payload
  if (stub.hresult !== 0) errors.push(`answer carries a payload and HRESULT ${describeHresult(stub.hresult)}`)
  const withHresult = (r: ResponseReport): ResponseReport => ({ ...r, hresult: stub.hresult >>> 0 })
  if (!request?.base) {
    errors.push('the answer cannot be verified without a readable request')
    return withHresult(unverifiedResponseReport(payload) ?? opaqueReport(payload))
  }
  const sent: SentRequest = {
    major: request.major,
    minor: request.minor,
    cmid: request.base.cmid,
    requestTime: request.base.requestTime,
    iv: request.iv,
    decryptedIv: request.decryptedIv,
  }
  try {
    const answer = verifyKmsResponse(sent, payload)
    errors.push(...answer.warnings)
    if (answer.hmacSlot !== null && answer.hmacSlot !== 0)
      errors.push(
        `V6 HMAC matches time slot ${answer.hmacSlot > 0 ? '+' : ''}${answer.hmacSlot}, not the request time's own`,
      )
    return withHresult(responseReport(answer))
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err
    errors.push(`answer does not verify (${err.check}): ${err.message}`)
    return withHresult(unverifiedResponseReport(payload) ?? opaqueReport(payload))
  }
}

/** What is left of an answer that does not even parse: its version, when it has one. */
function opaqueReport(payload: Uint8Array): ResponseReport {
  if (payload.length < KMS_VERSION_LENGTH) return refusalReport(0, null)
  const { major, minor } = readKmsVersion(payload)
  return refusalReport(0, versionText(major, minor))
}
