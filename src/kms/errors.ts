import { KmslabError } from '../errors.js'

/**
 * A KMS answer that fails one of the client-side checks of §3.1, §4.6 and §4.7. `check` names
 * the check (stable, for scripts: 'iv', 'padding', 'hash', 'xor-salts', 'hmac', 'mac', 'version',
 * 'cmid', 'time', 'pid', 'size'), `field` the response field at fault.
 */
export class VerificationError extends KmslabError {
  constructor(
    message: string,
    readonly check: string,
    readonly field?: string,
  ) {
    super(message)
  }
}
