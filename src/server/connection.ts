import type { Socket } from 'node:net'
import { NULL_GUID, WireError } from '../wire/bytes.js'
import { emitRefusalStub, emitResponseStub, parseRequestStub, type TransferSyntax } from '../wire/ndr.js'
import {
  BIND_NAK_REASON,
  type BindPdu,
  CONTEXT_RESULT,
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
  REJECT_REASON,
  type RequestPdu,
} from '../wire/rpc.js'
import { bindAnomalies, decideContexts, MAX_CONTEXTS } from './bind.js'
import { DEFAULT_MAX_FRAGMENT, FramingError, PduFramer } from './framer.js'
import { FragmentAssembler, isWholeCall } from './reassembly.js'
import { forget, listenTo } from './socket-listeners.js'
import type { CallOutcome, ConnectionSettings, Endpoint, HostConnection } from './types.js'

/** The smallest fragment MS-RPCE lets a peer negotiate. */
const MIN_FRAGMENT = 1432
/** Stop reading while this much of our output is still queued for a peer that does not read. */
const MAX_PENDING_OUTPUT = 64 * 1024
/** After our FIN, a peer that neither reads nor closes keeps the socket this long at most. */
const LINGER_MS = 2000

/**
 * One TCP connection of the host: cuts PDUs, answers BIND / ALTER_CONTEXT with per-context
 * results, hands each KMS REQUEST to the activation handler and sends its RESPONSE (or FAULT),
 * strictly in order. While a call is being answered, the PDUs behind it stay unread in the
 * framer and the socket stops reading, as it does while our output backs up: what a connection
 * holds is bounded by one read chunk and one fragment, whatever the peer sends.
 */
export class RpcConnection implements HostConnection {
  readonly framer = new PduFramer()
  readonly contexts = new Map<number, TransferSyntax>()
  readonly openedAt: number
  /** performance.now() of the last byte read or written: the server's sweep closes idle ones. */
  lastActivity = performance.now()
  calls = 0
  /** The close was reported (once); the socket may still be flushing our last answer. */
  closed = false
  private busy = false
  private peerDone = false
  private readingPaused = false
  /** Made by the first fragmented call: no known client fragments, so most connections never do. */
  private fragments: FragmentAssembler | null = null
  private linger: NodeJS.Timeout | null = null
  private readonly assocGroupId: number

  constructor(
    readonly id: number,
    readonly socket: Socket,
    readonly client: Endpoint,
    /** The port the peer connected to (the listener's): the bind's secondary address. */
    readonly localPort: number,
    private readonly settings: ConnectionSettings,
  ) {
    this.openedAt = settings.now()
    const r = settings.random(4)
    this.assocGroupId = ((r[0] | (r[1] << 8) | (r[2] << 16) | (r[3] << 24)) >>> 0 || 1) >>> 0
    listenTo(socket, this)
  }

  onData(chunk: Uint8Array): void {
    if (this.closed) return
    const startedAt = performance.now()
    this.lastActivity = startedAt
    this.settings.recorder?.data(this.id, true, chunk)
    this.framer.feed(chunk)
    this.pump()
    this.settings.handled?.(startedAt)
  }

  get isBusy(): boolean {
    return this.busy
  }

  /** An answer is in progress, or whole PDUs wait behind one: what a graceful stop lets finish. */
  get hasWork(): boolean {
    return !this.closed && (this.busy || this.framer.unread > 0)
  }

  /** Reading is paused: an answer is in progress with PDUs behind it, or the peer does not read. */
  get isPaused(): boolean {
    return this.readingPaused
  }

  /** The peer finished sending: answer what is queued, then close our side too. */
  peerEnded(): void {
    const startedAt = performance.now()
    this.peerDone = true
    if (!this.busy) this.pump()
    this.settings.handled?.(startedAt)
  }

  /** Our output drained: PDUs held back while it was backed up can be answered now. */
  drained(): void {
    this.pump()
  }

  /** The socket is gone: report a close not reported yet, drop what still refers to it. */
  socketClosed(): void {
    if (!this.closed) this.settings.events.onClose(this, 'connection lost', false)
    if (this.linger) clearTimeout(this.linger)
    this.linger = null
    this.closed = true
    forget(this.socket)
    this.settings.events.onGone?.(this)
  }

  /** Reports the close (once) and drops the socket at once, unread input and unsent output alike. */
  close(reason: string, protocolError = false): void {
    if (!this.closed) {
      this.closed = true
      this.settings.events.onClose(this, reason, protocolError)
    }
    this.socket.destroy()
  }

  /** Reports the close (once) and ends our side after what was written: the peer reads it, then FIN. */
  private finishWith(reason: string, protocolError: boolean): void {
    if (this.closed) return
    this.closed = true
    this.settings.events.onClose(this, reason, protocolError)
    this.socket.end()
    this.linger = setTimeout(() => this.socket.destroy(), LINGER_MS)
    this.linger.unref?.()
  }

