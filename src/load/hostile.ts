// The hostile-input catalogue: the bytes a KMS host must survive without a crash or a hang, each
// row of the README's "hostile input" table as a builder (a scanner's BIND to the endpoint
// mapper, impossible lengths, other RPC versions and data representations, KMS payloads a host
// must refuse, first bytes that are not RPC at all), and the valid PDUs they are variations of.
// Part of the load room because it is load of another kind: the host's robustness tests and the
// soak harness (bench/soak.mjs, through dist/) drive a host with the same builders, and so can
// anyone testing a KMS host of their own.
import { randomUUID } from 'node:crypto'
import { WINDOWS_APP_ID } from '../catalog/index.js'
import { cbcEncrypt } from '../crypto/cbc.js'
import { cryptoRandom } from '../crypto/random.js'
import { V6_CIPHER } from '../crypto/rijndael.js'
import { type BuiltRequest, buildKmsRequest } from '../kms/verify.js'
import { concatBytes, filetimeFromDate, NULL_GUID } from '../wire/bytes.js'
import {
  emitBaseRequest,
  KMS_BASE_FIELD,
  KMS_V4_REQUEST_FIELD,
  type KmsBaseRequest,
} from '../wire/kms-request.js'
import { emitRequestStub, type TransferSyntax } from '../wire/ndr.js'
import {
  btfnUuid,
  emitBindPdu,
  emitRequestPdu,
  type InterfaceId,
  KMS_INTERFACE_UUID,
  KMS_INTERFACE_VERSION,
  makeHeader,
  NDR32_UUID,
  NDR32_VERSION,
  type PresentationContext,
  PTYPE,
  RPC_HEADER_FIELD,
} from '../wire/rpc.js'

/** A plausible Windows 11 Enterprise base request with a fresh CMID, the current time, and `fields`. */
export function baseRequest(fields: Partial<KmsBaseRequest> = {}): KmsBaseRequest {
  return {
    versionMinor: 0,
    versionMajor: 6,
    isClientVm: 0,
    licenseStatus: 2,
    graceTime: 43200,
    appId: WINDOWS_APP_ID,
    skuId: '73111121-5638-40f6-bc11-f1d7b0d64300',
    kmsId: '58e2134f-8e11-4d17-9cb2-91069c151148',
    cmid: randomUUID(),
    requiredCount: 25,
    requestTime: filetimeFromDate(new Date()),
    previousCmid: NULL_GUID,
    workstation: 'lab-pc.example.test',
    ...fields,
  }
}

export const KMS_IFACE: InterfaceId = {
  uuid: KMS_INTERFACE_UUID,
  versionMajor: KMS_INTERFACE_VERSION.major,
  versionMinor: KMS_INTERFACE_VERSION.minor,
}
export const NDR32 = { uuid: NDR32_UUID, version: NDR32_VERSION }
export const BTFN = { uuid: btfnUuid(3), version: 1 }
/** The endpoint mapper: what a scanner binds to first. */
export const EPM_IFACE: InterfaceId = {
  uuid: 'e1af8308-5d1f-11c9-91a4-08002b14a0fa',
  versionMajor: 3,
  versionMinor: 0,
}

export function context(
  contextId: number,
  iface: InterfaceId = KMS_IFACE,
  syntaxes = [NDR32],
): PresentationContext {
  return { contextId, abstractSyntax: iface, transferSyntaxes: syntaxes }
}

export function bind(
  contexts: PresentationContext[] = [context(0)],
  opts: { callId?: number; alter?: boolean; declared?: number } = {},
): Uint8Array {
  return emitBindPdu({
    header: makeHeader(opts.alter ? PTYPE.ALTER_CONTEXT : PTYPE.BIND, opts.callId ?? 2, 0x13),
    maxXmitFrag: 5840,
    maxRecvFrag: 5840,
    assocGroupId: 0,
    contexts,
    declaredContextCount: opts.declared,
  })
}

