// The byte layer's failure kinds, matched with instanceof; bytes.ts re-exports them.
import { KmslabError } from '../errors.js'

/**
 * Bytes that do not form the layout a parser expected. `layout` names the PDU or structure,
 * `offset` is the byte offset (from the start of that structure) where the problem is, and
 * `field` names the field when there is one.
 */
export class WireError extends KmslabError {
  constructor(
    message: string,
    readonly layout: string,
    readonly offset: number,
    readonly field?: string,
  ) {
    super(`${layout}: ${message} (offset ${offset}${field ? `, field ${field}` : ''})`)
  }
}

/** The structure needs more bytes than were given. */
export class TruncatedError extends WireError {
  constructor(layout: string, needed: number, got: number) {
    super(`needs ${needed} bytes, got ${got}`, layout, got)
  }
}

/** A field holds a value the layout does not allow. */
export class FieldValueError extends WireError {}
