import type { ActivationRecord, KmsHost } from '../host/host.js'
import { WINDOWS_APP_ID } from '../kms/counter.js'
import { describeHresult, hresultHex } from '../kms/hresult.js'
import { dateFromFiletime } from '../wire/bytes.js'
import { hostPort } from '../wire/endpoint.js'

export type LogFormat = 'text' | 'json'
export type LogLevel = 'info' | 'warning' | 'error'

/** Writes the host's log: readable lines, or JSON lines for machines. */
export class ServeLog {
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly err: NodeJS.WritableStream,
    readonly format: LogFormat,
    readonly level: 'quiet' | 'normal' | 'verbose',
  ) {}

  /**
   * One line. JSON lines all carry `time` (ISO 8601 UTC), `level`, `event` and `msg` (the text
   * line's words) first; the event's fields follow and never replace those four.
   */
  private line(
    stream: NodeJS.WritableStream,
    level: LogLevel,
    event: string,
    text: string,
    fields: Record<string, unknown>,
    at: Date = new Date(),
  ): void {
    const time = at.toISOString()
    if (this.format === 'json') {
      const { time: _t, level: _l, event: _e, msg: _m, ...rest } = fields
      stream.write(`${JSON.stringify({ time, level, event, msg: text, ...rest })}\n`)
    } else stream.write(`${time} ${level === 'info' ? '' : `${level}: `}${text}\n`)
  }

  info(event: string, text: string, fields: Record<string, unknown> = {}): void {
    if (this.level !== 'quiet') this.line(this.out, 'info', event, text, fields)
  }

  always(event: string, text: string, fields: Record<string, unknown> = {}): void {
    this.line(this.out, 'info', event, text, fields)
  }

  warn(event: string, text: string, fields: Record<string, unknown> = {}): void {
    this.line(this.err, 'warning', event, text, fields)
  }

  error(event: string, text: string, fields: Record<string, unknown> = {}): void {
    this.line(this.err, 'error', event, text, fields)
  }

  activation(host: KmsHost, r: ActivationRecord): void {
    if (this.level === 'quiet') return
    const { request, time, ...row } = r
    const seen = r.newClient === null ? null : r.newClient ? 'new' : 'renewal'
    const fields = { ...row, cmidSeen: seen, hresultHex: hresultHex(r.hresult) }
    const name = host.catalog.skuName(r.skuId) ?? host.catalog.kmsName(r.kmsId) ?? r.skuId
    const who = hostPort(r.clientAddress, r.clientPort)
    const text =
      r.hresult !== 0
        ? `refused ${who} V${r.protocol} ${name}: ${describeHresult(r.hresult)}${r.reason ? ` (${r.reason})` : ''}`
        : `activation ${who} V${r.protocol} ${name} ws=${r.workstation} cmid=${r.cmid} ` +
          `(${seen === 'new' ? 'new client' : seen === 'renewal' ? 'renewal: already in the pool' : 'not counted'}) ` +
          `count ${r.reportedCount}/${r.requiredCount}: ${verdict(r)}`
    const at = new Date(time)
    this.line(this.out, 'info', r.hresult === 0 ? 'activation' : 'refusal', text, fields, at)
    if (this.level === 'verbose' && request.base) {
      const b = request.base
      const dump = {
        version: `${request.major}.${request.minor}`,
        vm: b.isClientVm,
        licenseStatus: b.licenseStatus,
        graceMinutes: b.graceTime,
        appId: `${b.appId} (${host.catalog.appName(b.appId) ?? 'unknown'})`,
        skuId: `${b.skuId} (${host.catalog.skuName(b.skuId) ?? 'unknown'})`,
        kmsId: `${b.kmsId} (${host.catalog.kmsName(b.kmsId) ?? 'unknown'})`,
        cmid: b.cmid,
        previousCmid: b.previousCmid,
        clientTime: dateFromFiletime(b.requestTime).toISOString(),
        workstation: b.workstation,
        requiredCount: b.requiredCount,
        epid: r.epid,
        hwid: request.major >= 6 ? host.identity.hwid : null,
        currentCount: r.reportedCount,
      }
      if (this.format === 'json')
        this.line(this.out, 'info', 'dump', 'every field of the request and answer', dump, at)
      else for (const [k, v] of Object.entries(dump)) this.out.write(`    ${k.padEnd(14)} ${v}\n`)
    }
  }
}

/** Whether the client activates, and how far its pool is from each threshold. */
function verdict(r: ActivationRecord): string {
  const pool = r.poolSize ?? 0
  const count = r.reportedCount ?? 0
  const head = count >= r.requiredCount ? 'client will activate' : `client will NOT activate yet (0xC004F038)`
  const thresholds = r.appId === WINDOWS_APP_ID ? [5, 25] : [5]
  const labels = r.appId === WINDOWS_APP_ID ? ['servers', 'clients'] : ['Office']
  const parts = thresholds.map((t, i) =>
    pool >= t ? `${labels[i]} (${t}) reached` : `${labels[i]} (${t}) needs ${t - pool} more`,
  )
  return `${head}; pool ${pool}: ${parts.join(', ')}`
}
