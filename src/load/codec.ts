// The load generator's request and answer handling, built to cost the bench as little as possible
// while keeping every check: each connection owns one prebuilt REQUEST PDU and one plaintext base
// request, and an activation patches the CMID (a per-connection counter in its last 4 bytes, so
// every request is a new client to the host's counter), the request time, the call id and a fresh
// IV, then encrypts in place. Answers are checked on bytes, without building strings or objects;
// any answer the fast path does not accept goes through the client's full verifier
// (verifyKmsResponse), which names the check that failed, so the two cannot disagree silently.
import { randomFillSync } from 'node:crypto'
import { cbcDecryptInto, cbcEncryptInto } from '../crypto/cbc.js'
import { sha256, v4Mac, v6Hmac, v6HmacKey } from '../crypto/kms-crypto.js'
import { type BlockCipher, V5_CIPHER, V6_CIPHER } from '../crypto/rijndael.js'
import { VerificationError } from '../kms/errors.js'
import { type SentRequest, verifyKmsResponse } from '../kms/verify.js'
import { filetimeFromDate, readGuid } from '../wire/bytes.js'
import {
  emitBaseRequest,
  KMS_BASE_FIELD,
  KMS_ENCRYPTED_FIELD,
  type KmsBaseRequest,
  V5_REQUEST_LENGTH,
} from '../wire/kms-request.js'
import {
  BASE_RESPONSE_FIXED_LENGTH,
  KMS_RESPONSE_FIELD,
  KMS_RESPONSE_TAIL_FIELD,
  KMS_V5_RESPONSE_FIELD,
  KMS_V6_RESPONSE_FIELD,
  V4_RESPONSE_MAC_LENGTH,
} from '../wire/kms-response.js'
import {
  emitRequestStub,
  NDR_REQUEST_STUB_FIELD,
  NDR_RESPONSE_STUB_FIELD,
  type TransferSyntax,
} from '../wire/ndr.js'
import {
  align4,
  DREP_LE_ASCII_IEEE,
  emitRequestPdu,
  makeHeader,
  PFC,
  PTYPE,
  REQUEST_FIELD,
  RESPONSE_FIELD,
  RPC_HEADER_FIELD,
} from '../wire/rpc.js'

const CMID = KMS_BASE_FIELD.cmid
const TIME = KMS_BASE_FIELD.requestTime
const BASE_LENGTH = KMS_BASE_FIELD.end
const IV = KMS_ENCRYPTED_FIELD.iv
const CIPHERTEXT = KMS_ENCRYPTED_FIELD.ciphertext
/** The V5/V6 plaintext: the base request and its PKCS#7 padding (4 bytes of 4). */
const ENCRYPTED_LENGTH = V5_REQUEST_LENGTH - CIPHERTEXT
const H = RPC_HEADER_FIELD
const STUB = REQUEST_FIELD.stub
const RESPONSE_STUB = RESPONSE_FIELD.stub
const REQUEST_STUB = NDR_REQUEST_STUB_FIELD
const RESPONSE = NDR_RESPONSE_STUB_FIELD
/** Base response fields after the ePID, relative to its end. */
const TAIL = KMS_RESPONSE_TAIL_FIELD
const V5 = KMS_V5_RESPONSE_FIELD
const V6 = KMS_V6_RESPONSE_FIELD
/** The drep's first byte of `10 00 00 00`: little-endian, ASCII. */
const DREP_LE_BYTE = DREP_LE_ASCII_IEEE & 0xff
const WHOLE = PFC.FIRST_FRAG | PFC.LAST_FRAG

// ---- a clock shared by every connection: the request time as FILETIME bytes, per millisecond ----

let clockMs = -1
const clockBytes = new Uint8Array(8)
const clockView = new DataView(clockBytes.buffer)
let clockKey: Uint8Array = new Uint8Array(16)

function tick(): void {
  const ms = Date.now()
  if (ms === clockMs) return
  clockMs = ms
  const ft = filetimeFromDate(new Date(ms))
  clockView.setBigUint64(0, ft, true)
  clockKey = v6HmacKey(ft)
}

// ---- IVs: 16 fresh bytes from a pool refilled in one call ----

const pool = new Uint8Array(4096)
let poolAt = pool.length

function drawInto(dst: Uint8Array, at: number): void {
  if (poolAt + 16 > pool.length) {
    randomFillSync(pool)
    poolAt = 0
  }
  for (let i = 0; i < 16; i++) dst[at + i] = pool[poolAt + i]
  poolAt += 16
}

