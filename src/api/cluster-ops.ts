/**
 * `--workers N` with `--http`: the primary serves the one HTTP port. It owns the state (memory,
 * SQLite) or reads it (PostgreSQL), so pools, totals and history are its own; what only the
 * workers see (each request's outcome and duration, faults, open connections) they forward in
 * small batches, one IPC message per event-loop turn, only when the primary asked for them.
 */
import { EventEmitter } from 'node:events'
import { defaultCatalog, loadCatalog } from '../catalog/index.js'
import type { ListenAddress } from '../server/server.js'
import type { HostState } from './host-state.js'
import { type HostOperations, startOperations } from './operations.js'
import { type HostOptions, resolveAllow } from './options.js'
import type { ActivationRecord, HostEvents, KmsHost } from './types.js'

/** A worker's batch: activations (record without its decoded request, seconds), faults, connections open. */
export interface OpsBatch {
  kmslab: 'ops'
  a: [Omit<ActivationRecord, 'request'>, number][]
  f: [status: number, reason: string][]
  c: number
}

/** The fork environment that asks a worker to forward its live figures. */
export const FORWARD_ENV = 'KMSLAB_WORKER_OPS'

/** In a worker asked to: forwards activations, faults and its connection count to the primary. */
export function forwardOperations(host: KmsHost): void {
  if (process.env[FORWARD_ENV] !== '1' || !process.send) return
  let open = 0
  let batch: OpsBatch | null = null
  const next = (): OpsBatch => {
    if (batch) return batch
    batch = { kmslab: 'ops', a: [], f: [], c: open }
    setImmediate(() => {
      const b = batch!
      batch = null
      b.c = open
      if (process.connected) process.send?.(b)
    })
    return batch
  }
  host.events.on('activation', (r, seconds) => {
    const { request: _, ...row } = r
    next().a.push([row, seconds])
  })
  host.events.on('fault', (f) => next().f.push([f.status, f.reason]))
  host.events.on('connection', (c) => {
    open += c.type === 'open' ? 1 : -1
    next()
  })
}

export interface PrimaryOperations {
  operations: HostOperations
  /** a worker's batch arrived */
  take(workerId: number, b: OpsBatch): void
  /** a worker is gone: its connections with it */
  forget(workerId: number): void
}

/** Starts the primary's HTTP side on `state`, with the workers' live figures summed. */
export async function startPrimaryOperations(
  state: HostState,
  options: HostOptions,
  addresses: ListenAddress[],
  startedAt: number,
  isListening: () => boolean,
): Promise<PrimaryOperations> {
  const events = new EventEmitter<HostEvents>()
  const connections = new Map<number, number>()
  const operations = await startOperations(
    {
      startedAt,
      addresses,
      stateLocation: state.location,
      catalog: options.products ? loadCatalog({ extraFile: options.products }) : defaultCatalog(),
      identity: state.identity,
      counter: state.view.counter,
      store: state.view.store,
      events,
      now: Date.now,
      connections: () => {
        let n = 0
        for (const c of connections.values()) n += c
        return n
      },
      listening: isListening,
      allow: resolveAllow(options.allow),
    },
    options.http,
  )
  return {
    operations,
    take: (id, b) => {
      connections.set(id, b.c)
      for (const [row, seconds] of b.a) events.emit('activation', row as ActivationRecord, seconds)
      for (const [status, reason] of b.f)
        events.emit('fault', { id: 0, client: '', callId: 0, status, reason })
    },
    forget: (id) => connections.delete(id),
  }
}
