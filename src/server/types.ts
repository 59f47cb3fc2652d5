import type { RandomSource } from '../crypto/random.js'
import type { Endpoint } from '../wire/endpoint.js'
import type { TransferSyntax } from '../wire/ndr.js'
import type { ContextResult } from '../wire/rpc.js'
import type { BindPolicy } from './bind.js'
import type { CaptureRecorder } from './recorder.js'

export type { Endpoint }

/**
 * What the activation handler and the connection events see of a host connection. HostConnection
 * implements it; an interface, so that these shapes need nothing from connection.ts (no cycle).
 */
export interface HostConnection {
  readonly id: number
  readonly client: Endpoint
  /** The port the peer connected to (the listener's). */
  readonly localPort: number
  readonly openedAt: number
  /** KMS calls answered so far. */
  readonly calls: number
}

/** One KMS call (REQUEST opnum 0) as the activation handler sees it. */
export interface KmsCall {
  connection: HostConnection
  callId: number
  contextId: number
  syntax: TransferSyntax
  /** The KMS request bytes (the NDR array's contents). */
  payload: Uint8Array
  /** 1-based: the n-th KMS call on this connection. */
  callIndex: number
}

/** How the host answers a call; the extra fields are fault injection. */
export type CallOutcome = (
  | { kind: 'answer'; payload: Uint8Array }
  | { kind: 'refuse'; hresult: number }
  | { kind: 'fault'; status: number }
  | { kind: 'close' }
) & { closeAfter?: boolean; truncate?: boolean; delayMs?: number }

export type CallHandler = (call: KmsCall) => CallOutcome | Promise<CallOutcome>

export interface ConnectionEvents {
  onBind(
    conn: HostConnection,
    isBind: boolean,
    results: ContextResult[],
    accepted: Map<number, TransferSyntax>,
  ): void
  onFault(conn: HostConnection, callId: number, status: number, reason: string): void
  /** Something odd the host answered without closing (a BIND for another interface, too many items). */
  onNotice(conn: HostConnection, reason: string): void
  onClose(conn: HostConnection, reason: string, protocolError: boolean): void
  /** The socket closed: the connection is finished with (after onClose). */
  onGone?(conn: HostConnection): void
}

export interface ConnectionSettings {
  bindPolicy: BindPolicy
  handler: CallHandler
  events: ConnectionEvents
  random: RandomSource
  now: () => number
  recorder?: CaptureRecorder
  disconnectAfterAnswer?: boolean
  /** A socket event (read, FIN) was handled; it started at `startedAt` (performance.now()). */
  handled?(startedAt: number): void
  /** Fault injection: answer this connection's BIND with BIND_NAK. */
  rejectBind?: (conn: HostConnection) => boolean
}
