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
import type { Counted, RecordItem } from '../store/recorder.js'
import type { HostIdentity } from '../store/types.js'
import { type HostState, openHostState } from './host-state.js'
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
  | { kmslab: 'record'; id: number; items: RecordItem[] }
  | { kmslab: 'listening'; addresses: ListenAddress[]; identity: HostIdentity; location: string }
type ToWorker =
  | { kmslab: 'state'; location: string; identity: HostIdentity }
  | { kmslab: 'recorded'; id: number; results: (Counted | null)[] }
  | { kmslab: 'record-failed'; id: number; message: string }

export const isWorker = () => cluster.isWorker

/** What the primary reports, for the CLI to print. */
export interface PrimaryEvents {
  /** the first worker listens: one banner for all */
  listening(info: { addresses: ListenAddress[]; identity: HostIdentity; location: string }): void
  workerDied(pid: number, how: string, restarting: boolean): void
  storeError(err: Error): void
}

export interface Primary {
  /** settles when the first worker listens; rejects with its exit code if it never does */
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
  let state: HostState | null = null
  if (!isPostgresLocation(location)) {
    const seeded = options.seed !== undefined
    state = await openHostState({
      location,
      historyDays: options.historyDays,
      memoryHistoryLimit: options.memoryHistoryLimit,
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
  const owned = state
  let stopping = false
  let listening = false
  let started = 0
  let readyResolve: () => void = () => {}
  const ready = new Promise<void>((resolve) => {
    readyResolve = resolve
  })
  let failedResolve: (code: number) => void = () => {}
  const failed = new Promise<number>((resolve) => {
    failedResolve = resolve
  })

  const record = async (w: Worker, id: number, items: RecordItem[]) => {
    const reply = (m: ToWorker) => {
      if (w.isConnected()) w.send(m)
    }
    if (!owned) return reply({ kmslab: 'record-failed', id, message: 'this primary owns no state' })
    try {
      // counted now, in arrival order, on the one counter; durable together (group commit)
      const recorded = await Promise.all(items.map((item) => owned.recorder.record(item)))
      await Promise.all(recorded.map((r) => r.durable))
      reply({ kmslab: 'recorded', id, results: recorded.map((r) => r.counted) })
    } catch (err) {
      if (owned.writeFailed()) on.storeError(err as Error)
      reply({ kmslab: 'record-failed', id, message: (err as Error).message })
    }
  }

  const fork = () => {
    const w = cluster.fork({ KMSLAB_WORKER: '1' })
    w.on('message', (m: ToPrimary) => {
      if (m?.kmslab === 'hello' && owned)
        w.send({ kmslab: 'state', location: owned.location, identity: owned.identity })
      else if (m?.kmslab === 'record') void record(w, m.id, m.items)
      else if (m?.kmslab === 'listening' && !listening) {
        // one banner, once every worker listens
        if (++started < workers) return
        listening = true
        on.listening(m)
        readyResolve()
      }
    })
    w.on('exit', (code, signal) => {
      if (stopping) return
      if (!listening) {
        // a worker that cannot start (address in use, state unreachable) will not do better again
        stopping = true
        for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM')
        void owned?.close()
        failedResolve(code ?? 1)
        return
      }
      on.workerDied(w.process.pid ?? 0, signal ?? `exit ${code}`, true)
      fork()
    })
  }
  for (let i = 0; i < workers; i++) fork()

  return {
    ready,
    failed,
    stop: async () => {
      stopping = true
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
      await owned?.close()
    },
  }
}

/**
 * In a worker: the state proxy to give startHost when the primary owns the state (null with
 * PostgreSQL, which each worker opens itself).
 */
export async function joinPrimary(options: HostOptions): Promise<StateProxy | null> {
  if (isPostgresLocation(options.state ?? 'memory')) return null
  const waiting = new Map<number, { resolve: (r: (Counted | null)[]) => void; reject: (e: Error) => void }>()
  let nextId = 1
  let location = ''
  const first = new Promise<{ location: string; identity: HostIdentity }>((resolve) => {
    process.on('message', (m: ToWorker) => {
      if (m?.kmslab === 'state') resolve(m)
      else if (m?.kmslab === 'recorded' || m?.kmslab === 'record-failed') {
        const w = waiting.get(m.id)
        waiting.delete(m.id)
        if (m.kmslab === 'recorded') w?.resolve(m.results)
        else w?.reject(new StoreWriteError(m.message, location))
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
        waiting.set(id, { resolve, reject })
        process.send?.({ kmslab: 'record', id, items } satisfies ToPrimary)
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
