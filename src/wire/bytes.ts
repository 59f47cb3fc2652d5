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

/** Writes `guid` (string form, braces optional) into `out` at `offset` in wire order. */
export function writeGuid(out: Uint8Array, offset: number, guid: string): void {
  const m = GUID_RE.exec(guid)
  if (!m) throw new FieldValueError(`not a GUID: ${JSON.stringify(guid)}`, 'guid', offset)
  const a = Number.parseInt(m[1], 16)
  const b = Number.parseInt(m[2], 16)
  const c = Number.parseInt(m[3], 16)
  out[offset] = a & 0xff
  out[offset + 1] = (a >>> 8) & 0xff
  out[offset + 2] = (a >>> 16) & 0xff
  out[offset + 3] = (a >>> 24) & 0xff
  out[offset + 4] = b & 0xff
  out[offset + 5] = b >>> 8
  out[offset + 6] = c & 0xff
  out[offset + 7] = c >>> 8
  const tail = m[4] + m[5]
  for (let i = 0; i < 8; i++) out[offset + 8 + i] = Number.parseInt(tail.slice(2 * i, 2 * i + 2), 16)
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
