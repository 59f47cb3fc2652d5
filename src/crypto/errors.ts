import { KmslabError } from '../errors.js'

/** A cryptographic operation was given input it cannot work on (wrong length, unknown version, ...). */
export class CryptoError extends KmslabError {}

/**
 * PKCS#7 padding that does not check out after decryption. `offset` is the index (in the
 * decrypted data) of the first byte that breaks the rule: the last byte when its value is not
 * 1..16 (or exceeds the data length), else the lowest padding byte that differs from n.
 */
export class PaddingError extends CryptoError {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} (offset ${offset})`)
  }
}
