// `activate`: a verifying KMS client. Sends one or more activation requests to a host (or to the
// hosts a domain's SRV record names), checks every answer at the RPC and the KMS level and reports
// per request what came back, what is wrong (errors) and what is odd (warnings, as vlmcs prints).
import { isIP } from 'node:net'
import { DEFAULT_PRODUCT, defaultCatalog, findProduct, type Product, withIds } from '../catalog/index.js'
import { cryptoRandom, type RandomSource } from '../crypto/random.js'
import { UsageError } from '../errors.js'
import { VerificationError } from '../kms/errors.js'
import { buildKmsRequest, verifyKmsResponse } from '../kms/verify.js'
import { hostPort } from '../wire/endpoint.js'
import { epidWarning, payloadSizeWarning } from './checks.js'
import {
  discoverHosts,
  parseTarget,
  srvName,
  systemAddresses,
  systemResolver,
  type Target,
} from './discover.js'
import { DiscoveryError, RefusedError, RpcError } from './errors.js'
import { buildBase, type RequestFields, requestFields } from './request.js'
import { type CallResult, type Negotiated, RpcConnection, type RpcOptions } from './rpc-client.js'
import {
  type ActivateOptions,
  type ActivationReport,
  type AttemptFailure,
  CLOSED_WARNING,
  EXIT_CODES,
  type RequestResult,
} from './types.js'

export * from './types.js'

const DEFAULT_TIMEOUT_MS = 10_000

export async function activate(
  target: string | { host: string; port: number },
  options: ActivateOptions = {},
): Promise<ActivationReport> {
  const t: Target = typeof target === 'string' ? parseTarget(target) : { kind: 'host', ...target }
  return new Run(t, options).go()
}

interface Endpoint {
  host: string
  port: number
  addresses?: string[]
}

function attemptFailure(err: RpcError): AttemptFailure {
  switch (err.kind) {
    case 'connect':
      return err.code === 'ECONNREFUSED' ? 'refused' : 'unreachable'
    case 'timeout':
      return 'timed-out'
    case 'closed':
      return 'closed'
    default:
      return 'error'
  }
}

function productOf(o: ActivateOptions): Product {
  const catalog = o.catalog ?? defaultCatalog()
  return withIds(catalog, findProduct(catalog, o.product ?? DEFAULT_PRODUCT), o)
}

class Run {
  private readonly fields: RequestFields
  private readonly rpc: RpcOptions
  private readonly random: RandomSource
  private readonly now: () => Date
  private conn: RpcConnection | null = null
  private connections = 0
  private callId = 2
  private lastEpid: string | undefined
  private hosts: Endpoint[] | null = null

  constructor(
    private readonly target: Target,
    private readonly o: ActivateOptions,
  ) {
    this.fields = requestFields(o, productOf(o))
    const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS
    if (!(timeoutMs > 0)) throw new UsageError('the timeout must be positive')
    this.rpc = { ndr64: o.ndr64 ?? true, btfn: o.btfn ?? true, multiplex: o.multiplex ?? true, timeoutMs }
    this.random = o.random ?? cryptoRandom
    this.now = o.now ?? (() => new Date())
  }

  async go(): Promise<ActivationReport> {
    const required = this.fields.requiredCount
    const limit = this.o.requests ?? (this.o.charge ? Math.max(required, 1) * 2 : 1)
    if (!(Number.isInteger(limit) && limit >= 1)) throw new UsageError('requests must be a whole number ≥ 1')
    const results: RequestResult[] = []
    let previous: number | null = null
    try {
      for (let i = 0; i < limit; i++) {
        const r = await this.one(i)
        results.push(r)
        const count = r.answer?.base.currentCount ?? null
        const stop = this.lastOne(r, previous)
        previous = count
        this.o.onResult?.(r)
        if (this.o.charge) this.o.onProgress?.({ sent: i + 1, count, required, limit })
        if (stop) break
      }
    } finally {
      this.conn?.close()
    }
    // While charging, counts below the threshold are the point; only the last answer decides.
    const decisive = this.o.charge
      ? results.filter((r, i) => i === results.length - 1 || r.verdict !== 'not-enough-count')
      : results
    return { results, exitCode: Math.max(0, ...decisive.map((r) => EXIT_CODES[r.verdict])) }
  }

  /** An RPC failure ends the run; while charging, so does anything but a count still short. */
  private lastOne(r: RequestResult, previous: number | null): boolean {
    if (r.verdict === 'rpc-error') return true
    if (!this.o.charge) return false
    if (r.verdict !== 'not-enough-count') return true
    const count = r.answer!.base.currentCount
    if (previous === null || count > previous) return false
    r.warnings.push(`count did not increase (${previous} -> ${count}): the host does not count new clients`)
    return true
  }

  private async endpoints(): Promise<Endpoint[]> {
    if (this.target.kind === 'host') return [this.target]
    this.hosts ??= (
      await discoverHosts(
        this.target.domain,
        this.o.resolveSrv ?? systemResolver(undefined, this.rpc.timeoutMs),
        this.random,
      )
    ).map((r) => ({ host: r.name, port: r.port, addresses: r.addresses }))
    return this.hosts
  }

  private async addressesOf(h: Endpoint): Promise<string[]> {
    if (isIP(h.host)) return [h.host]
    if (h.addresses?.length) return h.addresses
    return (this.o.resolveAddresses ?? systemAddresses)(h.host)
  }

