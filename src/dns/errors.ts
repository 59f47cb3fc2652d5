import { KmslabError } from '../errors.js'

/** A zone setting that cannot be used (a --host line, the domain, a --config key): `field` names it. */
export class ZoneError extends KmslabError {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message)
  }
}

/** The DNS server could not listen (address in use, no permission for a port below 1024). */
export class DnsListenError extends KmslabError {
  constructor(
    message: string,
    readonly address: string,
    readonly code?: string,
  ) {
    super(message)
  }
}
