import { KmslabError } from '../errors.js'

/**
 * Bytes that do not form the layout a parser expected. `layout` names the PDU or structure,
 * `offset` is the byte offset (from the start of that structure) where the problem is, and
 * `field` names the field when there is one.
 */
export class WireError extends KmslabError {
  constructor(
    message: string,
    readonly layout: string,
    readonly offset: number,
    readonly field?: string,
  ) {
    super(`${layout}: ${message} (offset ${offset}${field ? `, field ${field}` : ''})`)
  }
}

/** The structure needs more bytes than were given. */
export class TruncatedError extends WireError {
  constructor(layout: string, needed: number, got: number) {
    super(`needs ${needed} bytes, got ${got}`, layout, got)
  }
}

/** A field holds a value the layout does not allow. */
export class FieldValueError extends WireError {}

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
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

/** Reads 16 wire-order bytes at `offset` as a lower-case GUID string. */
export function readGuid(bytes: Uint8Array, offset: number): string {
  const h = (i: number) => HEX[bytes[offset + i]]
  return (
    h(3) +
    h(2) +
    h(1) +
    h(0) +
    '-' +
    h(5) +
    h(4) +
    '-' +
    h(7) +
    h(6) +
    '-' +
    h(8) +
    h(9) +
    '-' +
    h(10) +
    h(11) +
    h(12) +
    h(13) +
    h(14) +
    h(15)
  )
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

/** Decodes UTF-16LE code units from `offset`, stopping at the first NUL or after `size` bytes. */
export function readUtf16Z(bytes: Uint8Array, offset: number, size: number): string {
  let s = ''
  for (let i = 0; i + 1 < size; i += 2) {
    const u = bytes[offset + i] | (bytes[offset + i + 1] << 8)
    if (u === 0) break
    s += String.fromCharCode(u)
  }
  return s
}
