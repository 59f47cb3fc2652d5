import type { Socket } from 'node:net'
import { WireError } from '../wire/bytes.js'
import { emitRefusalStub, emitResponseStub, parseRequestStub, type TransferSyntax } from '../wire/ndr.js'
import {
  BIND_NAK_REASON,
  type BindPdu,
  DREP_LE_ASCII_IEEE,
  emitBindAckPdu,
  emitBindNakPdu,
  emitFaultPdu,
  emitResponsePdu,
  makeHeader,
  NCA_STATUS,
  PFC,
  PTYPE,
  parseBindPdu,
  parseRequestPdu,
  parseRpcHeader,
  type RequestPdu,
} from '../wire/rpc.js'
import { decideContexts } from './bind.js'
import { DEFAULT_MAX_FRAGMENT, FramingError, PduFramer } from './framer.js'
import type { CallOutcome, ConnectionSettings, Endpoint } from './types.js'

/** The smallest fragment MS-RPCE lets a peer negotiate. */
const MIN_FRAGMENT = 1432
/** Reassembled fragmented calls larger than this are refused: a KMS request is ~300 bytes. */
const MAX_CALL_BYTES = 16 * 1024
/** Stop reading while this much of our output is still queued for a peer that does not read. */
const MAX_PENDING_OUTPUT = 64 * 1024

interface PartialCall {
  first: RequestPdu
  parts: Uint8Array[]
  size: number
}

/**
 * One TCP connection of the host: cuts PDUs, answers BIND / ALTER_CONTEXT with per-context
 * results, hands each KMS REQUEST to the activation handler and sends its RESPONSE (or FAULT),
 * strictly in order. PDUs that arrive while a call is being answered wait in `queue`.
 */
export class RpcConnection {
  readonly framer = new PduFramer()
  readonly contexts = new Map<number, TransferSyntax>()
  readonly openedAt: number
  calls = 0
  closed = false
  private queue: Uint8Array[] = []
  private busy = false
  private peerDone = false
  private partial: PartialCall | null = null
  private readonly assocGroupId: number

  constructor(
    readonly id: number,
    readonly socket: Socket,
    readonly client: Endpoint,
    readonly local: Endpoint,
    private readonly settings: ConnectionSettings,
  ) {
    this.openedAt = settings.now()
    const r = settings.random(4)
    this.assocGroupId = ((r[0] | (r[1] << 8) | (r[2] << 16) | (r[3] << 24)) >>> 0 || 1) >>> 0
  }

  onData(chunk: Uint8Array): void {
    if (this.closed) return
    this.settings.recorder?.data(this.id, true, chunk)
    let pdus: Uint8Array[]
    try {
      pdus = this.framer.push(chunk)
    } catch (err) {
      if (!(err instanceof FramingError)) throw err
      if (err.rpcVersion !== undefined) {
        this.nak(
          BIND_NAK_REASON.PROTOCOL_VERSION_NOT_SUPPORTED,
          0,
          `RPC version ${err.rpcVersion} not supported`,
        )
      } else {
        this.close(err.message, true)
      }
      return
    }
    for (const pdu of pdus) {
      if (this.closed) return
      if (this.busy) this.queue.push(pdu.slice())
      else this.process(pdu)
    }
  }

  get isBusy(): boolean {
    return this.busy
  }

  /** The peer finished sending: answer what is queued, then close our side too. */
  peerEnded(): void {
    this.peerDone = true
    if (!this.busy) this.endAfterAnswers()
  }

  private endAfterAnswers(): void {
    if (this.closed) return
    this.closed = true
    const midPdu = this.framer.pending > 0
    this.settings.events.onClose(this, midPdu ? 'peer closed in the middle of a PDU' : 'peer closed', false)
    this.socket.end()
  }

  close(reason: string, protocolError = false): void {
    if (this.closed) return
    this.closed = true
    this.settings.events.onClose(this, reason, protocolError)
    this.socket.destroy()
  }

  private send(bytes: Uint8Array): void {
    this.settings.recorder?.data(this.id, false, bytes)
    this.socket.write(bytes)
    if (this.socket.writableLength > MAX_PENDING_OUTPUT && !this.socket.isPaused()) {
      this.socket.pause()
      this.socket.once('drain', () => this.socket.resume())
    }
  }

