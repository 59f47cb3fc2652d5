// One TCP connection to a KMS host speaking connection-oriented DCE-RPC as vlmcs (and so Windows)
// does (§1.1-1.13): BIND with NDR32 / NDR64 / BTFN, ALTER_CONTEXT to NDR32 when the host took only
// NDR64, then REQUESTs. Answers are cut from the byte stream by frag_length, each within a time
// limit, and checked (checks.ts) before anyone sees them.
import { WireError } from '../wire/bytes.js'
import { emitRequestStub, type TransferSyntax } from '../wire/ndr.js'
import {
  type BindPdu,
  btfnUuid,
  emitBindPdu,
  emitRequestPdu,
  KMS_INTERFACE_UUID,
  makeHeader,
  NDR32_UUID,
  NDR64_UUID,
  PFC,
  PTYPE,
  parseBindAckPdu,
  parseBindNakPdu,
  parseFaultPdu,
  parseResponsePdu,
  parseRpcHeader,
  type RpcHeader,
} from '../wire/rpc.js'
import {
  type CheckedResponse,
  checkContextResults,
  checkHeader,
  checkResponse,
  flagWarnings,
  negotiationWarnings,
  type OfferedContext,
} from './checks.js'
import { describeNcaStatus, RpcError } from './errors.js'
import { PduSocket } from './pdu-socket.js'

export interface RpcOptions {
  /** Offer NDR64 as context 1 (vlmcs -N1). */
  ndr64: boolean
  /** Offer bind-time feature negotiation, bitmask 03 (vlmcs -B1). */
  btfn: boolean
  /** Set PFC_CONC_MPX in BIND / ALTER_CONTEXT (vlmcs without -p). */
  multiplex: boolean
  /** For the connection and for each answer. */
  timeoutMs: number
}

export interface Negotiated {
  ndr32Ctx: number | null
  ndr64Ctx: number | null
  btfnBits: number | null
  warnings: string[]
  /** What each bind-phase PDU got, for --verbose. */
  summary: string[]
}

export interface CallResult extends CheckedResponse {
  syntax: TransferSyntax
  contextId: number
  callId: number
}

const MAX_FRAG = 5840
const BTFN_BITS = 0x03

export class RpcConnection {
  private negotiated: Negotiated | null = null
  /** REQUESTs answered on this connection. */
  callsDone = 0

  private constructor(private readonly io: PduSocket) {}

  /** `address`: where to connect when `host` is a name resolved already (default: `host`). */
  static async connect(
    host: string,
    port: number,
    timeoutMs: number,
    address?: string,
  ): Promise<RpcConnection> {
    return new RpcConnection(await PduSocket.connect(host, port, timeoutMs, address))
  }

  get remote(): string {
    return this.io.remote
  }

  /** The peer's IP address. */
  get remoteAddress(): string {
    return this.io.remoteAddress
  }

  /** The host closed (or reset) the connection; nothing more can be sent on it. */
  get closedByPeer(): boolean {
    return this.io.closedByPeer
  }

  /** Bytes received that do not form a whole PDU yet (0: no answer had started). */
  get pendingBytes(): number {
    return this.io.pendingBytes
  }

  /** See PduSocket.settle: makes `closedByPeer` current before the next request. */
  settle(): Promise<void> {
    return this.io.settle()
  }

  close(): void {
    this.io.close()
  }

  private fail(err: RpcError): RpcError {
    return this.io.fail(err)
  }

  /** Reads the answer to `callId`: FAULT and BIND_NAK become errors, else the header passes checkHeader. */
  private async answer(callId: number, what: string, ptype: number, timeoutMs: number): Promise<Uint8Array> {
    const pdu = await this.io.read(what, timeoutMs)
    let header: RpcHeader
    try {
      header = parseRpcHeader(pdu)
      if (header.ptype === PTYPE.FAULT) {
        const fault = parseFaultPdu(pdu)
        const call =
          fault.header.callId === callId ? '' : ` (FAULT for call id ${fault.header.callId}, sent ${callId})`
        throw new RpcError(
          'fault',
          `host answered with FAULT ${describeNcaStatus(fault.status)}${call}`,
          fault.status,
        )
      }
      if (header.ptype === PTYPE.BIND_NAK) {
        const nak = parseBindNakPdu(pdu)
        throw new RpcError(
          'bind-rejected',
          `host rejected the bind (BIND_NAK reason ${nak.rejectReason})`,
          nak.rejectReason,
        )
      }
    } catch (err) {
      if (err instanceof WireError) throw this.fail(new RpcError('protocol', `${what}: ${err.message}`))
      throw err
    }
    if (header.ptype !== ptype)
      throw this.fail(
        new RpcError('protocol', `expected a ${what} (PTYPE ${ptype}), got PTYPE ${header.ptype}`),
      )
    try {
      checkHeader(header, what, callId)
    } catch (err) {
      throw err instanceof RpcError ? this.fail(err) : err
    }
    return pdu
  }

