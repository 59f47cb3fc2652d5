// The research decoder behind `kmslab decode`: every KMS exchange of a capture, paired, decrypted
// and verified (§1.12, §1.13). It decodes whatever the bytes allow and names everything unusual in
// the record's `errors`; only input that is not a capture at all throws (CaptureError).
import { type Catalog, defaultCatalog } from '../catalog/index.js'
import { KmslabError } from '../errors.js'
import { type SentRequest, verifyKmsResponse } from '../kms/client.js'
import { VerificationError } from '../kms/errors.js'
import { describeHresult, hresultHex } from '../kms/hresult.js'
import {
  filetimeIso,
  type RequestReport,
  type ResponseReport,
  refusalReport,
  requestReport,
  responseReport,
  unverifiedResponseReport,
  versionText,
} from '../kms/report.js'
import { type DecodedRequest, decodeKmsRequest } from '../kms/request.js'
import { concatBytes } from '../wire/bytes.js'
import { endpointText } from '../wire/endpoint.js'
import type { KmsBaseRequest } from '../wire/kms-request.js'
import { guessSyntax, parseRequestStub, parseResponseStub, type TransferSyntax } from '../wire/ndr.js'
import {
  type AnyPdu,
  type BindAckPdu,
  type BindNakPdu,
  type BindPdu,
  CONTEXT_RESULT,
  CONTEXT_RESULT_NAMES,
  DREP_LE_ASCII_IEEE,
  type FaultPdu,
  KMS_INTERFACE_UUID,
  NDR32_UUID,
  NDR64_UUID,
  ncaStatusName,
  PFC,
  PTYPE,
  parsePdu,
  REJECT_REASON_NAMES,
  type RequestPdu,
  type ResponsePdu,
  transferSyntaxName,
} from '../wire/rpc.js'
import { type ConnectionPdus, decodeCapturePdus } from './capture-pdus.js'
import { addFinding } from './errors.js'
import type { TcpChunk, TcpConnection } from './tcp.js'

/** One KMS exchange (a REQUEST and its answer), or a stream's findings when it carried none. */
export interface ExchangeRecord {
  file: string
  /** "127.0.0.1:40312", "[::1]:16880" */
  client: string
  server: string
  /** null on a record that only carries a stream's findings. */
  callId: number | null
  transferSyntax: TransferSyntax | null
  request: RequestReport | null
  response: ResponseReport | null
  /** Everything that is not plain KMS: RPC oddities, failed checks, FAULTs, non-RPC bytes. */
  errors: string[]
  /** Index of the TCP connection in the capture, from 0. */
  connection: number
  contextId: number | null
  opnum: number | null
  /** The request's plain version (bytes 0-3), which decides its shape; `request.version` is the one inside. */
  wireVersion: string | null
  /** Wireshark frame numbers of the packets that completed the request and its answer. */
  requestFrame: number | null
  responseFrame: number | null
  /** Capture time of the request's last packet, ISO 8601 UTC. */
  time: string | null
  /** Catalogue names of the request's ids (null when unknown). */
  products: { app: string | null; sku: string | null; kms: string | null } | null
}

export interface DecodedCapture {
  format: 'pcap' | 'pcapng'
  packetCount: number
  connectionCount: number
  exchanges: ExchangeRecord[]
  /** File-level findings (damaged tail, undecodable frames). */
  warnings: string[]
}

export interface DecodeOptions {
  /** Where product names come from; null for none. Default: the shipped catalogue. */
  catalog?: Catalog | null
}

/** Decodes every KMS exchange of a pcap/pcapng file; throws CaptureError only for a non-capture. */
export function decodeCapture(
  bytes: Uint8Array,
  fileName?: string,
  options: DecodeOptions = {},
): DecodedCapture {
  const pdus = decodeCapturePdus(bytes, fileName)
  const catalog = options.catalog === undefined ? defaultCatalog() : options.catalog
  const exchanges: ExchangeRecord[] = []
  pdus.connections.forEach((c, i) => {
    exchanges.push(...decodeConnection(c, i, fileName ?? '', catalog))
  })
  return {
    format: pdus.format,
    packetCount: pdus.packetCount,
    connectionCount: pdus.connections.length,
    exchanges,
    warnings: pdus.warnings,
  }
}