export function request(
  payload: Uint8Array,
  opts: { callId?: number; contextId?: number; opnum?: number; syntax?: TransferSyntax } = {},
): Uint8Array {
  return emitRequestPdu({
    header: makeHeader(PTYPE.REQUEST, opts.callId ?? 3),
    allocHint: 0,
    contextId: opts.contextId ?? 0,
    opnum: opts.opnum ?? 0,
    stub: emitRequestStub(payload, opts.syntax ?? 'ndr32'),
  })
}

export function kms(major = 6, fields: Partial<KmsBaseRequest> = {}): BuiltRequest {
  return buildKmsRequest(baseRequest({ versionMajor: major, ...fields }), cryptoRandom)
}

/** KMS payloads the host must refuse with 0x8007000D, by what is wrong with them. */
export function badKmsPayloads(): Record<string, Uint8Array> {
  const v4 = kms(4).payload
  const badMac = v4.slice()
  badMac[KMS_V4_REQUEST_FIELD.end - 1] ^= 0x55
  // A V6 request whose 240 encrypted bytes decrypt to the base request padded with 05, not 04.
  const plain = new Uint8Array(240).fill(5)
  plain.set(emitBaseRequest(baseRequest({ versionMajor: 6 })))
  const iv = cryptoRandom(16)
  const badPadding = concatBytes(Uint8Array.of(0, 0, 6, 0), iv, cbcEncrypt(V6_CIPHER, iv, plain))
  const v7 = kms(6).payload.slice()
  v7[KMS_BASE_FIELD.versionMajor] = 7
  const v3 = v4.slice()
  v3[KMS_BASE_FIELD.versionMajor] = 3
  return {
    'V4 request of 251 bytes': v4.subarray(0, 251),
    'V4 request of 260 bytes': concatBytes(v4, new Uint8Array(8)),
    'V6 request of 250 bytes': kms(6).payload.subarray(0, 250),
    'V5 request of 276 bytes': concatBytes(kms(5).payload, new Uint8Array(16)),
    'V6 padding not 04 04 04 04': badPadding,
    'V4 MAC that does not verify': badMac,
    'version 7.0': v7,
    'version 3.0': v3,
    'version 6.1': (() => {
      const p = kms(6).payload.slice()
      p[KMS_BASE_FIELD.versionMinor] = 1
      return p
    })(),
    'empty payload': new Uint8Array(0),
  }
}

/** First bytes that are not an RPC header at all: closed on without a byte sent. */
export const NOT_RPC: Record<string, Uint8Array> = {
  'HTTP request': Buffer.from('GET / HTTP/1.1\r\nHost: kms.example.test\r\n\r\n'),
  'TLS client hello': Uint8Array.from([
    0x16,
    0x03,
    0x01,
    0x00,
    0xa5,
    0x01,
    0x00,
    0x00,
    0xa1,
    0x03,
    0x03,
    ...new Uint8Array(32).fill(0x42),
  ]),
  'random bytes': Uint8Array.from({ length: 200 }, (_, i) => (i * 151 + 0x9d) & 0xff),
  'SSH banner': Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'),
}

/** A valid BIND whose frag_length field says `length`. */
export function bindWithLength(length: number): Uint8Array {
  const b = bind()
  b[RPC_HEADER_FIELD.fragLength] = length & 0xff
  b[RPC_HEADER_FIELD.fragLength + 1] = length >> 8
  return b
}

/** A valid BIND sent as RPC version `major.minor`. */
export function bindVersion(major: number, minor: number, callId = 9): Uint8Array {
  const b = bind([context(0)], { callId })
  b[RPC_HEADER_FIELD.rpcVersion] = major
  b[RPC_HEADER_FIELD.rpcVersionMinor] = minor
  return b
}

/** A valid BIND with the data representation bytes replaced (big-endian, EBCDIC, VAX floats). */
export function bindDrep(drep: [number, number]): Uint8Array {
  const b = bind()
  b[RPC_HEADER_FIELD.drep] = drep[0]
  b[RPC_HEADER_FIELD.drep + 1] = drep[1]
  if ((drep[0] & 0xf0) === 0) {
    // big-endian: the length fields are sent big-endian too, as such a peer would
    const length = b.length
    b[RPC_HEADER_FIELD.fragLength] = length >> 8
    b[RPC_HEADER_FIELD.fragLength + 1] = length & 0xff
  }
  return b
}
