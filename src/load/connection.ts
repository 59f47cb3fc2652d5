// One connection of the load generator: connect, BIND, then one REQUEST at a time, all on
// callbacks (no promise per request). Incoming bytes land in one read buffer shared by every
// socket (onread), are cut into PDUs by frag_length, and only a PDU split across reads is copied.
import net from 'node:net'
import { guidToBytes } from '../wire/bytes.js'
import type { TransferSyntax } from '../wire/ndr.js'
import {
  BIND_ACK_FIELD,
  BIND_RESULT_FIELD,
  BTFN_VERSION,
  btfnUuid,
  CONTEXT_RESULT,
  checkRpcFrame,
  emitBindPdu,
  KMS_INTERFACE_UUID,
  KMS_INTERFACE_VERSION,
  makeHeader,
  NDR32_UUID,
  NDR32_VERSION,
  NDR64_UUID,
  NDR64_VERSION,
  PFC,
  PTYPE,
  RESULT_LENGTH,
  RESULT_LIST_FIELD,
  RPC_HEADER_FIELD,
  resultListAt,
} from '../wire/rpc.js'
import type { ActivationCodec } from './codec.js'

/** `ndr32`: one NDR32 context (what every host accepts); `vlmcs`: NDR32 + NDR64 + BTFN like vlmcs. */
export type BenchBind = 'ndr32' | 'vlmcs'

/** What a connection reports to the scheduler. */
export interface ConnEvents {
  /** TCP connected (for the connection count). */
  connected(c: BenchConn): void
  /** Bound and idle, with no activation waiting. */
  ready(c: BenchConn): void
  /**
   * An activation's answer was checked: `verdict` null when it verified, else its error kind;
   * `latencyMs` from the activation's intended start to the answer's arrival.
   */
  answered(c: BenchConn, verdict: string | null, latencyMs: number): void
  /**
   * New-connection mode only: an answer arrived and the connection is done with; its check (and
   * `answered`) follows once the next connection's BIND is on its way.
   */
  arrived(c: BenchConn): void
  /** The connection died; `activation` tells whether an activation was in progress on it. */
  failed(c: BenchConn, kind: string, activation: boolean): void
}

const BIND_CALL_ID = 2
const H = RPC_HEADER_FIELD
/** A BIND_ACK up to n_results with an empty sec_addr. */
const MIN_BIND_ACK = resultListAt(0) + RESULT_LIST_FIELD.results
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)

function bindPdu(kind: BenchBind): Uint8Array {
  const ctx = (contextId: number, uuid: string, version: number) => ({
    contextId,
    abstractSyntax: {
      uuid: KMS_INTERFACE_UUID,
      versionMajor: KMS_INTERFACE_VERSION.major,
      versionMinor: KMS_INTERFACE_VERSION.minor,
    },
    transferSyntaxes: [{ uuid, version }],
  })
  const contexts = [ctx(0, NDR32_UUID, NDR32_VERSION)]
  if (kind === 'vlmcs') contexts.push(ctx(1, NDR64_UUID, NDR64_VERSION), ctx(2, btfnUuid(3), BTFN_VERSION))
  return emitBindPdu({
    header: makeHeader(PTYPE.BIND, BIND_CALL_ID, PFC.FIRST_FRAG | PFC.LAST_FRAG | PFC.CONC_MPX),
    maxXmitFrag: 5840,
    maxRecvFrag: 5840,
    assocGroupId: 0,
    contexts,
  })
}

const BINDS: Record<BenchBind, Uint8Array> = { ndr32: bindPdu('ndr32'), vlmcs: bindPdu('vlmcs') }
const NDR32_BYTES = guidToBytes(NDR32_UUID)
const NDR64_BYTES = guidToBytes(NDR64_UUID)

type State = 'closed' | 'connecting' | 'binding' | 'idle' | 'busy'

export class BenchConn {
  state: State = 'closed'
  /** performance.now() from which this activation's latency counts (its scheduled time). */
  intendedAt = 0
  /** performance.now() after which the step in progress has timed out. */
  deadline = Number.POSITIVE_INFINITY
  /** An activation waits for the connection to be bound. */
  private activating = false
  private socket: net.Socket | null = null
  private pend = new Uint8Array(1024)
  private pendLength = 0
  private callId = BIND_CALL_ID
  private requestsSent = 0
  /** New-connection mode: the last answer, not checked yet, and the socket it came on. */
  private held = new Uint8Array(512)
  private heldLength = -1
  private heldLatencyMs = 0
  private lingering: net.Socket | null = null
  /** New-connection mode: the next connection's socket object, built while an answer is awaited. */
  private spare: net.Socket | null = null