// ---------------------------------------------------------------- one TCP connection

interface Seen<T> {
  pdu: T
  frame: number | null
  ns: bigint | null
}

/** A call after fragment reassembly: the first PDU (its header and fields) and the joined stub. */
interface Call<T> extends Seen<T> {
  stub: Uint8Array
  fragments: number
  /** A PDU with PFC_LAST_FRAG ended the call. */
  complete: boolean
}

/** Every PDU of one connection, both directions, by kind. */
interface Calls {
  binds: Seen<BindPdu & { kind: 'bind' | 'alter_context' }>[]
  bindAnswers: Seen<
    (BindAckPdu & { kind: 'bind_ack' | 'alter_context_resp' }) | (BindNakPdu & { kind: 'bind_nak' })
  >[]
  requests: RequestCall[]
  answers: Answer[]
}

type RequestCall = Call<RequestPdu>
type Answer = Call<(ResponsePdu & { kind: 'response' }) | (FaultPdu & { kind: 'fault' })>

function decodeConnection(
  pdus: ConnectionPdus,
  index: number,
  file: string,
  catalog: Catalog | null,
): ExchangeRecord[] {
  const c = callerFirst(pdus)
  const conn = c.connection
  const findings: string[] = [...conn.gaps]
  const side = collect(c, findings)
  const contexts = trackContexts(side, findings)
  const records: ExchangeRecord[] = []
  const { answerOf, orphans } = pairCalls(side)
  for (const req of side.requests) {
    const record = blankRecord(file, conn, index)
    try {
      decodeExchange(record, req, answerOf.get(req) ?? null, contexts, conn, catalog)
    } catch (err) {
      if (!(err instanceof KmslabError)) throw err
      record.errors.push(`cannot decode this exchange: ${err.message}`)
    }
    records.push(record)
  }
  for (const a of orphans) {
    const what = a.pdu.kind === 'fault' ? `FAULT ${faultText(a.pdu.status)}` : 'RESPONSE'
    findings.push(`${what} (call id ${a.pdu.header.callId}${frameText(a)}) answers no captured request`)
  }
  if (c.clientRest) findings.push(restText('client', conn.clientData.length, c.clientRest))
  if (c.serverRest) findings.push(restText('server', conn.serverData.length, c.serverRest))
  if (conn.clientData.length === 0 && conn.serverData.length === 0) {
    findings.push(`no data on this connection${closedText(conn.closedBy)}`)
  } else if (records.length === 0) {
    findings.push(`no KMS request on this connection${closedText(conn.closedBy)}`)
  }
  if (findings.length > 0) {
    const record = blankRecord(file, conn, index)
    for (const f of findings) addFinding(record.errors, f)
    records.push(record)
  }
  return records
}

/**
 * Each answer goes to the oldest unanswered request with its call id. A FAULT that matches none
 * goes to the oldest unanswered request: vlmcsd sends its FAULTs with a fixed call id 2 (§1.10).
 */
function pairCalls(side: Calls): { answerOf: Map<RequestCall, Answer>; orphans: Answer[] } {
  const answerOf = new Map<RequestCall, Answer>()
  const orphans: Answer[] = []
  const queues = new Map<number, { list: RequestCall[]; next: number }>()
  for (const r of side.requests) {
    const q = queues.get(r.pdu.header.callId)
    if (q) q.list.push(r)
    else queues.set(r.pdu.header.callId, { list: [r], next: 0 })
  }
  let oldest = 0
  for (const a of side.answers) {
    let req: RequestCall | undefined
    const q = queues.get(a.pdu.header.callId)
    while (q && q.next < q.list.length && !req) {
      const r = q.list[q.next++]
      if (!answerOf.has(r)) req = r
    }
    if (!req && a.pdu.kind === 'fault') {
      while (oldest < side.requests.length && answerOf.has(side.requests[oldest])) oldest++
      req = side.requests[oldest]
    }
    if (req) answerOf.set(req, a)
    else orphans.push(a)
  }
  return { answerOf, orphans }
}