  private process(pdu: Uint8Array): void {
    try {
      this.dispatch(pdu)
    } catch (err) {
      if (!(err instanceof WireError)) throw err
      // A PDU whose header framed fine but whose body does not parse: log once and drop the peer.
      this.close(`malformed PDU: ${err.message}`, true)
    }
  }

  private dispatch(pdu: Uint8Array): void {
    const header = parseRpcHeader(pdu)
    if (header.rpcVersion !== 5 || header.rpcVersionMinor !== 0) {
      this.nak(
        BIND_NAK_REASON.PROTOCOL_VERSION_NOT_SUPPORTED,
        header.callId,
        `RPC version ${header.rpcVersion}.${header.rpcVersionMinor}`,
      )
      return
    }
    if ((header.drep & 0xffff) !== DREP_LE_ASCII_IEEE) {
      this.nak(
        BIND_NAK_REASON.NOT_SPECIFIED,
        header.callId,
        `data representation 0x${header.drep.toString(16)}`,
      )
      return
    }
    switch (header.ptype) {
      case PTYPE.BIND:
      case PTYPE.ALTER_CONTEXT:
        this.bind(parseBindPdu(pdu))
        return
      case PTYPE.REQUEST:
        this.request(parseRequestPdu(pdu))
        return
      default:
        this.close(`unexpected PDU type ${header.ptype}`, true)
    }
  }

  private nak(reason: number, callId: number, why: string): void {
    const bytes = emitBindNakPdu({
      header: makeHeader(PTYPE.BIND_NAK, callId),
      rejectReason: reason,
      protocols: [{ major: 5, minor: 0 }],
    })
    this.send(bytes)
    this.closed = true
    this.settings.events.onClose(this, `BIND_NAK: ${why}`, true)
    this.socket.end()
  }

  private bind(pdu: BindPdu): void {
    const isBind = pdu.header.ptype === PTYPE.BIND
    if (isBind && this.settings.rejectBind?.(this)) {
      this.nak(BIND_NAK_REASON.NOT_SPECIFIED, pdu.header.callId, 'rejected by a fault-injection rule')
      return
    }
    const { results, accepted } = decideContexts(pdu.contexts, this.settings.bindPolicy)
    // Every declared item gets a result, even those a hostile count claims beyond the fragment.
    const declared = Math.max(pdu.declaredContextCount ?? pdu.contexts.length, pdu.contexts.length)
    while (results.length < Math.min(declared, 255)) {
      results.push({
        result: 2,
        reason: 3,
        transferSyntax: { uuid: '00000000-0000-0000-0000-000000000000', version: 0 },
      })
    }
    for (const [id, syntax] of accepted) this.contexts.set(id, syntax)
    const receive = Math.min(Math.max(pdu.maxXmitFrag, MIN_FRAGMENT), DEFAULT_MAX_FRAGMENT)
    this.framer.maxFragment = receive
    const flags = PFC.FIRST_FRAG | PFC.LAST_FRAG | (isBind ? pdu.header.flags & PFC.CONC_MPX : 0)
    const ack = emitBindAckPdu({
      header: makeHeader(isBind ? PTYPE.BIND_ACK : PTYPE.ALTER_CONTEXT_RESP, pdu.header.callId, flags),
      maxXmitFrag: Math.min(Math.max(pdu.maxRecvFrag, MIN_FRAGMENT), DEFAULT_MAX_FRAGMENT),
      maxRecvFrag: receive,
      assocGroupId: this.assocGroupId,
      secondaryAddress: isBind ? String(this.local.port) : '',
      results,
    })
    this.send(ack)
    this.settings.events.onBind(this, isBind, results, accepted)
  }

  private fault(callId: number, contextId: number, status: number, why: string): void {
    this.send(
      emitFaultPdu({
        header: makeHeader(PTYPE.FAULT, callId, PFC.FIRST_FRAG | PFC.LAST_FRAG | PFC.DID_NOT_EXECUTE),
        allocHint: 32,
        contextId,
        cancelCount: 0,
        reserved: 0,
        status,
        reserved2: 0,
      }),
    )
    this.settings.events.onFault(this, callId, status, why)
  }

