import { FieldValueError, TruncatedError, WireError } from './errors.js'

export { FieldValueError, TruncatedError, WireError }

/**
 * The integer accessors of a DataView over `bytes`, same signatures and semantics (big-endian
 * unless `littleEndian`, RangeError past the end). Constructing a real DataView is a call into
 * V8's runtime (~0.3 µs in Node 20), and the wire layer makes one per PDU and per structure: about
 * a tenth of a host's CPU per activation went there. This is an ordinary object V8 allocates inline.
 */
export class ByteView {
  readonly byteLength: number

  constructor(private readonly bytes: Uint8Array) {
    this.byteLength = bytes.length
  }

  private at(offset: number, size: number): number {
    if (!(offset >= 0 && offset + size <= this.byteLength) || offset !== Math.floor(offset)) {
      throw new RangeError(`offset ${offset} + ${size} is outside the ${this.byteLength}-byte view`)
    }
    return offset
  }

  getUint8(offset: number): number {
    return this.bytes[this.at(offset, 1)]
  }

  setUint8(offset: number, value: number): void {
    this.bytes[this.at(offset, 1)] = value
  }

  getUint16(offset: number, littleEndian = false): number {
    const b = this.bytes
    const o = this.at(offset, 2)
    return littleEndian ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1]
  }

  setUint16(offset: number, value: number, littleEndian = false): void {
    const b = this.bytes
    const o = this.at(offset, 2)
    b[o + (littleEndian ? 0 : 1)] = value
    b[o + (littleEndian ? 1 : 0)] = value >>> 8
  }

  getUint32(offset: number, littleEndian = false): number {
    const b = this.bytes
    const o = this.at(offset, 4)
    return littleEndian
      ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
      : ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
  }

  setUint32(offset: number, value: number, littleEndian = false): void {
    const b = this.bytes
    const o = this.at(offset, 4)
    const step = littleEndian ? 1 : -1
    const first = littleEndian ? o : o + 3
    b[first] = value
    b[first + step] = value >>> 8
    b[first + 2 * step] = value >>> 16
    b[first + 3 * step] = value >>> 24
  }

  getBigUint64(offset: number, littleEndian = false): bigint {
    const o = this.at(offset, 8)
    const first = BigInt(this.getUint32(o, littleEndian))
    const second = BigInt(this.getUint32(o + 4, littleEndian))
    return littleEndian ? (second << 32n) | first : (first << 32n) | second
  }

  getBigInt64(offset: number, littleEndian = false): bigint {
    return BigInt.asIntN(64, this.getBigUint64(offset, littleEndian))
  }

  setBigUint64(offset: number, value: bigint, littleEndian = false): void {
    const o = this.at(offset, 8)
    const low = Number(BigInt.asUintN(32, value))
    const high = Number(BigInt.asUintN(32, value >> 32n))
    this.setUint32(o, littleEndian ? low : high, littleEndian)
    this.setUint32(o + 4, littleEndian ? high : low, littleEndian)
  }
}

export function view(bytes: Uint8Array): ByteView {
  return new ByteView(bytes)
}

export function need(layout: string, bytes: Uint8Array, length: number): void {
  if (bytes.length < length) throw new TruncatedError(layout, length, bytes.length)
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

export function toHex(bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]]
  return s
}

export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/[\s:]/g, '')
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) {
    throw new FieldValueError('not a hex string', 'hex', 0)
  }
  const out = new Uint8Array(clean.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(2 * i, 2 * i + 2), 16)
  return out
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i]
  return diff === 0
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

// ---- GUIDs in Microsoft wire order: u32 LE, u16 LE, u16 LE, then 8 bytes as written ----

export const NULL_GUID = '00000000-0000-0000-0000-000000000000'
const GUID_RE =
  /^\{?([0-9a-fA-F]{8})-([0-9a-fA-F]{4})-([0-9a-fA-F]{4})-([0-9a-fA-F]{4})-([0-9a-fA-F]{12})\}?$/

export function isGuid(text: string): boolean {
  return GUID_RE.test(text)
}

/** Hex digit value of a character code, or -1. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  const l = c | 0x20
  return l >= 97 && l <= 102 ? l - 87 : -1
}

/** The byte written by two hex digits at `i` of `text`, or -1. */
function hexByte(text: string, i: number): number {
  const hi = hexValue(text.charCodeAt(i))
  const lo = hexValue(text.charCodeAt(i + 1))
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo
}

/** Where each wire byte's two digits start in the 36-character form (mixed-endian order). */
const GUID_DIGITS = [6, 4, 2, 0, 11, 9, 16, 14, 19, 21, 24, 26, 28, 30, 32, 34]
const guidScratch = new Int16Array(16)

