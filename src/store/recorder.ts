/**
 * The seam between the host's handler and the state: record one request and, for a request to be
 * answered, count its CMID in the same step. Where one process owns the state the count comes
 * from the in-process counter at once and only durability is awaited (group commit); where the
 * state is shared (PostgreSQL, a primary process over IPC) the count comes back with the commit,
 * and requests arriving together still travel in one transaction.
 */
import {
  type ActivationCounter,
  type CounterMode,
  type CounterOutcome,
  reportedCountFor,
} from '../kms/counter.js'
import { StoreWriteError } from './errors.js'
import { mergeBatches } from './group-commit.js'
import type { CommitBatch, HistoryRow } from './types.js'

/** What counting one request needs: the pool key, the clock and how the host reports counts. */
export interface CountAsk {
  appId: string
  cmid: string
  requiredCount: number
  /** ms since the epoch */
  now: number
  mode: CounterMode
  /** a fault-injection rule's count, reported instead of the pool's */
  reportedOverride?: number
}

export interface RecordItem {
  /** the history row; its reportedCount is filled in when the request is counted */
  row: HistoryRow
  count: CountAsk | null
}

export interface Counted {
  outcome: CounterOutcome
  reportedCount: number
}

export interface Recorded {
  counted: Counted | null
  /** settles when the request is durable; null when it already is */
  durable: Promise<void> | null
}

export interface Recorder {
  /** Sync when the counter is in this process; throws or rejects (StoreWriteError) when it cannot record. */
  record(item: RecordItem): Recorded | Promise<Recorded>
}

/** Counts one item on `counter` and says what to write: the pure core every recorder shares. */
export function countItem(
  counter: ActivationCounter,
  item: RecordItem,
): { counted: Counted | null; batch: CommitBatch } {
  const a = item.count
  if (!a) return { counted: null, batch: { history: [item.row], upserts: [], removals: [] } }
  const o = counter.record(a.appId, a.cmid, a.requiredCount, a.now)
  const reportedCount =
    a.reportedOverride ?? reportedCountFor(a.mode, counter.capacity, o.poolSize, a.requiredCount)
  return {
    counted: { outcome: { ...o, reportedCount }, reportedCount },
    batch: {
      history: [{ ...item.row, reportedCount }],
      upserts: [{ appId: o.appId, cmid: o.cmid, lastSeen: o.lastSeen, client: clientOf(item.row) }],
      removals: o.removed,
    },
  }
}

const clientOf = (r: HistoryRow) => ({
  workstation: r.workstation,
  skuId: r.skuId,
  licenseStatus: r.licenseStatus,
  vm: r.vm,
})

/** Counts items in order on `counter`: their results and the one batch that writes them all. */
export function countItems(
  counter: ActivationCounter,
  items: readonly RecordItem[],
): { results: (Counted | null)[]; batch: CommitBatch } {
  const done = items.map((item) => countItem(counter, item))
  return { results: done.map((d) => d.counted), batch: mergeBatches(done.map((d) => d.batch)) }
}

/** The owner's recorder: the in-process counter counts, `commit` makes it durable (grouped or not). */
export class LocalRecorder implements Recorder {
  constructor(
    private readonly counter: ActivationCounter,
    private readonly commit: (batch: CommitBatch) => Promise<void> | null,
  ) {}

  record(item: RecordItem): Recorded {
    const { counted, batch } = countItem(this.counter, item)
    return { counted, durable: this.commit(batch) }
  }
}

interface Pending {
  item: RecordItem
  resolve: (r: Recorded) => void
  reject: (e: Error) => void
}

/**
 * A recorder for a store that counts: items arriving in the same event-loop turn, and all those
 * arriving while one group is in flight, go to `send` together (group commit); one group in
 * flight at a time, so each carries as many as the store's latency gathered.
 */
export class BatchingRecorder implements Recorder {
  private queue: Pending[] = []
  private inFlight = false
  private timer: NodeJS.Immediate | null = null
  readonly stats = { groups: 0, items: 0 }

  constructor(
    private readonly send: (items: RecordItem[]) => Promise<(Counted | null)[]>,
    private readonly location: string,
    private readonly maxBatch = 512,
  ) {}

  record(item: RecordItem): Promise<Recorded> {
    return new Promise<Recorded>((resolve, reject) => {
      this.queue.push({ item, resolve, reject })
      if (!this.inFlight) this.timer ??= setImmediate(() => this.flush())
    })
  }

  private flush(): void {
    this.timer = null
    if (this.inFlight || this.queue.length === 0) return
    const group = this.queue.splice(0, this.maxBatch)
    this.inFlight = true
    this.stats.groups++
    this.stats.items += group.length
    const settle = () => {
      this.inFlight = false
      if (this.queue.length > 0) this.flush()
    }
    this.send(group.map((p) => p.item)).then(
      (results) => {
        settle()
        for (const [i, p] of group.entries()) p.resolve({ counted: results[i] ?? null, durable: null })
      },
      (e: unknown) => {
        settle()
        const err =
          e instanceof StoreWriteError
            ? e
            : new StoreWriteError(
                `state store ${this.location}: ${(e as Error)?.message ?? e}`,
                this.location,
                e,
              )
        for (const p of group) p.reject(err)
      },
    )
  }
}
