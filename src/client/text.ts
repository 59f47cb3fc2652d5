// What `kmslab activate` prints: one line per request (plus its warnings), a protocol-analyser view
// with --verbose (field names as vlmcs prints them), or one JSON object per request.

import type { NameLookup } from '../catalog/index.js'
import { describeHresult, HRESULT } from '../kms/hresult.js'
import {
  filetimeIso,
  hwidText,
  LICENSE_STATUS_NAMES,
  type RequestReport,
  type ResponseReport,
  refusalReport,
  requestReport,
  responseReport,
  unverifiedResponseReport,
} from '../kms/report.js'
import { hostPort } from '../wire/endpoint.js'
import { RpcError } from './errors.js'
import type { Attempt, AttemptFailure, ChargeProgress, RequestResult, Verdict } from './types.js'

export interface ResultRecord {
  host: string
  address: string | null
  attempts: Attempt[]
  request: RequestReport
  response: ResponseReport | null
  verdict: Verdict
  warnings: string[]
  error: string | null
}

/** Why a verified answer does not activate: the count the client needs is not there yet (§6.3). */
function shortfall(r: RequestResult): string {
  const count = r.answer?.base.currentCount ?? 0
  return `count ${count} is below the required ${r.request.requiredCount}: ${describeHresult(HRESULT.NOT_ENOUGH_COUNT)}`
}

function errorText(r: RequestResult): string | null {
  if (r.verdict === 'activated') return null
  if (r.verdict === 'not-enough-count') return shortfall(r)
  return r.error?.message ?? r.verdict
}

/** The `--json` object of one request (the `kmslab decode --json` shape for request and response). */
export function resultRecord(r: RequestResult): ResultRecord {
  let response: ResponseReport | null = null
  if (r.answer) response = responseReport(r.answer)
  else if (r.hresult !== null) response = refusalReport(r.hresult)
  else if (r.responsePayload && r.verdict === 'verification-failed')
    response = unverifiedResponseReport(r.responsePayload)
  return {
    host: r.host,
    address: r.address,
    attempts: r.attempts,
    request: requestReport(r.request),
    response,
    verdict: r.verdict,
    warnings: r.warnings,
    error: errorText(r),
  }
}

const VERDICT_TEXT: Record<Verdict, string> = {
  activated: 'activated',
  'not-enough-count': 'not enough clients',
  refused: 'refused',
  'verification-failed': 'verification failed',
  'rpc-error': 'RPC error',
}

/** One line: "1/3 127.0.0.1:1688 V6 NDR32: activated, count 50/25, ePID ..., HWID ...". */
export function summaryLine(r: RequestResult, total?: number): string {
  const n = total ? `${r.index + 1}/${total}` : `${r.index + 1}`
  const rpc = r.rpc ? ` ${r.rpc.syntax.toUpperCase()}` : ''
  const via = r.address && !r.host.startsWith(r.address) && !r.host.startsWith(`[${r.address}]`)
  const host = via ? `${r.host} (${r.address})` : r.host
  let head = `${n} ${host} V${r.request.versionMajor}${rpc}: ${VERDICT_TEXT[r.verdict]}`
  const a = r.answer
  if (a) {
    head += `, count ${a.base.currentCount}/${r.request.requiredCount}, ePID ${a.base.epid}`
    if (a.hwid) head += `, HWID ${hwidText(a.hwid)}`
  } else if (r.hresult !== null) head += ` ${describeHresult(r.hresult)}`
  else if (r.error) {
    const kind =
      r.error instanceof RpcError ? ` (${r.error.kind})` : 'check' in r.error ? ` (${r.error.check})` : ''
    head += `${kind}: ${r.error.message}`
  }
  return head
}

function utc(ft: bigint): string {
  return (filetimeIso(ft) ?? String(ft)).replace('T', ' ').replace(/\.\d+Z$/, '')
}

function named(id: string, name: string | undefined): string {
  return name ? `${id} (${name})` : id
}

function block(title: string, rows: [string, string | number][]): string[] {
  return [title, ...rows.map(([k, v]) => `  ${k.padEnd(32)}: ${v}`)]
}

