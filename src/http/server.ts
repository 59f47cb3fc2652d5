/**
 * The host's HTTP port: health, metrics, the JSON API, server-sent events and the dashboard.
 * Read-only: GET and HEAD only, nothing here changes the host. It runs in the host's process, so
 * its limits are set on purpose: a slow, junk or oversized request is cut off by node:http's
 * timers and parser limits before it can cost the KMS listener more than a few bytes of work.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { UsageError } from '../errors.js'
import { HttpListenError } from './errors.js'
import { HISTORY_CONTENT_TYPES, writeHistory } from './history.js'
import { HostMetrics } from './metrics.js'
import { parseApplication, parseHistoryFormat, parseLimit, parseTimeBound } from './query.js'
import { EventStreams } from './sse.js'
import { staticFile } from './static.js'
import type { HistoryFilter, HttpOptions, OperationsProvider } from './types.js'

/** The limits, named so the README and the tests can quote them. */
export const HTTP_LIMITS = {
  /** all headers must arrive within this (slowloris) */
  headersTimeoutMs: 10_000,
  /** the whole request must arrive within this */
  requestTimeoutMs: 15_000,
  /** request line plus headers */
  maxHeaderBytes: 8192,
  keepAliveTimeoutMs: 5_000,
  /** a socket with nothing read or written this long is closed (event streams send heartbeats) */
  idleTimeoutMs: 60_000,
  maxConnections: 128,
  maxEventStreams: 32,
  maxRequestsPerSocket: 1000,
} as const

const digest = (s: string) => createHash('sha256').update(s).digest()

export class OperationsServer {
  readonly metrics: HostMetrics
  readonly events: EventStreams
  private readonly server: Server
  private readonly tokenDigest: Buffer | null

