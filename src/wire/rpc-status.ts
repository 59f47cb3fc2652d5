// The numbers DCE-RPC answers with (NCA status of a FAULT, BIND_NAK reasons, presentation context
// results) and the one set of names for them that every report uses. Re-exported by rpc.ts.
import { isBtfnSyntax, NDR32_UUID, NDR64_UUID } from './rpc-header.js'

export const NCA_STATUS = {
  UNK_IF: 0x1c010003,
  OP_RNG_ERROR: 0x1c010002,
  PROTO_ERROR: 0x1c01000b,
  BAD_STUB_DATA: 0x000006f7,
  INVALID_PRES_CONTEXT_ID: 0x1c00001c,
} as const

/** provider_reject_reason of BIND_NAK (DCE / MS-RPCE). */
export const BIND_NAK_REASON = {
  NOT_SPECIFIED: 0,
  TEMPORARY_CONGESTION: 1,
  LOCAL_LIMIT_EXCEEDED: 2,
  CALLED_PADDR_UNKNOWN: 3,
  PROTOCOL_VERSION_NOT_SUPPORTED: 4,
  DEFAULT_CONTEXT_NOT_SUPPORTED: 5,
  USER_DATA_NOT_READABLE: 6,
  NO_PSAP_AVAILABLE: 7,
  AUTHENTICATION_TYPE_NOT_RECOGNIZED: 8,
  INVALID_CHECKSUM: 9,
} as const

export const CONTEXT_RESULT = {
  ACCEPTANCE: 0,
  USER_REJECTION: 1,
  PROVIDER_REJECTION: 2,
  NEGOTIATE_ACK: 3,
} as const

export const REJECT_REASON = {
  NOT_SPECIFIED: 0,
  ABSTRACT_SYNTAX_NOT_SUPPORTED: 1,
  TRANSFER_SYNTAXES_NOT_SUPPORTED: 2,
  LOCAL_LIMIT_EXCEEDED: 3,
} as const

/** The DCE names of the NCA statuses the house sends or meets (§1.10). */
export const NCA_STATUS_NAMES: Readonly<Record<number, string>> = {
  [NCA_STATUS.UNK_IF]: 'nca_s_unk_if',
  [NCA_STATUS.OP_RNG_ERROR]: 'nca_s_op_rng_error',
  [NCA_STATUS.PROTO_ERROR]: 'nca_s_proto_error',
  [NCA_STATUS.BAD_STUB_DATA]: 'rpc_x_bad_stub_data',
  [NCA_STATUS.INVALID_PRES_CONTEXT_ID]: 'nca_s_invalid_pres_context_id',
}

/** By CONTEXT_RESULT value. */
export const CONTEXT_RESULT_NAMES: readonly string[] = [
  'acceptance',
  'user rejection',
  'provider rejection',
  'negotiate ack',
]

/** By REJECT_REASON value. */
export const REJECT_REASON_NAMES: readonly string[] = [
  'not specified',
  'abstract syntax not supported',
  'transfer syntaxes not supported',
  'local limit exceeded',
]

/** The DCE name of an NCA status, if it is one the house knows. */
export function ncaStatusName(status: number): string | undefined {
  return NCA_STATUS_NAMES[status >>> 0]
}

/** "0x1C010003 (nca_s_unk_if)": the status in hex, and its name when known. */
export function describeNcaStatus(status: number): string {
  const hex = `0x${(status >>> 0).toString(16).toUpperCase().padStart(8, '0')}`
  const name = ncaStatusName(status)
  return name ? `${hex} (${name})` : hex
}

/** NDR32, NDR64, BTFN, or the UUID of a transfer syntax the house does not know. */
export function transferSyntaxName(uuid: string): string {
  if (uuid === NDR32_UUID) return 'NDR32'
  if (uuid === NDR64_UUID) return 'NDR64'
  return isBtfnSyntax(uuid) ? 'BTFN' : uuid
}