const CALLER_PTYPES = new Set<number>([PTYPE.REQUEST, PTYPE.BIND, PTYPE.ALTER_CONTEXT])

/**
 * Without a SYN the TCP layer guesses the client from the ports; a host on a high port fools it.
 * The side that sends BIND and REQUEST PDUs is the client whatever the ports say.
 */
function callerFirst(c: ConnectionPdus): ConnectionPdus {
  const calls = (list: ConnectionPdus['clientPdus']) =>
    list.filter((p) => CALLER_PTYPES.has(p.bytes[2])).length
  if (calls(c.serverPdus) <= calls(c.clientPdus)) return c
  const k = c.connection
  const flip = (text: string) =>
    text.replace(/^(client|server)/, (w) => (w === 'client' ? 'server' : 'client'))
  const closedBy = k.closedBy && flip(k.closedBy)
  const connection: TcpConnection = {
    ...k,
    client: k.server,
    server: k.client,
    clientData: k.serverData,
    serverData: k.clientData,
    chunks: k.chunks.map((x) => ({ ...x, fromClient: !x.fromClient })),
    gaps: k.gaps.map(flip),
    closedBy: closedBy as TcpConnection['closedBy'],
  }
  if (closedBy === undefined) delete connection.closedBy
  return {
    connection,
    clientPdus: c.serverPdus,
    serverPdus: c.clientPdus,
    clientRest: c.serverRest,
    serverRest: c.clientRest,
  }
}

function blankRecord(file: string, conn: TcpConnection, index: number): ExchangeRecord {
  return {
    file,
    client: endpointText(conn.client),
    server: endpointText(conn.server),
    callId: null,
    transferSyntax: null,
    request: null,
    response: null,
    errors: [],
    connection: index,
    contextId: null,
    opnum: null,
    wireVersion: null,
    requestFrame: null,
    responseFrame: null,
    time: null,
    products: null,
  }
}

/** Parses every PDU of both directions, joins fragmented calls and sorts them by kind. */
function collect(c: ConnectionPdus, findings: string[]): Calls {
  const side: Calls = { binds: [], bindAnswers: [], requests: [], answers: [] }
  const open = new Map<string, Call<never>>()
  for (const fromClient of [true, false]) {
    const who = fromClient ? 'client' : 'server'
    const chunks = c.connection.chunks
      .filter((k) => k.fromClient === fromClient)
      .sort((x, y) => x.offset - y.offset)
    for (const p of fromClient ? c.clientPdus : c.serverPdus) {
      const { frame, ns } = whenComplete(chunks, p.offset + p.bytes.length)
      let pdu: AnyPdu
      try {
        pdu = parsePdu(p.bytes)
      } catch (err) {
        if (!(err instanceof KmslabError)) throw err
        findings.push(
          `${who} PDU at stream offset ${p.offset}${frameText({ frame })} is malformed: ${err.message}`,
        )
        continue
      }
      const seen = { pdu, frame, ns }
      const k = pdu.kind
      const expected =
        k === 'bind' || k === 'alter_context' || k === 'request' ? fromClient : k !== 'other' && !fromClient
      if (!expected) {
        findings.push(
          `${who} sent a ${k === 'other' ? `PTYPE ${pdu.header.ptype}` : k} PDU${frameText(seen)}`,
        )
        continue
      }
      if (k !== 'request' && k !== 'response' && k !== 'fault') headerFindings(pdu.header, k, findings)
      if (k === 'bind' || k === 'alter_context') side.binds.push({ ...seen, pdu })
      else if (k === 'bind_ack' || k === 'alter_context_resp' || k === 'bind_nak')
        side.bindAnswers.push({ ...seen, pdu })
      else if (k === 'request' || k === 'response' || k === 'fault') {
        const stub = k === 'fault' ? new Uint8Array(0) : pdu.stub
        const key = `${k === 'request'}:${pdu.header.callId}`
        const flags = pdu.header.flags
        const prev = open.get(key)
        if (prev && !(flags & PFC.FIRST_FRAG)) {
          prev.stub = concatBytes(prev.stub, stub)
          prev.fragments++
          prev.frame = frame
          prev.ns = ns
          prev.complete = (flags & PFC.LAST_FRAG) !== 0
        } else {
          const call = {
            ...seen,
            pdu,
            stub,
            fragments: 1,
            complete: (flags & PFC.LAST_FRAG) !== 0,
          } as Call<never>
          if (k === 'request') side.requests.push(call)
          else side.answers.push(call)
          if (!(flags & PFC.LAST_FRAG)) open.set(key, call)
        }
        if (flags & PFC.LAST_FRAG) open.delete(key)
      }
    }
  }
  return side
}