  constructor(
    private readonly provider: OperationsProvider,
    private readonly options: HttpOptions,
  ) {
    this.metrics = new HostMetrics(provider)
    this.events = new EventStreams(HTTP_LIMITS.maxEventStreams)
    this.tokenDigest = options.token ? digest(options.token) : null
    this.server = createServer({
      headersTimeout: HTTP_LIMITS.headersTimeoutMs,
      requestTimeout: HTTP_LIMITS.requestTimeoutMs,
      maxHeaderSize: HTTP_LIMITS.maxHeaderBytes,
      keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs,
      connectionsCheckingInterval: 1000,
    })
    this.server.maxConnections = HTTP_LIMITS.maxConnections
    this.server.maxRequestsPerSocket = HTTP_LIMITS.maxRequestsPerSocket
    this.server.setTimeout(HTTP_LIMITS.idleTimeoutMs, (socket) => socket.destroy())
    this.server.on('connection', (socket: Socket) => {
      // Peers outside --allow are closed without a byte, as on the KMS port.
      if (!provider.allowed(socket.remoteAddress ?? '')) socket.destroy()
    })
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (socket.writable && !socket.destroyed) socket.end(clientErrorAnswer(err.code))
      else socket.destroy()
    })
    this.server.on('request', (req, res) => {
      this.route(req, res).catch((err) => this.fail(res, err))
    })
  }

  /** Listens; resolves with the URL (port 0 resolved). */
  async start(): Promise<string> {
    const { host, port } = this.options
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(
          new HttpListenError(
            `cannot listen for HTTP on ${hostPort(host, port)}: ${err.code ?? err.message}`,
            host,
            port,
            err,
          ),
        )
      }
      this.server.once('error', onError)
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError)
        resolve()
      })
    })
    return this.url
  }

  get url(): string {
    const a = this.server.address()
    const port = typeof a === 'object' && a ? a.port : this.options.port
    const host = typeof a === 'object' && a ? a.address : this.options.host
    return `http://${hostPort(host, port)}/`
  }

  async stop(): Promise<void> {
    this.events.closeAll()
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      res.setHeader('connection', 'close')
      return this.text(res, 405, 'read-only: GET and HEAD only\n')
    }
    const url = new URL(req.url ?? '/', 'http://kmslab.invalid')
    const path = url.pathname
    if (path === '/healthz') return this.text(res, 200, 'ok\n')
    // The page and its files hold no host data, and the page is what asks for the token: served
    // without it, while every endpoint that shows the host's data still asks.
    if (path === '/' || path === '/index.html') return this.file(res, 'index.html')
    if (path.startsWith('/web/')) {
      let rel: string
      try {
        rel = decodeURIComponent(path.slice('/web/'.length))
      } catch {
        return this.json(res, 400, { error: 'bad percent-encoding in the path' })
      }
      return this.file(res, rel)
    }
    if (!this.authorized(req, url)) {
      res.setHeader('www-authenticate', 'Bearer realm="kmslab"')
      return this.json(res, 401, { error: 'unauthorized: send Authorization: Bearer TOKEN (or ?token=)' })
    }
    const p = this.provider
    switch (path) {
      case '/readyz':
        return p.ready() ? this.text(res, 200, 'ready\n') : this.text(res, 503, 'not ready\n')
      case '/metrics': {
        const body = await this.metrics.text()
        return this.send(res, 200, this.metrics.contentType, body)
      }
      case '/api/status':
        return this.json(res, 200, p.status())
      case '/api/clients': {
        const app = url.searchParams.get('application')
        return this.json(res, 200, p.clients(app ? parseApplication(app, 'application') : undefined))
      }
      case '/api/history':
        return this.history(res, url)
      case '/api/events':
        if (!this.events.open(res)) return this.json(res, 503, { error: 'too many event streams open' })
        return
      case '/api/products':
        return this.json(res, 200, products(p))
      case '/api/config':
        return this.json(res, 200, p.config())
    }
    return this.json(res, 404, { error: `no such endpoint: ${path}` })
  }

  private async history(res: ServerResponse, url: URL): Promise<void> {
    const q = url.searchParams
    const now = Date.now()
    const filter: HistoryFilter = {}
    const since = q.get('since')
    const until = q.get('until')
    const limit = q.get('limit')
    const app = q.get('application')
    if (since) filter.sinceMs = parseTimeBound(since, now, 'since')
    if (until) filter.untilMs = parseTimeBound(until, now, 'until')
    if (limit) filter.limit = parseLimit(limit, 'limit')
    if (app) filter.appId = parseApplication(app, 'application')
    const format = parseHistoryFormat(q.get('format') ?? 'json', 'format')
    const rows = this.provider.history(filter)
    res.writeHead(200, { 'content-type': HISTORY_CONTENT_TYPES[format], 'cache-control': 'no-store' })
    if (res.req.method === 'HEAD') return void res.end()
    await writeHistory(res, rows, format, this.provider.catalog)
    res.end()
  }

  private async file(res: ServerResponse, rel: string): Promise<void> {
    const f = await staticFile(rel)
    if (!f) return this.json(res, 404, { error: 'no such file' })
    this.send(res, 200, f.type, f.body, 'no-cache')
  }

  private authorized(req: IncomingMessage, url: URL): boolean {
    if (!this.tokenDigest) return true
    const header = req.headers.authorization
    const given = header?.startsWith('Bearer ') ? header.slice(7).trim() : url.searchParams.get('token')
    return given !== null && timingSafeEqual(digest(given), this.tokenDigest)
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy()
      return
    }
    if (err instanceof UsageError) this.json(res, 400, { error: err.message })
    else this.json(res, 500, { error: `internal error: ${(err as Error)?.message ?? String(err)}` })
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    this.send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`)
  }

  private text(res: ServerResponse, status: number, body: string): void {
    this.send(res, status, 'text/plain; charset=utf-8', body)
  }

  private send(res: ServerResponse, status: number, type: string, body: string | Buffer, cache = 'no-store') {
    res.writeHead(status, {
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      'cache-control': cache,
      'x-content-type-options': 'nosniff',
    })
    res.end(res.req.method === 'HEAD' ? undefined : body)
  }
}

/** What a peer whose request node:http could not take is told, before the socket closes. */
function clientErrorAnswer(code: string | undefined): string {
  const status =
    code === 'HPE_HEADER_OVERFLOW'
      ? '431 Request Header Fields Too Large'
      : code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : '400 Bad Request'
  return `HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** The catalogue for the products page: every SKU with its GVLK and its KMS id's policy. */
function products(p: OperationsProvider) {
  const c = p.catalog
  return c.skus.map((s) => {
    const kms = c.kmsById(s.kmsId)
    return {
      skuId: s.id,
      name: s.name,
      gvlk: s.gvlk,
      ...(s.gvlkGenerated ? { gvlkGenerated: true } : {}),
      appId: s.appId,
      appName: c.appName(s.appId) ?? null,
      kmsId: s.kmsId,
      kmsName: kms?.name ?? null,
      family: kms?.family ?? null,
      requiredCount: kms?.requiredCount ?? null,
      protocol: kms?.defaultProtocol ?? null,
      retail: kms?.retail ?? false,
      preview: kms?.preview ?? false,
    }
  })
}
