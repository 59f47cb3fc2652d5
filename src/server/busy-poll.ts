/** Of the time spent handling events, the share a spin may cost on top. */
export const SPIN_SHARE = 0.1
/** Credit saved up at most (ms): a long rest cannot buy more than one long spin. */
const MAX_CREDIT_MS = 0.2
/** Spins in a row that ended with nothing to read, before the poller rests. */
const MISSES_TO_REST = 3
/** Events handled without spinning during a rest; the spin after it probes again. */
const REST_EVENTS = 64

/**
 * Adaptive busy-poll. On a small VM a wake-up from an idle event loop costs ~30 µs, twice per
 * round trip, which bounds one connection's rate more than the work does; polling (setImmediate)
 * for a while after each read, accept and FIN picks the next request up without that wake-up.
 * But a spin is CPU the user pays for, and only a spin that something arrives during pays off:
 * - spinning is bought with credit: handling an event earns SPIN_SHARE of the time it took, a spin
 *   spends the time it runs, so spins cost at most that share of the host's own CPU;
 * - after MISSES_TO_REST spins in a row with nothing read, the poller rests for REST_EVENTS
 *   events, then probes once more: a client slower than the credit lasts stops paying for spins,
 *   one that answers within it keeps its low latency. An idle host never spins.
 */
export class BusyPoller {
  private until = 0
  private spinning = false
  private spinStart = 0
  private credit = 0
  private misses = 0
  private rest = 0

  constructor(
    /** the longest spin after one event (µs); 0 turns polling off */
    private readonly maxMicros: number,
    /** false once the server stopped: a spin ends at once */
    private readonly active: () => boolean,
  ) {}

  /** An event was handled: it started at `startedAt` (performance.now()) and is done now. */
  handled(startedAt: number): void {
    if (this.maxMicros <= 0) return
    const now = performance.now()
    if (this.spinning) {
      // it arrived while spinning: that spin paid off; what it cost up to the event is spent
      this.credit -= Math.max(0, startedAt - this.spinStart)
      this.spinStart = now
      this.misses = 0
    }
    this.credit = Math.min(this.credit + (now - startedAt) * SPIN_SHARE, MAX_CREDIT_MS)
    if (this.rest > 0) {
      this.rest--
      return
    }
    this.until = now + Math.min(this.maxMicros / 1000, this.credit)
    if (this.spinning) return
    this.spinning = true
    this.spinStart = now
    setImmediate(this.spin)
  }

  private readonly spin = (): void => {
    const now = performance.now()
    if (now < this.until && this.active()) {
      setImmediate(this.spin)
      return
    }
    this.spinning = false
    this.credit = Math.max(0, this.credit - (now - this.spinStart))
    if (++this.misses >= MISSES_TO_REST) {
      this.misses = 0
      this.rest = REST_EVENTS
    }
  }
}
