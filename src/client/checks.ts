// The client's checks of every answer the host sends, as pure functions over parsed PDUs. Hard
// checks throw RpcError('protocol'); everything vlmcs only warns about comes back as stable short
// strings. Sources: §1.2, §1.5, §1.10, §1.11 of the protocol reference and vlmcs' own checks.
import { WireError } from '../wire/bytes.js'
import { NDR_REFERENT, parseResponseStub, type ResponseStub, type TransferSyntax } from '../wire/ndr.js'
import {
  type BindAckPdu,
  CONTEXT_RESULT,
  DREP_LE_ASCII_IEEE,
  PFC,
  REJECT_REASON,
  type ResponsePdu,
  type RpcHeader,
} from '../wire/rpc.js'
import { RpcError } from './errors.js'

export type ContextSyntax = TransferSyntax | 'btfn'

/** A presentation context the client offered, in BIND / ALTER_CONTEXT order. */
export interface OfferedContext {
  contextId: number
  syntax: ContextSyntax
  uuid: string
  version: number
  /** BTFN: the feature bits asked for. */
  bits?: number
}

export interface ContextOutcome {
  /** Usable context ids and their transfer syntax. */
  accepted: Map<number, TransferSyntax>
  /** BTFN: the feature bits the host acknowledged; null when not acknowledged (or not offered). */
  btfnBits: number | null
  warnings: string[]
}

const NULL_UUID = '00000000-0000-0000-0000-000000000000'
const FIRST_LAST = PFC.FIRST_FRAG | PFC.LAST_FRAG
/** Flags no host answer should carry; PFC_CONC_MPX is judged separately. */
const STRAY_FLAGS: [number, string][] = [
  [PFC.PENDING_CANCEL, 'PFC_PENDING_CANCEL'],
  [PFC.RESERVED_1, 'PFC_RESERVED_1'],
  [PFC.DID_NOT_EXECUTE, 'PFC_DID_NOT_EXECUTE'],
  [PFC.MAYBE, 'PFC_MAYBE'],
  [PFC.OBJECT_UUID, 'PFC_OBJECT_UUID'],
]

const hex2 = (n: number) => `0x${n.toString(16).padStart(2, '0')}`
const label = (c: OfferedContext) => `ctx ${c.contextId} (${c.syntax.toUpperCase()})`

function fail(message: string): never {
  throw new RpcError('protocol', message)
}

/**
 * Checks every answer's header must pass (vlmcs treats each as fatal): RPC 5.0, little-endian
 * drep, no authentication, a single fragment (vlmcs: RPC_S_CANNOT_SUPPORT), the call id echoed.
 */
export function checkHeader(h: RpcHeader, what: string, callId: number): void {
  if (h.rpcVersion !== 5 || h.rpcVersionMinor !== 0)
    fail(`${what} has RPC version ${h.rpcVersion}.${h.rpcVersionMinor}, not 5.0`)
  if (h.drep !== DREP_LE_ASCII_IEEE)
    fail(`${what} data representation 0x${h.drep.toString(16)} is not little-endian ASCII IEEE`)
  if (h.authLength !== 0) fail(`${what} asks for authentication (auth_length ${h.authLength})`)
  if ((h.flags & FIRST_LAST) !== FIRST_LAST) {
    fail(
      `${what} flags ${hex2(h.flags)} lack PFC_FIRST_FRAG|PFC_LAST_FRAG: fragmented answers are not supported (RPC_S_CANNOT_SUPPORT)`,
    )
  }
  if (h.callId !== callId) fail(`${what} is for call id ${h.callId}, not ${callId}`)
}

/**
 * vlmcs' flag warnings: a BIND_ACK's PFC_CONC_MPX should equal the BIND's (`sentFlags`); any
 * other answer should not carry it at all. No answer should carry the stray flags.
 */
export function flagWarnings(h: RpcHeader, what: string, sentFlags?: number): string[] {
  const warnings: string[] = []
  const mpx = h.flags & PFC.CONC_MPX
  if (sentFlags !== undefined) {
    if (mpx !== (sentFlags & PFC.CONC_MPX)) {
      warnings.push(`${what} PFC_CONC_MPX ${hex2(mpx)} differs from bind ${hex2(sentFlags & PFC.CONC_MPX)}`)
    }
  } else if (mpx) warnings.push(`${what} flag PFC_CONC_MPX (0x10) set`)
  for (const [bit, name] of STRAY_FLAGS)
    if (h.flags & bit) warnings.push(`${what} flag ${name} (${hex2(bit)}) set`)
  return warnings
}

/**
 * One result per offered context, in order (§1.5). An NDR context must be accepted with exactly
 * the offered syntax and version, or rejected; BTFN is acknowledged (3) or rejected.
 */