  /**
   * Connects, binds and sends the request to each host (each of its addresses) in turn until one
   * answers at the RPC level; the others' failures are the result's attempts. A KMS-level answer
   * (a refusal HRESULT, an answer failing verification) is an answer: no other host is asked.
   */
  private async open(
    payload: Uint8Array,
    r: RequestResult,
  ): Promise<{ conn: RpcConnection; negotiated: Negotiated; call: CallResult }> {
    let last: RpcError | null = null
    for (const h of await this.endpoints()) {
      let addresses: string[]
      try {
        addresses = await this.addressesOf(h)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
        addresses = []
        last = new RpcError('connect', `cannot resolve ${h.host}: ${code}`)
      }
      if (addresses.length === 0) {
        last ??= new RpcError('connect', `cannot resolve ${h.host}: it has no address`)
        r.attempts.push({
          host: h.host,
          port: h.port,
          address: null,
          failure: 'unresolved',
          error: last.message,
        })
        continue
      }
      for (const address of addresses) {
        let conn: RpcConnection | null = null
        try {
          conn = await RpcConnection.connect(h.host, h.port, this.rpc.timeoutMs, address)
          const negotiated = await conn.bind(this.callId, this.rpc)
          const call = await conn.call(payload, this.callId, this.rpc.timeoutMs)
          this.connections++
          this.lastEpid = undefined
          return { conn, negotiated, call }
        } catch (err) {
          conn?.close()
          if (!(err instanceof RpcError)) throw err
          r.attempts.push({
            host: h.host,
            port: h.port,
            address,
            failure: attemptFailure(err),
            error: err.message,
          })
          last = err
        }
      }
    }
    throw last ?? new DiscoveryError('no KMS host to try', this.targetText())
  }

  private targetText(): string {
    return this.target.kind === 'host'
      ? hostPort(this.target.host, this.target.port)
      : srvName(this.target.domain)
  }

  private async call(
    payload: Uint8Array,
    r: RequestResult,
  ): Promise<{ call: CallResult; bind: string[] | null }> {
    let conn = this.conn
    if (conn && !this.o.newConnection) await conn.settle()
    if (conn && (this.o.newConnection || conn.closedByPeer)) {
      if (conn.closedByPeer && !this.o.newConnection) r.warnings.push(CLOSED_WARNING)
      conn = null
    }
    if (conn) {
      try {
        return { call: await conn.call(payload, this.callId, this.rpc.timeoutMs), bind: null }
      } catch (err) {
        // A host that closes right after its answer may do so while this request is on its way.
        const lateClose =
          err instanceof RpcError && err.kind === 'closed' && conn.callsDone > 0 && conn.pendingBytes === 0
        if (!lateClose) throw err
        r.warnings.push(CLOSED_WARNING)
      }
    }
    this.conn?.close()
    this.conn = null
    const opened = await this.open(payload, r)
    this.conn = opened.conn
    r.warnings.push(...opened.negotiated.warnings)
    return { call: opened.call, bind: opened.negotiated.summary }
  }

  private async one(index: number): Promise<RequestResult> {
    const { base, iv } = buildBase(this.fields, index, this.random, this.now)
    const built = buildKmsRequest(base, this.random, iv)
    const r: RequestResult = {
      index,
      host: this.conn?.remote ?? this.targetText(),
      address: null,
      attempts: [],
      request: base,
      requestPayload: built.payload,
      responsePayload: null,
      answer: null,
      hresult: null,
      verdict: 'rpc-error',
      warnings: [],
      error: null,
      rpc: null,
      bind: null,
    }
    let call: CallResult
    try {
      const sent = await this.call(built.payload, r)
      call = sent.call
      r.bind = sent.bind
    } catch (err) {
      if (!(err instanceof RpcError || err instanceof DiscoveryError)) throw err
      r.error = err
      if (this.conn) {
        r.host = this.conn.remote
        r.address = this.conn.remoteAddress
      }
      this.conn?.close()
      this.conn = null
      return r
    } finally {
      this.callId++
    }
    const conn = this.conn!
    r.host = conn.remote
    r.address = conn.remoteAddress
    r.rpc = {
      syntax: call.syntax,
      contextId: call.contextId,
      callId: call.callId,
      connection: this.connections,
    }
    r.warnings.push(...call.warnings)
    const { payload, hresult } = call.stub
    r.responsePayload = payload
    if (payload === null || hresult !== 0) {
      if (hresult === 0) {
        r.error = new RpcError('protocol', 'response has a NULL KMS response and HRESULT 0')
        return r
      }
      r.hresult = hresult
      r.verdict = 'refused'
      r.error = new RefusedError(hresult)
      return r
    }
    try {
      r.answer = verifyKmsResponse(built, payload)
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err
      r.verdict = 'verification-failed'
      r.error = err
      return r
    }
    const a = r.answer
    r.warnings.push(...a.warnings)
    const size = payloadSizeWarning(a.major, a.pidSize, payload.length)
    if (size) r.warnings.push(size)
    const epid = epidWarning(this.lastEpid, a.base.epid)
    if (epid) r.warnings.push(epid)
    this.lastEpid = a.base.epid
    r.verdict = a.base.currentCount >= base.requiredCount ? 'activated' : 'not-enough-count'
    return r
  }
}
