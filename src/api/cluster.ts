/**
 * `--workers N`: N worker processes (node:cluster) behind the same listen addresses, acting as one
 * host. With memory or SQLite state the primary owns the state (and the SQLite owner lock): the
 * workers send what they record over IPC, a group per event-loop turn, and the primary counts
 * them on its one counter and group-commits them before it answers; an answer leaves a worker only
 * after that. With PostgreSQL state each worker talks to the database, which does the counting.
 * A worker that dies is replaced; SIGTERM stops the workers first, then closes the state.
 */
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { defaultCatalog, loadCatalog } from '../catalog/index.js'
import { cryptoRandom, seededRandom } from '../crypto/random.js'
import { UsageError } from '../errors.js'
import { ActivationCounter } from '../kms/counter.js'
import type { ListenAddress } from '../server/server.js'
import { StoreWriteError } from '../store/errors.js'
import { isPostgresLocation } from '../store/postgres-connect.js'
import type { Counted, Recorded, RecordItem } from '../store/recorder.js'
import type { HostIdentity } from '../store/types.js'
import {
  decodeCounted,
  decodeItem,
  encodeCounted,
  encodeItem,
  type WireCounted,
  type WireItem,
} from './cluster-codec.js'
import { FORWARD_ENV, type OpsBatch, type PrimaryOperations, startPrimaryOperations } from './cluster-ops.js'
import { type HostState, openHostState } from './host-state.js'
import { resolveHttpOptions } from './operations.js'
import type { HostOptions, StateProxy } from './options.js'

/** `--workers N|auto`: auto is the cores this process may use. */
export function parseWorkers(text: string | undefined): number {
  if (text === undefined) return 1
  if (text === 'auto') return availableParallelism()
  const n = Number(text)
  if (!/^[0-9]+$/.test(text) || n < 1 || n > 256)
    throw new UsageError(
      `kmslab serve: --workers takes auto or an integer 1..256, got ${JSON.stringify(text)}`,
      'workers',
    )
  return n
}

type ToPrimary =
  | { kmslab: 'hello' }
  | { kmslab: 'record'; id: number; items: WireItem[] }
  | { kmslab: 'listening'; addresses: ListenAddress[]; identity: HostIdentity; location: string }
  | OpsBatch
type ToWorker =
  | { kmslab: 'state'; location: string; identity: HostIdentity }
  | { kmslab: 'recorded'; id: number; results: (WireCounted | null)[] }
  | { kmslab: 'record-failed'; id: number; message: string }

export const isWorker = () => cluster.isWorker

/** What the primary reports, for the CLI to print. */
export interface PrimaryEvents {
  /** the first worker listens: one banner for all */
  listening(info: {
    addresses: ListenAddress[]
    identity: HostIdentity
    location: string
    httpUrl: string | null
  }): void
  workerDied(pid: number, how: string, restarting: boolean): void
  storeError(err: Error): void
}

export interface Primary {
  /** settles when every worker listens (and the HTTP port, if asked); rejects when that fails */
  ready: Promise<void>
  /** resolves with an exit code when a worker could not start (then everything is stopped) */
  failed: Promise<number>
  stop(): Promise<void>
}

