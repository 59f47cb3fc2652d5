// A TCP connection as a stream of DCE-RPC PDUs: connect within a time limit, send bytes, and read
// whole PDUs cut by frag_length whatever the TCP segmentation (§1.14), each within a time limit.
import net from 'node:net'
import { hostPort } from '../wire/endpoint.js'
import { checkRpcFrame } from '../wire/rpc.js'
import { RpcError } from './errors.js'

export class PduSocket {
  private buffer: Buffer = Buffer.alloc(0)
  private wake: (() => void) | null = null
  private ended: string | null = null

  private constructor(
    private readonly socket: net.Socket,
    readonly remote: string,
    /** The peer's IP address (the name in `remote` may stand for several). */
    readonly remoteAddress: string,
  ) {
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk
      this.wake?.()
    })
    const end = (why: string) => {
      this.ended ??= why
      this.wake?.()
    }
    socket.on('end', () => end('the host closed the connection'))
    socket.on('close', () => end('the connection closed'))
    socket.on('error', (err: NodeJS.ErrnoException) => end(`connection error ${err.code ?? err.message}`))
  }

  static connect(host: string, port: number, timeoutMs: number, address = host): Promise<PduSocket> {
    const remote = hostPort(host, port)
    const to = address === host ? remote : `${remote} (${address})`
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: address, port })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new RpcError('timeout', `no connection to ${to} within ${timeoutMs} ms`))
      }, timeoutMs)
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        socket.destroy()
        reject(
          new RpcError('connect', `cannot connect to ${to}: ${err.code ?? err.message}`, undefined, err.code),
        )
      })
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.removeAllListeners('error')
        resolve(new PduSocket(socket, remote, socket.remoteAddress ?? address))
      })
    })
  }

  /** The host closed (or reset) the connection; nothing more can be sent on it. */
  get closedByPeer(): boolean {
    return this.ended !== null
  }

  /** Bytes received that do not form a whole PDU yet (0: no answer had started). */
  get pendingBytes(): number {
    return this.buffer.length
  }

  /**
   * Lets the event loop deliver what has arrived or is about to (a host's FIN right behind its
   * answer), so that `closedByPeer` is current before the next request, like vlmcs' look at the
   * socket. A FIN later than that is caught when the next call finds the connection closed.
   */
  settle(): Promise<void> {
    // The timer alone may fire before the loop polls the socket again when a slow turn outlasted
    // its millisecond; resolving from setImmediate puts one poll phase (which reads a pending FIN)
    // between the timer and the next request.
    return new Promise((resolve) => setTimeout(() => setImmediate(resolve), 1))
  }

  send(bytes: Uint8Array): void {
    if (this.ended !== null) throw new RpcError('closed', `${this.ended} before the client could send`)
    this.socket.write(bytes)
  }

  close(): void {
    this.socket.destroy()
  }

  /** Closes the connection (its state is unknown after a broken answer) and hands `err` back. */
  fail(err: RpcError): RpcError {
    this.socket.destroy()
    return err
  }

  /** The next whole PDU: the header, then exactly frag_length bytes in all. */
  async read(what: string, timeoutMs: number): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const b = this.buffer
      const frame = checkRpcFrame(b)
      if (frame.verdict === 'pdu') {
        this.buffer = b.subarray(frame.length)
        return b.subarray(0, frame.length)
      }
      if (frame.verdict === 'not-rpc') {
        throw this.fail(new RpcError('protocol', `${what}: the host sent ${frame.reason}`))
      }
      if (frame.verdict === 'other-version') {
        const version = `${frame.rpcVersion}.${frame.rpcVersionMinor}`
        throw this.fail(new RpcError('protocol', `${what}: the host answered in RPC version ${version}`))
      }
      if (this.ended !== null) {
        const got = b.length ? ` after ${b.length} bytes of it` : ''
        throw new RpcError('closed', `${this.ended} before the ${what}${got}`)
      }
      const left = deadline - Date.now()
      if (left <= 0) throw this.fail(new RpcError('timeout', `no ${what} within ${timeoutMs} ms`))
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.wake = () => {
          this.wake = null
          clearTimeout(timer)
          resolve()
        }
      })
    }
  }
}