  private request(pdu: RequestPdu): void {
    const { callId } = pdu.header
    const syntax = this.contexts.get(pdu.contextId)
    if (syntax === undefined) {
      const why = this.contexts.size === 0 ? 'request before any bind' : `unknown context id ${pdu.contextId}`
      this.fault(callId, pdu.contextId, NCA_STATUS.UNK_IF, why)
      return
    }
    if (pdu.opnum !== 0) {
      this.fault(callId, pdu.contextId, NCA_STATUS.OP_RNG_ERROR, `unknown opnum ${pdu.opnum}`)
      return
    }
    const stub = this.reassemble(pdu)
    if (stub === null) return
    let payload: Uint8Array
    try {
      payload = parseRequestStub(stub, syntax).payload
    } catch (err) {
      if (!(err instanceof WireError)) throw err
      this.fault(callId, pdu.contextId, NCA_STATUS.BAD_STUB_DATA, `bad stub: ${err.message}`)
      return
    }
    this.calls++
    const outcome = this.settings.handler({
      connection: this,
      callId,
      contextId: pdu.contextId,
      syntax,
      payload,
      callIndex: this.calls,
    })
    if (outcome instanceof Promise) {
      this.busy = true
      outcome.then(
        (o) => this.finish(callId, pdu.contextId, syntax, o),
        (err) => this.close(`internal error: ${(err as Error).message}`),
      )
    } else {
      this.finish(callId, pdu.contextId, syntax, outcome)
    }
  }

  /** Collects FIRST ... LAST fragments of one call; returns the whole stub, or null for "not yet". */
  private reassemble(pdu: RequestPdu): Uint8Array | null {
    const first = (pdu.header.flags & PFC.FIRST_FRAG) !== 0
    const last = (pdu.header.flags & PFC.LAST_FRAG) !== 0
    if (first && last && !this.partial) return pdu.stub
    const p = this.partial
    if (first) {
      this.partial = { first: pdu, parts: [pdu.stub.slice()], size: pdu.stub.length }
      return null
    }
    if (!p || p.first.header.callId !== pdu.header.callId || p.first.contextId !== pdu.contextId) {
      this.partial = null
      this.fault(
        pdu.header.callId,
        pdu.contextId,
        NCA_STATUS.PROTO_ERROR,
        'fragment without its first fragment',
      )
      return null
    }
    p.size += pdu.stub.length
    if (p.size > MAX_CALL_BYTES) {
      this.partial = null
      this.fault(pdu.header.callId, pdu.contextId, NCA_STATUS.PROTO_ERROR, 'fragmented call too large')
      return null
    }
    p.parts.push(pdu.stub.slice())
    if (!last) return null
    this.partial = null
    const stub = new Uint8Array(p.size)
    let o = 0
    for (const part of p.parts) {
      stub.set(part, o)
      o += part.length
    }
    return stub
  }

  private finish(callId: number, contextId: number, syntax: TransferSyntax, outcome: CallOutcome): void {
    if (this.closed) return
    const after = () => {
      if (this.closed) return
      if (outcome.kind === 'close') {
        this.close('closed before the answer by a fault-injection rule')
        return
      }
      if (outcome.kind === 'fault') {
        this.fault(callId, contextId, outcome.status, 'fault-injection rule')
      } else {
        const stub =
          outcome.kind === 'answer'
            ? emitResponseStub(outcome.payload, 0, syntax)
            : emitRefusalStub(outcome.hresult, syntax)
        let bytes = emitResponsePdu({
          header: makeHeader(PTYPE.RESPONSE, callId),
          allocHint: stub.length,
          contextId,
          cancelCount: 0,
          reserved: 0,
          stub,
        })
        if (outcome.truncate) bytes = bytes.subarray(0, Math.max(16, bytes.length >> 1))
        this.send(bytes)
      }
      if (outcome.closeAfter || this.settings.disconnectAfterAnswer) {
        this.closed = true
        this.settings.events.onClose(this, 'closed after the answer', false)
        this.socket.end()
        return
      }
      this.drain()
    }
    if (outcome.delayMs && outcome.delayMs > 0) {
      this.busy = true
      setTimeout(after, outcome.delayMs)
    } else after()
  }

  private drain(): void {
    this.busy = false
    while (!this.busy && !this.closed && this.queue.length > 0) {
      this.process(this.queue.shift()!)
    }
    if (!this.busy && this.peerDone) this.endAfterAnswers()
  }
}
