// Text output of `kmslab decode`: one block per exchange, the way a careful protocol analyser
// prints it (field names as in the protocol reference, product names from the catalogue).
import type { DecodedCapture, ExchangeRecord } from '../capture/decode.js'
import { describeHresult } from '../kms/hresult.js'
import { LICENSE_STATUS_NAMES } from '../kms/report.js'
import { NULL_GUID } from '../wire/bytes.js'

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** "2026-11-25T13:26:39.000Z" → "2026-11-25 13:26:39 UTC" (milliseconds only when not zero). */
export function timeText(iso: string | null): string {
  if (!iso) return '(not a valid time)'
  return `${iso.replace('T', ' ').replace(/\.000Z$|Z$/, '')} UTC`
}

function named(id: string, name: string | null | undefined): string {
  return name ? `${id}  ${name}` : `${id}  (not in the catalogue)`
}

function rows(pairs: [string, string][]): string[] {
  return pairs.map(([k, v]) => `    ${k.padEnd(22)}${v}`)
}

/** The header of one file: format, counts and file-level warnings. */
export function formatCaptureHeader(file: string, d: DecodedCapture): string {
  const exchanges = d.exchanges.filter((r) => r.callId !== null).length
  const lines = [
    `== ${file}: ${d.format}, ${plural(d.packetCount, 'packet')}, ${plural(d.connectionCount, 'TCP connection')}, ${plural(exchanges, 'KMS exchange')}`,
  ]
  for (const w of d.warnings) lines.push(`   warning: ${w}`)
  return `${lines.join('\n')}\n`
}

export function formatExchange(r: ExchangeRecord): string {
  const route = `${r.client} -> ${r.server}`
  const lines: string[] = []
  if (r.callId === null) {
    lines.push(`connection ${r.connection + 1}  ${route}  (no KMS exchange)`)
  } else {
    const where = [
      `connection ${r.connection + 1}`,
      `call id ${r.callId}`,
      r.transferSyntax
        ? `${r.transferSyntax.toUpperCase()} context ${r.contextId}`
        : `context ${r.contextId}`,
    ]
    if (r.opnum !== 0) where.push(`opnum ${r.opnum}`)
    if (r.requestFrame !== null)
      where.push(
        r.responseFrame === null
          ? `frame ${r.requestFrame}`
          : `frames ${r.requestFrame} -> ${r.responseFrame}`,
      )
    if (r.time) where.push(timeText(r.time))
    lines.push(`exchange  ${route}  ${where.join(', ')}`)
    lines.push(...requestLines(r))
    lines.push(...responseLines(r))
  }
  if (r.errors.length > 0) {
    lines.push('  findings')
    for (const e of r.errors) lines.push(`    ! ${e}`)
  }
  return `${lines.join('\n')}\n`
}

function requestLines(r: ExchangeRecord): string[] {
  const q = r.request
  if (!q) {
    const v = r.wireVersion ? ` (KMS ${r.wireVersion} on the wire)` : ''
    return [`  request   not decodable${v}`]
  }
  const shape = r.wireVersion && r.wireVersion !== q.version ? `, ${r.wireVersion} on the wire` : ''
  const status = LICENSE_STATUS_NAMES[q.licenseStatus] ?? 'unknown'
  const p = r.products
  return [
    `  request   KMS ${q.version}${shape}, ${q.verified ? 'verified' : 'NOT verified'}`,
    ...rows([
      ['Application ID', named(q.appId, p?.app)],
      ['SKU ID', named(q.skuId, p?.sku)],
      ['KMS counted ID', named(q.kmsId, p?.kms)],
      ['Client machine ID', q.cmid],
      ['Previous CMID', q.previousCmid === NULL_GUID ? 'none' : q.previousCmid],
      ['Client time', timeText(q.clientTime)],
      ['Workstation', JSON.stringify(q.workstation)],
      ['License status', `${q.licenseStatus} (${status}), ${q.graceMinutes} minutes left`],
      ['Virtual machine', q.vm ? 'yes' : 'no'],
      ['Required count (N)', String(q.requiredCount)],
    ]),
  ]
}

function responseLines(r: ExchangeRecord): string[] {
  const a = r.response
  if (!a) return ['  response  none']
  if (a.epid === null && a.hresult !== 0) {
    const v = a.version ? `KMS ${a.version} ` : ''
    return [`  response  ${v}refused: ${describeHresult(a.hresult)}`]
  }
  const q = r.request
  const echo = (sent: string | undefined, got: string | null) =>
    got === null ? '-' : sent === undefined || sent === got ? got : `${got}  (request had ${sent})`
  const count =
    a.currentCount === null
      ? '-'
      : q
        ? `${a.currentCount}  (${a.currentCount >= q.requiredCount ? 'enough' : 'not enough'} for N = ${q.requiredCount})`
        : String(a.currentCount)
  const pairs: [string, string][] = [['KMS host ePID', a.epid ?? '-']]
  if (a.hwid !== null) pairs.push(['KMS host HWID', a.hwid])
  pairs.push(
    ['Client machine ID', echo(q?.cmid, a.cmid)],
    ['Client time', a.clientTime === null ? '-' : timeText(a.clientTime)],
    ['Current count', count],
    ['Activation interval', a.activationInterval === null ? '-' : `${a.activationInterval} minutes`],
    ['Renewal interval', a.renewalInterval === null ? '-' : `${a.renewalInterval} minutes`],
  )
  if (a.hresult !== 0) pairs.push(['HRESULT', describeHresult(a.hresult)])
  return [`  response  KMS ${a.version ?? '?'}, ${a.verified ? 'verified' : 'NOT verified'}`, ...rows(pairs)]
}
