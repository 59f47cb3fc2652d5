/** HRESULTs a KMS host returns in a refusal, and the codes a client derives (§7). */
export const HRESULT = {
  OK: 0,
  INVALID_DATA: 0x8007000d,
  KMS_ID_MISMATCH: 0xc004f042,
  INVALID_TIMESTAMP: 0xc004f06c,
  NOT_ENOUGH_COUNT: 0xc004f038,
  INVALID_ARG: 0xc004d104,
  BINDING_SERVICE_UNAVAILABLE: 0xc004f074,
  BINDING_SERVICE_NOT_ENABLED: 0xc004f039,
  KMS_NOT_ACTIVATED: 0xc004f041,
  VM_NOT_SUPPORTED: 0xc004f06b,
  DNS_NAME_DOES_NOT_EXIST: 0x8007232b,
  RPC_SERVER_UNAVAILABLE: 0x800706ba,
} as const

const MEANING: Record<number, string> = {
  [HRESULT.OK]: 'success',
  [HRESULT.INVALID_DATA]:
    'ERROR_INVALID_DATA: the host cannot use this request (version, size, padding, MAC or count)',
  [HRESULT.KMS_ID_MISMATCH]:
    'SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH: the host cannot activate this product',
  [HRESULT.INVALID_TIMESTAMP]:
    'SL_E_VL_INVALID_TIMESTAMP: the client clock is more than 4 hours off the host clock',
  [HRESULT.NOT_ENOUGH_COUNT]: 'SL_E_VL_NOT_ENOUGH_COUNT: the host has not seen enough distinct clients yet',
  [HRESULT.INVALID_ARG]: 'SL_REMAPPING_SP_STATUS_INVALIDARG: invalid data',
  [HRESULT.BINDING_SERVICE_UNAVAILABLE]:
    'SL_E_VL_BINDING_SERVICE_UNAVAILABLE: no KMS host could be contacted',
  [HRESULT.BINDING_SERVICE_NOT_ENABLED]:
    'SL_E_VL_BINDING_SERVICE_NOT_ENABLED: KMS is not enabled on the host',
  [HRESULT.KMS_NOT_ACTIVATED]:
    'SL_E_VL_KEY_MANAGEMENT_SERVICE_NOT_ACTIVATED: the host itself is not activated',
  [HRESULT.VM_NOT_SUPPORTED]:
    'SL_E_VL_KEY_MANAGEMENT_SERVICE_VM_NOT_SUPPORTED: KMS not allowed in a virtual machine',
  [HRESULT.DNS_NAME_DOES_NOT_EXIST]: 'DNS name does not exist: no _vlmcs._tcp SRV record',
  [HRESULT.RPC_SERVER_UNAVAILABLE]: 'RPC server unavailable: the TCP connection failed',
}

export function hresultHex(code: number): string {
  return `0x${(code >>> 0).toString(16).toUpperCase().padStart(8, '0')}`
}

/** "0xC004F042 (SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH: ...)" for logs and client output. */
export function describeHresult(code: number): string {
  const meaning = MEANING[code >>> 0]
  return meaning ? `${hresultHex(code)} (${meaning})` : hresultHex(code)
}

/** Parses "0xC004F042", "C004F042" or a decimal number. */
export function parseHresult(text: string): number | null {
  const t = text.trim()
  if (/^(0x)?[0-9a-f]{1,8}$/i.test(t) && (t.toLowerCase().startsWith('0x') || /[a-f]/i.test(t))) {
    return Number.parseInt(t.replace(/^0x/i, ''), 16) >>> 0
  }
  if (/^\d+$/.test(t) && Number(t) <= 0xffffffff) return Number(t) >>> 0
  return null
}
