import type { ActivationRecord, KmsHost } from '../api/host.js'
import { WINDOWS_APP_ID } from '../kms/counter.js'
import { describeHresult, hresultHex } from '../kms/hresult.js'
import { dateFromFiletime } from '../wire/bytes.js'

export type LogFormat = 'text' | 'json'

/** Writes the host's log: readable lines, or JSON lines for machines. */
export class ServeLog {
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly err: NodeJS.WritableStream,
    readonly format: LogFormat,
    readonly level: 'quiet' | 'normal' | 'verbose',
  ) {}

  private line(
    stream: NodeJS.WritableStream,
    event: string,
    text: string,
    fields: Record<string, unknown>,
  ): void {
    const time = new Date().toISOString()
    if (this.format === 'json') stream.write(`${JSON.stringify({ time, event, ...fields })}\n`)
    else stream.write(`${time} ${text}\n`)
  }

  info(event: string, text: string, fields: Record<string, unknown> = {}): void {
    if (this.level !== 'quiet') this.line(this.out, event, text, fields)
  }

  always(event: string, text: string, fields: Record<string, unknown> = {}): void {
    this.line(this.out, event, text, fields)
  }

  warn(event: string, text: string, fields: Record<string, unknown> = {}): void {
    this.line(this.err, event, `warning: ${text}`, { level: 'warning', ...fields })
  }

  error(event: string, text: string, fields: Record<string, unknown> = {}): void {
    this.line(this.err, event, `error: ${text}`, { level: 'error', ...fields })
  }

  activation(host: KmsHost, r: ActivationRecord): void {
    const { request, ...row } = r
    const fields = { ...row, hresult: r.hresult, hresultHex: hresultHex(r.hresult) }
    if (this.level === 'quiet') return
    const name = host.catalog.skuName(r.skuId) ?? host.catalog.kmsName(r.kmsId) ?? r.skuId
    const who = `${r.clientAddress.includes(':') ? `[${r.clientAddress}]` : r.clientAddress}:${r.clientPort}`
    const text =
      r.hresult !== 0
        ? `refused ${who} V${r.protocol} ${name}: ${describeHresult(r.hresult)}${r.reason ? ` (${r.reason})` : ''}`
        : `activation ${who} V${r.protocol} ${name} ws=${r.workstation} cmid=${r.cmid} ` +
          `count ${r.reportedCount}/${r.requiredCount}: ${verdict(r)}`
    this.line(this.out, r.hresult === 0 ? 'activation' : 'refusal', text, fields)
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
      if (this.format === 'json') this.line(this.out, 'dump', '', dump)
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