  constructor(
    readonly index: number,
    readonly codec: ActivationCodec,
    /** Where `open` connects; a discovered run moves it to the next host when one fails. */
    public target: { host: string; port: number },
    private readonly bind: BenchBind,
    private readonly timeoutMs: number,
    private readonly events: ConnEvents,
    /** Check each answer after the next connection's BIND has left (one connection per activation). */
    private readonly deferCheck = false,
  ) {}

  /** Connects and binds; the connection reports `ready` unless an activation is waiting. */
  open(): void {
    if (this.state !== 'closed') return
    this.state = 'connecting'
    this.requestsSent = 0
    this.pendLength = 0
    this.callId = BIND_CALL_ID
    this.deadline = performance.now() + this.timeoutMs
    const socket = this.spare ?? this.newSocket()
    this.spare = null
    this.socket = socket
    socket.connect({ host: this.target.host, port: this.target.port })
  }

  /** A socket with its handlers, not connected yet: no file descriptor, nothing sent. */
  private newSocket(): net.Socket {
    // `onread` is what net.connect() hands the Socket constructor; the types list it only there
    const options: net.SocketConstructorOpts & Pick<net.TcpSocketConnectOpts, 'onread'> = {
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array) => {
          if (socket === this.socket) this.onBytes(buf, n)
          return true
        },
      },
    }
    const socket = new net.Socket(options)
    socket.setNoDelay(true) // kept until connect() makes the handle
    socket.on('connect', () => {
      if (socket !== this.socket) return
      this.events.connected(this)
      this.state = 'binding'
      socket.write(BINDS[this.bind])
      // the host now accepts and answers the BIND: meanwhile check the last answer, close its socket
      this.settle()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (socket !== this.socket) return
      const code = err.code ?? 'error'
      this.fail(
        this.state === 'connecting' ? `connect:${code}` : code === 'ECONNRESET' ? 'reset' : `socket:${code}`,
      )
    })
    socket.on('end', () => {
      if (socket === this.socket) this.fail('closed')
    })
    socket.on('close', () => {
      if (socket === this.socket) this.fail('closed')
    })
    return socket
  }

  /** Starts an activation now: sends the request, or connects first if the connection is down. */
  activate(intendedAt: number): void {
    this.intendedAt = intendedAt
    if (this.state === 'idle') this.send()
    else {
      this.activating = true
      this.open()
    }
  }

  get inProgress(): boolean {
    return this.activating || this.state === 'busy'
  }

  /** Closes the connection (the scheduler's own doing: no event); a held answer is checked first. */
  close(): void {
    this.settle()
    this.release()?.destroy()
  }

  /** Checks the held answer (reporting `answered`) and closes the socket it came on. */
  settle(): void {
    if (this.heldLength >= 0) {
      const length = this.heldLength
      this.heldLength = -1
      this.events.answered(this, this.codec.check(this.held.subarray(0, length)), this.heldLatencyMs)
    }
    const old = this.lingering
    this.lingering = null
    old?.destroy()
  }

  private release(): net.Socket | null {
    const s = this.socket
    this.socket = null
    this.state = 'closed'
    this.activating = false
    this.deadline = Number.POSITIVE_INFINITY
    return s
  }

  /** The step in progress took too long. */
  expire(): void {
    this.fail(this.state === 'connecting' ? 'connect:timeout' : 'timeout')
  }

  private send(): void {
    this.settle() // the codec is about to be reused for the next request
    this.state = 'busy'
    this.activating = false
    this.deadline = performance.now() + this.timeoutMs
    // like vlmcs: the first request reuses the bind's call id, later ones count up
    if (this.requestsSent++ > 0) this.callId = this.callId >= 0x7fffffff ? 1 : this.callId + 1
    this.socket!.write(this.codec.request(this.callId))
    // the host is answering: build the next connection's socket object now, off the critical
    // path (it connects only when this activation is over: still one connection at a time)
    if (this.deferCheck && this.spare === null) this.spare = this.newSocket()
  }

  private fail(kind: string): void {
    if (this.state === 'closed') return
    const activation = this.inProgress
    this.close()
    // the host closing an idle connection is its right (an idle timeout): not an error
    if (!activation && kind === 'closed') kind = ''
    this.events.failed(this, kind, activation)
  }

  private onBytes(buf: Uint8Array, n: number): void {
    let data = buf
    let length = n
    if (this.pendLength > 0) {
      if (this.pendLength + n > this.pend.length) {
        const grown = new Uint8Array(Math.max(2 * this.pend.length, this.pendLength + n))
        grown.set(this.pend.subarray(0, this.pendLength))
        this.pend = grown
      }
      this.pend.set(buf.subarray(0, n), this.pendLength)
      data = this.pend
      length = this.pendLength + n
      this.pendLength = 0
    }
    // an answer may end this connection and start the next one on this object (new-connection
    // mode): bytes of the old socket must never reach the new one
    const socket = this.socket
    let at = 0
    for (;;) {
      const frame = checkRpcFrame(data, at, length)
      if (frame.verdict === 'need-more') break
      if (frame.verdict !== 'pdu') {
        this.fail('protocol')
        return
      }
      this.onPdu(data.subarray(at, at + frame.length))
      if (this.socket !== socket) return
      at += frame.length
    }
    if (at < length) {
      const rest = length - at
      if (data === this.pend) this.pend.copyWithin(0, at, length)
      else {
        if (rest > this.pend.length) this.pend = new Uint8Array(rest)
        this.pend.set(data.subarray(at, length))
      }
      this.pendLength = rest
    }
  }

  private onPdu(pdu: Uint8Array): void {
    if (this.state === 'busy') {
      const latencyMs = performance.now() - this.intendedAt
      if (this.deferCheck) {
        this.hold(pdu, latencyMs)
        return
      }
      const verdict = this.codec.check(pdu)
      // after an answer that breaks the RPC rules the stream cannot be trusted: reconnect
      if (verdict === 'protocol') {
        this.fail('protocol')
        return
      }
      this.state = 'idle'
      this.deadline = Number.POSITIVE_INFINITY
      this.events.answered(this, verdict, latencyMs)
      return
    }
    const verdict = this.state === 'binding' ? this.bindVerdict(pdu) : 'protocol'
    if (verdict !== null) {
      this.fail(verdict)
      return
    }
    this.state = 'idle'
    this.deadline = Number.POSITIVE_INFINITY
    if (this.activating) this.send()
    else this.events.ready(this)
  }

  /**
   * Keeps an answer for `settle` and lets the scheduler start the next activation at once: the
   * check and the close of this socket then run while the host accepts the next connection.
   */
  private hold(pdu: Uint8Array, latencyMs: number): void {
    if (this.held.length < pdu.length) this.held = new Uint8Array(pdu.length)
    this.held.set(pdu)
    this.heldLength = pdu.length
    this.heldLatencyMs = latencyMs
    this.lingering = this.release()
    this.events.arrived(this)
  }

  /** Takes the context the host gave (NDR64 when offered and accepted, else NDR32), from the bytes. */
  private bindVerdict(pdu: Uint8Array): string | null {
    const ptype = pdu[H.ptype]
    if (ptype === PTYPE.BIND_NAK) return 'bind-nak'
    if (ptype === PTYPE.FAULT) return 'bind-fault'
    const n = pdu.length
    const whole = PFC.FIRST_FRAG | PFC.LAST_FRAG
    if (
      ptype !== PTYPE.BIND_ACK ||
      n < MIN_BIND_ACK ||
      pdu[H.rpcVersion] !== 5 ||
      (pdu[H.flags] & whole) !== whole
    )
      return 'protocol'
    const u16 = (o: number) => pdu[o] | (pdu[o + 1] << 8)
    const u32 = (o: number) => (u16(o) | (pdu[o + 2] << 16) | (pdu[o + 3] << 24)) >>> 0
    if (u32(H.callId) !== BIND_CALL_ID || u16(H.fragLength) !== n) return 'protocol'
    const at = resultListAt(u16(BIND_ACK_FIELD.secAddrLength))
    const count = at < n ? pdu[at + RESULT_LIST_FIELD.nResults] : 0
    const results = at + RESULT_LIST_FIELD.results
    if (count === 0 || results + RESULT_LENGTH * count > n) return 'protocol'
    const ok = (i: number, syntax: Uint8Array, version: number) => {
      if (i >= count) return false
      const r = results + RESULT_LENGTH * i
      if (u16(r + BIND_RESULT_FIELD.result) !== CONTEXT_RESULT.ACCEPTANCE) return false
      if (u32(r + BIND_RESULT_FIELD.version) !== version) return false
      for (let j = 0; j < 16; j++) if (pdu[r + BIND_RESULT_FIELD.uuid + j] !== syntax[j]) return false
      return true
    }
    let syntax: TransferSyntax | null = null
    let contextId = 0
    if (this.bind === 'vlmcs' && ok(1, NDR64_BYTES, NDR64_VERSION)) {
      syntax = 'ndr64'
      contextId = 1
    } else if (ok(0, NDR32_BYTES, NDR32_VERSION)) syntax = 'ndr32'
    if (syntax === null) return 'bind-rejected'
    this.codec.setContext(syntax, contextId)
    return null
  }
}