function headerFindings(h: AnyPdu['header'], what: string, errors: string[]): void {
  if (h.rpcVersionMinor !== 0) errors.push(`${what}: RPC version 5.${h.rpcVersionMinor}, expected 5.0`)
  if (h.drep !== DREP_LE_ASCII_IEEE)
    errors.push(
      `${what}: data representation 0x${h.drep.toString(16).padStart(8, '0')}; read as little-endian`,
    )
  if (h.authLength !== 0) errors.push(`${what}: auth_length ${h.authLength}; no authentication is used here`)
}

/** Transfer syntax per accepted context id, from BIND/ALTER_CONTEXT and their answers in order. */
function trackContexts(side: Calls, findings: string[]): Map<number, TransferSyntax> {
  const accepted = new Map<number, TransferSyntax>()
  for (const [n, { pdu: offer }] of side.binds.entries()) {
    const label = `${offer.kind === 'bind' ? 'BIND' : 'ALTER_CONTEXT'} (call id ${offer.header.callId})`
    for (const ctx of offer.contexts) {
      const a = ctx.abstractSyntax
      if (a.uuid !== KMS_INTERFACE_UUID || a.versionMajor !== 1 || a.versionMinor !== 0)
        findings.push(`${label} offers interface ${a.uuid} v${a.versionMajor}.${a.versionMinor}, not KMS`)
    }
    if (offer.declaredContextCount !== undefined && offer.declaredContextCount !== offer.contexts.length)
      findings.push(`${label} declares ${offer.declaredContextCount} contexts, ${offer.contexts.length} fit`)
    const answer = side.bindAnswers[n]?.pdu
    if (!answer) {
      findings.push(`${label} was never answered`)
      continue
    }
    if (answer.kind === 'bind_nak') {
      findings.push(`${label} refused: BIND_NAK reason ${answer.rejectReason}`)
      continue
    }
    const wanted = offer.kind === 'bind' ? 'bind_ack' : 'alter_context_resp'
    if (answer.kind !== wanted) findings.push(`${label} answered by ${answer.kind}`)
    if (answer.results.length !== offer.contexts.length)
      findings.push(`${label}: ${offer.contexts.length} contexts offered, ${answer.results.length} results`)
    let usable = false
    answer.results.forEach((r, i) => {
      const ctx = offer.contexts[i]
      if (!ctx || r.result !== CONTEXT_RESULT.ACCEPTANCE) return
      const uuid = r.transferSyntax.uuid
      const syntax = uuid === NDR32_UUID ? 'ndr32' : uuid === NDR64_UUID ? 'ndr64' : null
      if (syntax) {
        accepted.set(ctx.contextId, syntax)
        usable = true
      } else findings.push(`${label}: context ${ctx.contextId} accepted with unknown transfer syntax ${uuid}`)
    })
    if (!usable) {
      const list = answer.results.map((r, i) => resultText(r, offer.contexts[i]?.transferSyntaxes[0]?.uuid))
      findings.push(`${label}: the host accepted no context (${list.join('; ') || 'no results'})`)
    }
  }
  for (const extra of side.bindAnswers.slice(side.binds.length))
    findings.push(`${extra.pdu.kind} (call id ${extra.pdu.header.callId}) answers no BIND`)
  return accepted
}

