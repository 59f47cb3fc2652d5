// The load generator's failure kinds, matched with instanceof.
import { KmslabError } from '../errors.js'

/** The run could not start at all (unknown host name, no connection at all). */
export class BenchError extends KmslabError {}
