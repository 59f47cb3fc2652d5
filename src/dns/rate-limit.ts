// Per-source token buckets: each source (an IPv4 address, an IPv6 /64, since one machine usually
// holds a whole /64) may send `rate` queries a second on average and `burst` at once. A flood from
// one source then costs the server little and does not crowd out the others.
import { isIP } from 'node:net'

interface Bucket {
  tokens: number
  /** ms */
  at: number
}

/** Past this many tracked sources, the full (idle) buckets are forgotten. */
const SWEEP_AT = 10_000

export function sourceKey(address: string): string {
  if (isIP(address) !== 6) return address
  if (address.startsWith('::ffff:')) return address.slice(7)
  const [head] = address.split('::')
  const groups = head.split(':')
  // The first four groups; an address written with :: early has zeros there.
  return `${[...groups, '0', '0', '0', '0'].slice(0, 4).join(':')}::/64`
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>()

  /** `rate` 0 turns limiting off. */
  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes a token for `address`; false when its bucket is empty (the query should be refused). */
  take(address: string): boolean {
    if (this.rate <= 0) return true
    const key = sourceKey(address)
    const t = this.now()
    let b = this.buckets.get(key)
    if (!b) {
      if (this.buckets.size >= SWEEP_AT) this.sweep(t)
      b = { tokens: this.burst, at: t }
      this.buckets.set(key, b)
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) * this.rate) / 1000)
    b.at = t
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  private sweep(t: number): void {
    for (const [key, b] of this.buckets)
      if (b.tokens + ((t - b.at) * this.rate) / 1000 >= this.burst) this.buckets.delete(key)
  }
}
