import { createServer, type Server, type Socket } from 'node:net'
import type { RandomSource } from '../crypto/random.js'
import { type Endpoint, hostPort } from '../wire/endpoint.js'
import type { TransferSyntax } from '../wire/ndr.js'
import type { ContextResult } from '../wire/rpc.js'
import type { BindPolicy } from './bind.js'
import { BusyPoller } from './busy-poll.js'
import { type Cidr, matchesAny } from './cidr.js'
import { RpcConnection } from './connection.js'
import { ListenError } from './errors.js'
import { CaptureRecorder } from './recorder.js'

export { ListenError }

import type { CallHandler, ConnectionSettings, HostConnection } from './types.js'

export interface ListenAddress {
  host: string
  port: number
}

export interface RpcServerOptions {
  listen: ListenAddress[]
  bindPolicy: BindPolicy
  handler: CallHandler
  random: RandomSource
  now?: () => number
  /** Silence between bytes after which a connection is closed. */
  idleTimeoutMs?: number
  /**
   * After each read, keep the event loop polling up to this long (µs) instead of sleeping, so the
   * next request of a busy client is picked up without a wake-up from idle; 0 turns it off. The
   * spin adapts (BusyPoller): it costs at most a tenth of the host's own CPU.
   */
  busyPollMicros?: number
  /** Total life of a connection, however busy. */
  connectionDeadlineMs?: number
  /** Connections over this are closed at once and counted, never queued. */
  maxConnections?: number
  /** Peers outside these networks are closed without a byte sent; null allows everyone. */
  allow?: Cidr[] | null
  capturePath?: string
  disconnectAfterAnswer?: boolean
  rejectBind?: (conn: HostConnection) => boolean
  events?: Partial<RpcServerEvents>
}

/** What the server tells its owner (the log and the embedding API). */
export interface RpcServerEvents {
  open(conn: HostConnection): void
  close(conn: HostConnection, reason: string, protocolError: boolean): void
  refused(client: Endpoint, reason: 'max-connections' | 'not-allowed'): void
  bind(
    conn: HostConnection,
    isBind: boolean,
    results: ContextResult[],
    accepted: Map<number, TransferSyntax>,
  ): void
  fault(conn: HostConnection, callId: number, status: number, reason: string): void
  /** A protocol oddity answered without closing (the connection goes on). */
  notice(conn: HostConnection, reason: string): void
}

export const DEFAULT_IDLE_TIMEOUT_MS = 30_000
export const DEFAULT_CONNECTION_DEADLINE_MS = 10 * 60_000
export const DEFAULT_MAX_CONNECTIONS = 16_384
export const DEFAULT_BUSY_POLL_MICROS = 100

/** The TCP side of the host: listeners, limits, and one RpcConnection per accepted socket. */
export class RpcServer {
  readonly connections = new Set<RpcConnection>()
  readonly stats = { accepted: 0, refusedMaxConnections: 0, refusedNotAllowed: 0, protocolErrors: 0 }
  private servers: Server[] = []
  private nextId = 1
  private sweeper: NodeJS.Timeout | null = null
  private readonly poller: BusyPoller
  private recorder: CaptureRecorder | undefined
  /** What every connection shares (one object, not one per accepted socket). */
  private settings: ConnectionSettings | null = null
  private readonly now: () => number
  private readonly events: RpcServerEvents

  constructor(private readonly options: RpcServerOptions) {
    this.now = options.now ?? Date.now
    this.poller = new BusyPoller(
      options.busyPollMicros ?? DEFAULT_BUSY_POLL_MICROS,
      () => this.servers.length > 0,
    )
    const noop = () => {}
    this.events = {
      open: noop,
      close: noop,
      refused: noop,
      bind: noop,
      fault: noop,
      notice: noop,
      ...options.events,
    }
  }

  /** The addresses actually bound (port 0 resolved). */
  get addresses(): ListenAddress[] {
    return this.servers.map((s) => {
      const a = s.address()
      return typeof a === 'object' && a ? { host: a.address, port: a.port } : { host: '', port: 0 }
    })
  }

