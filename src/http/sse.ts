/**
 * Server-sent events: every activation goes to every open /api/events stream as one `activation`
 * event. A comment line every 15 s keeps proxies and idle timers from closing a quiet stream; a
 * reader that falls more than 1 MiB behind is dropped instead of growing our buffer.
 */
import type { ServerResponse } from 'node:http'

export const HEARTBEAT_MS = 15_000
const MAX_BACKLOG = 1 << 20

export class EventStreams {
  private readonly streams = new Set<ServerResponse>()
  private heartbeat: NodeJS.Timeout | null = null

  constructor(private readonly max: number) {}

  get size(): number {
    return this.streams.size
  }

  /** Starts a stream on `res`; false when `max` streams are open already. */
  open(res: ServerResponse): boolean {
    if (this.streams.size >= this.max) return false
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    })
    res.write('retry: 3000\n: kmslab activations\n\n')
    this.streams.add(res)
    res.on('close', () => this.drop(res))
    this.heartbeat ??= setInterval(() => this.send(': heartbeat\n\n'), HEARTBEAT_MS).unref()
    return true
  }

  /** One event to every stream; `data` is built only when someone listens. */
  publish(event: string, data: () => unknown): void {
    if (this.streams.size === 0) return
    this.send(`event: ${event}\ndata: ${JSON.stringify(data())}\n\n`)
  }

  closeAll(): void {
    for (const res of this.streams) res.end()
    this.streams.clear()
    this.stopHeartbeat()
  }

  private send(text: string): void {
    for (const res of this.streams) {
      if (res.writableLength > MAX_BACKLOG) res.destroy()
      else res.write(text)
    }
  }

  private drop(res: ServerResponse): void {
    this.streams.delete(res)
    if (this.streams.size === 0) this.stopHeartbeat()
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat)
    this.heartbeat = null
  }
}