export function checkContextResults(
  ack: BindAckPdu,
  offered: OfferedContext[],
  what: string,
): ContextOutcome {
  if (ack.results.length !== offered.length) {
    fail(`${what} has ${ack.results.length} results for ${offered.length} offered contexts`)
  }
  const out: ContextOutcome = { accepted: new Map(), btfnBits: null, warnings: [] }
  const warn = (c: OfferedContext, text: string) => out.warnings.push(`${what} ${label(c)} ${text}`)
  offered.forEach((c, i) => {
    const r = ack.results[i]
    if (r.result === CONTEXT_RESULT.PROVIDER_REJECTION) {
      if (r.transferSyntax.uuid !== NULL_UUID)
        warn(c, `rejected with transfer syntax ${r.transferSyntax.uuid}, not the null GUID`)
      if (r.transferSyntax.version !== 0)
        warn(c, `rejected with syntax version ${r.transferSyntax.version}, not 0`)
      if (r.reason === REJECT_REASON.ABSTRACT_SYNTAX_NOT_SUPPORTED)
        warn(c, 'rejected: the host does not support KMS on it (reason 1)')
      else if (r.reason !== REJECT_REASON.TRANSFER_SYNTAXES_NOT_SUPPORTED)
        warn(c, `rejected with reason ${r.reason}, not 2`)
      return
    }
    if (c.syntax === 'btfn') {
      if (r.result !== CONTEXT_RESULT.NEGOTIATE_ACK)
        warn(c, `answered with result ${r.result}, not 3 (negotiate_ack) or 2`)
      const negotiated = (c.bits ?? 0) & 0x03
      if (r.reason !== negotiated)
        warn(c, `feature bits ${hex2(r.reason)}, not the negotiated ${hex2(negotiated)}`)
      out.btfnBits = r.reason
      return
    }
    if (r.result !== CONTEXT_RESULT.ACCEPTANCE)
      fail(`${what} ${label(c)} result ${r.result} is neither acceptance nor rejection`)
    if (r.transferSyntax.uuid !== c.uuid)
      fail(`${what} ${label(c)} accepted transfer syntax ${r.transferSyntax.uuid}, not the offered one`)
    if (r.transferSyntax.version !== c.version) {
      fail(`${what} ${label(c)} accepted syntax version ${r.transferSyntax.version}, not ${c.version}`)
    }
    if (r.reason !== 0) warn(c, `accepted with reason ${r.reason}, not 0`)
    out.accepted.set(c.contextId, c.syntax)
  })
  return out
}

/** vlmcs' RPC-level verdicts on the negotiation as a whole (after the bind and any alter-context). */
export function negotiationWarnings(
  offered: { ndr64: boolean; btfn: boolean },
  got: { ndr32: boolean; ndr64: boolean; btfn: boolean },
): string[] {
  const warnings: string[] = []
  if (!got.ndr32) warnings.push('host does not support NDR32')
  if (offered.ndr64 && offered.btfn && got.ndr64 && !got.btfn)
    warnings.push('host accepts NDR64 but not BTFN')
  return warnings
}

export interface CheckedResponse {
  stub: ResponseStub
  warnings: string[]
}

/**
 * A RESPONSE to the call sent on `contextId` in `syntax`: cancel count 0 and the context id
 * echoed (hard, as in vlmcs), an NDR stub whose sizes agree (hard); `alloc_hint`, padding and the
 * referent value are warnings. The header itself is checked by `checkHeader` / `flagWarnings`.
 */
export function checkResponse(pdu: ResponsePdu, contextId: number, syntax: TransferSyntax): CheckedResponse {
  if (pdu.cancelCount !== 0) fail(`response cancel count is ${pdu.cancelCount}, not 0 (RPC_S_CALL_CANCELLED)`)
  if (pdu.contextId !== contextId)
    fail(`response is for context id ${pdu.contextId}, the call went on ${contextId}`)
  let stub: ResponseStub
  try {
    stub = parseResponseStub(pdu.stub, syntax)
  } catch (err) {
    if (err instanceof WireError) fail(`response stub: ${err.message}`)
    throw err
  }
  const warnings: string[] = []
  const referent = Number(stub.referent)
  if (referent !== 0 && referent !== NDR_REFERENT) {
    warnings.push(
      `response referent 0x${referent.toString(16)} is not 0x${NDR_REFERENT.toString(16).padStart(8, '0')}`,
    )
  }
  const trailing = stub.trailing?.length ?? 0
  const stubSize = pdu.stub.length - trailing
  if (pdu.allocHint !== stubSize)
    warnings.push(`response alloc_hint ${pdu.allocHint} is not the stub size ${stubSize}`)
  if (stub.paddingNonZero) warnings.push('response stub padding is not zero')
  if (trailing > 0) warnings.push(`response stub has ${trailing} bytes after the HRESULT`)
  return { stub, warnings }
}

/** The size a KMS response with this PIDSize has (§3.5); vlmcs warns when the payload differs. */
export function expectedResponseSize(major: number, pidSize: number): number {
  if (major < 5) return 60 + pidSize
  const plain = (major === 5 ? 92 : 132) + pidSize
  return 20 + 16 * (Math.floor(plain / 16) + 1)
}

export function payloadSizeWarning(major: number, pidSize: number, length: number): string | null {
  const expected = expectedResponseSize(major, pidSize)
  return length === expected
    ? null
    : `KMS response is ${length} bytes, expected ${expected} for PIDSize ${pidSize}`
}

/** A host has one ePID per product for its lifetime; a change on one connection is an emulator tell. */
export function epidWarning(previous: string | undefined, current: string): string | null {
  return previous !== undefined && previous !== current
    ? `ePID changed on the same connection: ${previous} -> ${current}`
    : null
}