/** Writes `guid` (string form, braces optional) into `out` at `offset` in wire order. */
export function writeGuid(out: Uint8Array, offset: number, guid: string): void {
  // the plain 36-character form is what every caller passes on the hot path: no regex there
  const from = guid.charCodeAt(0) === 123 ? 1 : 0 // braces optional, as GUID_RE allows
  const to = guid.charCodeAt(guid.length - 1) === 125 ? guid.length - 1 : guid.length
  if (
    to - from === 36 &&
    guid.charCodeAt(from + 8) === 45 &&
    guid.charCodeAt(from + 13) === 45 &&
    guid.charCodeAt(from + 18) === 45 &&
    guid.charCodeAt(from + 23) === 45
  ) {
    let bad = 0
    for (let i = 0; i < 16; i++) {
      const b = hexByte(guid, from + GUID_DIGITS[i])
      bad |= b
      guidScratch[i] = b
    }
    if (bad >= 0) {
      for (let i = 0; i < 16; i++) out[offset + i] = guidScratch[i]
      return
    }
  }
  throw new FieldValueError(`not a GUID: ${JSON.stringify(guid)}`, 'guid', offset)
}

export function guidToBytes(guid: string): Uint8Array {
  const out = new Uint8Array(16)
  writeGuid(out, 0, guid)
  return out
}

/** Character codes of the lower-case hex digits. */
const HEX_DIGIT_CODES = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102]
/** The 36-character form, byte by byte: the wire byte written next, or -1 for a hyphen. */
const GUID_TEXT_ORDER = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]
const guidCodes: number[] = new Array(36).fill(45)

/**
 * Reads 16 wire-order bytes at `offset` as a lower-case GUID string. Built from character codes
 * in one call: joining 20 pieces with `+` makes a rope of ~12 cons cells (~10x the memory of the
 * flat string), and a host keeps these strings in its counter and history.
 */
export function readGuid(bytes: Uint8Array, offset: number): string {
  let j = 0
  for (let k = 0; k < GUID_TEXT_ORDER.length; k++) {
    const i = GUID_TEXT_ORDER[k]
    if (i < 0) {
      guidCodes[j++] = 45
    } else {
      const b = bytes[offset + i]
      guidCodes[j++] = HEX_DIGIT_CODES[b >> 4]
      guidCodes[j++] = HEX_DIGIT_CODES[b & 15]
    }
  }
  return String.fromCharCode.apply(null, guidCodes)
}

// ---- FILETIME: 100 ns intervals since 1601-01-01 UTC ----

const EPOCH_DIFF_MS = 11644473600000n

export function filetimeFromDate(date: Date): bigint {
  return (BigInt(date.getTime()) + EPOCH_DIFF_MS) * 10000n
}

/** Millisecond precision: the sub-millisecond part of a FILETIME is dropped. */
export function dateFromFiletime(ft: bigint): Date {
  return new Date(Number(ft / 10000n - EPOCH_DIFF_MS))
}

// ---- UTF-16LE strings ----

/** Encodes `text` as UTF-16LE into a zero-filled field of `size` bytes (NUL-terminated when it fits). */
export function writeUtf16Field(out: Uint8Array, offset: number, size: number, text: string): void {
  out.fill(0, offset, offset + size)
  const units = Math.min(text.length, size / 2)
  for (let i = 0; i < units; i++) {
    const u = text.charCodeAt(i)
    out[offset + 2 * i] = u & 0xff
    out[offset + 2 * i + 1] = u >>> 8
  }
}

let utf16Scratch = new Uint16Array(64)

/** Decodes UTF-16LE code units from `offset`, stopping at the first NUL or after `size` bytes. */
export function readUtf16Z(bytes: Uint8Array, offset: number, size: number): string {
  // One flat string from the code units (a `+=` per character would leave a rope behind).
  const max = Math.max(0, Math.min(size, bytes.length - offset)) >> 1
  if (utf16Scratch.length < max) utf16Scratch = new Uint16Array(max)
  const units = utf16Scratch
  let n = 0
  for (; n < max; n++) {
    const u = bytes[offset + 2 * n] | (bytes[offset + 2 * n + 1] << 8)
    if (u === 0) break
    units[n] = u
  }
  let s = ''
  // String.fromCharCode takes its arguments on the stack: go in slices for very long fields.
  for (let i = 0; i < n; i += 4096) {
    s += String.fromCharCode.apply(null, units.subarray(i, Math.min(n, i + 4096)) as unknown as number[])
  }
  return s
}
