// What `kmslab bench` counts: a latency histogram that records without allocating (log-linear
// buckets, ~3% wide, so percentiles come out within 3% at any scale) and errors by kind.

const SUB_BITS = 5
const SUB = 1 << SUB_BITS // 32 buckets per power of two
const LINEAR = 2 * SUB // values below this (µs) have a bucket each
const MAX_SHIFT = 26
const BUCKETS = LINEAR + MAX_SHIFT * SUB

function bucketOf(us: number): number {
  if (us < LINEAR) return Math.max(us, 0)
  const top = 31 - Math.clz32(us) // ≥ SUB_BITS + 1
  const shift = top - SUB_BITS
  if (shift > MAX_SHIFT) return BUCKETS - 1
  return LINEAR + (shift - 1) * SUB + ((us >>> shift) - SUB)
}

/** The middle of a bucket's range, in µs. */
function bucketValue(bucket: number): number {
  if (bucket < LINEAR) return bucket
  const shift = Math.floor((bucket - LINEAR) / SUB) + 1
  const low = ((bucket - LINEAR) % SUB) + SUB
  return (low << shift) + ((1 << shift) >> 1)
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS)
  count = 0
  maxUs = 0
  sumUs = 0

  /** Records one latency given in milliseconds (performance.now() differences). */
  record(ms: number): void {
    const us = Math.round(ms * 1000)
    const clamped = Math.min(us, 0x7fffffff)
    this.counts[bucketOf(clamped)]++
    this.count++
    this.sumUs += clamped
    if (clamped > this.maxUs) this.maxUs = clamped
  }

  /** The latency at quantile q (0..1) in ms; the exact maximum for q = 1; 0 when empty. */
  quantileMs(q: number): number {
    if (this.count === 0) return 0
    if (q >= 1) return this.maxUs / 1000
    const rank = Math.ceil(q * this.count)
    let seen = 0
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]
      if (seen >= rank) return Math.min(bucketValue(b), this.maxUs) / 1000
    }
    return this.maxUs / 1000
  }

  meanMs(): number {
    return this.count === 0 ? 0 : this.sumUs / this.count / 1000
  }
}

/** Counts by kind, in first-seen order (an error kind is a short stable string). */
export class KindCounter {
  private readonly map = new Map<string, number>()
  total = 0

  add(kind: string, n = 1): void {
    this.map.set(kind, (this.map.get(kind) ?? 0) + n)
    this.total += n
  }

  toObject(): Record<string, number> {
    return Object.fromEntries([...this.map].sort((a, b) => b[1] - a[1]))
  }
}

/** One measurement window's figures. */
export class BenchStats {
  readonly latency = new LatencyHistogram()
  /** Open loop only: how late the bench itself sent each request after its scheduled time. */
  readonly sendLag = new LatencyHistogram()
  readonly errors = new KindCounter()
  readonly warnings = new KindCounter()
  /** Requests started (a connect attempt counts in new-connection mode). */
  started = 0
  /** Answers that passed every check. */
  verified = 0
  /** Verified answers whose count is below what the client asked for (it would not activate yet). */
  belowThreshold = 0
  /** TCP connections opened (connect completed). */
  connects = 0
}
