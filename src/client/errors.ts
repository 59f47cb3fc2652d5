import { KmslabError } from '../errors.js'
import { describeHresult } from '../kms/hresult.js'
import { describeNcaStatus } from '../wire/rpc.js'

/**
 * What went wrong below the KMS layer:
 * - 'connect': the TCP connection could not be opened (refused, unreachable, unknown host);
 * - 'timeout': no connection or no whole answer within the time limit;
 * - 'fault': the host answered with a FAULT PDU (`status` is its NCA status);
 * - 'bind-rejected': BIND_NAK, or a BIND_ACK that accepts no usable transfer syntax;
 * - 'closed': the host closed the connection before a whole answer;
 * - 'protocol': an answer that breaks DCE-RPC rules the client relies on (wrong PTYPE, call id,
 *   context id, fragment flags, NDR framing, ...).
 */
export type RpcErrorKind = 'connect' | 'timeout' | 'fault' | 'bind-rejected' | 'closed' | 'protocol'

export class RpcError extends KmslabError {
  constructor(
    readonly kind: RpcErrorKind,
    message: string,
    /** FAULT: the NCA status; BIND_NAK: the reject reason. */
    readonly status?: number,
    /** 'connect': the socket error's code (ECONNREFUSED, ENETUNREACH, ...). */
    readonly code?: string,
  ) {
    super(message)
  }
}

/** No KMS host found through DNS (no SRV record, resolver failure). */
export class DiscoveryError extends KmslabError {
  constructor(
    message: string,
    readonly query: string,
  ) {
    super(message)
  }
}

/** The host answered with an HRESULT instead of a KMS response (§7.1). */
export class RefusedError extends KmslabError {
  constructor(readonly hresult: number) {
    super(`host refused: ${describeHresult(hresult)}`)
  }
}

export { describeNcaStatus }
