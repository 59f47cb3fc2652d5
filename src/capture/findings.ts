// Findings: how the decoder words what is unusual about a connection, a PDU or a request.
import { describeHresult, hresultHex } from '../kms/hresult.js'
import { filetimeIso } from '../kms/report.js'
import type { KmsBaseRequest } from '../wire/kms-request.js'
import { type AnyPdu, DREP_LE_ASCII_IEEE, ncaStatusName, PFC } from '../wire/rpc.js'
import type { TcpConnection } from './tcp.js'

export function headerFindings(h: AnyPdu['header'], what: string, errors: string[]): void {
  if (h.rpcVersion !== 5 || h.rpcVersionMinor !== 0)
    errors.push(`${what}: RPC version ${rpcVersionText(h)}, expected 5.0`)
  if (h.drep !== DREP_LE_ASCII_IEEE)
    errors.push(
      `${what}: data representation 0x${h.drep.toString(16).padStart(8, '0')}; read as little-endian`,
    )
  if (h.authLength !== 0) errors.push(`${what}: auth_length ${h.authLength}; no authentication is used here`)
}

/** No known client fragments (§1.14); a call that does is joined, and named. */
export function fragmentFindings(
  what: string,
  call: { pdu: { header: AnyPdu['header'] }; fragments: number; complete: boolean },
  errors: string[],
): void {
  if (call.fragments > 1) errors.push(`${what} arrived in ${call.fragments} fragments (joined)`)
  if (!(call.pdu.header.flags & PFC.FIRST_FRAG)) errors.push(`${what} lacks PFC_FIRST_FRAG`)
  if (!call.complete) errors.push(`${what} has no fragment with PFC_LAST_FRAG`)
}

/** Field values no genuine client sends (vlmcsd's pedantic checks, §2.2); decoded anyway. */
export function baseFindings(base: KmsBaseRequest, errors: string[]): void {
  if (base.isClientVm > 1) errors.push(`IsClientVM is ${base.isClientVm}, not 0 or 1`)
  if (base.licenseStatus > 6) errors.push(`LicenseStatus ${base.licenseStatus} is not 0-6`)
  if (filetimeIso(base.requestTime) === null)
    errors.push(`RequestTime ${base.requestTime} is not a valid time`)
  if (base.workstation.length >= 64) errors.push('WorkstationName fills its 64 UTF-16 units with no NUL')
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(base.workstation))
    errors.push('WorkstationName is not valid UTF-16 (lone surrogate)')
}

export function rpcVersionText(h: AnyPdu['header']): string {
  return `${h.rpcVersion}.${h.rpcVersionMinor}`
}

/**
 * A host that answers a PDU of another rpc_vers (vlmcsd does not look at it, and echoes it) served
 * what a DCE-RPC 5 host refuses: the exchange is decoded all the same, and this says so.
 */
export function otherVersionServed(h: AnyPdu['header'], what: string, strictHost: string): string | null {
  if (h.rpcVersion === 5) return null
  return `${what} of RPC version ${rpcVersionText(h)} was served; ${strictHost}`
}

export function frameText(s: { frame: number | null }): string {
  return s.frame === null ? '' : `, frame ${s.frame}`
}

export function faultText(status: number): string {
  const name = ncaStatusName(status)
  return name ? `${hresultHex(status)} ${name}` : describeHresult(status)
}

export function closedText(closedBy: TcpConnection['closedBy']): string {
  switch (closedBy) {
    case 'server-fin':
      return ': the host closed the connection'
    case 'server-rst':
      return ': the host reset the connection'
    case 'client-fin':
      return ': the client closed the connection'
    case 'client-rst':
      return ': the client reset the connection'
    default:
      return ': the capture ends first'
  }
}

export function restText(who: string, total: number, rest: { offset: number; reason: string }): string {
  return `${who} bytes ${rest.offset}-${total - 1} (${total - rest.offset} bytes) are not a DCE-RPC PDU: ${rest.reason}`
}
