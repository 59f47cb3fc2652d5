// The JSON shape of one KMS request and one KMS answer, shared by `kmslab activate --json` and
// `kmslab decode --json` so that scripts read both the same way. Pure: bytes and parsed values in,
// plain JSON-ready objects out (GUIDs lower case, times ISO 8601 UTC, HWID as 16 upper-case hex
// digits in wire order, the way vlmcs prints it).
import { decryptPadded } from '../crypto/cbc.js'
import { KmslabError } from '../errors.js'
import { toHex } from '../wire/bytes.js'
import {
  KMS_ENCRYPTED_FIELD,
  KMS_VERSION_LENGTH,
  type KmsBaseRequest,
  readKmsVersion,
} from '../wire/kms-request.js'
import { KMS_V6_RESPONSE_FIELD, type KmsBaseResponse, parseBaseResponse } from '../wire/kms-response.js'
import { cipherForMajor } from './request.js'
import type { VerifiedAnswer } from './verify.js'

const EPOCH_DIFF_MS = 11644473600000n

export interface RequestReport {
  /** "6.0" */
  version: string
  vm: boolean
  licenseStatus: number
  graceMinutes: number
  appId: string
  skuId: string
  kmsId: string
  cmid: string
  previousCmid: string
  requiredCount: number
  /** ISO 8601 UTC, millisecond precision. */
  clientTime: string
  workstation: string
  /** The request decoded and passed its own checks (V4 MAC, V5/V6 padding); always true for one we built. */
  verified: boolean
}

export interface ResponseReport {
  /** 0 for an answer, else the host's refusal (the other fields are then null). */
  hresult: number
  version: string | null
  epid: string | null
  /** V6 only, e.g. "3A1C049600B60076"; null otherwise. */
  hwid: string | null
  cmid: string | null
  clientTime: string | null
  currentCount: number | null
  activationInterval: number | null
  renewalInterval: number | null
  /** Every client check of §3.1, §4.6, §4.7 passed. */
  verified: boolean
}

/** FILETIME → ISO 8601; out-of-range values (a garbage field) give null rather than throwing. */
export function filetimeIso(ft: bigint): string | null {
  const ms = Number(ft / 10000n - EPOCH_DIFF_MS)
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? null : d.toISOString()
}

/** §2.2 LicenseStatus values, as analysers and vlmcs name them. */
export const LICENSE_STATUS_NAMES: readonly string[] = [
  'unlicensed',
  'licensed',
  'OOB grace',
  'OOT grace',
  'non-genuine grace',
  'notification',
  'extended grace',
]

export function versionText(major: number, minor: number): string {
  return `${major}.${minor}`
}

export function hwidText(hwid: Uint8Array | null): string | null {
  return hwid ? toHex(hwid).toUpperCase() : null
}

export function requestReport(base: KmsBaseRequest, verified = true): RequestReport {
  return {
    version: versionText(base.versionMajor, base.versionMinor),
    vm: base.isClientVm !== 0,
    licenseStatus: base.licenseStatus,
    graceMinutes: base.graceTime,
    appId: base.appId.toLowerCase(),
    skuId: base.skuId.toLowerCase(),
    kmsId: base.kmsId.toLowerCase(),
    cmid: base.cmid.toLowerCase(),
    previousCmid: base.previousCmid.toLowerCase(),
    requiredCount: base.requiredCount,
    clientTime: filetimeIso(base.requestTime) ?? '',
    workstation: base.workstation,
    verified,
  }
}

function baseReport(base: KmsBaseResponse, hwid: Uint8Array | null, verified: boolean): ResponseReport {
  return {
    hresult: 0,
    version: versionText(base.versionMajor, base.versionMinor),
    epid: base.epid,
    hwid: base.versionMajor >= 6 ? hwidText(hwid) : null,
    cmid: base.cmid.toLowerCase(),
    clientTime: filetimeIso(base.requestTime),
    currentCount: base.currentCount,
    activationInterval: base.activationInterval,
    renewalInterval: base.renewalInterval,
    verified,
  }
}

/** An answer that passed `verifyKmsResponse`. */
export function responseReport(answer: Pick<VerifiedAnswer, 'base' | 'hwid'>): ResponseReport {
  return baseReport(answer.base, answer.hwid, true)
}

/**
 * A refusal stub (NULL referent + HRESULT, §1.11). The stub carries no version; a decoder passes
 * the request's so that a refusal still says which protocol was refused.
 */
export function refusalReport(hresult: number, version: string | null = null): ResponseReport {
  return {
    hresult: hresult >>> 0,
    version,
    epid: null,
    hwid: null,
    cmid: null,
    clientTime: null,
    currentCount: null,
    activationInterval: null,
    renewalInterval: null,
    verified: false,
  }
}

/**
 * What an answer that failed verification still shows (a wrong CMID echo, a bad HMAC): decrypted
 * and parsed without any check, `verified: false`. Null when not even that works.
 */
export function unverifiedResponseReport(payload: Uint8Array): ResponseReport | null {
  try {
    if (payload.length < KMS_VERSION_LENGTH) return null
    const { major } = readKmsVersion(payload)
    const E = KMS_ENCRYPTED_FIELD
    const V6 = KMS_V6_RESPONSE_FIELD
    let plain: Uint8Array
    if (major < 5) plain = payload
    else {
      if (payload.length < E.ciphertext + 16) return null
      plain = decryptPadded(
        cipherForMajor(major),
        payload.subarray(E.iv, E.ciphertext),
        payload.subarray(E.ciphertext),
      )
    }
    const { value, length } = parseBaseResponse(plain)
    const hwid =
      major >= 6 && plain.length >= length + V6.xorSalts
        ? plain.slice(length + V6.hwid, length + V6.xorSalts)
        : null
    return baseReport(value, hwid, false)
  } catch (err) {
    if (err instanceof KmslabError) return null
    throw err
  }
}
