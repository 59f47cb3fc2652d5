// The fields of each base request (§2.2): product ids and policy from the options, a fresh CMID,
// time and workstation name per request unless fixed, and per-request overrides that rebuild a
// recorded request byte for byte.

import { checkGuid, type Product } from '../catalog/index.js'
import type { RandomSource } from '../crypto/random.js'
import { UsageError } from '../errors.js'
import { randomInt } from '../kms/epid.js'
import { filetimeFromDate, NULL_GUID, readGuid } from '../wire/bytes.js'
import type { KmsBaseRequest } from '../wire/kms-request.js'
import type { ActivateOptions, RequestOverride } from './types.js'

export interface RequestFields {
  product: Product
  /** Major version; the minor is `protocolMinor` (0). */
  protocol: number
  protocolMinor: number
  requiredCount: number
  vm: boolean
  licenseStatus: number
  graceMinutes: number
  cmid?: string
  previousCmid: string
  workstation?: string
  time?: Date | bigint
  iv?: Uint8Array
  perRequest?: (index: number) => RequestOverride | undefined
}

/** A random RFC 4122 version-4 UUID, as a client creates its CMID. */
export function randomCmid(random: RandomSource): string {
  const b = random(16)
  b[7] = (b[7] & 0x0f) | 0x40 // version 4 (high nibble of the third group, stored little-endian)
  b[8] = (b[8] & 0x3f) | 0x80 // RFC 4122 variant
  return readGuid(b, 0)
}

const HOSTS = [
  'pc',
  'ws',
  'desk',
  'lab',
  'laptop',
  'build',
  'kiosk',
  'vm',
  'dev',
  'test',
  'reception',
  'meeting',
]
const UNITS = ['corp', 'office', 'branch', 'hq', 'eng', 'sales', 'finance', 'it', 'school', 'clinic']
const DOMAINS = [
  'example.com',
  'example.net',
  'example.org',
  'contoso.com',
  'fabrikam.com',
  'adatum.com',
  'local',
]

/** A plausible fully qualified workstation name such as "ws-0412.eng.contoso.com". */
export function randomWorkstation(random: RandomSource): string {
  const pick = (list: string[]) => list[randomInt(random, 0, list.length)]
  const number = String(randomInt(random, 0, 10000)).padStart(4, '0')
  return `${pick(HOSTS)}-${number}.${pick(UNITS)}.${pick(DOMAINS)}`
}

/** The request fields of the options, checked (UsageError for a bad GUID or value). */
export function requestFields(o: ActivateOptions, product: Product): RequestFields {
  const count = (n: number | undefined, name: string, max = 0xffffffff) => {
    if (n !== undefined && !(Number.isInteger(n) && n >= 0 && n <= max)) {
      throw new UsageError(`${name} must be a whole number from 0 to ${max}, got ${n}`, name)
    }
    return n
  }
  if (o.workstation !== undefined && o.workstation.length > 63) {
    throw new UsageError('the workstation name has more than 63 characters', 'workstation')
  }
  if (o.iv !== undefined && o.iv.length !== 16) throw new UsageError('the request IV must be 16 bytes', 'iv')
  return {
    product,
    protocol: count(o.protocol, 'protocol', 0xffff) ?? product.protocol,
    protocolMinor: count(o.protocolMinor, 'protocolMinor', 0xffff) ?? 0,
    requiredCount: count(o.requiredCount, 'requiredCount') ?? product.requiredCount,
    vm: o.vm ?? false,
    licenseStatus: count(o.licenseStatus, 'licenseStatus') ?? 2,
    graceMinutes: count(o.graceMinutes, 'graceMinutes') ?? 43200,
    cmid: o.cmid === undefined ? undefined : checkGuid(o.cmid, 'cmid'),
    previousCmid: o.previousCmid === undefined ? NULL_GUID : checkGuid(o.previousCmid, 'previous-cmid'),
    workstation: o.workstation,
    time: o.time,
    iv: o.iv,
    perRequest: o.perRequest,
  }
}

/** The base request and IV of request `index` (0-based). */
export function buildBase(
  f: RequestFields,
  index: number,
  random: RandomSource,
  now: () => Date,
): { base: KmsBaseRequest; iv?: Uint8Array } {
  const o = f.perRequest?.(index) ?? {}
  const time = f.time instanceof Date ? filetimeFromDate(f.time) : (f.time ?? filetimeFromDate(now()))
  const base: KmsBaseRequest = {
    versionMinor: f.protocolMinor,
    versionMajor: f.protocol,
    isClientVm: f.vm ? 1 : 0,
    licenseStatus: f.licenseStatus,
    graceTime: f.graceMinutes,
    appId: f.product.appId,
    skuId: f.product.skuId,
    kmsId: f.product.kmsId,
    cmid: f.cmid ?? (o.cmid === undefined ? randomCmid(random) : ''),
    requiredCount: f.requiredCount,
    requestTime: time,
    previousCmid: f.previousCmid,
    workstation: f.workstation ?? (o.workstation === undefined ? randomWorkstation(random) : ''),
    ...withoutIv(o),
  }
  const iv = o.iv ?? f.iv
  return iv ? { base, iv } : { base }
}

function withoutIv(o: RequestOverride): Partial<KmsBaseRequest> {
  const { iv: _iv, ...rest } = o
  return rest
}
