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
import { type SentRequest, verifyKmsResponse } from '../kms/client.js'
import { VerificationError } from '../kms/errors.js'
import { filetimeFromDate, readGuid } from '../wire/bytes.js'
import { emitBaseRequest, type KmsBaseRequest } from '../wire/kms-request.js'
import type { TransferSyntax } from '../wire/ndr.js'

/** Base request offsets used here (§2.2). */
const CMID = 64
const TIME = 84
const BASE_LENGTH = 236
const ENCRYPTED_LENGTH = 240
/** REQUEST / RESPONSE PDU layout (§1.9, §1.10, §1.11). */
const STUB = 24
const STUB_HEAD = { ndr32: 8, ndr64: 16 } as const
const RESPONSE_HEAD = { ndr32: 12, ndr64: 24 } as const
/** Where a refusal's HRESULT sits in the stub: right after the NULL referent. */
const REFUSAL_HRESULT = { ndr32: 8, ndr64: 16 } as const

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
    const payloadLength = this.major < 5 ? BASE_LENGTH + 16 : 4 + 16 + ENCRYPTED_LENGTH
    const stubLength = STUB_HEAD[syntax] + payloadLength
    const pdu = new Uint8Array(STUB + stubLength)
    const dv = new DataView(pdu.buffer)
    pdu.set([5, 0, 0, 0x03, 0x10, 0, 0, 0])
    dv.setUint16(8, pdu.length, true)
    dv.setUint32(16, stubLength, true)
    dv.setUint16(20, contextId, true)
    dv.setUint32(STUB, payloadLength, true)
    if (syntax === 'ndr32') dv.setUint32(STUB + 4, payloadLength, true)
    else dv.setUint32(STUB + 8, payloadLength, true)
    this.payloadAt = STUB + STUB_HEAD[syntax]
    if (this.major >= 5) pdu.set(this.plain.subarray(0, 4), this.payloadAt)
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
    pdu[12] = callId
    pdu[13] = callId >>> 8
    pdu[14] = callId >>> 16
    pdu[15] = callId >>> 24
    const at = this.payloadAt
    if (this.major < 5) {
      const base = p.subarray(0, BASE_LENGTH)
      pdu.set(base, at)
      pdu.set(v4Mac(base), at + BASE_LENGTH)
      return pdu
    }
    drawInto(this.iv, 0)
    pdu.set(this.iv, at + 4)
    this.cipher.decryptBlock(this.iv, 0, this.d, 0)
    cbcEncryptInto(this.cipher, this.iv, p, 0, ENCRYPTED_LENGTH, pdu, at + 20)
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
    const ptype = pdu[2]
    if (ptype === 3) return n >= 28 ? `fault:${hex8(dv.getUint32(24, true))}` : 'protocol'
    if (ptype !== 2 || pdu[0] !== 5 || pdu[1] !== 0 || (pdu[3] & 3) !== 3 || pdu[4] !== 0x10)
      return 'protocol'
    if (dv.getUint16(10, true) !== 0 || dv.getUint32(12, true) !== this.callId >>> 0) return 'protocol'
    if (n < STUB + REFUSAL_HRESULT[this.syntax] + 4 || dv.getUint16(20, true) !== this.contextId)
      return 'protocol'
    const size = dv.getUint32(STUB, true)
    const ndr32 = this.syntax === 'ndr32'
    const referent = ndr32
      ? dv.getUint32(STUB + 4, true)
      : dv.getUint32(STUB + 8, true) | dv.getUint32(STUB + 12, true)
    if (referent === 0) return `refused:${hex8(dv.getUint32(STUB + REFUSAL_HRESULT[this.syntax], true))}`
    if (n < STUB + RESPONSE_HEAD[this.syntax]) return 'protocol'
    const conformance = ndr32
      ? dv.getUint32(STUB + 8, true)
      : dv.getUint32(STUB + 20, true) === 0
        ? dv.getUint32(STUB + 16, true)
        : -1
    const start = STUB + RESPONSE_HEAD[this.syntax]
    const end = start + size
    const hresultAt = (end + 3) & ~3
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
    if (n < 4 || payload[0] !== p[0] || payload[1] !== p[1] || payload[2] !== p[2] || payload[3] !== p[3])
      return false
    let plain: Uint8Array
    let at: number
    let length: number
    if (this.major < 5) {
      plain = payload
      at = 0
      length = n - 16
      if (length < 8) return false
    } else {
      if (n < 36 || (n - 20) % 16 !== 0) return false
      let sameIv = true
      for (let i = 0; i < 16; i++) {
        this.responseIv[i] = payload[4 + i]
        if (payload[4 + i] !== this.iv[i]) sameIv = false
      }
      if (this.major === 5 ? !sameIv : sameIv) return false // V6 same IV: the slow path warns
      if (this.work.length < n) this.work = new Uint8Array(n + 64)
      plain = this.work
      at = 16
      cbcDecryptInto(this.cipher, this.responseIv, payload, 20, n - 20, plain, at)
      const pad = plain[at + n - 21]
      if (pad < 1 || pad > 16) return false
      for (let i = 1; i <= pad; i++) if (plain[at + n - 20 - i] !== pad) return false
      length = n - 20 - pad
    }
    const pidSize = plain[at + 4] | (plain[at + 5] << 8) | (plain[at + 6] << 16) | (plain[at + 7] << 24)
    if (pidSize < 2 || pidSize > 128 || pidSize % 2 !== 0) return false
    const baseLength = 44 + pidSize
    const tail = this.major < 5 ? 0 : this.major === 5 ? 48 : 88
    if (length !== baseLength + tail) return false
    for (let o = at + 8; o < at + 8 + pidSize - 2; o += 2) if ((plain[o] | plain[o + 1]) === 0) return false
    if ((plain[at + 6 + pidSize] | plain[at + 7 + pidSize]) !== 0) return false
    const t = at + 8 + pidSize
    for (let i = 0; i < 16; i++) if (plain[t + i] !== p[CMID + i]) return false
    for (let i = 0; i < 8; i++) if (plain[t + 16 + i] !== p[TIME + i]) return false
    const count = plain[t + 24] | (plain[t + 25] << 8) | (plain[t + 26] << 16) | (plain[t + 27] << 24)
    if (this.major < 5) {
      const mac = v4Mac(payload.subarray(0, length))
      for (let i = 0; i < 16; i++) if (mac[i] !== payload[length + i]) return false
    } else {
      const x = at + baseLength
      for (let i = 0; i < 16; i++) this.r[i] = plain[x + i] ^ this.d[i]
      const h = sha256(this.r)
      for (let i = 0; i < 32; i++) if (h[i] !== plain[x + 16 + i]) return false
      if (this.major >= 6) {
        for (let i = 0; i < 16; i++) if (plain[x + 56 + i] !== this.d[i]) return false
        // the HMAC message is D(response IV) followed by the payload: decrypt it into the 16
        // bytes left free in front of the plaintext, so the message is one contiguous view
        V6_CIPHER.decryptBlock(this.responseIv, 0, plain, 0)
        const mac = v6Hmac(this.hmacKey, plain.subarray(0, x + 72))
        for (let i = 0; i < 16; i++) if (mac[i] !== plain[x + 72 + i]) return false
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