function resultText(r: BindAckPdu['results'][number], offered: string | undefined): string {
  const what = offered === undefined ? '' : `${transferSyntaxName(offered)}: `
  const reason =
    r.result === 0 || r.result === 3 ? '' : `, ${REJECT_REASON_NAMES[r.reason] ?? `reason ${r.reason}`}`
  return `${what}${CONTEXT_RESULT_NAMES[r.result] ?? `result ${r.result}`}${reason}`
}

// ---------------------------------------------------------------- one exchange

function decodeExchange(
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
  if (a.contextId !== pdu.contextId)
    errors.push(`RESPONSE on context ${a.contextId}, the request's was ${pdu.contextId}`)
  if (a.allocHint !== 0 && a.allocHint !== answer.stub.length)
    errors.push(`RESPONSE alloc_hint ${a.allocHint} ≠ stub length ${answer.stub.length}`)
  record.response = decodeAnswer(answer.stub, record.transferSyntax, decoded, record.wireVersion, errors)
}

/** No known client fragments (§1.14); a call that does is joined, and named. */
function fragmentFindings(what: string, call: Call<{ header: AnyPdu['header'] }>, errors: string[]): void {
  if (call.fragments > 1) errors.push(`${what} arrived in ${call.fragments} fragments (joined)`)
  if (!(call.pdu.header.flags & PFC.FIRST_FRAG)) errors.push(`${what} lacks PFC_FIRST_FRAG`)
  if (!call.complete) errors.push(`${what} has no fragment with PFC_LAST_FRAG`)
}

/** Field values no genuine client sends (vlmcsd's pedantic checks, §2.2); decoded anyway. */
function baseFindings(base: KmsBaseRequest, errors: string[]): void {
  if (base.isClientVm > 1) errors.push(`IsClientVM is ${base.isClientVm}, not 0 or 1`)
  if (base.licenseStatus > 6) errors.push(`LicenseStatus ${base.licenseStatus} is not 0-6`)
  if (filetimeIso(base.requestTime) === null)
    errors.push(`RequestTime ${base.requestTime} is not a valid time`)
  if (base.workstation.length >= 64) errors.push('WorkstationName fills its 64 UTF-16 units with no NUL')
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(base.workstation))
    errors.push('WorkstationName is not valid UTF-16 (lone surrogate)')
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
  const version =
    payload.length >= 4 ? versionText(payload[2] | (payload[3] << 8), payload[0] | (payload[1] << 8)) : null
  return refusalReport(0, version)
}

// ---------------------------------------------------------------- small helpers

/**
 * The packet that completed stream bytes [0, end) of one direction. `chunks` are that direction's
 * chunks, in stream order (chunks never overlap), so a binary search finds it.
 */
function whenComplete(chunks: TcpChunk[], end: number): { frame: number | null; ns: bigint | null } {
  let lo = 0
  let hi = chunks.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (chunks[mid].offset + chunks[mid].length < end) lo = mid + 1
    else hi = mid
  }
  const k = chunks[lo]
  return k && k.offset < end ? { frame: k.packetIndex + 1, ns: k.timestampNs } : { frame: null, ns: null }
}

function frameText(s: { frame: number | null }): string {
  return s.frame === null ? '' : `, frame ${s.frame}`
}

function faultText(status: number): string {
  const name = ncaStatusName(status)
  return name ? `${hresultHex(status)} ${name}` : describeHresult(status)
}

function closedText(closedBy: TcpConnection['closedBy']): string {
  switch (closedBy) {
    case 'server-fin':
      return ': the host closed the connection'
    case 'server-rst':
      return ': the host reset the connection'
    case 'client-fin':
      return ': the client closed the connection'
    case 'client-rst':
      return ': the client reset the connection'
    default:
      return ': the capture ends first'
  }
}

function restText(who: string, total: number, rest: { offset: number; reason: string }): string {
  return `${who} bytes ${rest.offset}-${total - 1} (${total - rest.offset} bytes) are not a DCE-RPC PDU: ${rest.reason}`
}
