// The host's failure kinds at the I/O edge, matched with instanceof.
import { KmslabError } from '../errors.js'

/** The peer sent something that is not a DCE-RPC PDU stream; the host closes without answering. */
export class FramingError extends KmslabError {
  constructor(
    message: string,
    readonly offset: number,
    /** Set when the bytes are an RPC header of another version (answered with BIND_NAK). */
    readonly rpcVersion?: number,
    readonly callId = 0,
  ) {
    super(message)
  }
}

/** A listener could not be opened (address in use, not local, no permission). */
export class ListenError extends KmslabError {
  constructor(
    message: string,
    /** The listen address (a ListenAddress) that failed. */
    readonly address: { host: string; port: number },
  ) {
    super(message)
  }
}