export interface CodecSpec {
  major: number
  minor: number
  appId: string
  skuId: string
  kmsId: string
  requiredCount: number
  workstation: string
  /** 12 bytes that start every CMID of this connection (the counter fills the last 4). */
  cmidPrefix: Uint8Array
}

/** What one answer came to: null when it verified, else the error kind. */
export type AnswerVerdict = string | null

/**
 * One connection's requests and answer checks. Not re-entrant: one request in flight, and the
 * PDU returned by `request` stays valid until the next call (the host has read it by then).
 */
export class ActivationCodec {
  readonly major: number
  private readonly plain: Uint8Array
  private readonly cipher: BlockCipher
  private pdu: Uint8Array = new Uint8Array(0)
  private payloadAt = 0
  private syntax: TransferSyntax = 'ndr32'
  private contextId = 0
  private counter = 0
  private callId = 0
  private readonly d = new Uint8Array(16)
  private readonly iv = new Uint8Array(16)
  private readonly responseIv = new Uint8Array(16)
  private readonly r = new Uint8Array(16)
  private work = new Uint8Array(512)
  private hmacKey: Uint8Array = new Uint8Array(16)
  /** Set by `check` for a verified answer: the host's count is below the client's threshold. */
  belowThreshold = false
  /** Set by `check`: a warning vlmcs would print about the last answer (else null). */
  warning: string | null = null

  constructor(private readonly spec: CodecSpec) {
    this.major = spec.major
    const base: KmsBaseRequest = {
      versionMinor: spec.minor,
      versionMajor: spec.major,
      isClientVm: 0,
      licenseStatus: 2,
      graceTime: 43200,
      appId: spec.appId,
      skuId: spec.skuId,
      kmsId: spec.kmsId,
      cmid: '00000000-0000-4000-8000-000000000000',
      requiredCount: spec.requiredCount,
      requestTime: 0n,
      previousCmid: '00000000-0000-0000-0000-000000000000',
      workstation: spec.workstation,
    }
    this.plain = new Uint8Array(ENCRYPTED_LENGTH)
    this.plain.set(emitBaseRequest(base))
    this.plain.fill(4, BASE_LENGTH)
    this.plain.set(spec.cmidPrefix.subarray(0, 12), CMID)
    this.plain[CMID + 7] = (this.plain[CMID + 7] & 0x0f) | 0x40 // RFC 4122 version 4
    this.plain[CMID + 8] = (this.plain[CMID + 8] & 0x3f) | 0x80 // and variant
    this.cipher = spec.major === 5 ? V5_CIPHER : V6_CIPHER
  }

  /** Lays out the REQUEST PDU for the context the bind gave. */
  setContext(syntax: TransferSyntax, contextId: number): void {
    if (this.pdu.length > 0 && syntax === this.syntax && contextId === this.contextId) return
    this.syntax = syntax
    this.contextId = contextId
    const payloadLength = this.major < 5 ? BASE_LENGTH + 16 : CIPHERTEXT + ENCRYPTED_LENGTH
    const payload = new Uint8Array(payloadLength)
    if (this.major >= 5) payload.set(this.plain.subarray(0, IV))
    const stub = emitRequestStub(payload, syntax)
    const pdu = emitRequestPdu({
      header: makeHeader(PTYPE.REQUEST, 0, PFC.FIRST_FRAG | PFC.LAST_FRAG),
      allocHint: stub.length,
      contextId,
      opnum: 0,
      stub,
    })
    this.payloadAt = STUB + REQUEST_STUB[syntax].payload
    this.pdu = pdu
  }

  /** The next REQUEST PDU: a new CMID, the current time, a fresh IV, `callId`. */
  request(callId: number): Uint8Array {
    tick()
    const p = this.plain
    const n = ++this.counter
    p[CMID + 12] = n
    p[CMID + 13] = n >>> 8
    p[CMID + 14] = n >>> 16
    p[CMID + 15] = n >>> 24
    p.set(clockBytes, TIME)
    this.hmacKey = clockKey
    const pdu = this.pdu
    this.callId = callId
    pdu[H.callId] = callId
    pdu[H.callId + 1] = callId >>> 8
    pdu[H.callId + 2] = callId >>> 16
    pdu[H.callId + 3] = callId >>> 24
    const at = this.payloadAt
    if (this.major < 5) {
      const base = p.subarray(0, BASE_LENGTH)
      pdu.set(base, at)
      pdu.set(v4Mac(base), at + BASE_LENGTH)
      return pdu
    }
    drawInto(this.iv, 0)
    pdu.set(this.iv, at + IV)
    this.cipher.decryptBlock(this.iv, 0, this.d, 0)
    cbcEncryptInto(this.cipher, this.iv, p, 0, ENCRYPTED_LENGTH, pdu, at + CIPHERTEXT)
    return pdu
  }

