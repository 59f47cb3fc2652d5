import { KmslabError } from '../errors.js'

/** A state store operation failed while the host runs; `location` is the state file or 'memory'. */
export class StoreError extends KmslabError {
  constructor(
    message: string,
    readonly location: string,
    override readonly cause?: unknown,
  ) {
    super(message)
  }
}

/**
 * A write to the state store failed (disk full, lock held elsewhere, I/O error, an injected
 * fault). Nothing of the batch was kept: the host refuses the requests in it and logs this; it
 * does not crash and does not answer them.
 */
export class StoreWriteError extends StoreError {}

/** Reading history back failed (a page went bad under a running host, the store is closed). */
export class StoreReadError extends StoreError {}
