// The public shapes of `activate`: its options, one result per request, the report.
import type { Catalog } from '../catalog/index.js'
import type { RandomSource } from '../crypto/random.js'
import type { VerificationError } from '../kms/errors.js'
import type { VerifiedAnswer } from '../kms/verify.js'
import type { KmsBaseRequest } from '../wire/kms-request.js'
import type { ResolveAddresses, ResolveSrv } from './discover.js'
import type { DiscoveryError, RefusedError, RpcError } from './errors.js'

/** Any field of the base request, and the V5/V6 request IV, for one request. */
export interface RequestOverride extends Partial<KmsBaseRequest> {
  iv?: Uint8Array
}

export interface ActivateOptions {
  /** A catalogue product (name, alias, SKU id or GVLK); default Windows 11 Enterprise. */
  product?: string
  /** Raw ids over the product's (vlmcs -a / -s / -k). */
  appId?: string
  skuId?: string
  kmsId?: string
  /** Default: the shipped catalogue. */
  catalog?: Catalog
  /** KMS major version; default the product's. Any value is sent (probing), 4-6 are real. */
  protocol?: number
  protocolMinor?: number
  /** N count policy; default the product's (25 / 5 / 5). */
  requiredCount?: number
  cmid?: string
  previousCmid?: string
  workstation?: string
  /** Fixed request time (a Date, or an exact FILETIME); default `now()` per request. */
  time?: Date | bigint
  /** Fixed V5/V6 request IV. */
  iv?: Uint8Array
  vm?: boolean
  licenseStatus?: number
  graceMinutes?: number
  /** Per-request fields (any base-request field, the IV) that win over everything above. */
  perRequest?: (index: number) => RequestOverride | undefined
  ndr64?: boolean
  btfn?: boolean
  multiplex?: boolean
  /** Requests to send (default 1); with `charge`, the most to send. */
  requests?: number
  /** One TCP connection (and bind) per request. */
  newConnection?: boolean
  /** Send requests with new CMIDs until the host reports the product's threshold. */
  charge?: boolean
  /** For the connection and each answer; default 10 s. */
  timeoutMs?: number
  random?: RandomSource
  now?: () => Date
  resolveSrv?: ResolveSrv
  /** A host name's addresses (default: the system resolver); SRV answers carrying them win. */
  resolveAddresses?: ResolveAddresses
  onProgress?: (p: ChargeProgress) => void
  onResult?: (r: RequestResult) => void
}

export type Verdict = 'activated' | 'not-enough-count' | 'refused' | 'verification-failed' | 'rpc-error'

export const EXIT_CODES: Readonly<Record<Verdict, number>> = {
  activated: 0,
  'not-enough-count': 2,
  refused: 3,
  'verification-failed': 4,
  'rpc-error': 5,
}

/**
 * Why a host was passed over: it refused the connection (or was unreachable), did not answer in
 * time, closed the connection without an answer, answered with an RPC error (FAULT, BIND_NAK,
 * broken PDUs), or its name has no address.
 */
export type AttemptFailure = 'refused' | 'unreachable' | 'timed-out' | 'closed' | 'error' | 'unresolved'

/** One host (one of its addresses) tried before the one that answered, or in vain. */
export interface Attempt {
  /** The host name (or address) as the target or the SRV record names it. */
  host: string
  port: number
  /** The address connected to; null when the name has none. */
  address: string | null
  failure: AttemptFailure
  error: string
}

export interface RequestResult {
  /** 0-based. */
  index: number
  /** "host:port" of the host that answered (or was tried); the SRV name when discovery failed. */
  host: string
  /** The address the answering connection went to (null when none answered). */
  address: string | null
  /** The hosts (addresses) that failed while this request looked for one that answers. */
  attempts: Attempt[]
  request: KmsBaseRequest
  /** The KMS request bytes and the KMS answer bytes (null when none came). */
  requestPayload: Uint8Array
  responsePayload: Uint8Array | null
  answer: VerifiedAnswer | null
  /** The refusal HRESULT, else null. */
  hresult: number | null
  verdict: Verdict
  warnings: string[]
  error: RpcError | DiscoveryError | RefusedError | VerificationError | null
  /** How the call went: context, transfer syntax, call id; null when it was not sent. */
  rpc: { syntax: 'ndr32' | 'ndr64'; contextId: number; callId: number; connection: number } | null
  /** What the bind negotiated when this request opened a connection (for --verbose). */
  bind: string[] | null
}

export interface ActivationReport {
  results: RequestResult[]
  /** 0, 2, 3, 4 or 5: the highest of the requests' (see EXIT_CODES). */
  exitCode: number
}

export interface ChargeProgress {
  sent: number
  count: number | null
  required: number
  limit: number
}

export const CLOSED_WARNING =
  'host closed the RPC connection between requests (probably a non-multitasked KMS emulator); reconnected'