/** The --verbose view: every field of the request and of the answer, then the verdict. */
export function verboseLines(r: RequestResult, names?: NameLookup, total?: number): string[] {
  const q = r.request
  const lines = block(`Request ${r.index + 1}${total ? ` of ${total}` : ''} to ${r.host}`, [
    ['Protocol version', `${q.versionMajor}.${q.versionMinor}`],
    ['Client is a virtual machine', q.isClientVm ? 'Yes' : 'No'],
    [
      'Licensing status',
      `${q.licenseStatus}${LICENSE_STATUS_NAMES[q.licenseStatus] ? ` (${LICENSE_STATUS_NAMES[q.licenseStatus]})` : ''}`,
    ],
    ['Remaining time (0 = forever)', `${q.graceTime} minutes`],
    ['Application ID', named(q.appId, names?.appName(q.appId))],
    ['SKU ID (aka Activation ID)', named(q.skuId, names?.skuName(q.skuId))],
    ['KMS ID (aka KMS counted ID)', named(q.kmsId, names?.kmsName(q.kmsId))],
    ['Client machine ID', q.cmid],
    ['Previous client machine ID', q.previousCmid],
    ['Client request timestamp (UTC)', utc(q.requestTime)],
    ['Workstation name', q.workstation],
    ['N count policy (minimum clients)', q.requiredCount],
  ])
  for (const b of r.bind ?? []) lines.push(`RPC ${b}`)
  if (r.rpc)
    lines.push(
      `RPC request: call id ${r.rpc.callId}, context ${r.rpc.contextId} (${r.rpc.syntax.toUpperCase()})`,
    )
  const a = r.answer
  if (a && r.responsePayload) {
    const size = r.responsePayload.length
    const rows: [string, string | number][] = [
      ['Size of KMS Response', `${size} (0x${size.toString(16)})`],
      ['Protocol version', `${a.major}.${a.minor}`],
      ['KMS host extended PID', a.base.epid],
    ]
    if (a.hwid) rows.push(['KMS host Hardware ID', hwidText(a.hwid) ?? ''])
    rows.push(
      ['Client machine ID', a.base.cmid],
      ['Client request timestamp (UTC)', utc(a.base.requestTime)],
      ['KMS host current active clients', a.base.currentCount],
      ['Renewal interval policy', a.base.renewalInterval],
      ['Activation interval policy', a.base.activationInterval],
    )
    lines.push(...block('Response', rows))
  }
  lines.push(`Result: ${summaryLine(r, total).replace(/^\S+ /, '')}`)
  return lines
}

const FAILURE_TEXT: Record<AttemptFailure, string> = {
  refused: 'refused',
  unreachable: 'unreachable',
  'timed-out': 'timed out',
  closed: 'closed without an answer',
  error: 'answered with an error',
  unresolved: 'no address',
}

/** "tried kms1.lab.test:1688 (127.0.0.2): refused: cannot connect ...". */
export function attemptLine(a: Attempt): string {
  const at = a.address && a.address !== a.host ? ` (${a.address})` : ''
  return `tried ${hostPort(a.host, a.port)}${at}: ${FAILURE_TEXT[a.failure]}: ${a.error}`
}

/** The text output of one request: its summary (or verbose view) and its warnings. */
export function formatResult(
  r: RequestResult,
  o: { verbose?: boolean; names?: NameLookup; total?: number } = {},
): string {
  const lines = o.verbose ? verboseLines(r, o.names, o.total) : [summaryLine(r, o.total)]
  if (r.verdict === 'not-enough-count') lines.push(`  ${shortfall(r)}`)
  // A lone failed attempt is what the summary line says already.
  const attempts = r.address === null && r.attempts.length === 1 ? [] : r.attempts
  for (const a of attempts) lines.push(`  ${attemptLine(a)}`)
  for (const w of r.warnings) lines.push(`  warning: ${w}`)
  return `${lines.join('\n')}\n${o.verbose ? '\n' : ''}`
}

/** The charge progress line (rewritten in place with \r on a terminal). */
export function progressLine(p: ChargeProgress): string {
  return `charging: ${p.sent} sent, count ${p.count ?? '-'}/${p.required} (at most ${p.limit} requests)`
}