  /**
   * Checks an answer PDU to the last request: RPC header and NDR framing, then every client check
   * of the KMS answer. Returns null when it verified, else the error kind ('fault:0x1c010003',
   * 'refused:0xc004f042', 'protocol', 'verify:hmac', ...).
   */
  check(pdu: Uint8Array): AnswerVerdict {
    this.belowThreshold = false
    this.warning = null
    const n = pdu.length
    const dv = new DataView(pdu.buffer, pdu.byteOffset, n)
    const ptype = pdu[H.ptype]
    if (ptype === PTYPE.FAULT) {
      return n >= RESPONSE_FIELD.status + 4
        ? `fault:${hex8(dv.getUint32(RESPONSE_FIELD.status, true))}`
        : 'protocol'
    }
    if (
      ptype !== PTYPE.RESPONSE ||
      pdu[H.rpcVersion] !== 5 ||
      pdu[H.rpcVersionMinor] !== 0 ||
      (pdu[H.flags] & WHOLE) !== WHOLE ||
      pdu[H.drep] !== DREP_LE_BYTE
    )
      return 'protocol'
    if (dv.getUint16(H.authLength, true) !== 0 || dv.getUint32(H.callId, true) !== this.callId >>> 0)
      return 'protocol'
    const f = RESPONSE[this.syntax]
    if (
      n < RESPONSE_STUB + f.refusalHresult + 4 ||
      dv.getUint16(RESPONSE_FIELD.contextId, true) !== this.contextId
    )
      return 'protocol'
    const size = dv.getUint32(RESPONSE_STUB + f.responseSize, true)
    const ndr32 = this.syntax === 'ndr32'
    // NDR64's referent and conformance are u64: a non-zero high half is a different value
    const referent = ndr32
      ? dv.getUint32(RESPONSE_STUB + f.referent, true)
      : dv.getUint32(RESPONSE_STUB + f.referent, true) | dv.getUint32(RESPONSE_STUB + f.referent + 4, true)
    if (referent === 0) return `refused:${hex8(dv.getUint32(RESPONSE_STUB + f.refusalHresult, true))}`
    if (n < RESPONSE_STUB + f.payload) return 'protocol'
    const conformance = ndr32
      ? dv.getUint32(RESPONSE_STUB + f.conformance, true)
      : dv.getUint32(RESPONSE_STUB + f.conformance + 4, true) === 0
        ? dv.getUint32(RESPONSE_STUB + f.conformance, true)
        : -1
    const start = RESPONSE_STUB + f.payload
    const end = start + size
    const hresultAt = align4(end)
    if (conformance !== size || hresultAt + 4 > n) return 'protocol'
    const hresult = dv.getUint32(hresultAt, true)
    if (hresult !== 0) return `refused:${hex8(hresult)}`
    const payload = pdu.subarray(start, end)
    if (this.fast(payload)) return null
    return this.slow(payload)
  }