  /** Takes PDUs from the framer while no answer is in progress and the peer reads our answers. */
  private pump(): void {
    while (!this.busy && !this.closed && this.socket.writableLength <= MAX_PENDING_OUTPUT) {
      let pdu: Uint8Array | null
      try {
        pdu = this.framer.next()
      } catch (err) {
        if (err instanceof FramingError && err.rpcVersion !== undefined) {
          this.nak(BIND_NAK_REASON.PROTOCOL_VERSION_NOT_SUPPORTED, err.callId, err.message)
        } else if (err instanceof FramingError) {
          this.close(err.message, true)
        } else {
          this.internalError(err)
        }
        return
      }
      if (pdu === null) break
      this.process(pdu)
    }
    if (this.closed) return
    if (!this.busy && this.peerDone && this.framer.unread === 0) {
      const midPdu = this.framer.pending > 0
      const why = midPdu ? 'peer closed in the middle of a PDU' : 'peer closed'
      // Both directions are done and the kernel holds no unread input: closing sends a plain FIN,
      // with no shutdown step nor linger timer (what a new connection per activation pays).
      if (this.socket.writableLength === 0) this.close(why, midPdu)
      else this.finishWith(why, midPdu)
      return
    }
    this.updateFlow()
  }

  /** Reads only while nothing waits: no PDU behind an answer in progress, no backed-up output. */
  private updateFlow(): void {
    if (this.closed) return
    const hold = this.framer.unread > 0 || this.socket.writableLength > MAX_PENDING_OUTPUT
    if (hold === this.readingPaused) return
    this.readingPaused = hold
    if (hold) this.socket.pause()
    else this.socket.resume()
  }

  private send(bytes: Uint8Array): void {
    this.lastActivity = performance.now()
    this.settings.recorder?.data(this.id, false, bytes)
    this.socket.write(bytes)
  }

  private process(pdu: Uint8Array): void {
    try {
      this.dispatch(pdu)
    } catch (err) {
      // A PDU whose header framed fine but whose body does not parse: log once and drop the peer.
      if (err instanceof WireError) this.close(`malformed PDU: ${err.message}`, true)
      else this.internalError(err)
    }
  }

  /** A bug of ours: it costs this connection (logged once), never the host. */
  private internalError(err: unknown): void {
    this.close(`internal error: ${(err as Error)?.message ?? String(err)}`, true)
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
    this.finishWith(`BIND_NAK: ${why}`, true)
  }

  private bind(pdu: BindPdu): void {
    const isBind = pdu.header.ptype === PTYPE.BIND
    if (isBind && this.settings.rejectBind?.(this)) {
      this.nak(BIND_NAK_REASON.NOT_SPECIFIED, pdu.header.callId, 'rejected by a fault-injection rule')
      return
    }
    // A connection keeps at most MAX_CONTEXTS contexts, however many ALTER_CONTEXTs add new ids.
    const { results, accepted } = decideContexts(
      pdu.contexts,
      this.settings.bindPolicy,
      (id) => this.contexts.has(id) || this.contexts.size < MAX_CONTEXTS,
    )
    // Every declared item gets a result, even those a hostile count claims beyond the fragment.
    const declared = Math.max(pdu.declaredContextCount ?? pdu.contexts.length, pdu.contexts.length)
    while (results.length < declared) {
      results.push({
        result: CONTEXT_RESULT.PROVIDER_REJECTION,
        reason: REJECT_REASON.LOCAL_LIMIT_EXCEEDED,
        transferSyntax: { uuid: NULL_GUID, version: 0 },
      })
    }
    const odd = bindAnomalies(pdu, declared, accepted.size)
    if (odd) this.settings.events.onNotice(this, odd)
    for (const [id, syntax] of accepted) this.contexts.set(id, syntax)
    const receive = Math.min(Math.max(pdu.maxXmitFrag, MIN_FRAGMENT), DEFAULT_MAX_FRAGMENT)
    this.framer.maxFragment = receive
    const flags = PFC.FIRST_FRAG | PFC.LAST_FRAG | (isBind ? pdu.header.flags & PFC.CONC_MPX : 0)
    const ack = emitBindAckPdu({
      header: makeHeader(isBind ? PTYPE.BIND_ACK : PTYPE.ALTER_CONTEXT_RESP, pdu.header.callId, flags),
      maxXmitFrag: Math.min(Math.max(pdu.maxRecvFrag, MIN_FRAGMENT), DEFAULT_MAX_FRAGMENT),
      maxRecvFrag: receive,
      assocGroupId: this.assocGroupId,
      secondaryAddress: isBind ? String(this.localPort) : '',
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
    let stub = pdu.stub
    if (this.fragments !== null || !isWholeCall(pdu)) {
      this.fragments ??= new FragmentAssembler()
      const assembled = this.fragments.add(pdu)
      if (assembled === null) return
      if ('error' in assembled) {
        this.fault(callId, pdu.contextId, NCA_STATUS.PROTO_ERROR, assembled.error)
        return
      }
      stub = assembled.stub
    }
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
      outcome
        .then((o) => this.finish(callId, pdu.contextId, syntax, o))
        .catch((err) => this.internalError(err))
    } else {
      this.finish(callId, pdu.contextId, syntax, outcome)
    }
  }

  private finish(callId: number, contextId: number, syntax: TransferSyntax, outcome: CallOutcome): void {
    if (this.closed) return
    if (outcome.delayMs && outcome.delayMs > 0) {
      this.busy = true
      setTimeout(() => {
        try {
          this.deliver(callId, contextId, syntax, outcome)
        } catch (err) {
          this.internalError(err)
        }
      }, outcome.delayMs)
    } else this.deliver(callId, contextId, syntax, outcome)
  }

  /** Sends what the handler decided (after its delay, if any), then takes the next PDU. */
  private deliver(callId: number, contextId: number, syntax: TransferSyntax, outcome: CallOutcome): void {
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
      this.finishWith('closed after the answer', false)
      return
    }
    // Called from inside pump() when the answer was synchronous; resume pumping only after a wait.
    const waited = this.busy
    this.busy = false
    if (waited) this.pump()
  }
}