  async start(): Promise<void> {
    if (this.options.capturePath) this.recorder = new CaptureRecorder(this.options.capturePath, this.now)
    this.settings = {
      bindPolicy: this.options.bindPolicy,
      handler: this.options.handler,
      random: this.options.random,
      now: this.now,
      recorder: this.recorder,
      disconnectAfterAnswer: this.options.disconnectAfterAnswer,
      rejectBind: this.options.rejectBind,
      handled: (startedAt) => this.poller.handled(startedAt),
      events: {
        onBind: (c, isBind, results, accepted) => this.events.bind(c, isBind, results, accepted),
        onFault: (c, callId, status, reason) => this.events.fault(c, callId, status, reason),
        onNotice: (c, reason) => this.events.notice(c, reason),
        onClose: (c, reason, protocolError) => {
          if (protocolError) this.stats.protocolErrors++
          this.events.close(c, reason, protocolError)
        },
        onGone: (c) => {
          this.connections.delete(c as RpcConnection)
          this.recorder?.close(c.id)
        },
      },
    }
    try {
      for (const address of this.options.listen) this.servers.push(await this.listenOn(address))
    } catch (err) {
      await this.stop()
      throw err
    }
    // One sweep for idle timeouts and deadlines, instead of a timer per socket refreshed on every
    // read and write: an idle connection closes within an eighth of its timeout after it.
    const idle = this.options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, Math.max(10, idle / 8)))
    this.sweeper.unref()
  }

  private listenOn(address: ListenAddress): Promise<Server> {
    return new Promise((resolve, reject) => {
      // The accepted socket's local port is the listener's: known here, no getsockname per connection.
      let port = address.port
      const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) =>
        this.accept(socket, port),
      )
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          new ListenError(
            `cannot listen on ${hostPort(address.host, address.port)}: ${err.code ?? err.message}`,
            address,
          ),
        )
      })
      server.listen({ host: address.host, port: address.port, backlog: 4096 }, () => {
        const bound = server.address()
        if (typeof bound === 'object' && bound) port = bound.port
        resolve(server)
      })
    })
  }

  private accept(socket: Socket, localPort: number): void {
    const startedAt = performance.now()
    // A peer that reset before we got here has no address any more: nothing to answer or log.
    if (socket.remoteAddress === undefined) {
      socket.destroy()
      return
    }
    const client = { address: socket.remoteAddress, port: socket.remotePort ?? 0 }
    if (this.options.allow && !matchesAny(client.address, this.options.allow)) {
      this.stats.refusedNotAllowed++
      socket.destroy()
      this.events.refused(client, 'not-allowed')
      return
    }
    if (this.connections.size >= (this.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS)) {
      this.stats.refusedMaxConnections++
      socket.destroy()
      this.events.refused(client, 'max-connections')
      return
    }
    this.stats.accepted++
    const conn = new RpcConnection(this.nextId++, socket, client, localPort, this.settings!)
    this.connections.add(conn)
    if (this.recorder) {
      this.recorder.open(conn.id, client, { address: socket.localAddress ?? '', port: localPort })
    }
    this.events.open(conn)
    // a client that opens a connection per activation connects again right after its FIN
    this.poller.handled(startedAt)
  }

  private sweep(): void {
    const limit = this.options.connectionDeadlineMs ?? DEFAULT_CONNECTION_DEADLINE_MS
    const idle = this.options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
    const now = this.now()
    const quietSince = performance.now() - idle
    for (const conn of this.connections) {
      if (now - conn.openedAt > limit) conn.close('connection deadline reached')
      else if (conn.lastActivity < quietSince) {
        const midPdu = conn.framer.pending > 0 && !conn.isBusy
        conn.close(midPdu ? 'idle timeout in the middle of a PDU' : 'idle timeout', midPdu)
      }
    }
  }

  /**
   * Stops accepting; gives connections `graceMs` to finish the answers in progress and the
   * requests already read behind them, then closes them.
   */
  async stop(graceMs = 1000): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper)
    this.sweeper = null
    const closing = this.servers.map((s) => new Promise<void>((r) => s.close(() => r())))
    this.servers = []
    const deadline = Date.now() + graceMs
    while (
      this.connections.size > 0 &&
      Date.now() < deadline &&
      [...this.connections].some((c) => c.hasWork)
    ) {
      await new Promise((r) => setTimeout(r, 10))
    }
    for (const conn of this.connections) {
      conn.close('host shutting down')
      conn.socket.destroy()
    }
    await Promise.all(closing)
    this.recorder?.end()
    this.recorder = undefined
  }
}
