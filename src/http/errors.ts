import { KmslabError } from '../errors.js'

/** The HTTP port could not be opened (address in use, not ours, no permission). */
export class HttpListenError extends KmslabError {
  constructor(
    message: string,
    readonly host: string,
    readonly port: number,
    override readonly cause?: unknown,
  ) {
    super(message)
  }
}