  /** Every check of verifyKmsResponse on bytes; false means "not accepted here", not "rejected". */
  private fast(payload: Uint8Array): boolean {
    const n = payload.length
    const p = this.plain
    if (n < IV || payload[0] !== p[0] || payload[1] !== p[1] || payload[2] !== p[2] || payload[3] !== p[3])
      return false
    let plain: Uint8Array
    let at: number
    let length: number
    if (this.major < 5) {
      plain = payload
      at = 0
      length = n - V4_RESPONSE_MAC_LENGTH
      if (length < KMS_RESPONSE_FIELD.pid) return false
    } else {
      if (n < CIPHERTEXT + 16 || (n - CIPHERTEXT) % 16 !== 0) return false
      let sameIv = true
      for (let i = 0; i < 16; i++) {
        this.responseIv[i] = payload[IV + i]
        if (payload[IV + i] !== this.iv[i]) sameIv = false
      }
      if (this.major === 5 ? !sameIv : sameIv) return false // V6 same IV: the slow path warns
      if (this.work.length < n) this.work = new Uint8Array(n + 64)
      // the plaintext goes 16 bytes in: the V6 HMAC message puts D(response IV) in front of it
      plain = this.work
      at = 16
      const size = n - CIPHERTEXT
      cbcDecryptInto(this.cipher, this.responseIv, payload, CIPHERTEXT, size, plain, at)
      const pad = plain[at + size - 1]
      if (pad < 1 || pad > 16) return false
      for (let i = 1; i <= pad; i++) if (plain[at + size - i] !== pad) return false
      length = size - pad
    }
    const sizeAt = at + KMS_RESPONSE_FIELD.pidSize
    const pidSize =
      plain[sizeAt] | (plain[sizeAt + 1] << 8) | (plain[sizeAt + 2] << 16) | (plain[sizeAt + 3] << 24)
    if (pidSize < 2 || pidSize > 128 || pidSize % 2 !== 0) return false
    const baseLength = BASE_RESPONSE_FIXED_LENGTH + pidSize
    const tail = this.major < 5 ? 0 : this.major === 5 ? V5.end : V6.end
    if (length !== baseLength + tail) return false
    const pid = at + KMS_RESPONSE_FIELD.pid
    for (let o = pid; o < pid + pidSize - 2; o += 2) if ((plain[o] | plain[o + 1]) === 0) return false
    if ((plain[pid + pidSize - 2] | plain[pid + pidSize - 1]) !== 0) return false
    const t = pid + pidSize
    for (let i = 0; i < 16; i++) if (plain[t + TAIL.cmid + i] !== p[CMID + i]) return false
    for (let i = 0; i < 8; i++) if (plain[t + TAIL.requestTime + i] !== p[TIME + i]) return false
    const c = t + TAIL.currentCount
    const count = plain[c] | (plain[c + 1] << 8) | (plain[c + 2] << 16) | (plain[c + 3] << 24)
    if (this.major < 5) {
      const mac = v4Mac(payload.subarray(0, length))
      for (let i = 0; i < V4_RESPONSE_MAC_LENGTH; i++) if (mac[i] !== payload[length + i]) return false
    } else {
      const x = at + baseLength
      for (let i = 0; i < 16; i++) this.r[i] = plain[x + V5.randomXorD + i] ^ this.d[i]
      const h = sha256(this.r)
      for (let i = 0; i < 32; i++) if (h[i] !== plain[x + V5.hash + i]) return false
      if (this.major >= 6) {
        for (let i = 0; i < 16; i++) if (plain[x + V6.xorSalts + i] !== this.d[i]) return false
        // the HMAC message is D(response IV) followed by the payload: decrypt it into the 16
        // bytes left free in front of the plaintext, so the message is one contiguous view
        V6_CIPHER.decryptBlock(this.responseIv, 0, plain, 0)
        const mac = v6Hmac(this.hmacKey, plain.subarray(0, x + V6.hmac))
        for (let i = 0; i < 16; i++) if (mac[i] !== plain[x + V6.hmac + i]) return false
      }
    }
    this.belowThreshold = count < this.spec.requiredCount
    return true
  }

  /** The full verifier, for answers the fast path did not accept: it names the failed check. */
  private slow(payload: Uint8Array): AnswerVerdict {
    const p = this.plain
    const sent: SentRequest = {
      major: this.major,
      minor: this.spec.minor,
      cmid: readGuid(p, CMID),
      requestTime: new DataView(p.buffer, p.byteOffset).getBigUint64(TIME, true),
      iv: this.major >= 5 ? this.iv.slice() : null,
      decryptedIv: this.major >= 5 ? this.d.slice() : null,
    }
    try {
      const answer = verifyKmsResponse(sent, payload.slice())
      if (answer.warnings.length > 0)
        this.warning = answer.warnings.some((w) => /IV/.test(w)) ? 'iv-rule' : 'other'
      else if (answer.hmacSlot !== null && answer.hmacSlot !== 0) this.warning = 'hmac-adjacent-slot'
      else this.warning = 'fast-path-miss'
      this.belowThreshold = answer.base.currentCount < this.spec.requiredCount
      return null
    } catch (err) {
      if (err instanceof VerificationError) return `verify:${err.check}`
      throw err
    }
  }
}

function hex8(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`
}
