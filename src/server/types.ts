import type { RandomSource } from '../crypto/random.js'
import type { Endpoint } from '../wire/endpoint.js'
import type { TransferSyntax } from '../wire/ndr.js'
import type { ContextResult } from '../wire/rpc.js'
import type { BindPolicy } from './bind.js'
import type { RpcConnection } from './connection.js'
import type { CaptureRecorder } from './recorder.js'

export type { Endpoint }

/** One KMS call (REQUEST opnum 0) as the activation handler sees it. */
export interface KmsCall {
  connection: RpcConnection
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
    conn: RpcConnection,
    isBind: boolean,
    results: ContextResult[],
    accepted: Map<number, TransferSyntax>,
  ): void
  onFault(conn: RpcConnection, callId: number, status: number, reason: string): void
  /** Something odd the host answered without closing (a BIND for another interface, too many items). */
  onNotice(conn: RpcConnection, reason: string): void
  onClose(conn: RpcConnection, reason: string, protocolError: boolean): void
}

export interface ConnectionSettings {
  bindPolicy: BindPolicy
  handler: CallHandler
  events: ConnectionEvents
  random: RandomSource
  now: () => number
  recorder?: CaptureRecorder
  disconnectAfterAnswer?: boolean
  /** Fault injection: answer this connection's BIND with BIND_NAK. */
  rejectBind?: (conn: RpcConnection) => boolean
}
