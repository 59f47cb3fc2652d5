import { UsageError } from '../errors.js'
import { ipBytes } from '../wire/pcap-frames.js'

/** A network in CIDR form, IPv4 or IPv6; IPv4-mapped IPv6 peers match IPv4 networks. */
export interface Cidr {
  text: string
  bytes: Uint8Array
  prefix: number
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/
const GROUP = /^[0-9a-f]{1,4}$/i

/** Eight groups of hex, or fewer with one "::" standing for the missing zero groups. */
function isIpv6(addr: string): boolean {
  const halves = addr.split('::')
  if (halves.length > 2) return false
  const groups = halves.map((h) => (h === '' ? [] : h.split(':')))
  const count = groups.reduce((n, g) => n + g.length, 0)
  if (!groups.every((g) => g.every((x) => GROUP.test(x)))) return false
  return halves.length === 2 ? count <= 7 : count === 8
}

export function parseCidr(text: string): Cidr {
  const [addr, prefixText, extra] = text.trim().split('/')
  const v4 = V4.exec(addr)
  const valid = v4 ? v4.slice(1).every((p) => Number(p) <= 255) : isIpv6(addr)
  const bits = v4 ? 32 : 128
  const prefix = prefixText === undefined ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN
  if (!valid || extra !== undefined || !(prefix >= 0 && prefix <= bits)) {
    throw new UsageError(`--allow: not a network in CIDR form: ${JSON.stringify(text)}`, 'allow')
  }
  return { text, bytes: ipBytes(addr), prefix }
}

export function matches(address: string, cidr: Cidr): boolean {
  const bytes = ipBytes(address)
  if (bytes.length !== cidr.bytes.length) return false
  const whole = cidr.prefix >>> 3
  for (let i = 0; i < whole; i++) if (bytes[i] !== cidr.bytes[i]) return false
  const rest = cidr.prefix & 7
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return (bytes[whole] & mask) === (cidr.bytes[whole] & mask)
}

export function matchesAny(address: string, list: Cidr[]): boolean {
  return list.some((c) => matches(address, c))
}

export function isLoopback(host: string): boolean {
  const b = ipBytes(host)
  return b.length === 4 ? b[0] === 127 : b.every((x, i) => x === (i === 15 ? 1 : 0))
}
