import { KmslabError } from '../errors.js'

/**
 * Bytes that cannot be read as a capture. `what` says what was wrong in plain words (it is the
 * whole story for callers that match on it), `offset` is the byte offset in the capture file
 * (or in the frame, for `decodeFrame` called without a base offset).
 */
export class CaptureError extends KmslabError {
  constructor(
    readonly what: string,
    readonly offset: number,
  ) {
    super(`${what} (byte ${offset})`)
  }
}

/** Findings lists stay bounded however broken the input: past `limit` entries only a count is kept. */
export function addFinding(list: string[], message: string, limit = 100): void {
  if (list.length < limit) list.push(message)
  else if (list.length === limit) list.push('further findings omitted')
}