  private async bindOrAlter(
    kind: 'bind' | 'alter',
    callId: number,
    offered: OfferedContext[],
    o: RpcOptions,
  ) {
    const flags = PFC.FIRST_FRAG | PFC.LAST_FRAG | (o.multiplex ? PFC.CONC_MPX : 0)
    const pdu: BindPdu = {
      header: makeHeader(kind === 'bind' ? PTYPE.BIND : PTYPE.ALTER_CONTEXT, callId, flags),
      maxXmitFrag: MAX_FRAG,
      maxRecvFrag: MAX_FRAG,
      assocGroupId: 0,
      contexts: offered.map((c) => ({
        contextId: c.contextId,
        abstractSyntax: { uuid: KMS_INTERFACE_UUID, versionMajor: 1, versionMinor: 0 },
        transferSyntaxes: [{ uuid: c.uuid, version: c.version }],
      })),
    }
    this.io.send(emitBindPdu(pdu))
    const what = kind === 'bind' ? 'bind_ack' : 'alter_context_resp'
    const bytes = await this.answer(
      callId,
      what,
      kind === 'bind' ? PTYPE.BIND_ACK : PTYPE.ALTER_CONTEXT_RESP,
      o.timeoutMs,
    )
    try {
      const ack = parseBindAckPdu(bytes)
      const outcome = checkContextResults(ack, offered, what)
      outcome.warnings.unshift(...flagWarnings(ack.header, what, kind === 'bind' ? flags : undefined))
      return outcome
    } catch (err) {
      if (err instanceof WireError) throw this.fail(new RpcError('protocol', `${what}: ${err.message}`))
      throw err instanceof RpcError ? this.fail(err) : err
    }
  }

  /** BIND (ctx 0 NDR32 v2, ctx 1 NDR64 v1, ctx 2 BTFN 03), then ALTER_CONTEXT if NDR32 was refused. */
  async bind(callId: number, o: RpcOptions): Promise<Negotiated> {
    const offered: OfferedContext[] = [{ contextId: 0, syntax: 'ndr32', uuid: NDR32_UUID, version: 2 }]
    if (o.ndr64) offered.push({ contextId: offered.length, syntax: 'ndr64', uuid: NDR64_UUID, version: 1 })
    if (o.btfn)
      offered.push({
        contextId: offered.length,
        syntax: 'btfn',
        uuid: btfnUuid(BTFN_BITS),
        version: 1,
        bits: BTFN_BITS,
      })
    const bind = await this.bindOrAlter('bind', callId, offered, o)
    const n: Negotiated = {
      ndr32Ctx: null,
      ndr64Ctx: null,
      btfnBits: bind.btfnBits,
      warnings: bind.warnings,
      summary: [],
    }
    for (const [ctx, syntax] of bind.accepted) {
      if (syntax === 'ndr32') n.ndr32Ctx = ctx
      else n.ndr64Ctx = ctx
    }
    n.summary.push(
      `bind: ${offered.map((c) => `${c.syntax.toUpperCase()} ${describe(c, bind.accepted, bind.btfnBits)}`).join(', ')}`,
    )
    if (n.ndr32Ctx === null && n.ndr64Ctx === null) {
      throw this.fail(new RpcError('bind-rejected', 'host accepted neither NDR32 nor NDR64'))
    }
    if (n.ndr32Ctx === null) {
      const ndr32 = offered.slice(0, 1)
      const alter = await this.bindOrAlter('alter', callId, ndr32, o)
      n.warnings.push(...alter.warnings)
      if (alter.accepted.has(0)) n.ndr32Ctx = 0
      n.summary.push(`alter_context: NDR32 ${describe(ndr32[0], alter.accepted, null)}`)
    }
    const got = { ndr32: n.ndr32Ctx !== null, ndr64: n.ndr64Ctx !== null, btfn: n.btfnBits !== null }
    n.warnings.push(...negotiationWarnings(o, got))
    this.negotiated = n
    return n
  }

  /**
   * One RequestActivation call. Like vlmcs: the first call of a connection goes on NDR32 (ctx 0),
   * later ones on NDR64 when the host accepted it; without NDR32 every call uses NDR64.
   */
  async call(payload: Uint8Array, callId: number, timeoutMs: number): Promise<CallResult> {
    const n = this.negotiated
    if (!n) throw new RpcError('protocol', 'call before bind')
    const ndr64 = n.ndr64Ctx !== null && (this.callsDone > 0 || n.ndr32Ctx === null)
    const syntax: TransferSyntax = ndr64 ? 'ndr64' : 'ndr32'
    const contextId = (ndr64 ? n.ndr64Ctx : n.ndr32Ctx) as number
    const stub = emitRequestStub(payload, syntax)
    this.io.send(
      emitRequestPdu({
        header: makeHeader(PTYPE.REQUEST, callId),
        allocHint: stub.length,
        contextId,
        opnum: 0,
        stub,
      }),
    )
    const bytes = await this.answer(callId, 'response', PTYPE.RESPONSE, timeoutMs)
    try {
      const pdu = parseResponsePdu(bytes)
      const checked = checkResponse(pdu, contextId, syntax)
      checked.warnings.unshift(...flagWarnings(pdu.header, 'response'))
      this.callsDone++
      return { ...checked, syntax, contextId, callId }
    } catch (err) {
      if (err instanceof WireError) throw this.fail(new RpcError('protocol', `response: ${err.message}`))
      throw err instanceof RpcError ? this.fail(err) : err
    }
  }
}

function describe(c: OfferedContext, accepted: Map<number, TransferSyntax>, btfnBits: number | null): string {
  if (c.syntax === 'btfn')
    return btfnBits === null ? 'rejected' : `acknowledged (features 0x${btfnBits.toString(16)})`
  return accepted.has(c.contextId) ? `accepted (ctx ${c.contextId})` : 'rejected'
}