/** Runs the primary: opens the state it owns (not PostgreSQL), forks the workers, relays records. */
export async function startPrimary(
  options: HostOptions,
  workers: number,
  on: PrimaryEvents,
): Promise<Primary> {
  const location = options.state ?? 'memory'
  // refused before anything starts: an exposed HTTP port without a token
  if (options.http) resolveHttpOptions(options.http)
  const startedAt = Date.now()
  const shared = isPostgresLocation(location)
  let state: HostState | null = null
  // the primary owns a local state; a shared one it opens only to read it for the HTTP port
  if (!shared || options.http) {
    const seeded = options.seed !== undefined
    state = await openHostState({
      location,
      historyDays: options.historyDays,
      memoryHistoryLimit: options.memoryHistoryLimit,
      connectWaitMs: options.stateWaitMs,
      counter: new ActivationCounter(),
      catalog: options.products ? loadCatalog({ extraFile: options.products }) : defaultCatalog(),
      identity: {
        random: seeded ? seededRandom(options.seed!) : cryptoRandom,
        now: Date.now(),
        ndr64: (options.ndr64 ?? true) && (options.btfn ?? true),
        hostBuild: options.hostBuild,
        lcid: options.lcid,
        epids: options.epid,
        hwid: options.hwid,
      },
      now: Date.now,
      onError: on.storeError,
      onRecovered: () => {},
    })
  }
  const opened = state
  const owned = shared ? null : state
  let ops: PrimaryOperations | null = null
  let stopping = false
  let listening = false
  let started = 0
  let readyResolve: () => void = () => {}
  let readyReject: (err: Error) => void = () => {}
  const ready = new Promise<void>((resolve, reject) => {
    readyResolve = resolve
    readyReject = reject
  })
  let failedResolve: (code: number) => void = () => {}
  const failed = new Promise<number>((resolve) => {
    failedResolve = resolve
  })

  const record = (w: Worker, id: number, wire: WireItem[]) => {
    const reply = (m: ToWorker) => {
      if (w.isConnected()) w.send(m)
    }
    if (!owned) return reply({ kmslab: 'record-failed', id, message: 'this primary owns no state' })
    const failed = (err: Error) => {
      if (owned.writeFailed()) on.storeError(err)
      reply({ kmslab: 'record-failed', id, message: err.message })
    }
    try {
      // counted now, in arrival order, on the one counter; durable together (group commit)
      // the primary's own state (memory, SQLite) records synchronously: LocalRecorder
      const recorded = wire.map((item) => owned.recorder.record(decodeItem(item)) as Recorded)
      const results = recorded.map((r) => encodeCounted(r.counted))
      const durable = recorded.filter((r) => r.durable !== null).map((r) => r.durable)
      // memory state: durable at once, so the answer goes without a promise
      if (durable.length === 0) return reply({ kmslab: 'recorded', id, results })
      Promise.all(durable).then(
        () => reply({ kmslab: 'recorded', id, results }),
        (err: Error) => failed(err),
      )
    } catch (err) {
      failed(err as Error)
    }
  }

  const fork = () => {
    const w = cluster.fork({ KMSLAB_WORKER: '1', ...(options.http ? { [FORWARD_ENV]: '1' } : {}) })
    w.on('message', (m: ToPrimary) => {
      if (m?.kmslab === 'hello' && owned)
        w.send({ kmslab: 'state', location: owned.location, identity: owned.identity })
      else if (m?.kmslab === 'record') record(w, m.id, m.items)
      else if (m?.kmslab === 'ops') ops?.take(w.id, m)
      else if (m?.kmslab === 'listening' && !listening) {
        // one banner, once every worker listens
        if (++started < workers) return
        listening = true
        void serveOperations(m.addresses).then(
          (httpUrl) => {
            on.listening({ ...m, httpUrl })
            readyResolve()
          },
          (err: Error) => readyReject(err),
        )
      }
    })
    w.on('exit', (code, signal) => {
      ops?.forget(w.id)
      if (stopping) return
      if (!listening) {
        // a worker that cannot start (address in use, state unreachable) will not do better again
        stopping = true
        for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM')
        void opened?.close()
        failedResolve(code ?? 1)
        return
      }
      on.workerDied(w.process.pid ?? 0, signal ?? `exit ${code}`, true)
      fork()
    })
  }
  const serveOperations = async (addresses: ListenAddress[]): Promise<string | null> => {
    if (!options.http || !opened) return null
    ops = await startPrimaryOperations(opened, options, addresses, startedAt, () => !stopping)
    return ops.operations.url
  }
  for (let i = 0; i < workers; i++) fork()

  return {
    ready,
    failed,
    stop: async () => {
      stopping = true
      await ops?.operations.close()
      const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead())
      await Promise.all(
        alive.map(
          (w) =>
            new Promise<void>((resolve) => {
              w.once('exit', () => resolve())
              w.process.kill('SIGTERM')
              setTimeout(() => {
                w.process.kill('SIGKILL')
              }, 3000).unref()
            }),
        ),
      )
      await opened?.close()
    },
  }
}

/**
 * In a worker: the state proxy to give startHost when the primary owns the state (null with
 * PostgreSQL, which each worker opens itself).
 */
export async function joinPrimary(options: HostOptions): Promise<StateProxy | null> {
  if (isPostgresLocation(options.state ?? 'memory')) return null
  const waiting = new Map<
    number,
    { items: RecordItem[]; resolve: (r: (Counted | null)[]) => void; reject: (e: Error) => void }
  >()
  let nextId = 1
  let location = ''
  const first = new Promise<{ location: string; identity: HostIdentity }>((resolve) => {
    process.on('message', (m: ToWorker) => {
      if (m?.kmslab === 'state') resolve(m)
      else if (m?.kmslab === 'recorded' || m?.kmslab === 'record-failed') {
        const w = waiting.get(m.id)
        waiting.delete(m.id)
        if (!w) return
        if (m.kmslab === 'recorded') w.resolve(m.results.map((r, i) => decodeCounted(r, w.items[i])))
        else w.reject(new StoreWriteError(m.message, location))
      }
    })
  })
  // the primary gone, nothing can be recorded: stop rather than refuse forever
  process.on('disconnect', () => {
    if (!leaving) process.exit(1)
  })
  process.send?.({ kmslab: 'hello' } satisfies ToPrimary)
  const s = await first
  location = s.location
  return {
    location: s.location,
    identity: s.identity,
    send: (items) =>
      new Promise((resolve, reject) => {
        const id = nextId++
        waiting.set(id, { items, resolve, reject })
        process.send?.({ kmslab: 'record', id, items: items.map(encodeItem) } satisfies ToPrimary)
      }),
  }
}

let leaving = false

/** In a worker whose host has closed: lets go of the primary so the process can end. */
export function leavePrimary(): void {
  leaving = true
  if (cluster.isWorker) process.disconnect?.()
}

/** In a worker: tells the primary this worker listens (the first one's banner is printed). */
export function reportListening(addresses: ListenAddress[], identity: HostIdentity, location: string): void {
  process.send?.({ kmslab: 'listening', addresses, identity, location } satisfies ToPrimary)
}
